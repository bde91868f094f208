"""The async client against a live server."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from framegate_client import AsyncFramegate, NotFoundError

from tests.sdk.conftest import Live


async def test_async_create_and_wait_then_save(live: Live, tmp_path: Path) -> None:
    _, key = live.account()
    async with AsyncFramegate(api_key=key, base_url=live.url, timeout=30) as sdk:
        task = await sdk.videos.create_and_wait(
            "preview", "a forest", duration=2, fps=10, size="320x240", timeout=60
        )
        assert task.status == "completed"
        saved = await task.asave(tmp_path / "clip.mp4")
        with pytest.raises(TypeError):
            task.save(tmp_path / "nope.mp4")
        snapshots = [s async for s in sdk.tasks.stream(task.id, timeout=30)]
        assert snapshots[-1].status == "completed"
        page = await sdk.tasks.list(limit=1)
        assert page.data[0].id == task.id
        with pytest.raises(NotFoundError):
            await sdk.tasks.retrieve("task_doesnotexist")
    with av.open(str(saved)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 2 * 10
