"""Image-to-video for the preview engine: a seeded Ken Burns move over the input image.

The per-frame work happens on yuv420p planes: the input is converted once (oversampled),
each frame is an integer crop of those planes, and the encoder's scaler resamples the
crop to the output size. Oversampling makes the integer crop positions fine enough
(half an output pixel) for smooth motion, and skipping a per-frame RGB to YUV conversion
and any Python-side resampling keeps 720p animation at a few milliseconds per frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from av.video.frame import VideoFrame
from av.video.reformatter import ColorRange, Colorspace, VideoReformatter
from PIL import Image, ImageOps

from framegate.engines.preview.frames import plane_array
from framegate.engines.preview.scene import SeededRandom

# FFmpeg's AVCOL_* codes: BT.709 matrix, limited ("MPEG") range; what encode_mp4 writes.
_AVCOL_SPC_BT709 = 1
_AVCOL_RANGE_MPEG = 1

# Source resolution relative to the output for pan/zoom; crops then land on a half-pixel
# grid of the output, and every crop is a (slight) downscale, never a blurry upscale.
_OVERSAMPLE = 2.0
# Caps the oversampled source (about 48 MB of planes) for very large outputs.
_MAX_SOURCE_PIXELS = 32_000_000


def cover(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale and centre-crop ``image`` so it exactly covers ``width x height``."""
    return ImageOps.fit(image.convert("RGB"), (width, height), method=Image.Resampling.LANCZOS)


@dataclass(frozen=True, slots=True)
class _Yuv420:
    """The three planes of a BT.709 limited-range yuv420p picture."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray

    @classmethod
    def from_image(cls, image: Image.Image) -> _Yuv420:
        rgb = VideoFrame.from_ndarray(np.asarray(image.convert("RGB")), format="rgb24")
        yuv = VideoReformatter().reformat(
            rgb,
            format="yuv420p",
            dst_colorspace=Colorspace.ITU709,
            dst_color_range=ColorRange.MPEG,
        )
        planes = [plane_array(p, p.width, p.height).copy() for p in yuv.planes]
        return cls(planes[0], planes[1], planes[2])

    def frame(
        self,
        x0: int,
        y0: int,
        width: int,
        height: int,
        luts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> VideoFrame:
        """A new frame holding the crop at ``(x0, y0)``, optionally remapped per plane."""
        frame = VideoFrame(width, height, "yuv420p")
        # An odd luma offset puts chroma a quarter of an output pixel off; invisible.
        offsets = ((x0, y0), (x0 // 2, y0 // 2), (x0 // 2, y0 // 2))
        for i, (plane, source) in enumerate(
            zip(frame.planes, (self.y, self.u, self.v), strict=True)
        ):
            px, py = offsets[i]
            crop = source[py : py + plane.height, px : px + plane.width]
            target = plane_array(plane, plane.width, plane.height)
            target[...] = crop if luts is None else luts[i][crop]
        frame.colorspace = _AVCOL_SPC_BT709
        frame.color_range = _AVCOL_RANGE_MPEG
        return frame


def _ease(u: float) -> float:
    # Half linear, half smoothstep: starts and stops gently but never stands still.
    return 0.5 * u + 0.5 * u * u * (3.0 - 2.0 * u)


@dataclass(frozen=True, slots=True)
class Camera:
    """A Ken Burns move: zoom and pan from a start to an end framing."""

    zoom_start: float
    zoom_end: float
    pan_start: tuple[float, float]
    pan_end: tuple[float, float]

    @classmethod
    def from_prompt(cls, prompt: str, seed: int) -> Camera:
        rng = SeededRandom(prompt, seed, "ken-burns")
        zoom = rng.uniform(1.15, 1.3)
        zoom_in = rng.random() < 0.5
        angle = rng.uniform(0, 2 * math.pi)
        reach = rng.uniform(0.6, 0.95)
        # Opposite ends of a seeded diameter give a clear, steady drift across the image.
        start = (reach * math.cos(angle), reach * math.sin(angle))
        end = (-start[0], -start[1])
        return cls(
            zoom_start=1.0 if zoom_in else zoom,
            zoom_end=zoom if zoom_in else 1.0,
            pan_start=start,
            pan_end=end,
        )

    def at(self, u: float) -> tuple[float, float, float]:
        """Zoom and pan (each pan axis in -1..1 of the available slack) at ``u`` in 0..1."""
        e = _ease(min(1.0, max(0.0, u)))
        # Interpolating zoom geometrically makes the apparent zoom speed constant.
        zoom = self.zoom_start * (self.zoom_end / self.zoom_start) ** e
        px = self.pan_start[0] + (self.pan_end[0] - self.pan_start[0]) * e
        py = self.pan_start[1] + (self.pan_end[1] - self.pan_start[1]) * e
        return zoom, px, py

    def crop(self, u: float, width: float, height: float) -> tuple[float, float, float, float]:
        """The crop box ``(x0, y0, w, h)`` at ``u`` inside a ``width x height`` source."""
        zoom, px, py = self.at(u)
        w, h = width / zoom, height / zoom
        cx = width / 2 + px * (width - w) / 2
        cy = height / 2 + py * (height - h) / 2
        return cx - w / 2, cy - h / 2, w, h


class KenBurns:
    """Pan/zoom frames over ``image`` for a ``width x height`` output."""

    def __init__(self, image: Image.Image, width: int, height: int, camera: Camera) -> None:
        scale = min(_OVERSAMPLE, math.sqrt(_MAX_SOURCE_PIXELS / (width * height)))
        scale = max(1.0, scale)
        self.source_width = 2 * round(width * scale / 2)
        self.source_height = 2 * round(height * scale / 2)
        self.camera = camera
        self.rgb = cover(image, self.source_width, self.source_height)
        self.planes = _Yuv420.from_image(self.rgb)

    def box(self, u: float) -> tuple[int, int, int, int]:
        x, y, w, h = self.camera.crop(u, self.source_width, self.source_height)
        iw = min(self.source_width, max(2, round(w)))
        ih = min(self.source_height, max(2, round(h)))
        ix = min(self.source_width - iw, max(0, round(x)))
        iy = min(self.source_height - ih, max(0, round(y)))
        return ix, iy, iw, ih

    def frames(self, num_frames: int) -> Iterator[VideoFrame]:
        for i in range(num_frames):
            u = i / (num_frames - 1) if num_frames > 1 else 0.0
            yield self.planes.frame(*self.box(u))

    def still(self, u: float, width: int, height: int) -> Image.Image:
        """The framing at ``u`` as an RGB image (for thumbnails)."""
        x, y, w, h = self.box(u)
        return self.rgb.resize(
            (width, height), Image.Resampling.LANCZOS, box=(x, y, x + w, y + h), reducing_gap=3.0
        )


class FixedCamera:
    """A locked-off shot of ``image``: the framing never moves, the light breathes."""

    def __init__(self, image: Image.Image, width: int, height: int, prompt: str, seed: int):
        rng = SeededRandom(prompt, seed, "fixed-camera")
        self.width = width
        self.height = height
        self.rgb = cover(image, width, height)
        self.planes = _Yuv420.from_image(self.rgb)
        self.gain = rng.uniform(0.04, 0.07)
        self.gain_period = rng.uniform(2.5, 4.5)
        self.tint = rng.uniform(1.5, 3.0)
        self.tint_period = rng.uniform(3.0, 6.0)

    def luts(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        levels = np.arange(256, dtype=np.float32)
        # Sine terms start at zero, so the first frame is the input image itself.
        gain = 1.0 + self.gain * math.sin(2 * math.pi * t / self.gain_period)
        shift = self.tint * math.sin(2 * math.pi * t / self.tint_period)
        # Limited range: black sits at 16, so scale luma about 16 to keep blacks black.
        y = np.clip(16.0 + (levels - 16.0) * gain + 0.5, 16, 235)
        u = np.clip(levels - shift + 0.5, 16, 240)
        v = np.clip(levels + shift + 0.5, 16, 240)
        return y.astype(np.uint8), u.astype(np.uint8), v.astype(np.uint8)

    def frames(self, num_frames: int, fps: int) -> Iterator[VideoFrame]:
        for i in range(num_frames):
            yield self.planes.frame(0, 0, self.width, self.height, self.luts(i / fps))
