"""Zero-interleave helpers for building PyAV frames straight from numpy planes."""

from __future__ import annotations

import numpy as np
from av.video.frame import VideoFrame
from av.video.plane import VideoPlane


def plane_array(plane: VideoPlane, width: int, height: int) -> np.ndarray:
    """A writable ``height x width`` uint8 view of a plane's buffer (rows may be padded)."""
    rows = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(-1, plane.line_size)
    return rows[:height, :width]


def gbrp_frame(planes: np.ndarray) -> VideoFrame:
    """Wrap planar RGB (``3 x H x W`` uint8) as a ``gbrp`` frame, never interleaving it."""
    _, height, width = planes.shape
    frame = VideoFrame(width, height, "gbrp")
    # gbrp stores green, blue, red in that order.
    for plane, channel in zip(frame.planes, (1, 2, 0), strict=True):
        plane_array(plane, width, height)[...] = planes[channel]
    return frame
