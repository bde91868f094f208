"""``fetch_to_file``: the body goes to disk as it arrives, under the same SSRF rules, cap and
timeouts as ``fetch_url``, and nothing but the destination is ever left behind.

The origin listens on the suite's receiver address (127.0.0.3, the one private address the
test policy admits); redirects towards the canary on 127.0.0.1 must never reach it.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from framegate.exceptions import PayloadTooLarge
from framegate.kit import safe_fetch
from framegate.kit.addresses import parse_networks
from framegate.kit.safe_fetch import (
    FetchedFile,
    FetchPolicy,
    fetch_to_file,
    fetch_url,
)
from tests.conftest import TEST_RECEIVER_HOST
from tests.kit.loopback import Canary, http_response, read_request, refused
from tests.waiting import wait_until

BLOCK = bytes(range(256)) * 256  # 64 KiB
BODY = BLOCK * 16 + b"tail"  # 1 MiB and a bit, not a multiple of the block
MiB = 1024 * 1024


@dataclass
class Origin:
    port: int
    canary_port: int
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://{TEST_RECEIVER_HOST}:{self.port}{path}"


async def _write_blocks(writer: asyncio.StreamWriter, size: int, pause: float = 0.0) -> None:
    """``size`` bytes of BLOCK, written a block at a time: the server never holds the body."""
    while size > 0 and not writer.is_closing():
        writer.write(BLOCK[:size])
        size -= len(BLOCK)
        await writer.drain()
        if pause:
            await asyncio.sleep(pause)


async def _serve(origin: Origin, path: str, writer: asyncio.StreamWriter, reader: Any) -> None:
    if path == "/video":
        headers = {"Content-Type": "video/mp4", "Content-Length": str(len(BODY))}
        writer.write(http_response("200 OK", headers, BODY))
    elif path.startswith("/chain/"):
        remaining = int(path.removeprefix("/chain/"))
        location = "/video" if remaining == 0 else f"/chain/{remaining - 1}"
        writer.write(http_response("302 Found", {"Location": location, "Content-Length": "0"}))
    elif path == "/to-canary":
        target = f"http://127.0.0.1:{origin.canary_port}/video"
        writer.write(http_response("302 Found", {"Location": target, "Content-Length": "0"}))
    elif path.startswith("/large/"):
        size = int(path.removeprefix("/large/"))
        writer.write(http_response("200 OK", {"Content-Length": str(size)}))
        await _write_blocks(writer, size)
    elif path == "/endless":
        # No length declared: only counting while reading can stop it.
        writer.write(http_response("200 OK", {"Transfer-Encoding": "chunked"}))
        while not writer.is_closing():
            writer.write(f"{len(BLOCK):x}\r\n".encode() + BLOCK + b"\r\n")
            await writer.drain()
    elif path == "/declared-big":
        writer.write(http_response("200 OK", {"Content-Length": str(64 * MiB)}))
        await writer.drain()
        await reader.read()
    elif path == "/slow":
        writer.write(http_response("200 OK", {"Content-Length": str(8 * MiB)}))
        await _write_blocks(writer, 8 * MiB, pause=0.05)
    elif path == "/truncated":
        writer.write(http_response("200 OK", {"Content-Length": str(len(BODY))}, BLOCK))
    elif path == "/gzip":
        writer.write(http_response("200 OK", {"Content-Encoding": "gzip"}, BLOCK))
    else:
        writer.write(http_response("404 Not Found", {"Content-Length": "0"}))


@pytest.fixture
async def origin(canary: Canary) -> AsyncIterator[Origin]:
    state = Origin(port=0, canary_port=canary.port)
    handlers: set[asyncio.Task[None]] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            path, headers = await read_request(reader)
            state.requests.append((path, headers))
            await _serve(state, path, writer, reader)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            handlers.discard(task)

    server = await asyncio.start_server(on_connect, TEST_RECEIVER_HOST, 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


def policy(**overrides: Any) -> FetchPolicy:
    limits: dict[str, Any] = {"connect_timeout": 2.0, "read_timeout": 2.0, "total_timeout": 10.0}
    limits.update(overrides)
    return FetchPolicy(allow_networks=parse_networks(f"{TEST_RECEIVER_HOST}/32"), **limits)


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """The directory the body is fetched into (a worker's scratch directory)."""
    directory = tmp_path / "work"
    directory.mkdir()
    return directory


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def partial_bytes(directory: Path) -> int:
    """What the scratch files in ``directory`` hold so far."""
    return sum(p.stat().st_size for p in directory.glob("*.part"))


# --- success -------------------------------------------------------------------------------


async def test_body_is_written_to_the_destination_and_nothing_else(
    origin: Origin, scratch: Path
) -> None:
    destination = scratch / "result"
    fetched = await fetch_to_file(
        origin.url("/video"), destination, policy(), param="result", accept="video/*"
    )
    assert fetched == FetchedFile(
        path=destination, size=len(BODY), content_type="video/mp4", url=origin.url("/video")
    )
    assert destination.read_bytes() == BODY
    assert listing(scratch) == ["result"]
    _path, headers = origin.requests[0]
    assert headers["accept"] == "video/*"
    assert headers["accept-encoding"] == "identity"


async def test_redirects_are_followed_to_the_final_url(origin: Origin, scratch: Path) -> None:
    fetched = await fetch_to_file(origin.url("/chain/2"), scratch / "result", policy())
    assert fetched.url == origin.url("/video")
    assert (scratch / "result").read_bytes() == BODY
    assert [p for p, _ in origin.requests] == ["/chain/2", "/chain/1", "/chain/0", "/video"]


# --- the SSRF rules are fetch_url's -------------------------------------------------------


async def test_a_redirect_inwards_is_refused_before_connecting(
    origin: Origin, canary: Canary, scratch: Path
) -> None:
    error = await refused(fetch_to_file(origin.url("/to-canary"), scratch / "result", policy()))
    assert "127.0.0.1 is a loopback address" in error.message
    assert [p for p, _ in origin.requests] == ["/to-canary"]
    await canary.assert_untouched()
    assert listing(scratch) == []


async def test_the_origin_itself_needs_the_allowlist(origin: Origin, scratch: Path) -> None:
    await refused(fetch_to_file(origin.url("/video"), scratch / "result", FetchPolicy()))
    assert origin.requests == []
    assert listing(scratch) == []


async def test_too_many_redirects_refused(origin: Origin, scratch: Path) -> None:
    await refused(
        fetch_to_file(origin.url("/chain/4"), scratch / "result", policy()), code="fetch_failed"
    )
    assert listing(scratch) == []


# --- the cap --------------------------------------------------------------------------------


async def test_past_the_cap_is_refused_without_writing_past_it(
    origin: Origin, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[int] = []
    write = safe_fetch._ScratchFile.write

    async def counting_write(self: Any, chunk: bytes) -> None:
        written.append(len(chunk))
        await write(self, chunk)

    monkeypatch.setattr(safe_fetch._ScratchFile, "write", counting_write)
    cap = MiB
    error = await refused(
        fetch_to_file(origin.url("/endless"), scratch / "result", policy(max_bytes=cap)),
        code="input_too_large",
        exc=PayloadTooLarge,
    )
    # The chunk that crosses the cap is refused, not written.
    assert 0 < sum(written) <= cap
    assert listing(scratch) == []
    # The same refusal fetch_url makes.
    same = await refused(
        fetch_url(origin.url("/endless"), policy(max_bytes=cap)),
        code="input_too_large",
        exc=PayloadTooLarge,
    )
    assert (error.message, error.status_code) == (same.message, same.status_code)


async def test_a_declared_oversize_body_is_refused_before_any_file(
    origin: Origin, scratch: Path
) -> None:
    started = time.monotonic()
    await refused(
        fetch_to_file(origin.url("/declared-big"), scratch / "result", policy(max_bytes=MiB)),
        code="input_too_large",
        exc=PayloadTooLarge,
    )
    assert time.monotonic() - started < 1.5
    assert listing(scratch) == []


async def test_exactly_the_cap_is_accepted(origin: Origin, scratch: Path) -> None:
    fetched = await fetch_to_file(
        origin.url("/video"), scratch / "result", policy(max_bytes=len(BODY))
    )
    assert fetched.size == len(BODY)


# --- nothing left behind ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "code"),
    [("/missing", "fetch_failed"), ("/truncated", "fetch_failed"), ("/gzip", "fetch_failed")],
)
async def test_failures_leave_the_directory_as_it_was(
    origin: Origin, scratch: Path, path: str, code: str
) -> None:
    destination = scratch / "result"
    destination.write_bytes(b"earlier")
    await refused(fetch_to_file(origin.url(path), destination, policy()), code=code)
    assert listing(scratch) == ["result"]
    assert destination.read_bytes() == b"earlier"


async def test_the_total_timeout_removes_the_partial_file(origin: Origin, scratch: Path) -> None:
    await refused(
        fetch_to_file(origin.url("/slow"), scratch / "result", policy(total_timeout=0.3)),
        code="fetch_timeout",
    )
    assert listing(scratch) == []


async def test_cancellation_removes_the_partial_file(origin: Origin, scratch: Path) -> None:
    fetch = asyncio.create_task(fetch_to_file(origin.url("/slow"), scratch / "result", policy()))
    await wait_until(lambda: partial_bytes(scratch) > 0, 5, "the body to start arriving")
    fetch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await fetch
    assert listing(scratch) == []


# --- memory -----------------------------------------------------------------------------------


async def test_a_60_mib_body_is_never_held_in_memory(origin: Origin, scratch: Path) -> None:
    """Python-level allocations (every chunk httpx hands over is a bytes object, in any
    thread) stay far below the body's size: one network chunk at a time."""
    size = 60 * MiB
    url = origin.url(f"/large/{size}")
    # Warm up (TLS context, thread pool, imports) so the measurement is the transfer's.
    await fetch_to_file(origin.url("/video"), scratch / "warm", policy())
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fetched = await fetch_to_file(url, scratch / "result", policy(max_bytes=size))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fetched.size == size == (scratch / "result").stat().st_size
    assert peak < 10 * MiB, f"peak {peak / MiB:.1f} MiB while streaming {size / MiB:.0f} MiB"
    with (scratch / "result").open("rb") as written:
        assert written.read(len(BLOCK)) == BLOCK
