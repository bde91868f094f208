"""Shared pieces of the vendor fakes: an ASGI app served on loopback in a thread, and a
real MP4 for them to hand back as the generated video."""

from __future__ import annotations

import asyncio
import socket
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np
import uvicorn
from starlette.types import ASGIApp

from framegate.engines.encode import encode_mp4

# The suite's settings allow this loopback address (and no other private one) for URLs
# that come from outside: vendor result URLs are fetched under the same rules as
# input images, so the fakes serve on it.
FAKE_HOST = "127.0.0.3"

SAMPLE_WIDTH, SAMPLE_HEIGHT, SAMPLE_FPS, SAMPLE_FRAMES = 64, 48, 8, 16


def sample_mp4() -> bytes:
    """A small real H.264 MP4 (64x48, 8 fps, 16 frames: a moving gradient)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sample.mp4"
        ramp = np.linspace(0, 255, SAMPLE_WIDTH, dtype=np.float32)
        frames = []
        for i in range(SAMPLE_FRAMES):
            row = ((ramp + i * 12) % 256).astype(np.uint8)
            frame = np.zeros((SAMPLE_HEIGHT, SAMPLE_WIDTH, 3), dtype=np.uint8)
            frame[..., 0] = row
            frame[..., 1] = row[::-1]
            frame[..., 2] = 96
            frames.append(frame)
        encode_mp4(frames, path, width=SAMPLE_WIDTH, height=SAMPLE_HEIGHT, fps=SAMPLE_FPS)
        return path.read_bytes()


def free_port(host: str = FAKE_HOST) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LoopbackServer:
    """Serve an ASGI app with uvicorn on FAKE_HOST in a background thread."""

    def __init__(self, app: ASGIApp, host: str = FAKE_HOST, *, lifespan: bool = False) -> None:
        self.host = host
        self.port = free_port(host)
        config = uvicorn.Config(
            app,
            host=host,
            port=self.port,
            log_level="warning",
            lifespan="on" if lifespan else "off",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        asyncio.run(self._server.serve())

    def start(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
