"""SSRF guard tests against real sockets on loopback only.

A "canary" listener on 127.0.0.1 (and ::1 where available) counts every connection it
accepts; each refusal must leave it untouched. The "origin" server used for the fetches that
should work is bound to 127.0.0.2, which only the test policy's allowlist admits.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import ipaddress
import re
import shutil
import socket
import ssl
import struct
import subprocess
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from framegate.exceptions import PayloadTooLarge
from framegate.kit import safe_fetch
from framegate.kit.addresses import is_address_allowed, parse_networks
from framegate.kit.safe_fetch import (
    FetchedContent,
    FetchPolicy,
    fetch_url,
    pinned_request,
    validate_url,
)
from tests.kit.loopback import Canary, http_response, read_request, refused, start_canary
from tests.waiting import wait_until

ORIGIN_HOST = "127.0.0.2"
FAST = FetchPolicy(connect_timeout=2.0, read_timeout=2.0, total_timeout=5.0)


def _png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


PNG = _png_bytes()


# --- servers -------------------------------------------------------------------------------


@dataclass
class Origin:
    port: int
    canary_port: int
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://{ORIGIN_HOST}:{self.port}{path}"


async def _serve(origin: Origin, path: str, writer: asyncio.StreamWriter, reader: Any) -> None:
    png_headers = {"Content-Type": "image/png", "Content-Length": str(len(PNG))}
    if path == "/image.png":
        writer.write(http_response("200 OK", png_headers, PNG))
    elif path == "/to-canary":
        target = f"http://127.0.0.1:{origin.canary_port}/"
        writer.write(http_response("302 Found", {"Location": target, "Content-Length": "0"}))
    elif path == "/to-localhost":
        target = f"http://localhost:{origin.canary_port}/"
        writer.write(http_response("307 Temporary Redirect", {"Location": target}))
    elif path == "/to-v6-loopback":
        target = f"http://[::1]:{origin.canary_port}/"
        writer.write(http_response("301 Moved Permanently", {"Location": target}))
    elif path == "/to-file":
        writer.write(http_response("302 Found", {"Location": "file:///etc/passwd"}))
    elif path.startswith("/chain/"):
        remaining = int(path.removeprefix("/chain/"))
        if remaining == 0:
            writer.write(http_response("200 OK", png_headers, PNG))
        else:
            # Relative Location, so resolution against the current URL is exercised too.
            location = f"/chain/{remaining - 1}"
            writer.write(http_response("302 Found", {"Location": location, "Content-Length": "0"}))
    elif path == "/no-location":
        writer.write(http_response("302 Found", {"Content-Length": "0"}))
    elif path == "/missing":
        writer.write(http_response("404 Not Found", {"Content-Length": "0"}))
    elif path == "/big-declared":
        # Headers only: a client that waited for this body would hit the read timeout.
        writer.write(http_response("200 OK", {"Content-Length": "4096"}))
        await writer.drain()
        await reader.read()
    elif path == "/big-chunked":
        writer.write(http_response("200 OK", {"Transfer-Encoding": "chunked"}))
        for _ in range(128):
            if writer.is_closing():
                return
            writer.write(b"200\r\n" + b"x" * 512 + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
    elif path == "/gzip":
        body = gzip.compress(PNG)
        headers = {"Content-Encoding": "gzip", "Content-Length": str(len(body))}
        writer.write(http_response("200 OK", headers, body))
    elif path == "/stall":
        await reader.read()
    elif path == "/drip":
        writer.write(http_response("200 OK", {"Content-Length": "1000"}))
        for _ in range(1000):
            if writer.is_closing():
                return
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.1)
    else:
        writer.write(http_response("404 Not Found", {"Content-Length": "0"}))


@contextlib.asynccontextmanager
async def run_origin(canary_port: int, tls: ssl.SSLContext | None = None) -> AsyncIterator[Origin]:
    state = Origin(port=0, canary_port=canary_port)
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
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()
            handlers.discard(task)

    server = await asyncio.start_server(on_connect, ORIGIN_HOST, 0, ssl=tls)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


@pytest.fixture
async def origin(canary: Canary) -> AsyncIterator[Origin]:
    async with run_origin(canary.port) as state:
        yield state


def origin_policy(**overrides: Any) -> FetchPolicy:
    allow = parse_networks(f"{ORIGIN_HOST}/32")
    return dataclasses.replace(FAST, allow_networks=allow, **overrides)


# --- the canary itself -----------------------------------------------------------------------


async def test_canary_counts_connections(canary: Canary) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", canary.port)
    writer.close()
    await wait_until(lambda: canary.connections, 5, "the canary to count the connection")
    assert canary.connections == 1


# --- refusals before any connection ----------------------------------------------------------

LOOPBACK_CORPUS = [
    "http://127.0.0.1:{port}/",
    "http://localhost:{port}/",
    "http://2130706433:{port}/",
    "http://0x7f000001:{port}/",
    "http://0177.0.0.1:{port}/",
    "http://127.1:{port}/",
    "http://[::1]:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://[::ffff:7f00:1]:{port}/",
    "http://0.0.0.0:{port}/",
    "https://127.0.0.1:{port}/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/",
    "http://[::127.0.0.1]:{port}/",
    "http://[64:ff9b::7f00:1]:{port}/",
]


async def test_loopback_corpus_never_reaches_the_canary(canary: Canary) -> None:
    policy = FAST
    for template in LOOPBACK_CORPUS:
        url = template.format(port=canary.port)
        error = await refused(fetch_url(url, policy))
        assert error.param == "input_image"
        assert error.message.startswith("input_image must be a public http(s) URL"), url
        assert "loopback" in error.message or "unspecified" in error.message, error.message
        assert "data URI" in error.message
    await canary.assert_untouched()


async def test_refusal_messages_name_the_real_address(canary: Canary) -> None:
    policy = FAST
    decimal = await refused(validate_url(f"http://2130706433:{canary.port}/", policy))
    assert "2130706433 is 127.0.0.1, a loopback address" in decimal.message
    octal = await refused(validate_url(f"http://0177.0.0.1:{canary.port}/", policy))
    assert "0177.0.0.1 is 127.0.0.1, a loopback address" in octal.message
    named = await refused(validate_url(f"http://localhost:{canary.port}/", policy))
    assert "localhost resolves to 127.0.0.1, a loopback address" in named.message
    await canary.assert_untouched()


async def test_param_name_is_reported(canary: Canary) -> None:
    policy = FAST
    error = await refused(
        fetch_url(
            f"http://127.0.0.1:{canary.port}/",
            policy,
            param="webhook_url",
            remedy="Use a public https endpoint.",
        )
    )
    assert error.param == "webhook_url"
    assert error.message.startswith("webhook_url must be a public http(s) URL")
    assert error.message.endswith("Use a public https endpoint.")
    await canary.assert_untouched()


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://127.0.0.2/x.png", "gopher://127.0.0.2:70/_x", "example.com/x"],
)
async def test_non_http_schemes_refused(url: str, canary: Canary) -> None:
    error = await refused(fetch_url(url, origin_policy()))
    assert "not fetched" in error.message
    await canary.assert_untouched()


async def test_userinfo_refused(origin: Origin) -> None:
    url = f"http://user:secret@{ORIGIN_HOST}:{origin.port}/image.png"
    error = await refused(fetch_url(url, origin_policy()))
    assert "credentials" in error.message
    assert origin.requests == []


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("http://127.0.0.2:99999/", "out of range"),
        ("http:///nohost", "no host"),
        ("http://" + "a" * 9000 + ".example/", "longer than"),
    ],
)
async def test_malformed_urls_refused(url: str, detail: str) -> None:
    error = await refused(validate_url(url, origin_policy()), code="invalid_url")
    assert detail in error.message


async def test_public_literals_validate_without_network() -> None:
    policy = FetchPolicy()
    parsed, ip = await validate_url("https://8.8.8.8/image.png", policy)
    assert (parsed.host, ip) == ("8.8.8.8", "8.8.8.8")
    _, ip6 = await validate_url("http://[2606:4700:4700::1111]:8080/", policy)
    assert ip6 == "2606:4700:4700::1111"


# --- resolution: once, every address, pinned ------------------------------------------------


@dataclass
class FakeDns:
    """Answers for made-up ``.test`` names, so these tests never send a DNS query.

    Each name maps to a list of answers consumed one per lookup; the last one repeats.
    """

    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    lookups: Counter[str] = field(default_factory=Counter)


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    # Patched at the socket level so that any resolver path (the event loop's, or a client's
    # own) sees the same answers: a second lookup anywhere would be counted and redirected.
    dns = FakeDns()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else host
        if not (isinstance(name, str) and name.endswith(".test")):
            return real(host, port, *args, **kwargs)
        dns.lookups[name] += 1
        queue = dns.answers.get(name)
        if not queue:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        ips = queue.pop(0) if len(queue) > 1 else queue[0]
        return [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, int(port or 0)))
            for ip in ips
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return dns


async def test_unresolvable_host(fake_dns: FakeDns) -> None:
    error = await refused(
        validate_url("http://nowhere.test/", FetchPolicy()), code="unresolvable_url"
    )
    assert "nowhere.test" in error.message


async def test_every_resolved_address_must_be_allowed(fake_dns: FakeDns, canary: Canary) -> None:
    fake_dns.answers["mixed.test"] = [[ORIGIN_HOST, "10.0.0.1"]]
    error = await refused(validate_url("http://mixed.test/", origin_policy()))
    assert "mixed.test resolves to 10.0.0.1, a private address" in error.message


async def test_connection_goes_to_the_validated_address(fake_dns: FakeDns, origin: Origin) -> None:
    # The second answer points at a trap on the origin's port on 127.0.0.1: a client that
    # resolved the name again (DNS rebinding) would connect there instead of to the address
    # that was checked.
    trap = await start_canary(origin.port)
    try:
        fake_dns.answers["rebind.test"] = [[ORIGIN_HOST], ["127.0.0.1"]]
        url = f"http://rebind.test:{origin.port}/image.png"
        fetched = await fetch_url(url, origin_policy())
        assert fetched.content == PNG
        assert fetched.url == url
        assert [path for path, _ in origin.requests] == ["/image.png"]
        assert origin.requests[0][1]["host"] == f"rebind.test:{origin.port}"
        assert fake_dns.lookups["rebind.test"] == 1, "the name was resolved more than once"
        await trap.assert_untouched()
    finally:
        await trap.close()


def test_pinned_request_keeps_host_and_sni() -> None:
    request = pinned_request(
        httpx.URL("https://images.example.com:8443/a.png?x=1"), "93.184.216.34", accept="image/*"
    )
    assert str(request.url) == "https://93.184.216.34:8443/a.png?x=1"
    assert request.headers["host"] == "images.example.com:8443"
    assert request.headers["accept"] == "image/*"
    assert request.extensions["sni_hostname"] == "images.example.com"

    plain = pinned_request(httpx.URL("http://example.com/a"), "2606:4700:4700::1111")
    assert str(plain.url) == "http://[2606:4700:4700::1111]/a"
    assert plain.headers["host"] == "example.com"
    assert "sni_hostname" not in plain.extensions


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A throwaway certificate for ``images.test`` (cert, key)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", "/CN=images.test",
            "-addext", "subjectAltName=DNS:images.test",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return cert, key


async def test_https_verifies_the_original_hostname(
    self_signed: tuple[Path, Path],
    fake_dns: FakeDns,
    canary: Canary,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cert, key = self_signed
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    sni: list[str | None] = []

    def remember_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        sni.append(name)

    server_tls.sni_callback = remember_sni
    # Trust the test certificate instead of the public CA bundle; the check itself (hostname
    # against certificate) is still the client's own.
    monkeypatch.setattr(safe_fetch, "tls_context", lambda: ssl.create_default_context(cafile=cert))
    fake_dns.answers["images.test"] = [[ORIGIN_HOST]]
    fake_dns.answers["other.test"] = [[ORIGIN_HOST]]

    async with run_origin(canary.port, tls=server_tls) as tls_origin:
        url = f"https://images.test:{tls_origin.port}/image.png"
        fetched = await fetch_url(url, origin_policy())
        assert fetched.content == PNG
        assert fetched.url == url
        assert sni == ["images.test"]
        assert tls_origin.requests[0][1]["host"] == f"images.test:{tls_origin.port}"

        # Same address, a name the certificate does not cover: verification must fail rather
        # than be satisfied by the address the connection was pinned to.
        other = f"https://other.test:{tls_origin.port}/image.png"
        await refused(fetch_url(other, origin_policy()), code="fetch_failed")
        assert len(tls_origin.requests) == 1
    await canary.assert_untouched()


# --- fetching from the allowlisted origin --------------------------------------------------


async def test_allowlisted_origin_serves_png(origin: Origin, canary: Canary) -> None:
    fetched = await fetch_url(origin.url("/image.png"), origin_policy(), accept="image/png")
    assert fetched == FetchedContent(
        content=PNG, content_type="image/png", url=origin.url("/image.png")
    )
    _path, headers = origin.requests[0]
    assert headers["host"] == f"{ORIGIN_HOST}:{origin.port}"
    assert headers["accept"] == "image/png"
    assert headers["accept-encoding"] == "identity"
    await canary.assert_untouched()


async def test_origin_is_refused_without_the_allowlist(origin: Origin) -> None:
    error = await refused(fetch_url(origin.url("/image.png"), FAST))
    assert "127.0.0.2 is a loopback address" in error.message
    assert origin.requests == []


@pytest.mark.parametrize("path", ["/to-canary", "/to-localhost", "/to-v6-loopback"])
async def test_redirect_to_loopback_refused(path: str, origin: Origin, canary: Canary) -> None:
    await refused(fetch_url(origin.url(path), origin_policy()))
    assert [p for p, _ in origin.requests] == [path]
    await canary.assert_untouched()


async def test_redirect_to_other_scheme_refused(origin: Origin) -> None:
    error = await refused(fetch_url(origin.url("/to-file"), origin_policy()))
    assert "file: URLs are not fetched" in error.message


async def test_three_redirects_followed(origin: Origin) -> None:
    fetched = await fetch_url(origin.url("/chain/3"), origin_policy())
    assert fetched.content == PNG
    assert fetched.url == origin.url("/chain/0")


async def test_four_redirects_refused(origin: Origin) -> None:
    error = await refused(fetch_url(origin.url("/chain/4"), origin_policy()), code="fetch_failed")
    assert "more than 3 times" in error.message
    # The fourth Location is never requested.
    assert [p for p, _ in origin.requests] == ["/chain/4", "/chain/3", "/chain/2", "/chain/1"]


async def test_redirect_without_location(origin: Origin) -> None:
    await refused(fetch_url(origin.url("/no-location"), origin_policy()), code="fetch_failed")


async def test_non_2xx_is_a_failure(origin: Origin) -> None:
    error = await refused(fetch_url(origin.url("/missing"), origin_policy()), code="fetch_failed")
    assert "HTTP 404" in error.message


async def test_compressed_body_refused(origin: Origin) -> None:
    await refused(fetch_url(origin.url("/gzip"), origin_policy()), code="fetch_failed")


async def test_declared_oversize_refused_before_reading(origin: Origin) -> None:
    started = time.monotonic()
    error = await refused(
        fetch_url(origin.url("/big-declared"), origin_policy(max_bytes=1024)),
        code="input_too_large",
        exc=PayloadTooLarge,
    )
    assert time.monotonic() - started < 1.5
    assert error.param == "input_image"
    assert error.status_code == 413


async def test_streamed_oversize_refused(origin: Origin) -> None:
    await refused(
        fetch_url(origin.url("/big-chunked"), origin_policy(max_bytes=4096)),
        code="input_too_large",
        exc=PayloadTooLarge,
    )


async def test_stalled_server_times_out(origin: Origin) -> None:
    started = time.monotonic()
    await refused(
        fetch_url(origin.url("/stall"), origin_policy(read_timeout=0.3)), code="fetch_timeout"
    )
    assert time.monotonic() - started < 1.5


async def test_dripping_server_hits_total_timeout(origin: Origin) -> None:
    started = time.monotonic()
    await refused(
        fetch_url(origin.url("/drip"), origin_policy(read_timeout=1.0, total_timeout=0.5)),
        code="fetch_timeout",
    )
    assert time.monotonic() - started < 1.5


async def test_connection_refused_is_fetch_failed() -> None:
    # Find a port on the allowlisted address with nothing listening on it.
    with socket.socket() as probe:
        probe.bind((ORIGIN_HOST, 0))
        port = probe.getsockname()[1]
    await refused(fetch_url(f"http://{ORIGIN_HOST}:{port}/", origin_policy()), code="fetch_failed")


# --- pure address checks --------------------------------------------------------------------

REFUSED = [
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "224.0.0.1",
    "fc00::1",
    "fe80::1",
    "64:ff9b::7f00:1",
    "64:ff9b::a00:1",
    "2002:7f00:1::1",
    "2002:a00:1::1",
    "::ffff:10.0.0.1",
    "127.0.0.1",
    "0.0.0.0",
    "255.255.255.255",
    "240.0.0.1",
    "192.0.2.1",
    "198.18.0.1",
    "::",
    "::1",
    "::127.0.0.1",
    "::ffff:0:127.0.0.1",
    "64:ff9b:1::808:808",
    "2001:db8::1",
    "ff02::1",
    "fec0::1",
    "100::1",
    # Teredo with a documentation-range client (RFC 4380's example address).
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    # Teredo with public server 8.8.4.4 and private client 10.0.0.1 (stored inverted).
    "2001:0:808:404::f5ff:fffe",
]

ALLOWED = [
    "8.8.8.8",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
    # Teredo with public server 8.8.4.4 and public client 8.8.8.8.
    "2001:0:808:404::f7f7:f7f7",
]


@pytest.mark.parametrize("ip", REFUSED)
def test_non_global_addresses_refused(ip: str) -> None:
    assert not is_address_allowed(ip, ())
    assert not is_address_allowed(ipaddress.ip_address(ip), ())


@pytest.mark.parametrize("ip", ALLOWED)
def test_global_addresses_allowed(ip: str) -> None:
    assert is_address_allowed(ip, ())


def test_allowlist_admits_private_networks() -> None:
    networks = parse_networks("10.0.0.0/8, fd00::/8")
    assert is_address_allowed("10.1.2.3", networks)
    assert is_address_allowed("::ffff:10.1.2.3", networks)
    assert is_address_allowed("fd00::5", networks)
    assert not is_address_allowed("192.168.1.1", networks)
    assert not is_address_allowed("127.0.0.1", networks)


def test_allowlist_does_not_cross_address_families() -> None:
    assert not is_address_allowed("::1", parse_networks("0.0.0.0/0"))
    assert not is_address_allowed("127.0.0.1", parse_networks("::/0"))


def test_parse_networks() -> None:
    assert parse_networks("") == ()
    assert parse_networks(" , ") == ()
    assert parse_networks("10.0.0.0/8,192.168.1.5") == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.5/32"),
    )
    with pytest.raises(ValueError, match=re.escape("'nonsense'")):
        parse_networks("10.0.0.0/8, nonsense")
    with pytest.raises(ValueError, match=re.escape("'10.0.0.1/8'")):
        parse_networks("10.0.0.1/8")
