"""The preview engine and the shared encoder, checked by decoding what they write."""

from __future__ import annotations

import hashlib
import itertools
import os
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image, ImageOps

from framegate.engines.base import (
    EngineError,
    GenerationRequest,
    GenerationResult,
    TaskCancelledError,
)
from framegate.engines.encode import encode_mp4, save_jpeg, save_png
from framegate.engines.preview import PreviewEngine
from framegate.engines.preview import engine as preview_engine
from framegate.engines.preview.scene import Grid, Scene, SeededRandom

WIDTH, HEIGHT, FPS, SECONDS = 160, 96, 8, 1.5
FRAMES = round(FPS * SECONDS)


def video_request(**overrides: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "task_id": "task_test",
        "kind": "video",
        "prompt": "a lighthouse on a cliff at sunset",
        "width": WIDTH,
        "height": HEIGHT,
        "seed": 1234,
        "duration": SECONDS,
        "fps": FPS,
        "num_frames": FRAMES,
    }
    fields.update(overrides)
    return GenerationRequest(**fields)


async def generate(
    request: GenerationRequest,
    workdir: Path,
    *,
    progress: Callable[[float], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> GenerationResult:
    return await PreviewEngine().generate(
        request,
        workdir,
        progress or (lambda fraction: None),
        cancelled or (lambda: False),
    )


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [
            frame.to_ndarray(format="rgb24").astype(np.float32)
            for frame in container.decode(video=0)
        ]


def top_level_boxes(path: Path) -> list[str]:
    """The MP4 box types at the top level of the file, in file order."""
    data = path.read_bytes()
    boxes: list[str] = []
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            (size,) = struct.unpack(">Q", data[offset + 8 : offset + 16])
        elif size == 0:
            size = len(data) - offset
        assert size >= 8, f"corrupt box {kind!r} at {offset}"
        boxes.append(kind.decode("latin-1"))
        offset += size
    assert offset == len(data)
    return boxes


def files_in(directory: Path) -> list[Path]:
    return sorted(directory.iterdir()) if directory.exists() else []


def scribble_on_the_heap() -> None:
    """Leave random bytes in freed memory, so reads of uninitialised memory show up."""
    rng = np.random.default_rng()
    garbage = [os.urandom(int(size)) for size in rng.integers(1_000, 200_000, 50)]
    del garbage


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a - b)))


def normalized_luma(frame: np.ndarray) -> np.ndarray:
    """Luma with brightness and contrast factored out, so only geometry is left."""
    luma = frame.mean(axis=-1)
    return (luma - luma.mean()) / luma.std()


def photo(width: int = 320, height: int = 240) -> Image.Image:
    """A synthetic input with gradients, hard edges and a disc, kept away from clipping."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    red = 40 + 140 * x / width
    green = 40 + 140 * y / height
    blue = 60 + 80 * ((x // 40 + y // 40) % 2)
    rgb = np.stack([red, green, blue], axis=-1)
    rgb[(x - 0.62 * width) ** 2 + (y - 0.4 * height) ** 2 < (0.16 * height) ** 2] = (200, 60, 60)
    return Image.fromarray(rgb.astype(np.uint8))


# --- the shared encoder -------------------------------------------------------------------


def moving_frames(count: int, width: int, height: int) -> list[np.ndarray]:
    y, x = np.mgrid[0:height, 0:width]
    return [
        np.stack([(x * 2 + i * 9) % 256, (y * 3) % 256, np.full_like(x, 40 + i * 5)], -1).astype(
            np.uint8
        )
        for i in range(count)
    ]


def test_encode_mp4_writes_faststart_h264(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    seen: list[int] = []
    written = encode_mp4(
        moving_frames(10, 64, 48), path, width=64, height=48, fps=10, on_frame=seen.append
    )

    assert written == 10
    assert seen == list(range(1, 11))
    boxes = top_level_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == Fraction(10)
        frames = list(container.decode(stream))
    assert len(frames) == 10
    assert (frames[0].width, frames[0].height) == (64, 48)


def test_encode_mp4_keeps_colours_and_rescales_other_sizes(tmp_path: Path) -> None:
    colour = np.array([200, 100, 50], dtype=np.uint8)
    small = np.broadcast_to(colour, (24, 32, 3)).copy()
    path = tmp_path / "scaled.mp4"

    encode_mp4([small] * 3, path, width=64, height=48, fps=5)

    frames = decode(path)
    assert len(frames) == 3
    assert frames[0].shape == (48, 64, 3)
    assert np.abs(frames[0][24, 32] - colour).max() <= 3


def test_encode_mp4_rejects_bad_input(tmp_path: Path) -> None:
    frames = moving_frames(2, 64, 48)
    with pytest.raises(ValueError, match="even"):
        encode_mp4(frames, tmp_path / "a.mp4", width=63, height=48, fps=10)
    with pytest.raises(ValueError, match="even"):
        encode_mp4(frames, tmp_path / "a.mp4", width=64, height=47, fps=10)
    with pytest.raises(ValueError, match="preset"):
        encode_mp4(frames, tmp_path / "a.mp4", width=64, height=48, fps=10, preset="warp")
    with pytest.raises(ValueError, match="no frames"):
        encode_mp4([], tmp_path / "a.mp4", width=64, height=48, fps=10)
    with pytest.raises(ValueError, match="uint8"):
        encode_mp4([np.zeros((48, 64, 3))], tmp_path / "a.mp4", width=64, height=48, fps=10)
    assert not (tmp_path / "a.mp4").exists()


def test_encode_mp4_removes_partial_file_when_aborted(tmp_path: Path) -> None:
    path = tmp_path / "aborted.mp4"

    def frames() -> Any:
        yield from moving_frames(3, 64, 48)
        raise RuntimeError("renderer broke")

    with pytest.raises(RuntimeError, match="renderer broke"):
        encode_mp4(frames(), path, width=64, height=48, fps=10)
    assert not path.exists()


def test_save_jpeg_downscales_to_max_side(tmp_path: Path) -> None:
    frame = np.zeros((300, 1000, 3), dtype=np.uint8)
    frame[:, 500:] = 255

    save_jpeg(frame, tmp_path / "thumb.jpg", max_side=512)
    save_jpeg(Image.fromarray(frame), tmp_path / "full.jpg")

    with Image.open(tmp_path / "thumb.jpg") as thumb:
        assert thumb.format == "JPEG"
        assert thumb.size == (512, 154)
    with Image.open(tmp_path / "full.jpg") as full:
        assert full.size == (1000, 300)


def test_save_png_is_lossless(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(21, 33, 3), dtype=np.uint8)

    save_png(image, tmp_path / "image.png")

    with Image.open(tmp_path / "image.png") as png:
        assert png.format == "PNG"
        assert np.array_equal(np.asarray(png), image)


# --- text to video ------------------------------------------------------------------------


def test_engine_identity() -> None:
    engine = PreviewEngine()
    assert engine.name == "preview"
    assert engine.is_available({}) is True
    assert engine.is_available({"crf": 30}) is True


async def test_text_to_video_output(tmp_path: Path) -> None:
    result = await generate(video_request(), tmp_path)

    [output] = result.outputs
    assert output.path == tmp_path / "output.mp4"
    assert output.content_type == "video/mp4"
    assert (output.width, output.height) == (WIDTH, HEIGHT)
    assert output.fps == FPS
    assert output.num_frames == FRAMES
    assert output.duration == pytest.approx(SECONDS)

    boxes = top_level_boxes(output.path)
    assert boxes.index("moov") < boxes.index("mdat")
    with av.open(str(output.path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.codec_context.width, stream.codec_context.height) == (WIDTH, HEIGHT)
        assert stream.average_rate == Fraction(FPS)
        frames = list(container.decode(stream))
    assert len(frames) == round(SECONDS * FPS) == FRAMES
    assert all((f.width, f.height) == (WIDTH, HEIGHT) for f in frames)

    assert output.thumbnail_path == tmp_path / "thumbnail.jpg"
    with Image.open(output.thumbnail_path) as thumb:
        assert thumb.format == "JPEG"
        assert thumb.size == (WIDTH, HEIGHT)


async def test_thumbnail_long_side_is_capped(tmp_path: Path) -> None:
    request = video_request(width=1024, height=576, num_frames=2, duration=0.25)

    result = await generate(request, tmp_path)

    thumbnail = result.outputs[0].thumbnail_path
    assert thumbnail is not None
    with Image.open(thumbnail) as thumb:
        assert thumb.size == (512, 288)


async def test_text_to_video_is_deterministic(tmp_path: Path) -> None:
    first = await generate(video_request(), tmp_path / "first")
    scribble_on_the_heap()
    second = await generate(video_request(), tmp_path / "second")
    other_seed = await generate(video_request(seed=1235), tmp_path / "seed")
    other_prompt = await generate(video_request(prompt="a neon city in the rain"), tmp_path / "p")

    frames = decode(first.outputs[0].path)
    assert all(
        np.array_equal(a, b) for a, b in zip(frames, decode(second.outputs[0].path), strict=True)
    )
    for different in (other_seed, other_prompt):
        other = decode(different.outputs[0].path)
        assert len(other) == len(frames)
        assert mad(frames[0], other[0]) > 10
        assert np.mean([mad(a, b) for a, b in zip(frames, other, strict=True)]) > 10


async def test_text_to_video_has_real_motion(tmp_path: Path) -> None:
    for seed in (1, 2, 3):
        result = await generate(video_request(seed=seed), tmp_path / str(seed))
        frames = decode(result.outputs[0].path)
        for before, after in itertools.pairwise(frames):
            changed = np.abs(after - before).max(axis=-1) > 4
            assert mad(before, after) > 1.0
            assert changed.mean() > 0.1
        assert mad(frames[0], frames[-1]) > 8


def test_seeded_random_is_pinned() -> None:
    # Changing the derivation changes every preview ever generated for a prompt + seed.
    rng = SeededRandom("a lighthouse on a cliff at sunset", 1234, "scene")
    assert rng.random() == 0.5259442697358006
    assert rng.random() == 0.05115244024272225
    assert rng.integer(0, 10) == 6
    assert (
        SeededRandom("a lighthouse on a cliff at sunset", 1235, "scene").random()
        != 0.5259442697358006
    )


RENDER_DIGEST = """
import hashlib
from framegate.engines.preview.scene import Grid, Scene
frame = Scene.from_prompt("a lighthouse on a cliff at sunset", 1234, 16 / 9).render_planes(
    Grid.build(64, 36), 0.5
)
print(hashlib.sha256(frame.tobytes()).hexdigest())
"""


def test_scenes_do_not_depend_on_the_process() -> None:
    digests = {
        subprocess.run(
            [sys.executable, "-c", RENDER_DIGEST],
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for hash_seed in (1, 2)
    }
    frame = Scene.from_prompt("a lighthouse on a cliff at sunset", 1234, 16 / 9).render_planes(
        Grid.build(64, 36), 0.5
    )
    assert digests == {hashlib.sha256(frame.tobytes()).hexdigest()}


async def test_image_matches_the_first_video_frame(tmp_path: Path) -> None:
    video = await generate(video_request(), tmp_path / "video")
    image = await generate(video_request(kind="image", n=1), tmp_path / "image")

    first_frame = decode(video.outputs[0].path)[0]
    with Image.open(image.outputs[0].path) as png:
        still = np.asarray(png.convert("RGB"), dtype=np.float32)
    assert mad(first_frame, still) < 4


# --- image to video -----------------------------------------------------------------------


async def test_camera_fixed_keeps_the_input_framing(tmp_path: Path) -> None:
    request = video_request(input_image=photo(), camera_fixed=True)

    result = await generate(request, tmp_path)

    frames = decode(result.outputs[0].path)
    assert len(frames) == FRAMES
    expected = np.asarray(
        ImageOps.fit(photo(), (WIDTH, HEIGHT), Image.Resampling.LANCZOS), dtype=np.float32
    )
    assert mad(frames[0], expected) < 5
    reference = normalized_luma(frames[0])
    for frame in frames[1:]:
        assert mad(normalized_luma(frame), reference) < 0.15


async def test_pan_zoom_moves_the_framing(tmp_path: Path) -> None:
    for seed in (1, 2, 3):
        request = video_request(input_image=photo(), seed=seed)

        result = await generate(request, tmp_path / str(seed))

        frames = decode(result.outputs[0].path)
        assert len(frames) == FRAMES
        assert (frames[0].shape[1], frames[0].shape[0]) == (WIDTH, HEIGHT)
        lumas = [normalized_luma(frame) for frame in frames]
        assert mad(lumas[-1], lumas[0]) > 0.3
        # Every frame moves a little: no frozen stretches in the move.
        for before, after in itertools.pairwise(lumas):
            assert mad(after, before) > 0.02


@pytest.mark.parametrize("camera_fixed", [False, True])
async def test_image_to_video_is_deterministic(tmp_path: Path, camera_fixed: bool) -> None:
    request = video_request(input_image=photo(), camera_fixed=camera_fixed)
    first = (await generate(request, tmp_path / "first")).outputs[0].path.read_bytes()
    for attempt in range(4):
        scribble_on_the_heap()
        again = await generate(request, tmp_path / str(attempt))
        assert again.outputs[0].path.read_bytes() == first


# --- images -------------------------------------------------------------------------------


async def test_image_kind_writes_n_pngs_with_thumbnails(tmp_path: Path) -> None:
    request = video_request(kind="image", n=3, width=161, height=97)

    result = await generate(request, tmp_path)

    assert len(result.outputs) == 3
    pixels = []
    for output in result.outputs:
        assert output.content_type == "image/png"
        assert (output.width, output.height) == (161, 97)
        assert output.path.parent == tmp_path
        with Image.open(output.path) as png:
            assert png.format == "PNG"
            assert png.size == (161, 97)
            pixels.append(np.asarray(png.convert("RGB"), dtype=np.float32))
        assert output.thumbnail_path is not None
        with Image.open(output.thumbnail_path) as thumb:
            assert thumb.format == "JPEG"
            assert thumb.size == (161, 97)
    assert len({output.path for output in result.outputs}) == 3
    assert mad(pixels[0], pixels[1]) > 10
    assert mad(pixels[1], pixels[2]) > 10

    again = await generate(request, tmp_path / "again")
    assert [o.path.read_bytes() for o in again.outputs] == [
        o.path.read_bytes() for o in result.outputs
    ]


async def test_image_kind_with_input_keeps_the_input_visible(tmp_path: Path) -> None:
    request = video_request(kind="image", n=1, input_image=photo())

    result = await generate(request, tmp_path)

    with Image.open(result.outputs[0].path) as png:
        edited = np.asarray(png.convert("RGB"), dtype=np.float32)
    expected = np.asarray(ImageOps.fit(photo(), (WIDTH, HEIGHT)), dtype=np.float32)
    correlation = np.corrcoef(edited.mean(-1).ravel(), expected.mean(-1).ravel())[0, 1]
    assert correlation > 0.5


# --- progress, cancellation, errors -------------------------------------------------------


@pytest.mark.parametrize("kind", ["video", "image"])
async def test_progress_is_monotonic_and_ends_at_one(tmp_path: Path, kind: str) -> None:
    reported: list[float] = []
    request = video_request(kind=kind, n=3)

    await generate(request, tmp_path, progress=reported.append)

    assert reported, "no progress reported"
    assert all(0.0 <= value <= 1.0 for value in reported)
    assert all(b > a for a, b in itertools.pairwise(reported))
    assert reported[-1] == 1.0
    if kind == "video":
        assert len(reported) >= FRAMES


@pytest.mark.parametrize("input_image", [None, "photo"])
async def test_cancel_stops_within_a_frame(tmp_path: Path, input_image: str | None) -> None:
    state = {"cancelled": False, "frames_after_cancel": 0}

    def on_progress(fraction: float) -> None:
        if state["cancelled"]:
            state["frames_after_cancel"] += 1
        elif fraction >= 0.3:
            state["cancelled"] = True

    request = video_request(
        input_image=photo() if input_image else None, num_frames=48, duration=6.0
    )
    with pytest.raises(TaskCancelledError):
        await generate(
            request, tmp_path, progress=on_progress, cancelled=lambda: bool(state["cancelled"])
        )
    assert state["frames_after_cancel"] <= 1
    assert not (tmp_path / "output.mp4").exists()
    assert not (tmp_path / "thumbnail.jpg").exists()


async def test_cancel_before_start_renders_nothing(tmp_path: Path) -> None:
    with pytest.raises(TaskCancelledError):
        await generate(video_request(), tmp_path, cancelled=lambda: True)
    with pytest.raises(TaskCancelledError):
        await generate(video_request(kind="image", n=2), tmp_path, cancelled=lambda: True)
    assert not files_in(tmp_path)


@pytest.mark.parametrize(("width", "height"), [(161, 96), (160, 95), (0, 96), (160, -2)])
async def test_bad_video_sizes_are_rejected(tmp_path: Path, width: int, height: int) -> None:
    with pytest.raises(EngineError) as raised:
        await generate(video_request(width=width, height=height), tmp_path)
    assert raised.value.code == "invalid_request"
    assert not raised.value.retriable


@pytest.mark.parametrize(
    "overrides", [{"fps": 0}, {"num_frames": 0, "duration": 0.0}, {"kind": "audio"}]
)
async def test_bad_requests_are_rejected(tmp_path: Path, overrides: dict[str, Any]) -> None:
    with pytest.raises(EngineError) as raised:
        await generate(video_request(**overrides), tmp_path)
    assert raised.value.code == "invalid_request"


@pytest.mark.parametrize(
    "settings", [{"crf": "23"}, {"crf": 60}, {"crf": True}, {"preset": "ludicrous"}]
)
async def test_bad_settings_are_rejected(tmp_path: Path, settings: dict[str, Any]) -> None:
    with pytest.raises(EngineError) as raised:
        await generate(video_request(settings=settings), tmp_path)
    assert raised.value.code == "invalid_settings"


async def test_crf_and_preset_settings_are_honoured(tmp_path: Path) -> None:
    request = video_request(width=320, height=192)
    fine = await generate(replace(request, settings={"crf": 12, "preset": "fast"}), tmp_path / "a")
    coarse = await generate(replace(request, settings={"crf": 40}), tmp_path / "b")
    assert fine.outputs[0].path.stat().st_size > 2 * coarse.outputs[0].path.stat().st_size


async def test_encoder_failures_become_engine_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_encoder(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("x264 gave up")

    monkeypatch.setattr(preview_engine, "encode_mp4", broken_encoder)
    with pytest.raises(EngineError) as raised:
        await generate(video_request(), tmp_path)
    assert raised.value.code == "engine_error"
    assert "x264 gave up" in raised.value.message
    assert isinstance(raised.value.__cause__, RuntimeError)


async def test_rendering_runs_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_thread = threading.get_ident()
    render_threads: set[int] = set()
    original = Scene.render_planes

    def spy(self: Scene, *args: Any, **kwargs: Any) -> np.ndarray:
        render_threads.add(threading.get_ident())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Scene, "render_planes", spy)
    await generate(video_request(), tmp_path)

    assert render_threads
    assert loop_thread not in render_threads
