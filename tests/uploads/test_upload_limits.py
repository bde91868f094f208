"""Upload size limits, against a real `framegate serve` process on loopback: oversized files
are refused with 413 while they stream in, and the server's memory stays bounded."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.processes import Server, cli_json, environment, free_port, throwaway_database
from tests.uploads.samples import (
    MULTIPART_CONTENT_TYPE,
    image_bytes,
    mp4_of_size,
    png_of_size,
    streamed_multipart,
)

pytestmark = pytest.mark.slow  # a server process

MIB = 1024 * 1024
IMAGE_CAP = 1 * MIB
VIDEO_CAP = 50 * MIB
# Below the upload caps, so the upload route must be exempt from it.
REQUEST_CAP = 2 * MIB
BIG_BODY = 60 * MIB
# Far below the 50 MiB the server reads before refusing: holding the file would show.
MAX_PEAK_GROWTH = 20 * MIB


@dataclass
class Running:
    server: Server
    headers: dict[str, str]

    @property
    def pid(self) -> int:
        assert self.server.process is not None
        return self.server.process.pid

    def client(self, timeout: float = 60) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, headers=self.headers, timeout=timeout)


@pytest.fixture(scope="module")
def running(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp_path = tmp_path_factory.mktemp(f"uploads-{backend}")
    with throwaway_database(backend) as database_url:
        env = environment(
            tmp_path / "data",
            database_url,
            FRAMEGATE_UPLOAD_IMAGE_MAX_BYTES=str(IMAGE_CAP),
            FRAMEGATE_UPLOAD_VIDEO_MAX_BYTES=str(VIDEO_CAP),
            FRAMEGATE_MAX_REQUEST_BYTES=str(REQUEST_CAP),
            FRAMEGATE_WORKER_CONCURRENCY="0",
        )
        account = cli_json(env, "admin", "create-account", "--name", "up", "--credits", "10")
        server = Server(env, free_port(), tmp_path / "server.log")
        server.start()
        try:
            yield Running(server, {"Authorization": f"Bearer {account['api_key']}"})
        finally:
            server.stop()


def post_file(running: Running, data: bytes, filename: str = "f.bin") -> httpx.Response:
    with running.client() as client:
        return client.post("/v1/uploads", files={"file": (filename, data)})


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"{field} missing from /proc/{pid}/status")


def reset_peak(pid: int) -> bool:
    """Start VmHWM again from the current RSS (Linux: clear_refs 5), where allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def assert_too_large(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["param"] == "file"
    assert f"{limit / MIB:g} MiB" in error["message"]


def test_image_cap_applies_once_the_file_decodes_as_an_image(running: Running) -> None:
    at_cap = post_file(running, png_of_size(IMAGE_CAP))
    assert at_cap.status_code == 201, at_cap.text
    assert (at_cap.json()["kind"], at_cap.json()["bytes"]) == ("image", IMAGE_CAP)
    assert_too_large(post_file(running, png_of_size(IMAGE_CAP + 1)), IMAGE_CAP)
    # Over the image cap but well under the video cap the bytes stream in, then the
    # decoded kind's cap refuses them.
    assert_too_large(post_file(running, png_of_size(5 * MIB)), IMAGE_CAP)


def test_uploads_may_exceed_the_request_cap_other_routes_keep(running: Running) -> None:
    video = post_file(running, mp4_of_size(3 * MIB), "clip.mp4")
    assert video.status_code == 201, video.text
    assert (video.json()["kind"], video.json()["bytes"]) == ("video", 3 * MIB)
    with running.client() as client:
        other = client.post(
            "/v1/async/videos/generations",
            content=b"{" + b" " * (3 * MIB) + b"}",
            headers={"Content-Type": "application/json"},
        )
    assert other.status_code == 413
    assert other.json()["error"]["code"] == "request_too_large"


def test_declared_length_over_the_cap_is_refused_before_the_body(running: Running) -> None:
    head = (
        "POST /v1/uploads HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{running.server.port}\r\n"
        f"Authorization: {running.headers['Authorization']}\r\n"
        f"Content-Type: {MULTIPART_CONTENT_TYPE}\r\n"
        f"Content-Length: {VIDEO_CAP * 10}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", running.server.port), timeout=10) as sock:
        sock.sendall(head.encode())
        # No body byte is sent: the answer has to come from the header alone.
        status_line = sock.recv(4096).split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 413"), status_line


def test_oversized_stream_is_refused_with_bounded_memory(running: Running) -> None:
    with running.client() as client:
        # Warm up the route so one-off allocations (imports, first queries) are not counted.
        assert client.post("/v1/uploads", files={"file": ("a.png", image_bytes("PNG"))}).is_success
        reset_peak(running.pid)
        peak_before = memory_kib(running.pid, "VmHWM")
        rss_before = memory_kib(running.pid, "VmRSS")
        response = client.post(
            "/v1/uploads",
            content=streamed_multipart(BIG_BODY),
            headers={"Content-Type": MULTIPART_CONTENT_TYPE},
        )
        peak_after = memory_kib(running.pid, "VmHWM")
        assert_too_large(response, VIDEO_CAP)
        # The server keeps answering afterwards.
        assert client.get("/healthz").status_code == 200
    growth = (peak_after - peak_before) * 1024
    print(
        f"\n60 MiB upload refused: server RSS {rss_before} KiB before, "
        f"peak {peak_before} -> {peak_after} KiB (+{growth / MIB:.1f} MiB)"
    )
    assert growth < MAX_PEAK_GROWTH
