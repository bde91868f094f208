"""`framegate models pull|local` against a Hugging Face Hub served on loopback, then a real
`framegate serve` (hub offline) generating with the pulled weights."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
import yaml

from tests.engines.fake_hub import FakeHub
from tests.engines.tiny_pipelines import BUILDERS
from tests.processes import FRAMEGATE, Server, cli_json, environment, free_port
from tests.waiting import wait_until_sync

pytestmark = pytest.mark.slow

REPO = "tiny-org/tiny-wan-diffusers"
TOKEN = "hf_test_token_0123456789"


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FRAMEGATE, *args], env=env, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return BUILDERS["wan-t2v"](tmp_path_factory.mktemp("hub") / "tiny-wan")


def catalog(path: Path) -> Path:
    route = {
        "id": "tiny-wan",
        "aliases": ["tiny"],
        "kind": "video",
        "engine": "diffusers",
        "settings": {
            "family": "wan",
            "pipeline": "WanPipeline",
            "weights": REPO,
            "device": "cpu",
            "dtype": "float32",
            "steps": 2,
        },
        "capabilities": {
            "text_to_video": True,
            "min_fps": 8,
            "max_fps": 8,
            "default_fps": 8,
            "min_duration": 1,
            "max_duration": 1,
            "default_duration": 1,
            "frame_step": 4,
            "min_side": 16,
            "size_multiple": 16,
            "default_size": "32x32",
        },
        "pricing": {"unit": "clip", "credits": {"480p": 2}},
    }
    path.write_text(yaml.safe_dump({"routes": [route]}))
    return path


def test_pull_then_serve_offline(weights: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    base = environment(
        data_dir,
        f"sqlite+aiosqlite:///{tmp_path / 'framegate.db'}",
        FRAMEGATE_CATALOG_FILE=str(catalog(tmp_path / "catalog.yaml")),
    )
    with FakeHub({REPO: weights}, token=TOKEN) as hub:
        env = hub.environment(tmp_path / "hf-home", base=base)

        def tiny_wan() -> dict[str, object]:
            rows = cli_json(env, "models", "local")
            assert "wan-2.1-t2v-1.3b" in {r["route"] for r in rows}  # the built-ins too
            return next(r for r in rows if r["route"] == "tiny-wan")

        assert tiny_wan()["present"] is False

        # A gated repository without a token: a clear error, nothing half-written counts.
        refused = run(env, "models", "pull", "tiny-wan")
        assert refused.returncode == 1
        assert f"could not download {REPO}" in refused.stderr
        assert tiny_wan()["present"] is False

        pulled = cli_json({**env, "HF_TOKEN": TOKEN}, "models", "pull", "tiny")
        target = data_dir / "models" / REPO
        assert pulled["route"] == "tiny-wan" and Path(pulled["path"]) == target.resolve()
        for name in ("model_index.json", "transformer/config.json"):
            assert (target / name).read_bytes() == (weights / name).read_bytes()
        tensors = sorted(p.relative_to(weights) for p in weights.rglob("*.safetensors"))
        assert tensors and all(
            (target / p).read_bytes() == (weights / p).read_bytes() for p in tensors
        )
        assert all(
            r.headers.get("authorization") == f"Bearer {TOKEN}"
            for r in hub.requests
            if not r.path.startswith("/cdn") and "authorization" in r.headers
        )
        local = tiny_wan()
        assert local["present"] is True and local["bytes"] > 0

    # The hub is gone and the process is told to stay offline: the weights load from disk.
    serve_env = {**base, "HF_HUB_OFFLINE": "1", "FRAMEGATE_WORKER_CONCURRENCY": "1"}
    server = Server(serve_env, free_port(), tmp_path / "server.log")
    server.start()
    try:
        created = cli_json(serve_env, "admin", "create-account", "--name", "m", "--credits", "5")
        headers = {"Authorization": f"Bearer {created['api_key']}"}
        models = httpx.get(f"{server.url}/v1/models").json()["data"]
        assert {m["id"]: m["available"] for m in models}["tiny-wan"] is True
        task = httpx.post(
            f"{server.url}/v1/async/videos/generations",
            json={"model": "tiny-wan", "prompt": "a cat", "seed": 3},
            headers=headers,
        ).json()

        def finished() -> dict[str, Any] | None:
            current: dict[str, Any] = httpx.get(
                f"{server.url}/v1/tasks/{task['id']}", headers=headers
            ).json()
            return current if current["status"] in ("completed", "failed") else None

        task = wait_until_sync(finished, 120, "the task to finish", interval=0.2)
        assert task["status"] == "completed", task
        video = httpx.get(task["result"]["data"][0]["url"]).content
        with av.open(io.BytesIO(video)) as container:
            assert sum(1 for _ in container.decode(video=0)) == 9
    finally:
        server.stop()


def test_pull_refuses_routes_without_hub_weights(tmp_path: Path) -> None:
    env = environment(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    preview = run(env, "models", "pull", "preview")
    assert preview.returncode == 1
    assert "has no weights to pull" in preview.stderr and "wan-2.1-t2v-1.3b" in preview.stderr
    unknown = run(env, "models", "pull", "nope")
    assert unknown.returncode == 1 and "no route 'nope'" in unknown.stderr


def test_the_server_runs_without_torch(tmp_path: Path) -> None:
    """Importing, listing availability and closing the engines (as `framegate serve` does
    on shutdown) never import torch: the server runs without the diffusers extra."""
    code = (
        "import sys, framegate.app, framegate.cli.main, framegate.runtime;"
        "from framegate.engines.registry import default_engines;"
        "from framegate.config import Settings;"
        "from framegate.catalog.service import Catalog, load_routes;"
        "engines = default_engines(Settings());"
        "c = Catalog(load_routes(None), engines);"
        "[c.is_available(r) for r in c.routes()];"
        "engines.close();"
        "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=tmp_path)
