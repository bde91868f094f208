"""The operator CLI contract used by scripts: JSON output, keys create/list/revoke."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.processes import FRAMEGATE, cli_json, environment, throwaway_database

pytestmark = pytest.mark.slow


def test_admin_and_keys_commands(backend: str, tmp_path: Path) -> None:
    with throwaway_database(backend) as database_url:
        env = environment(tmp_path / "data", database_url)
        account = cli_json(env, "admin", "create-account", "--name", "ops", "--credits", "50")
        assert account["account_id"].startswith("acct_")
        assert account["api_key"].startswith("fg_live_")
        assert account["credits"] == 50

        key = cli_json(
            env, "keys", "create", "--account", account["account_id"], "--scope", "tasks:read"
        )
        assert key["scopes"] == ["tasks:read"]
        listed = cli_json(env, "keys", "list", "--account", account["account_id"])
        assert {k["api_key_id"] for k in listed} == {account["api_key_id"], key["api_key_id"]}
        assert all(key["api_key"] not in str(k) for k in listed)

        revoked = cli_json(
            env, "keys", "revoke", key["api_key_id"], "--account", account["account_id"]
        )
        assert revoked["revoked_at"] is not None

        granted = cli_json(env, "admin", "grant", account["account_id"], "--credits", "25")
        assert granted["balance"] == 75

        bad = subprocess.run(
            [FRAMEGATE, "admin", "grant", "acct_missing", "--credits", "5"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert bad.returncode == 1
        assert "acct_missing" in bad.stderr


def test_plan_commands(backend: str, tmp_path: Path) -> None:
    with throwaway_database(backend) as database_url:
        env = environment(tmp_path / "data", database_url)
        account = cli_json(env, "admin", "create-account", "--name", "p", "--credits", "1")
        plan = cli_json(
            env,
            "admin",
            "set-plan",
            "pro",
            "--max-concurrent-videos",
            "20",
            "--max-concurrent-images",
            "40",
            "--requests-per-minute",
            "1200",
        )
        assert plan == {
            "name": "pro",
            "max_concurrent_videos": 20,
            "max_concurrent_images": 40,
            "requests_per_minute": 1200,
        }
        moved = cli_json(env, "admin", "assign-plan", account["account_id"], "pro")
        assert moved == {"account_id": account["account_id"], "plan": "pro"}
        # A name no plan can have (PUT /v1/admin/plans/{name} allows these characters only)
        # would leave the account on the default limits for ever: refused.
        typo = subprocess.run(
            [FRAMEGATE, "admin", "assign-plan", account["account_id"], "pro plan"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert typo.returncode == 1 and "plan name" in typo.stderr, typo.stderr
