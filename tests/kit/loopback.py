"""Raw HTTP on loopback for the safe-fetch tests: a canary listener that counts every
connection it accepts (a refused URL must leave it untouched), and the two halves of a
hand-written HTTP/1.1 exchange, so servers can misbehave in ways a framework would not."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass, field

import pytest

from framegate.exceptions import InvalidValue, PayloadTooLarge


@dataclass
class Canary:
    port: int
    connections: int = 0
    servers: list[asyncio.Server] = field(default_factory=list)

    async def assert_untouched(self) -> None:
        # Give the loop a moment to accept anything the kernel has already queued.
        await asyncio.sleep(0.05)
        assert self.connections == 0, "a refused URL reached the canary listener"

    async def close(self) -> None:
        for server in self.servers:
            server.close()
            await server.wait_closed()


async def start_canary(port: int = 0) -> Canary:
    """Listen on 127.0.0.1 (and ::1 where available), on ``port`` or a free one."""
    state = Canary(port=port)

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        writer.close()

    v4 = await asyncio.start_server(on_connect, "127.0.0.1", port)
    state.port = v4.sockets[0].getsockname()[1]
    state.servers.append(v4)
    with contextlib.suppress(OSError):
        state.servers.append(await asyncio.start_server(on_connect, "::1", state.port))
    return state


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    """The path and (lower-cased) headers of one request."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    path = lines[0].split(" ")[1]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return path, headers


def http_response(status: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"HTTP/1.1 {status}", "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def refused(
    call: Awaitable[object], *, code: str = "unsafe_url", exc: type[Exception] = InvalidValue
) -> InvalidValue | PayloadTooLarge:
    """The framegate error ``call`` raises, checked to carry ``code``."""
    with pytest.raises(exc) as info:
        await asyncio.wait_for(call, timeout=10)
    error = info.value
    assert isinstance(error, InvalidValue | PayloadTooLarge)
    assert error.code == code, error.message
    return error
