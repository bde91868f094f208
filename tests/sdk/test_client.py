"""Both clients against a live server: generation, saving, listing, catalog, credits.

Each test runs once with ``Framegate`` and once with ``AsyncFramegate`` (see ``connect``).
"""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from framegate_client import AsyncFramegate, Framegate, FramegateError, NotFoundError, Task

from tests.sdk.conftest import SDK, Connect, Live


@pytest.fixture(scope="module")
def client(live: Live, connect: Connect) -> SDK:
    _, key = live.account()
    return connect(api_key=key, base_url=live.url)


def frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.mark.parametrize("cls", [Framegate, AsyncFramegate])
def test_missing_key_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, cls: type[Framegate | AsyncFramegate]
) -> None:
    monkeypatch.delenv("FRAMEGATE_API_KEY", raising=False)
    with pytest.raises(FramegateError, match="FRAMEGATE_API_KEY"):
        cls()


@pytest.mark.parametrize("cls", [Framegate, AsyncFramegate])
def test_env_configuration(
    monkeypatch: pytest.MonkeyPatch, cls: type[Framegate | AsyncFramegate]
) -> None:
    monkeypatch.setenv("FRAMEGATE_API_KEY", "fg_live_x")
    monkeypatch.setenv("FRAMEGATE_BASE_URL", "http://example.test:8000/")
    sdk = cls()
    assert sdk.api_key == "fg_live_x"
    assert sdk.base_url == "http://example.test:8000"


def test_create_and_wait_then_save_decodes(client: SDK, tmp_path: Path) -> None:
    task = client.videos.create_and_wait(
        "preview", "a lighthouse at dusk", duration=2, fps=12, size="320x240", timeout=60
    )
    assert isinstance(task, Task)
    assert task.status == "completed" and task.is_terminal()
    assert task.result is not None and task.result.data[0].url.startswith("http")
    saved = client.save(task, tmp_path / "out" / "clip.mp4")
    assert saved == tmp_path / "out" / "clip.mp4"
    assert frame_count(saved) == 2 * 12
    # A task keeps the kind of the client it came from.
    with pytest.raises(TypeError):
        if isinstance(client.client, AsyncFramegate):
            task.save(tmp_path / "wrong.mp4")
        else:
            client.loop_run(task.asave(tmp_path / "wrong.mp4"))


def test_stream_yields_snapshots_until_terminal(client: SDK) -> None:
    task = client.videos.create("preview", "waves", duration=1, fps=8, size="160x120")
    snapshots = list(client.tasks.stream(task.id, timeout=60))
    assert snapshots and snapshots[-1].status == "completed"
    assert all(s.id == task.id for s in snapshots)


def test_wait_times_out_clearly(client: SDK) -> None:
    from framegate_client import WaitTimeoutError

    task = client.videos.create("preview", "slow", duration=10, fps=30, size="1920x1080")
    with pytest.raises(WaitTimeoutError) as info:
        client.tasks.wait(task.id, timeout=0.2, poll_interval=0.05)
    assert info.value.task_id == task.id
    client.tasks.cancel(task.id)


def test_list_retrieve_catalog_credits_estimates(client: SDK) -> None:
    page = client.tasks.list(limit=5, model="preview")
    assert page.data and all(t.model == "preview" for t in page.data)
    assert client.tasks.retrieve(page.data[0].id).id == page.data[0].id
    with pytest.raises(NotFoundError) as missing:
        client.tasks.retrieve("task_doesnotexist")
    assert missing.value.status_code == 404 and missing.value.request_id
    models = client.models.list()
    assert "preview" in {m.id for m in models.data}
    assert client.models.retrieve("preview").kind == "video"
    estimate = client.estimates.create("preview", duration=2, fps=12, size="320x240")
    assert estimate.num_frames == 24 and estimate.credits > 0
    balance = client.credits.retrieve()
    assert balance.available + balance.held <= 1000
    ledger = client.credits.ledger(limit=50)
    assert {entry.kind for entry in ledger.data} >= {"grant", "hold"}


def test_images_generate(client: SDK) -> None:
    result = client.images.generate("preview-image", "a red square", n=1, size="256x256")
    assert not isinstance(result, Task)
    assert len(result.data) == 1 and result.data[0].url.startswith("http")


def test_keys_lifecycle(client: SDK) -> None:
    created = client.keys.create(name="ci", scopes=["tasks:read"])
    assert created.secret and created.scopes == ["tasks:read"]
    assert created.id in {k.id for k in client.keys.list().data}
    rotated = client.keys.rotate(created.id)
    assert rotated.secret and rotated.secret != created.secret
    assert client.keys.revoke(created.id).revoked_at is not None


def test_input_image_path_is_uploaded(client: SDK, tmp_path: Path) -> None:
    from PIL import Image

    image = tmp_path / "first.png"
    Image.new("RGB", (320, 240), (10, 120, 200)).save(image)
    task = client.videos.create_and_wait(
        "preview", "pan", duration=1, fps=8, size="320x240", input_image=image, timeout=60
    )
    assert task.status == "completed"
    assert "upl_" in str(task.input)
    upload = client.uploads.create(image.read_bytes(), filename="first.png")
    assert upload.id.startswith("upl_") and upload.kind == "image"
    by_id = client.videos.create(
        "preview", "again", duration=1, fps=8, size="160x120", input_image=upload.id
    )
    assert client.tasks.wait(by_id.id, timeout=60).status == "completed"
