"""Settings: the generated secret is shared by every process on one data directory."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from framegate.config import Settings


def _secret(data_dir: str) -> str:
    return Settings(data_dir=Path(data_dir)).effective_secret_key


def test_generated_secret_is_created_once_and_kept(tmp_path: Path) -> None:
    with ProcessPoolExecutor(4) as pool:
        secrets = set(pool.map(_secret, [str(tmp_path)] * 8))
    assert len(secrets) == 1
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert _secret(str(tmp_path)) in secrets
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]


def test_production_refuses_to_run_without_a_secret(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="FRAMEGATE_SECRET_KEY"):
        _ = Settings(env="production", data_dir=tmp_path).effective_secret_key


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        Settings(secret_key="short")


def test_allowlist_must_parse() -> None:
    with pytest.raises(ValueError):
        Settings(allow_private_networks="10.0.0.0/8,not-a-network")
