"""Small real media files made on the spot, and a multipart body that streams from a generator."""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from typing import Any

import av
import numpy as np
from PIL import Image

BOUNDARY = "framegate-test-boundary"
MULTIPART_CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def _pixels(width: int, height: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, : width // 2] = (200, 40, 40)
    pixels[:, width // 2 :] = (40, 40, 200)
    return pixels


def image_bytes(image_format: str, width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(_pixels(width, height)).save(buffer, format=image_format)
    return buffer.getvalue()


def png_of_size(total: int) -> bytes:
    """A valid PNG padded to exactly ``total`` bytes (decoders stop at IEND)."""
    data = image_bytes("PNG")
    return data + b"\0" * (total - len(data))


def video_bytes(
    container_format: str = "mp4", codec: str = "libx264", width: int = 64, height: int = 48
) -> bytes:
    """A few frames encoded with PyAV."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=8)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for _ in range(4):
            frame = av.VideoFrame.from_ndarray(_pixels(width, height), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def mp4_of_size(total: int) -> bytes:
    """A valid MP4 padded to exactly ``total`` bytes with a trailing 'free' box."""
    data = video_bytes()
    padding = total - len(data)
    return data + struct.pack(">I", padding) + b"free" + b"\0" * (padding - 8)


def streamed_multipart(file_bytes: int, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
    """A multipart body whose ``file`` part is ``file_bytes`` long, produced chunk by chunk so
    the client never holds it whole (one chunk object, sent again and again)."""
    yield (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    chunk = b"\0" * chunk_size
    full, rest = divmod(file_bytes, chunk_size)
    for _ in range(full):
        yield chunk
    yield chunk[:rest]
    yield f"\r\n--{BOUNDARY}--\r\n".encode()
