"""A vendor's result video is prepared under the decoding bounds: frames past the pixel cap
are refused before any is decoded, other codecs are re-encoded frame by frame, and the
thumbnail is scaled from one decoded frame."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from framegate.dispatch.upstream import _prepare_video, inspect_video
from framegate.engines.vendors.base import UpstreamError


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
