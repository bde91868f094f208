"""The one encoder path every engine uses: H.264 MP4 for videos, JPEG/PNG for stills.

Videos are always H.264 (libx264), yuv420p, BT.709 tagged, in an MP4 whose ``moov``
atom sits at the front ("faststart"), so browsers and ``<video>`` tags can start playback
before the whole file has downloaded.
"""

from __future__ import annotations

import contextlib
import functools
import platform
from collections.abc import Callable, Iterable, Mapping
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.frame import VideoFrame
from av.video.reformatter import ColorRange, Colorspace, Interpolation, VideoReformatter
from PIL import Image

__all__ = [
    "X264_PRESETS",
    "encode_mp4",
    "save_jpeg",
    "save_png",
]

X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)

# FFmpeg's AVCOL_* codes for BT.709 primaries/transfer/matrix and limited ("MPEG") range.
# Without these tags players guess, and most guess BT.601 for untagged SD and BT.709 for
# HD, which shifts colours between sizes.
_AVCOL_BT709 = 1
_AVCOL_RANGE_MPEG = 1
_AVCOL_RANGE_JPEG = 2


def encode_mp4(
    frames: Iterable[np.ndarray | VideoFrame],
    path: Path,
    *,
    width: int,
    height: int,
    fps: int,
    crf: int = 23,
    preset: str = "veryfast",
    x264_params: Mapping[str, str | int] | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> int:
    """Encode ``frames`` to an H.264/yuv420p faststart MP4 at ``path``.

    Each frame is an ``H x W x 3`` ``uint8`` RGB array, or a ready ``av.VideoFrame`` in
    any pixel format (YUV frames are read as tagged; untagged YUV counts as BT.601
    limited range). Frames whose size differs from ``width x height`` are rescaled
    (bicubic), which lets engines render smooth content at a lower resolution.
    ``x264_params`` are extra libx264 options applied on top of the preset, e.g.
    ``{"rc-lookahead": 10}``. ``on_frame(n)`` is called after each frame has been handed
    to the encoder, with ``n`` the number of frames encoded so far (1, 2, ...).
    Exceptions raised by it or by the ``frames`` iterator abort the encode, remove the
    partial file and propagate.

    Returns the number of frames written. Raises ``ValueError`` for odd or non-positive
    sizes, a non-positive fps, an unknown preset, a bad frame or an empty ``frames``.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"width and height must be positive, got {width}x{height}")
    if width % 2 or height % 2:
        # yuv420p stores chroma at half resolution in both directions.
        raise ValueError(f"width and height must be even for yuv420p, got {width}x{height}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if not 0 <= crf <= 51:
        raise ValueError(f"crf must be within 0..51, got {crf}")
    if preset not in X264_PRESETS:
        raise ValueError(f"unknown x264 preset {preset!r}")

    options = {"crf": str(crf), "preset": preset}
    params = {**_x264_cpu_params(), **(x264_params or {})}
    if params:
        options["x264-params"] = ":".join(f"{key}={value}" for key, value in params.items())

    time_base = Fraction(1, fps)
    count = 0
    container = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
    try:
        stream = container.add_stream("libx264", rate=fps, options=options)
        ctx = stream.codec_context
        ctx.width = width
        ctx.height = height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = time_base
        # PyAV defaults to slice threading; x264's frame threading has clearly better
        # throughput for whole-file encodes and is still deterministic.
        ctx.thread_type = "FRAME"
        ctx.thread_count = 0
        ctx.color_primaries = _AVCOL_BT709
        ctx.color_trc = _AVCOL_BT709
        ctx.colorspace = _AVCOL_BT709
        ctx.color_range = _AVCOL_RANGE_MPEG

        reformatter = VideoReformatter()
        for frame in frames:
            video_frame = _to_yuv420p(frame, width, height, reformatter)
            video_frame.pts = count
            video_frame.time_base = time_base
            container.mux(stream.encode(video_frame))
            count += 1
            if on_frame is not None:
                on_frame(count)
        if count == 0:
            raise ValueError("no frames to encode")
        container.mux(stream.encode(None))
        container.close()
    except BaseException:
        with contextlib.suppress(Exception):
            container.close()
        path.unlink(missing_ok=True)
        raise
    return count


@functools.cache
def _x264_cpu_params() -> dict[str, str]:
    """x264 options that keep its output reproducible on this CPU.

    With x264's AVX-512 kernels enabled, identical input can encode to different
    bitstreams from run to run (the decoded frames differ too), which breaks
    deterministic engines; restricted to its AVX2 kernels x264 is reproducible and just
    as fast. Every AVX-512 CPU has AVX2, so the restriction is always safe to apply there.
    """
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return {}
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith("flags")), "").split()
    except OSError:
        return {}
    if any(flag.startswith("avx512") for flag in flags):
        return {"asm": "AVX2"}
    return {}


def _to_yuv420p(
    frame: np.ndarray | VideoFrame, width: int, height: int, reformatter: VideoReformatter
) -> VideoFrame:
    if isinstance(frame, VideoFrame):
        source = frame
    else:
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(
                f"frames must be HxWx3 uint8 RGB arrays, got {frame.dtype} {frame.shape}"
            )
        source = VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
    if (
        source.format.name == "yuv420p"
        and (source.width, source.height) == (width, height)
        and source.colorspace == _AVCOL_BT709
        and source.color_range != _AVCOL_RANGE_JPEG
    ):
        return source
    if source.format.name.startswith(("yuv", "nv")):
        # Honour the frame's tags; untagged YUV is BT.601 limited range by convention.
        src_colorspace = (
            Colorspace.ITU709 if source.colorspace == _AVCOL_BT709 else Colorspace.ITU601
        )
        src_range = ColorRange.JPEG if source.color_range == _AVCOL_RANGE_JPEG else ColorRange.MPEG
    else:
        src_colorspace, src_range = Colorspace.ITU709, ColorRange.JPEG
    return reformatter.reformat(
        source,
        width,
        height,
        "yuv420p",
        src_colorspace=src_colorspace,
        src_color_range=src_range,
        dst_colorspace=Colorspace.ITU709,
        dst_color_range=ColorRange.MPEG,
        interpolation=Interpolation.BICUBIC,
        # x264's threads already occupy the cores, and a threaded scaler re-creates its
        # pool whenever the source size changes (every frame of a pan/zoom): 2-3x slower.
        threads=1,
    )


def _to_image(frame: np.ndarray | Image.Image) -> Image.Image:
    if isinstance(frame, Image.Image):
        return frame if frame.mode in ("RGB", "RGBA", "L") else frame.convert("RGB")
    array = np.asarray(frame)
    if array.dtype != np.uint8:
        raise ValueError(f"image arrays must be uint8, got {array.dtype}")
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4)):
        return Image.fromarray(array)
    raise ValueError(f"image arrays must be HxW, HxWx3 or HxWx4, got {array.shape}")


def save_jpeg(
    frame: np.ndarray | Image.Image,
    path: Path,
    *,
    quality: int = 85,
    max_side: int | None = None,
) -> None:
    """Write ``frame`` as a JPEG, downscaled so its long side is at most ``max_side``."""
    image = _to_image(frame)
    if image.mode != "RGB" and image.mode != "L":
        image = image.convert("RGB")
    if max_side is not None:
        if max_side <= 0:
            raise ValueError(f"max_side must be positive, got {max_side}")
        long_side = max(image.size)
        if long_side > max_side:
            scale = max_side / long_side
            size = (
                max(1, round(image.width * scale)),
                max(1, round(image.height * scale)),
            )
            # reducing_gap pre-shrinks with a cheap box filter; the result is
            # indistinguishable at thumbnail sizes and several times faster.
            image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    image.save(path, format="JPEG", quality=quality, optimize=True)


def save_png(image: np.ndarray | Image.Image, path: Path) -> None:
    """Write ``image`` (an RGB/RGBA/L array or PIL image) as a PNG."""
    _to_image(image).save(path, format="PNG")
