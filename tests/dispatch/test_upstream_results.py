"""A vendor's result video is streamed to disk and prepared under the decoding bounds:
frames past the pixel cap are refused before any is decoded, other codecs are re-encoded
frame by frame, the thumbnail is scaled from one decoded frame, and the scratch directory
ends up holding just the video and its thumbnail (or nothing, when the result is refused)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from framegate.dispatch.upstream import UpstreamOptions, UpstreamStep, _prepare_video, inspect_video
from framegate.engines.base import GenerationRequest
from framegate.engines.vendors.base import UpstreamError, UpstreamJob, UpstreamStatus, VendorEngine
from framegate.kit.addresses import parse_networks
from framegate.kit.safe_fetch import FetchPolicy
from tests.conftest import TEST_RECEIVER_HOST
from tests.engines.vendors.common import SAMPLE_FRAMES, SAMPLE_HEIGHT, SAMPLE_WIDTH, sample_mp4


def write_video(
    path: Path, codec: str, width: int, height: int, frames: int = 6, container_format: str = "mp4"
) -> Path:
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=Fraction(6))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            pixels = np.full((height, width, 3), index * 30, dtype=np.uint8)
            pixels[:, : width // 2, 0] = 200
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize(("codec", "container_format"), [("mpeg4", "mp4"), ("libvpx", "webm")])
def test_other_codecs_are_reencoded_with_a_scaled_thumbnail(
    tmp_path: Path, codec: str, container_format: str
) -> None:
    # A WebM declares no frame count: it is counted from the packets.
    raw = write_video(
        tmp_path / "upstream-video", codec, 1280, 720, container_format=container_format
    )
    assert inspect_video(raw).num_frames == 6
    assert not inspect_video(raw).is_h264_mp4

    output = _prepare_video(raw, tmp_path, max_pixels=40_000_000)

    info = inspect_video(output.path)
    assert info.is_h264_mp4
    assert (info.width, info.height, info.num_frames) == (1280, 720, 6)
    assert (output.width, output.height, output.num_frames) == (1280, 720, 6)
    assert output.thumbnail_path is not None
    with av.open(str(output.thumbnail_path)) as thumbnail:
        frame = next(thumbnail.decode(video=0))
        assert (frame.width, frame.height) == (512, 288)


def test_frames_past_the_pixel_cap_are_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = write_video(tmp_path / "upstream-video", "mpeg4", 320, 240, frames=2)

    def no_decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("a frame was decoded")

    monkeypatch.setattr(av.container.InputContainer, "decode", no_decode)
    with pytest.raises(UpstreamError) as refused:
        _prepare_video(raw, tmp_path, max_pixels=320 * 240 - 1)
    assert "320x240 pixels" in refused.value.message
    assert not refused.value.retriable


# --- downloaded, then prepared ----------------------------------------------------------------


class ResultEngine(VendorEngine):
    """A vendor whose finished video is at a URL from outside: the base class's download.
    These tests call only the download step, so submit and poll are never reached."""

    name = "results"

    async def submit(self, request: GenerationRequest) -> UpstreamJob:
        raise NotImplementedError

    async def poll(self, job: UpstreamJob, request: GenerationRequest) -> UpstreamStatus:
        raise NotImplementedError


@pytest.fixture
async def results_host() -> AsyncIterator[tuple[str, dict[str, bytes]]]:
    """Serves ``files[name]`` at ``/name`` on the suite's receiver address."""
    files: dict[str, bytes] = {}

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await reader.readuntil(b"\r\n\r\n")).split(b" ")[1].decode()
            body = files.get(request_line.lstrip("/"))
            if body is None:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            else:
                head = f"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: {len(body)}"
                writer.write(head.encode() + b"\r\nConnection: close\r\n\r\n" + body)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, TEST_RECEIVER_HOST, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://{TEST_RECEIVER_HOST}:{port}", files
    finally:
        server.close()
        await server.wait_closed()


def result_step(max_bytes: int = 50_000_000) -> UpstreamStep:
    policy = FetchPolicy(
        allow_networks=parse_networks(f"{TEST_RECEIVER_HOST}/32"), max_bytes=max_bytes
    )
    options = UpstreamOptions(poll_seconds=0.1, max_poll_seconds=1.0, download_policy=policy)
    # Fetching and preparing a result touches neither the catalog nor the task's lifecycle.
    return UpstreamStep(catalog=None, lifecycle=None, options=options)  # type: ignore[arg-type]


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


async def test_an_h264_result_is_streamed_to_disk_and_kept_as_is(
    results_host: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    base, files = results_host
    files["result.mp4"] = sample_mp4()
    engine = ResultEngine(api_key="k", base_url=base)

    output = await result_step()._download(engine, f"{base}/result.mp4", tmp_path)

    assert listing(tmp_path) == ["thumbnail.jpg", "video.mp4"]
    assert output.path == tmp_path / "video.mp4"
    assert output.path.read_bytes() == files["result.mp4"]  # not re-encoded
    assert (output.width, output.height, output.num_frames) == (
        SAMPLE_WIDTH,
        SAMPLE_HEIGHT,
        SAMPLE_FRAMES,
    )
    assert frame_count(output.path) == SAMPLE_FRAMES


async def test_another_codec_is_streamed_then_reencoded(
    results_host: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    base, files = results_host
    source = write_video(tmp_path / "source.webm", "libvpx", 320, 240, container_format="webm")
    files["result.webm"] = source.read_bytes()
    source.unlink()
    engine = ResultEngine(api_key="k", base_url=base)

    output = await result_step()._download(engine, f"{base}/result.webm", tmp_path)

    assert listing(tmp_path) == ["thumbnail.jpg", "video.mp4"]
    assert inspect_video(output.path).is_h264_mp4
    assert frame_count(output.path) == 6


async def test_a_result_past_the_cap_leaves_nothing_behind(
    results_host: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    base, files = results_host
    files["result.mp4"] = sample_mp4()
    engine = ResultEngine(api_key="k", base_url=base)
    step = result_step(max_bytes=len(files["result.mp4"]) - 1)

    with pytest.raises(UpstreamError) as refused:
        await step._download(engine, f"{base}/result.mp4", tmp_path)

    assert refused.value.message.startswith("results: downloading the result failed: result is")
    assert "limit" in refused.value.message
    assert listing(tmp_path) == []
