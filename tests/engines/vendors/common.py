"""Shared pieces of the vendor fakes: an ASGI app served on loopback in a thread, the
``FakeVendor`` base every fake builds on (serving, recording requests), and a real MP4 for
them to hand back as the generated video."""

from __future__ import annotations

import asyncio
import json
import socket
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from framegate.catalog.builtins import BUILTIN_ROUTES
from framegate.engines.base import GenerationRequest
from framegate.engines.encode import encode_mp4
from framegate.engines.vendors.base import UpstreamJob, UpstreamStatus, VendorEngine, VendorShape
from tests.waiting import wait_until_sync

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


def vendor_shape(**overrides: Any) -> VendorShape:
    """What ``refuse`` is asked about: a 5 s 1280x720 text-to-video clip at 24 fps, with
    ``overrides``."""
    fields: dict[str, Any] = {
        "width": 1280,
        "height": 720,
        "duration": 5,
        "fps": 24,
        "num_frames": 120,
        "has_image": False,
        "has_last_image": False,
        "has_negative_prompt": False,
        "has_seed": False,
    }
    fields.update(overrides)
    return VendorShape(**fields)


def builtin_routes(engine: str) -> list[dict[str, Any]]:
    """The built-in catalog routes of one engine, as catalog/builtins.yaml writes them."""
    return [
        route.model_dump(mode="json", exclude_unset=True)
        for route in BUILTIN_ROUTES
        if route.engine == engine
    ]


async def poll_to_end(
    engine: VendorEngine, job: UpstreamJob, request: GenerationRequest, *, most: int = 20
) -> list[UpstreamStatus]:
    """Poll a job until it leaves "pending": every status seen, in order. The fakes move a
    job on per poll, not per second, so the bound is a number of polls and nothing sleeps."""
    statuses: list[UpstreamStatus] = []
    for _ in range(most):
        statuses.append(await engine.poll(job, request))
        if statuses[-1].state != "pending":
            return statuses
    raise AssertionError(f"still pending after {most} polls: {[s.state for s in statuses]}")


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

        def started() -> bool:
            if not self._thread.is_alive():
                raise RuntimeError("fake server did not start")
            return self._server.started

        wait_until_sync(started, 30, "the fake server to start", interval=0.01)
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


@dataclass(frozen=True)
class RecordedRequest:
    """One request a fake received, as the test inspects it."""

    method: str
    path: str
    query: dict[str, str]
    # Lower-cased names.
    headers: dict[str, str]
    raw: bytes = b""
    # The parsed body when it was sent as JSON (None otherwise, or when it did not parse).
    json: Any = None
    # The fields of a form body; a multipart file is {"filename", "content_type", "data"}.
    form: dict[str, Any] | None = None


async def record(request: Request) -> RecordedRequest:
    raw = await request.body()
    content_type = request.headers.get("content-type", "")
    parsed: Any = None
    form: dict[str, Any] | None = None
    if raw and content_type.startswith("application/json"):
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
    elif raw and content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = {}
        for key, value in (await request.form()).multi_items():
            if isinstance(value, UploadFile):
                form[key] = {
                    "filename": value.filename,
                    "content_type": value.content_type,
                    "data": await value.read(),
                }
            else:
                form[key] = value
    return RecordedRequest(
        method=request.method,
        path=request.url.path,
        query=dict(request.query_params),
        headers={k.lower(): v for k, v in request.headers.items()},
        raw=raw,
        json=parsed,
        form=form,
    )


class FakeVendor:
    """A vendor's API served on FAKE_HOST by a real HTTP server, recording what it receives.

    Subclasses pass their routes; handlers call ``_record`` first. Use as a context manager
    (or ``start``/``stop``)."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server = LoopbackServer(Starlette(routes=list(routes)))

    @property
    def root(self) -> str:
        """The fake's origin."""
        return self._server.url

    @property
    def url(self) -> str:
        """The base URL an engine is configured with."""
        return self.root

    def start(self) -> Self:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def _record(self, request: Request) -> RecordedRequest:
        recorded = await record(request)
        with self._lock:
            self.requests.append(recorded)
        return recorded
