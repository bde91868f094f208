"""The built-in CPU preview engine.

It is not a generative model: it needs no weights and renders deterministic, prompt- and
seed-derived motion graphics (text-to-video, images) or animates the input image with a
pan/zoom (image-to-video). That makes the whole platform (queue, workers, storage,
billing, webhooks) exercisable end to end on any machine, with real H.264 output.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np
from av.video.frame import VideoFrame
from PIL import Image

from framegate.engines.base import (
    THUMBNAIL_SIDE,
    CancelCheck,
    EngineError,
    GenerationJob,
    GenerationRequest,
    GenerationResult,
    LocalEngine,
    ProgressCallback,
    TaskCancelledError,
)
from framegate.engines.encode import X264_PRESETS, encode_mp4
from framegate.engines.preview.animate import Camera, FixedCamera, KenBurns, cover
from framegate.engines.preview.frames import gbrp_frame
from framegate.engines.preview.scene import Grid, Scene

__all__ = ["PreviewEngine"]

# Videos are rendered with the long side at most this many pixels and upsampled by the
# encoder's scaler; the scenes are all soft gradients and Gaussians, so nothing is lost
# and the numpy work per 720p frame drops about sevenfold.
_RENDER_LONG_SIDE = 480
# Shapes drawn over an input image (image kind with an input) are toned down so the
# input stays the subject.
_OVERLAY_OPACITY = 0.45
# Share of the progress bar for the frames; the rest covers the encoder flush and the
# thumbnail.
_FRAMES_SHARE = 0.95

_DEFAULT_CRF = 23
# superfast with macroblock-tree rate control turned back on (superfast's rc-lookahead=0
# disables it): on these smooth scenes that gives veryfast's file size and quality for
# about 60% of its CPU time, which is what keeps a 720p clip under a few seconds on two
# cores. The extra parameters only apply when a route does not pick its own preset.
_DEFAULT_PRESET = "superfast"
_DEFAULT_X264_PARAMS: Mapping[str, str | int] = {"rc-lookahead": 10, "mbtree": 1}

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _Encoding:
    crf: int
    preset: str
    x264_params: Mapping[str, str | int] | None


def _encoding(settings: Mapping[str, Any]) -> _Encoding:
    crf = settings.get("crf", _DEFAULT_CRF)
    if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
        raise EngineError(
            f"preview setting 'crf' must be an integer within 0..51, got {crf!r}",
            code="invalid_settings",
        )
    if "preset" not in settings:
        return _Encoding(crf=crf, preset=_DEFAULT_PRESET, x264_params=_DEFAULT_X264_PARAMS)
    preset = settings["preset"]
    if preset not in X264_PRESETS:
        raise EngineError(
            f"preview setting 'preset' must be one of {', '.join(X264_PRESETS)}, got {preset!r}",
            code="invalid_settings",
        )
    return _Encoding(crf=crf, preset=str(preset), x264_params=None)


def _invalid(message: str) -> EngineError:
    return EngineError(message, code="invalid_request")


def _frame_count(request: GenerationRequest) -> int:
    if request.num_frames > 0:
        return request.num_frames
    return round(request.duration * request.fps)


def _validate(request: GenerationRequest) -> None:
    if request.kind not in ("video", "image"):
        raise _invalid(f"unsupported output kind {request.kind!r}")
    if request.width <= 0 or request.height <= 0:
        raise _invalid(f"invalid size {request.width}x{request.height}")
    if request.kind == "video":
        if request.width % 2 or request.height % 2:
            raise _invalid(
                f"video width and height must be even, got {request.width}x{request.height}"
            )
        if request.fps <= 0:
            raise _invalid(f"fps must be positive, got {request.fps}")
        if _frame_count(request) <= 0:
            raise _invalid("a video needs at least one frame")
    elif request.n < 1:
        raise _invalid(f"n must be at least 1, got {request.n}")


class _Progress:
    """Forwards strictly increasing fractions, so listeners never see progress go back."""

    def __init__(self, callback: ProgressCallback) -> None:
        self._callback = callback
        self._last = -1.0

    def __call__(self, fraction: float) -> None:
        fraction = min(1.0, max(0.0, fraction))
        if fraction > self._last:
            self._last = fraction
            self._callback(fraction)


def _checked(items: Iterable[_T], cancelled: CancelCheck) -> Iterator[_T]:
    """Yield from ``items``, checking for cancellation before each (lazy) item is made."""
    iterator = iter(items)
    while True:
        if cancelled():
            raise TaskCancelledError("cancelled while rendering")
        try:
            item = next(iterator)
        except StopIteration:
            return
        yield item


def _thumbnail_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, THUMBNAIL_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _render_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, _RENDER_LONG_SIDE / max(width, height))
    return max(2, round(width * scale)), max(2, round(height * scale))


def _planar_float(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32).transpose(2, 0, 1) * np.float32(1 / 255)


class PreviewEngine(LocalEngine):
    """Deterministic CPU motion graphics; always available, no weights, not a model."""

    name = "preview"

    def is_available(self, settings: Mapping[str, Any]) -> bool:
        return True

    async def run(self, job: GenerationJob) -> GenerationResult:
        _validate(job.request)
        encoding = _encoding(job.request.settings)
        job = replace(job, progress=_Progress(job.progress))
        try:
            return await asyncio.to_thread(_generate, job, encoding)
        except (EngineError, TaskCancelledError):
            raise
        except Exception as exc:
            raise EngineError(
                f"preview generation failed: {type(exc).__name__}: {exc}", code="engine_error"
            ) from exc


def _generate(job: GenerationJob, encoding: _Encoding) -> GenerationResult:
    if job.cancelled():
        raise TaskCancelledError("cancelled before start")
    job.workdir.mkdir(parents=True, exist_ok=True)
    if job.request.kind == "video":
        return _video(job, encoding)
    return _images(job)


def _video(job: GenerationJob, encoding: _Encoding) -> GenerationResult:
    request, progress = job.request, job.progress
    width, height, fps = request.width, request.height, request.fps
    num_frames = _frame_count(request)
    middle = (num_frames - 1) / 2
    thumb_size = _thumbnail_size(width, height)

    frames: Iterable[VideoFrame]
    thumbnail: Callable[[], Image.Image | np.ndarray]
    if request.input_image is None:
        scene = Scene.from_prompt(request.prompt, request.seed, width / height)
        grid = Grid.build(*_render_size(width, height))
        frames = (gbrp_frame(scene.render_planes(grid, i / fps)) for i in range(num_frames))

        def thumbnail() -> np.ndarray:
            return scene.render_rgb(Grid.build(*thumb_size), middle / fps)

    elif request.camera_fixed:
        fixed = FixedCamera(request.input_image, width, height, request.prompt, request.seed)
        frames = fixed.frames(num_frames, fps)

        def thumbnail() -> Image.Image:
            return fixed.rgb

    else:
        camera = Camera.from_prompt(request.prompt, request.seed)
        ken_burns = KenBurns(request.input_image, width, height, camera)
        frames = ken_burns.frames(num_frames)

        def thumbnail() -> Image.Image:
            u = middle / (num_frames - 1) if num_frames > 1 else 0.0
            return ken_burns.still(u, *thumb_size)

    video_path = job.workdir / "output.mp4"
    encode_mp4(
        _checked(frames, job.cancelled),
        video_path,
        width=width,
        height=height,
        fps=fps,
        crf=encoding.crf,
        preset=encoding.preset,
        x264_params=encoding.x264_params,
        on_frame=lambda done: progress(_FRAMES_SHARE * done / num_frames),
    )
    progress(_FRAMES_SHARE + (1 - _FRAMES_SHARE) / 2)
    return job.finish_video(
        video_path, thumbnail(), width=width, height=height, num_frames=num_frames, fps=fps
    )


def _images(job: GenerationJob) -> GenerationResult:
    request, workdir = job.request, job.workdir
    width, height = request.width, request.height
    grid = Grid.build(width, height)
    base = None
    if request.input_image is not None:
        base = _planar_float(cover(request.input_image, width, height))
    outputs = []
    for i in range(request.n):
        if job.cancelled():
            raise TaskCancelledError("cancelled while rendering")
        # Image i of a batch is what a single request with seed + i would give, so any
        # image can be reproduced on its own.
        scene = Scene.from_prompt(request.prompt, request.seed + i, width / height)
        opacity = 1.0 if base is None else _OVERLAY_OPACITY
        rgb = scene.render_rgb(grid, 0.0, base=base, opacity=opacity)
        image_path = workdir / f"image_{i}.png"
        thumbnail_path = workdir / f"image_{i}_thumbnail.jpg"
        outputs.append(job.save_image(rgb, image_path, thumbnail_path))
        job.progress((i + 1) / request.n)
    job.progress(1.0)
    return GenerationResult(outputs)
