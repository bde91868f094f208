"""Procedural scenes for the preview engine: a seeded gradient with soft moving shapes.

A :class:`Scene` is a pure function of ``(prompt, seed)`` and time, evaluated on a
:class:`Grid` of any size. Coordinates are measured in units of the frame height, so the
same scene rendered at 480x270 and at 1280x720 looks the same; videos exploit that by
rendering small and letting the encoder's scaler upsample the (deliberately soft)
content, which keeps the per-frame numpy work tiny.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
from dataclasses import dataclass

import numpy as np

# Words that pull the palette toward a hue (0..1), so prompts visibly steer the preview.
_HUE_WORDS: dict[str, float] = {
    "red": 0.0,
    "fire": 0.03,
    "sunset": 0.06,
    "orange": 0.08,
    "autumn": 0.09,
    "gold": 0.12,
    "desert": 0.11,
    "yellow": 0.15,
    "sun": 0.13,
    "green": 0.33,
    "forest": 0.3,
    "jungle": 0.32,
    "grass": 0.27,
    "teal": 0.48,
    "cyan": 0.5,
    "ice": 0.53,
    "sea": 0.55,
    "ocean": 0.57,
    "water": 0.56,
    "sky": 0.58,
    "blue": 0.62,
    "night": 0.66,
    "space": 0.7,
    "purple": 0.77,
    "violet": 0.76,
    "neon": 0.85,
    "pink": 0.92,
    "rose": 0.95,
}
_DARK_WORDS = frozenset({"night", "dark", "space", "moody", "shadow", "noir", "midnight"})
_BRIGHT_WORDS = frozenset({"bright", "sunny", "day", "light", "pastel", "snow", "white"})

# Gaussian tails beyond 3 sigma are below 1.2% and invisible after quantisation, so each
# shape only touches its own bounding box.
_SIGMA_EXTENT = 3.0


class SeededRandom:
    """Uniform numbers from SHA-256 in counter mode, keyed by prompt, seed and purpose.

    Python's ``hash()`` is salted per process and numpy does not promise the same
    streams across releases; this gives the same scene for a prompt + seed on every
    machine and every version, for good.
    """

    def __init__(self, prompt: str, seed: int, purpose: str) -> None:
        self._key = hashlib.sha256(
            f"framegate-preview\x00{purpose}\x00{seed}\x00{prompt}".encode()
        ).digest()
        self._counter = 0

    def random(self) -> float:
        """A float in [0, 1)."""
        block = hashlib.sha256(self._key + self._counter.to_bytes(8, "big")).digest()
        self._counter += 1
        # 53 bits: every value is exactly representable as a double.
        return (int.from_bytes(block[:8], "big") >> 11) / (1 << 53)

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()

    def integer(self, low: int, high: int) -> int:
        """An integer in [low, high)."""
        return min(high - 1, low + int(self.random() * (high - low)))

    def sign(self) -> float:
        return 1.0 if self.random() < 0.5 else -1.0


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


@dataclass(frozen=True, slots=True)
class Grid:
    """Precomputed coordinates for one frame size (reused by every frame of a clip)."""

    width: int
    height: int
    # Pixel centres in frame-height units: x in [0, aspect], y in [0, 1].
    x: np.ndarray
    y: np.ndarray
    vignette: np.ndarray

    @classmethod
    def build(cls, width: int, height: int) -> Grid:
        x = ((np.arange(width, dtype=np.float32) + 0.5) / height).astype(np.float32)
        y = ((np.arange(height, dtype=np.float32) + 0.5) / height).astype(np.float32)
        aspect = width / height
        dx = (x - aspect / 2) / max(aspect, 1.0)
        dy = y - 0.5
        r2 = np.add.outer(dy * dy, dx * dx)
        vignette = (1.0 - 0.55 * r2).astype(np.float32)
        return cls(width, height, x, y, vignette)

    @property
    def aspect(self) -> float:
        return self.width / self.height


@dataclass(frozen=True, slots=True)
class _Path:
    """A Lissajous path: centre + amplitude * sin(2 pi f t + phase), per axis."""

    cx: float
    cy: float
    ax: float
    ay: float
    fx: float
    fy: float
    px: float
    py: float

    def at(self, t: float) -> tuple[float, float]:
        return (
            self.cx + self.ax * math.sin(2 * math.pi * self.fx * t + self.px),
            self.cy + self.ay * math.sin(2 * math.pi * self.fy * t + self.py),
        )


@dataclass(frozen=True, slots=True)
class _Blob:
    path: _Path
    sigma: float
    stretch: float
    pulse: float
    pulse_freq: float
    alpha: float
    hue: float
    sat: float
    val: float
    additive: bool


@dataclass(frozen=True, slots=True)
class _Ring:
    path: _Path
    radius: float
    width: float
    pulse: float
    pulse_freq: float
    alpha: float
    hue: float


@dataclass(frozen=True, slots=True)
class _Bar:
    angle: float
    spin: float
    offset: float
    sweep: float
    freq: float
    phase: float
    width: float
    alpha: float
    hue: float


@dataclass(frozen=True, slots=True)
class Scene:
    """Everything a prompt + seed decides; :meth:`render_planes` adds time."""

    hues: tuple[float, float, float]
    sat: float
    val: float
    hue_drift: float
    angle: float
    spin: float
    contrast: float
    blobs: tuple[_Blob, ...]
    rings: tuple[_Ring, ...]
    bars: tuple[_Bar, ...]

    @classmethod
    def from_prompt(cls, prompt: str, seed: int, aspect: float) -> Scene:
        rng = SeededRandom(prompt, seed, "scene")
        tokens = [w.strip(".,;:!?\"'()").lower() for w in prompt.split()]
        words = set(tokens)
        # The first colour word wins, as in "a red fox in a green forest".
        hinted = [_HUE_WORDS[w] for w in tokens if w in _HUE_WORDS]
        base = hinted[0] + rng.uniform(-0.04, 0.04) if hinted else rng.random()
        # Analogous, split-complementary or triadic palettes all read as deliberate.
        offsets = ((0.08, -0.08), (0.42, 0.58), (1 / 3, 2 / 3))[rng.integer(0, 3)]
        hues = (base, base + offsets[0], base + offsets[1])
        val = rng.uniform(0.55, 0.85)
        if words & _DARK_WORDS:
            val *= 0.6
        if words & _BRIGHT_WORDS:
            val = min(1.0, val * 1.25)
        sat = rng.uniform(0.45, 0.85)

        def path(spread: float) -> _Path:
            return _Path(
                cx=rng.uniform(0.2, 0.8) * aspect,
                cy=rng.uniform(0.2, 0.8),
                ax=rng.uniform(0.1, 0.3) * spread * max(aspect, 1.0),
                ay=rng.uniform(0.1, 0.3) * spread,
                fx=rng.uniform(0.08, 0.28),
                fy=rng.uniform(0.08, 0.28),
                px=rng.uniform(0, 2 * math.pi),
                py=rng.uniform(0, 2 * math.pi),
            )

        blobs = tuple(
            _Blob(
                path=path(1.0),
                sigma=rng.uniform(0.06, 0.18),
                stretch=rng.uniform(0.7, 1.4),
                pulse=rng.uniform(0.05, 0.25),
                pulse_freq=rng.uniform(0.1, 0.4),
                alpha=rng.uniform(0.45, 0.85),
                hue=hues[rng.integer(0, 3)] + rng.uniform(-0.03, 0.03),
                sat=min(1.0, max(0.2, sat + rng.uniform(-0.1, 0.2))),
                val=min(1.0, max(0.2, val + rng.uniform(0.0, 0.3))),
                additive=rng.random() < 0.35,
            )
            for _ in range(rng.integer(4, 8))
        )
        rings = tuple(
            _Ring(
                path=path(0.7),
                radius=rng.uniform(0.1, 0.28),
                width=rng.uniform(0.012, 0.03),
                pulse=rng.uniform(0.1, 0.35),
                pulse_freq=rng.uniform(0.1, 0.35),
                alpha=rng.uniform(0.35, 0.7),
                hue=hues[rng.integer(0, 3)] + (0.5 if rng.random() < 0.3 else 0.0),
            )
            for _ in range(rng.integer(1, 3))
        )
        bars = tuple(
            _Bar(
                angle=rng.uniform(0, math.pi),
                spin=rng.uniform(-0.12, 0.12),
                offset=rng.uniform(0.3, 0.7) * aspect,
                sweep=rng.uniform(0.25, 0.5) * aspect,
                freq=rng.uniform(0.06, 0.18),
                phase=rng.uniform(0, 2 * math.pi),
                width=rng.uniform(0.03, 0.09),
                alpha=rng.uniform(0.15, 0.35),
                hue=hues[rng.integer(0, 3)],
            )
            for _ in range(rng.integer(1, 4))
        )
        return cls(
            hues=hues,
            sat=sat,
            val=val,
            hue_drift=rng.sign() * rng.uniform(0.01, 0.03),
            angle=rng.uniform(0, 2 * math.pi),
            spin=rng.sign() * rng.uniform(0.05, 0.15),
            contrast=rng.uniform(0.9, 1.6),
            blobs=blobs,
            rings=rings,
            bars=bars,
        )

    def render_planes(
        self, grid: Grid, t: float, base: np.ndarray | None = None, opacity: float = 1.0
    ) -> np.ndarray:
        """The frame at ``t`` seconds as planar RGB: a ``3 x H x W`` uint8 array.

        Planar layout keeps every numpy operation on long contiguous runs; interleaved
        ``H x W x 3`` broadcasting is an order of magnitude slower. ``base`` (planar
        float32 RGB in 0..1 at the grid size) replaces the gradient background, which
        turns the scene into an overlay on an input image; ``opacity`` scales every
        shape's strength.
        """
        drift = self.hue_drift * t
        img = self._background(grid, t, drift) if base is None else base.copy()
        for bar in self.bars:
            self._bar(img, grid, bar, t, drift, opacity)
        for blob in self.blobs:
            self._blob(img, grid, blob, t, drift, opacity)
        for ring in self.rings:
            self._ring(img, grid, ring, t, drift, opacity)
        img *= grid.vignette
        np.clip(img, 0.0, 1.0, out=img)
        img *= 255.0
        img += 0.5
        return img.astype(np.uint8)

    def render_rgb(
        self, grid: Grid, t: float, base: np.ndarray | None = None, opacity: float = 1.0
    ) -> np.ndarray:
        """Like :meth:`render_planes` but interleaved: an ``H x W x 3`` uint8 RGB array."""
        planes = self.render_planes(grid, t, base, opacity)
        return np.ascontiguousarray(planes.transpose(1, 2, 0))

    def _background(self, grid: Grid, t: float, drift: float) -> np.ndarray:
        angle = self.angle + self.spin * t
        c0 = _hsv(self.hues[0] + drift, self.sat, self.val * 0.55)
        c1 = _hsv(self.hues[1] + drift, self.sat * 0.9, self.val)
        along = np.add.outer(
            (grid.y - 0.5) * (self.contrast * math.sin(angle)),
            (grid.x - grid.aspect / 2) * (self.contrast * math.cos(angle)),
        )
        along += 0.5
        np.clip(along, 0.0, 1.0, out=along)
        img = np.empty((3, grid.height, grid.width), dtype=np.float32)
        for c in range(3):
            np.multiply(along, c1[c] - c0[c], out=img[c])
            img[c] += c0[c]
        return img

    def _bar(
        self, img: np.ndarray, grid: Grid, bar: _Bar, t: float, drift: float, opacity: float
    ) -> None:
        angle = bar.angle + bar.spin * t
        centre = bar.offset + bar.sweep * math.sin(2 * math.pi * bar.freq * t + bar.phase)
        inv = 1.0 / bar.width
        dist = np.add.outer(
            grid.y * (math.sin(angle) * inv), (grid.x * math.cos(angle) - centre) * inv
        )
        np.square(dist, out=dist)
        np.negative(dist, out=dist)
        np.exp(dist, out=dist)
        colour = _hsv(bar.hue + drift, self.sat * 0.5, 1.0) * (bar.alpha * opacity)
        for c in range(3):
            img[c] += dist * colour[c]

    def _box(self, grid: Grid, cx: float, cy: float, rx: float, ry: float) -> tuple[slice, slice]:
        h = grid.height
        x0 = max(0, int((cx - rx) * h))
        x1 = min(grid.width, math.ceil((cx + rx) * h) + 1)
        y0 = max(0, int((cy - ry) * h))
        y1 = min(grid.height, math.ceil((cy + ry) * h) + 1)
        return slice(y0, max(y0, y1)), slice(x0, max(x0, x1))

    def _blob(
        self, img: np.ndarray, grid: Grid, blob: _Blob, t: float, drift: float, opacity: float
    ) -> None:
        cx, cy = blob.path.at(t)
        scale = 1.0 + blob.pulse * math.sin(2 * math.pi * blob.pulse_freq * t)
        sx = blob.sigma * scale * blob.stretch
        sy = blob.sigma * scale / blob.stretch
        ys, xs = self._box(grid, cx, cy, _SIGMA_EXTENT * sx, _SIGMA_EXTENT * sy)
        if ys.start == ys.stop or xs.start == xs.stop:
            return
        gx = np.exp(-np.square(grid.x[xs] - cx) / (2 * sx * sx))
        gy = np.exp(-np.square(grid.y[ys] - cy) / (2 * sy * sy)) * (blob.alpha * opacity)
        alpha = np.multiply.outer(gy, gx)
        colour = _hsv(blob.hue + drift, blob.sat, blob.val)
        for c in range(3):
            region = img[c, ys, xs]
            if blob.additive:
                region += alpha * (colour[c] * 0.6)
            else:
                region -= alpha * (region - colour[c])

    def _ring(
        self, img: np.ndarray, grid: Grid, ring: _Ring, t: float, drift: float, opacity: float
    ) -> None:
        cx, cy = ring.path.at(t)
        radius = ring.radius * (1.0 + ring.pulse * math.sin(2 * math.pi * ring.pulse_freq * t))
        reach = radius + _SIGMA_EXTENT * ring.width
        ys, xs = self._box(grid, cx, cy, reach, reach)
        if ys.start == ys.stop or xs.start == xs.stop:
            return
        dist = np.sqrt(np.add.outer(np.square(grid.y[ys] - cy), np.square(grid.x[xs] - cx)))
        dist -= radius
        dist *= 1.0 / ring.width
        np.square(dist, out=dist)
        np.negative(dist, out=dist)
        np.exp(dist, out=dist)
        colour = _hsv(ring.hue + drift, self.sat * 0.7, 1.0) * (ring.alpha * opacity)
        for c in range(3):
            img[c, ys, xs] += dist * colour[c]
