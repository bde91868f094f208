"""``huggingface_hub.snapshot_download`` against the loopback fake hub (tests/engines/fake_hub.py).

These pin down what ``framegate models pull`` relies on: the real download code path, offline,
into a ``local_dir``; the errors for a missing repo or revision; a token passed through; and an
up-to-date ``local_dir`` not downloaded again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.engines.fake_hub import FakeHub, use_fake_hub

REPO_ID = "framegate-test/tiny-pipeline"
TOKEN = "hf_fake_token_for_tests"


def _write_repo(root: Path) -> Path:
    files: dict[str, bytes] = {
        "model_index.json": json.dumps(
            {
                "_class_name": "WanPipeline",
                "_diffusers_version": "0.35.0",
                "transformer": ["diffusers", "WanTransformer3DModel"],
                "scheduler": ["diffusers", "UniPCMultistepScheduler"],
            },
            indent=2,
        ).encode(),
        "README.md": b"# tiny pipeline\n",
        "scheduler/scheduler_config.json": b'{"_class_name": "UniPCMultistepScheduler"}\n',
        "transformer/config.json": b'{"_class_name": "WanTransformer3DModel", "num_layers": 1}\n',
        # LFS-tracked by suffix: served through a redirect to the fake CDN.
        "transformer/diffusion_pytorch_model.safetensors": bytes(range(256)) * 300,
        "text_encoder/nested/deeper/weights.bin": os.urandom(4096),
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` but the client's ``.cache/huggingface`` bookkeeping."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and not path.relative_to(root).as_posix().startswith(".cache/")
    }


@pytest.fixture
def hf_home(tmp_path: Path) -> Path:
    """An empty HF_HOME (``use_fake_hub`` points huggingface_hub's caches and token at it)."""
    home = tmp_path / "hf-home"
    home.mkdir()
    return home


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return _write_repo(tmp_path / "repo")


@pytest.fixture
def hub(repo: Path, hf_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    with FakeHub({REPO_ID: repo}) as fake:
        use_fake_hub(monkeypatch, fake, hf_home)
        yield fake


@pytest.fixture
def gated_hub(repo: Path, hf_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    with FakeHub({REPO_ID: repo}, token=TOKEN) as fake:
        use_fake_hub(monkeypatch, fake, hf_home)
        yield fake


def test_snapshot_download_fetches_every_file_byte_for_byte(
    hub: FakeHub, repo: Path, tmp_path: Path
) -> None:
    local = tmp_path / "local"

    result = snapshot_download(repo_id=REPO_ID, revision="main", local_dir=local, endpoint=hub.url)

    assert result == str(local)
    assert _tree(local) == _tree(repo)
    commit = hub.commit(REPO_ID)
    calls = [(request.method, request.path) for request in hub.requests]
    assert calls[:2] == [
        ("GET", f"/api/models/{REPO_ID}/revision/main"),
        ("GET", f"/api/models/{REPO_ID}/tree/{commit}"),
    ]
    heads = sorted(path for method, path in calls if method == "HEAD")
    assert heads == sorted(f"/{REPO_ID}/resolve/{commit}/{name}" for name in _tree(repo))
    # Small files come from /resolve, LFS files from the CDN the HEAD redirected to.
    downloads = [request.path for request in hub.file_downloads()]
    assert len(downloads) == len(_tree(repo))
    assert sum(path.startswith("/cdn/") for path in downloads) == 2
    # The commit for "main" is recorded in the (isolated) cache, nowhere else.
    hf_home = Path(os.environ["HF_HOME"])
    ref = hf_home / "hub" / f"models--{REPO_ID.replace('/', '--')}" / "refs" / "main"
    assert ref.read_text() == commit


def test_without_endpoint_argument_the_patched_constants_are_used(
    hub: FakeHub, repo: Path, tmp_path: Path
) -> None:
    local = tmp_path / "local"

    snapshot_download(repo_id=REPO_ID, local_dir=local)

    assert _tree(local) == _tree(repo)
    assert hub.requests[0].path == f"/api/models/{REPO_ID}/revision/main"


def test_missing_repo_raises_repository_not_found(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFoundError) as raised:
        snapshot_download(
            repo_id="framegate-test/no-such-repo", local_dir=tmp_path / "local", endpoint=hub.url
        )

    assert not isinstance(raised.value, GatedRepoError)
    assert raised.value.response.status_code == 404
    assert not (tmp_path / "local").exists()


def test_missing_revision_raises_revision_not_found(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(RevisionNotFoundError):
        snapshot_download(
            repo_id=REPO_ID, revision="v9.9", local_dir=tmp_path / "local", endpoint=hub.url
        )


def test_pinned_commit_skips_the_revision_lookup(hub: FakeHub, repo: Path, tmp_path: Path) -> None:
    commit = hub.commit(REPO_ID)

    snapshot_download(
        repo_id=REPO_ID, revision=commit, local_dir=tmp_path / "local", endpoint=hub.url
    )

    assert _tree(tmp_path / "local") == _tree(repo)
    assert not any("/revision/" in request.path for request in hub.requests)


def test_gated_repo_needs_the_token(gated_hub: FakeHub, repo: Path, tmp_path: Path) -> None:
    local = tmp_path / "local"

    with pytest.raises(GatedRepoError):
        snapshot_download(repo_id=REPO_ID, local_dir=local, endpoint=gated_hub.url)
    with pytest.raises(HfHubHTTPError) as wrong:
        snapshot_download(repo_id=REPO_ID, local_dir=local, endpoint=gated_hub.url, token="hf_no")
    assert wrong.value.response.status_code == 401
    assert not local.exists()
    gated_hub.clear_requests()

    result = snapshot_download(
        repo_id=REPO_ID, local_dir=local, endpoint=gated_hub.url, token=TOKEN
    )

    assert result == str(local)
    assert _tree(local) == _tree(repo)
    hub_requests = [r for r in gated_hub.requests if not r.path.startswith("/cdn/")]
    cdn_requests = [r for r in gated_hub.requests if r.path.startswith("/cdn/")]
    assert hub_requests
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in hub_requests)
    # The token stays on the hub: the client drops it when following a redirect off it.
    assert len(cdn_requests) == 2
    assert all("authorization" not in r.headers for r in cdn_requests)


def test_gated_repo_token_from_hf_token_variable(
    gated_hub: FakeHub, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)

    snapshot_download(repo_id=REPO_ID, local_dir=tmp_path / "local", endpoint=gated_hub.url)

    assert _tree(tmp_path / "local") == _tree(repo)


def test_second_download_of_an_unchanged_repo_fetches_no_file(hub: FakeHub, tmp_path: Path) -> None:
    local = tmp_path / "local"
    snapshot_download(repo_id=REPO_ID, local_dir=local, endpoint=hub.url)
    hub.clear_requests()

    result = snapshot_download(repo_id=REPO_ID, local_dir=local, endpoint=hub.url)

    assert result == str(local)
    # Only the branch -> commit lookup: the tree listing is cached under local_dir/.cache and
    # every file's recorded commit matches, so no HEAD and no GET of any file.
    assert [(r.method, r.path) for r in hub.requests] == [
        ("GET", f"/api/models/{REPO_ID}/revision/main")
    ]


def test_after_a_change_only_the_changed_file_is_fetched(
    hub: FakeHub, repo: Path, tmp_path: Path
) -> None:
    local = tmp_path / "local"
    snapshot_download(repo_id=REPO_ID, local_dir=local, endpoint=hub.url)
    before = hub.commit(REPO_ID)
    (repo / "transformer" / "config.json").write_bytes(b'{"num_layers": 2}\n')
    assert hub.commit(REPO_ID) != before
    hub.clear_requests()

    snapshot_download(repo_id=REPO_ID, local_dir=local, endpoint=hub.url)

    assert _tree(local) == _tree(repo)
    # New commit: each file is checked with a HEAD, but only the changed one is downloaded.
    assert sum(r.method == "HEAD" for r in hub.requests) == len(_tree(repo))
    assert [r.path for r in hub.file_downloads()] == [
        f"/{REPO_ID}/resolve/{hub.commit(REPO_ID)}/transformer/config.json"
    ]


def test_a_subprocess_downloads_with_the_hub_environment(
    hub: FakeHub, repo: Path, tmp_path: Path
) -> None:
    """What a CLI test does: HF_ENDPOINT & co. in a child's environment, no endpoint= argument."""
    local = tmp_path / "local"
    child_home = tmp_path / "child-hf-home"
    code = (
        "import sys; from huggingface_hub import snapshot_download; "
        "print(snapshot_download(repo_id=sys.argv[1], revision='main', local_dir=sys.argv[2]))"
    )

    completed = subprocess.run(
        [sys.executable, "-c", code, REPO_ID, str(local)],
        env=hub.environment(child_home),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == str(local)
    assert _tree(local) == _tree(repo)
    assert hub.requests[0].path == f"/api/models/{REPO_ID}/revision/main"
    assert (child_home / "hub" / f"models--{REPO_ID.replace('/', '--')}" / "refs" / "main").exists()


def test_the_fake_hub_answers_listings_ranges_and_missing_files(hub: FakeHub) -> None:
    """The parts of the fake that the happy path above does not reach."""
    api = HfApi(endpoint=hub.url)
    top = {entry.path for entry in api.list_repo_tree(REPO_ID)}
    assert top == {"README.md", "model_index.json", "scheduler", "text_encoder", "transformer"}
    nested = [entry.path for entry in api.list_repo_tree(REPO_ID, "text_encoder", recursive=True)]
    assert nested == [
        "text_encoder/nested",
        "text_encoder/nested/deeper",
        "text_encoder/nested/deeper/weights.bin",
    ]
    url = f"{hub.url}/{REPO_ID}/resolve/main/transformer/config.json"
    response = httpx.get(url, headers={"Range": "bytes=2-"})
    assert response.status_code == 206
    assert response.content == (b'{"_class_name": "WanTransformer3DModel", "num_layers": 1}\n')[2:]
    assert response.headers["X-Repo-Commit"] == hub.commit(REPO_ID)
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(REPO_ID, "no/such/file.json", endpoint=hub.url)
