"""A real HTTP receiver for webhook deliveries, and helpers to drive the webhook API."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from framegate.runtime import Runtime
from tests.conftest import TEST_RECEIVER_HOST, Tenant
from tests.waiting import wait_until

VIDEO = {"model": "preview", "prompt": "x", "duration": 1, "size": "64x64"}


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when the request arrived


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        status, headers = self.server.receiver.record(
            Received(
                self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()
            )
        )
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    receiver: Receiver


class Receiver:
    """An HTTP server on the allowlisted loopback address that records every request and
    answers with the scripted statuses in order, then 200."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._script: deque[tuple[int, dict[str, str]]] = deque()
        self._lock = threading.Lock()
        self._server = _Server((TEST_RECEIVER_HOST, 0), _Handler)
        self._server.receiver = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def respond(self, *responses: int | tuple[int, dict[str, str]]) -> None:
        with self._lock:
            for response in responses:
                self._script.append(response if isinstance(response, tuple) else (response, {}))

    def record(self, received: Received) -> tuple[int, dict[str, str]]:
        with self._lock:
            self.requests.append(received)
            return self._script.popleft() if self._script else (200, {})

    async def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        """The first ``count`` requests, once they have arrived (bounded wait)."""
        await wait_until(lambda: len(self.requests) >= count, timeout, f"{count} requests")
        return self.requests[:count]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def make_receiver() -> Iterator[Callable[[], Receiver]]:
    receivers: list[Receiver] = []

    def make() -> Receiver:
        receivers.append(Receiver())
        return receivers[-1]

    yield make
    for receiver in receivers:
        receiver.close()


@pytest.fixture
def receiver(make_receiver: Callable[[], Receiver]) -> Receiver:
    return make_receiver()


@pytest.fixture
async def paused_job(runtime: Runtime) -> Any:
    """The app's delivery job stopped for the test, so the test's own jobs own the outbox."""
    job = runtime.webhook_job
    assert job is not None
    await job.stop()
    try:
        yield
    finally:
        await job.start()


async def create_endpoint(
    client: httpx.AsyncClient, tenant: Tenant, url: str, **fields: Any
) -> dict[str, Any]:
    response = await client.post(
        "/v1/webhooks", json={"url": url, **fields}, headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def submit(client: httpx.AsyncClient, tenant: Tenant, **overrides: Any) -> str:
    response = await client.post(
        "/v1/async/videos/generations", json={**VIDEO, **overrides}, headers=tenant.headers
    )
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id


async def deliveries(
    client: httpx.AsyncClient, tenant: Tenant, endpoint_id: str
) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/webhooks/{endpoint_id}/deliveries", headers=tenant.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def settled_delivery(
    client: httpx.AsyncClient, tenant: Tenant, endpoint_id: str, timeout: float = 20
) -> dict[str, Any]:
    """The endpoint's single delivery once it is no longer pending."""
    found: list[dict[str, Any]] = []

    async def settled() -> bool:
        found[:] = await deliveries(client, tenant, endpoint_id)
        return bool(found) and all(d["status"] != "pending" for d in found)

    await wait_until(settled, timeout, "the delivery to settle")
    assert len(found) == 1, found
    return found[0]
