"""Fetch a caller-supplied URL without letting it reach the platform's own network.

A URL in a request (an ``input_image`` now, a webhook target later) is an instruction to make
an outbound connection from inside the deployment. Left unchecked it can read cloud metadata
(169.254.169.254), admin ports on loopback or services on the private network. So:

* the host is resolved exactly once and every address it resolves to must be globally routable,
  or inside a network the operator allowlisted (``FRAMEGATE_ALLOW_PRIVATE_NETWORKS``);
* the connection goes to that validated address, never to a second resolution of the name, so
  a DNS answer that changes between check and use (DNS rebinding) cannot redirect it;
* redirects are followed by hand, and every hop is validated the same way before any
  connection is made to it;
* the body is read with a byte cap and every phase has a timeout.

``fetch_url`` returns the body in memory, for small things such as input images;
``fetch_to_file`` writes it to disk as it arrives, for large ones such as a vendor's result
video, so a process holds one network chunk of it at a time rather than the whole file.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import ssl
import tempfile
import threading
import urllib.parse
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from framegate import __version__
from framegate.exceptions import InvalidValue, PayloadTooLarge
from framegate.kit.addresses import (
    IPAddress,
    IPNetwork,
    as_address,
    in_allowlist,
    ip_literal,
    legacy_ipv4,
    refusal_reason,
)
from framegate.kit.http import tls_context

DEFAULT_REMEDY = "Upload the image or pass a data URI instead."
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_URL_LENGTH = 8192
USER_AGENT = f"framegate/{__version__}"

_DEFAULT_PORTS = {"http": 80, "https": 443}

_T = TypeVar("_T")


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for one outbound fetch."""

    allow_networks: tuple[IPNetwork, ...] = ()
    max_bytes: int = 20 * 1024 * 1024
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    max_redirects: int = 3
    # read_timeout bounds each socket read, so a server dripping one byte at a time would
    # otherwise hold the fetch open indefinitely.
    total_timeout: float = 60.0


@dataclass(frozen=True)
class FetchedContent:
    content: bytes
    content_type: str | None
    url: str


@dataclass(frozen=True)
class FetchedFile:
    """A body written to ``path``; ``url`` is the final URL after redirects."""

    path: Path
    size: int
    content_type: str | None
    url: str


@dataclass(frozen=True)
class _Redirect:
    location: str


def _unsafe(param: str, remedy: str, detail: str) -> InvalidValue:
    return InvalidValue(
        f"{param} must be a public http(s) URL; {detail}. {remedy}",
        param=param,
        code="unsafe_url",
    )


def _invalid(param: str, detail: str) -> InvalidValue:
    return InvalidValue(
        f"{param} is not a valid URL: {detail}. Pass an absolute http(s) URL.",
        param=param,
        code="invalid_url",
    )


def _describe(host: str, effective: IPAddress, reason: str) -> str:
    if host == str(effective):
        return f"{host} is {reason}"
    if ip_literal(host) is not None:
        return f"{host} is {effective}, {reason}"
    return f"{host} resolves to {effective}, {reason}"


def _unparseable(
    url: str, policy: FetchPolicy, param: str, remedy: str, error: str
) -> InvalidValue:
    # httpx rejects some spellings the OS resolver would accept (``0177.0.0.1``). Nothing is
    # fetched either way; this only makes the refusal say what the address really is.
    try:
        host = urllib.parse.urlsplit(url).hostname or ""
    except ValueError:
        host = ""
    legacy = legacy_ipv4(host)
    if legacy is not None:
        reason = refusal_reason(legacy)
        if reason is not None and not in_allowlist(legacy, policy.allow_networks):
            return _unsafe(param, remedy, f"{host} is {legacy}, {reason}")
        return _invalid(param, f"write the IPv4 address {host} as {legacy}")
    return _invalid(param, error)


def _parse(url: str, policy: FetchPolicy, param: str, remedy: str) -> httpx.URL:
    if len(url) > MAX_URL_LENGTH:
        raise _invalid(param, f"it is longer than {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise _unparseable(url, policy, param, remedy, str(exc)) from None
    if parsed.scheme not in _DEFAULT_PORTS:
        shown = f"{parsed.scheme}: URLs are" if parsed.scheme else "relative URLs are"
        raise _unsafe(param, remedy, f"{shown} not fetched")
    if not parsed.host:
        raise _invalid(param, "it has no host")
    if parsed.userinfo:
        raise _unsafe(param, remedy, "URLs with credentials (user:password@) are not fetched")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise _invalid(param, f"port {parsed.port} is out of range")
    if "%" in parsed.host:
        raise _unsafe(param, remedy, "IPv6 zone identifiers are not allowed")
    return parsed


async def _resolve(host: str, port: int, policy: FetchPolicy, param: str) -> list[IPAddress]:
    literal = ip_literal(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(policy.connect_timeout):
            infos = await loop.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
    except TimeoutError:
        raise InvalidValue(
            f"{param}: the host {host} did not resolve within {policy.connect_timeout:g}s. "
            "Check the URL or pass the content another way.",
            param=param,
            code="unresolvable_url",
        ) from None
    except (OSError, UnicodeError):
        infos = []
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        try:
            address = ipaddress.ip_address(sockaddr[0])
        except ValueError:
            continue
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise InvalidValue(
            f"{param}: the host {host} could not be resolved. Check the URL.",
            param=param,
            code="unresolvable_url",
        )
    return addresses


async def validate_url(
    url: str,
    policy: FetchPolicy,
    *,
    param: str = "input_image",
    remedy: str = DEFAULT_REMEDY,
) -> tuple[httpx.URL, str]:
    """Check ``url`` and resolve its host once.

    Returns the parsed URL and the address to connect to. Every address the host resolves to
    must be allowed, not just the chosen one: a name that also points inward is refused.
    ``remedy`` is the sentence that tells the caller what to do instead.
    """
    parsed = _parse(url, policy, param, remedy)
    host = parsed.raw_host.decode("ascii")
    port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
    addresses = await _resolve(host, port, policy, param)
    for address in addresses:
        effective = as_address(address)
        if in_allowlist(effective, policy.allow_networks):
            continue
        reason = refusal_reason(effective)
        if reason is not None:
            raise _unsafe(param, remedy, _describe(parsed.host, effective, reason))
    return parsed, str(as_address(addresses[0]))


def pinned_request(url: httpx.URL, ip: str, *, accept: str | None = None) -> httpx.Request:
    """A GET for ``url`` that connects to ``ip`` while still addressing the original host.

    The Host header carries the name for virtual hosting; for https the name also goes into
    SNI and certificate verification, so pinning the address does not weaken TLS.
    """
    headers = {
        "Host": url.netloc.decode("ascii"),
        "User-Agent": USER_AGENT,
        "Accept": accept or "*/*",
        # Compressed bodies would be inflated past the byte cap before it could be checked.
        "Accept-Encoding": "identity",
    }
    extensions: dict[str, str] = {}
    if url.scheme == "https":
        extensions["sni_hostname"] = url.raw_host.decode("ascii")
    return httpx.Request("GET", url.copy_with(host=ip), headers=headers, extensions=extensions)


def _format_bytes(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):g} MiB"
    if count >= 1024:
        return f"{count / 1024:g} KiB"
    return f"{count} bytes"


def _too_large(param: str, max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"{param} is larger than the {_format_bytes(max_bytes)} limit. Use a smaller file.",
        param=param,
        code="input_too_large",
    )


def _fetch_failed(param: str, detail: str) -> InvalidValue:
    return InvalidValue(
        f"{param} could not be fetched: {detail}. Check that the URL is publicly reachable.",
        param=param,
        code="fetch_failed",
    )


def _fetch_timeout(param: str) -> InvalidValue:
    return InvalidValue(
        f"{param} could not be fetched: the server did not answer in time. "
        "Use a faster host or pass the content another way.",
        param=param,
        code="fetch_timeout",
    )


def _check_body_headers(response: httpx.Response, max_bytes: int, param: str) -> None:
    """Refuse a body before reading it: too large by its own account, or compressed."""
    declared = response.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise _too_large(param, max_bytes)
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise _fetch_failed(param, f"the server sent a {encoding}-compressed body")


async def _capped(
    chunks: AsyncIterable[bytes], max_bytes: int, param: str
) -> AsyncGenerator[bytes, None]:
    """``chunks``, refused as soon as they add up to more than ``max_bytes``: the chunk that
    crosses the cap is never handed on."""
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > max_bytes:
            raise _too_large(param, max_bytes)
        yield chunk


class _ScratchFile:
    """A file being written beside its destination, each chunk written off the event loop."""

    def __init__(self, destination: Path) -> None:
        fd, name = tempfile.mkstemp(
            dir=destination.parent, prefix=f".{destination.name}.", suffix=".part"
        )
        self.path = Path(name)
        self._handle = os.fdopen(fd, "wb")
        # Held by the thread that writes: a cancelled fetch closing the file waits for the
        # write in flight rather than closing (and freeing for reuse) the descriptor under it.
        self._lock = threading.Lock()

    async def write(self, chunk: bytes) -> None:
        await asyncio.to_thread(self._write, chunk)

    def _write(self, chunk: bytes) -> None:
        with self._lock:
            self._handle.write(chunk)

    async def close(self) -> None:
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            self._handle.close()

    def discard(self) -> None:
        """Close and remove the file. Synchronous, so that it also runs in a task being
        cancelled; it blocks the loop for at most the one chunk being written."""
        # A failed flush of bytes being thrown away must not replace the error being raised.
        with contextlib.suppress(OSError):
            self._close()
        self.path.unlink(missing_ok=True)


async def save_capped(
    chunks: AsyncIterable[bytes], destination: Path, *, max_bytes: int, param: str
) -> int:
    """Write ``chunks`` to ``destination`` as they arrive, refusing more than ``max_bytes``
    (``PayloadTooLarge``, as ``fetch_url`` does). Returns the size.

    The bytes go to a scratch file beside ``destination`` that is renamed into place once
    complete; on any error or cancellation the scratch file is removed and ``destination`` is
    left as it was. At most ``max_bytes`` are ever written.
    """
    scratch = _ScratchFile(destination)
    size = 0
    try:
        async with contextlib.aclosing(_capped(chunks, max_bytes, param)) as body:
            async for chunk in body:
                await scratch.write(chunk)
                size += len(chunk)
        await scratch.close()
        os.replace(scratch.path, destination)
    except BaseException:
        scratch.discard()
        raise
    return size


async def _one_hop(
    url: httpx.URL,
    ip: str,
    policy: FetchPolicy,
    ssl_context: ssl.SSLContext,
    read_body: Callable[[httpx.Response, httpx.URL], Awaitable[_T]],
    *,
    param: str,
    accept: str | None,
) -> _T | _Redirect:
    """Send one request; return what ``read_body`` made of a 2xx answer, or the redirect."""
    timeout = httpx.Timeout(
        connect=policy.connect_timeout,
        read=policy.read_timeout,
        write=policy.read_timeout,
        pool=policy.connect_timeout,
    )
    # A client per hop: a pooled connection (and its TLS session, verified for the previous
    # host) must not be reused for a redirect target that happens to share the address.
    async with httpx.AsyncClient(
        verify=ssl_context, trust_env=False, follow_redirects=False, timeout=timeout
    ) as client:
        try:
            response = await client.send(pinned_request(url, ip, accept=accept), stream=True)
            try:
                status = response.status_code
                if status in REDIRECT_STATUSES:
                    location = response.headers.get("location")
                    if not location:
                        raise _fetch_failed(param, f"HTTP {status} redirect without a Location")
                    try:
                        return _Redirect(str(url.join(location.strip())))
                    except httpx.InvalidURL:
                        raise _fetch_failed(param, "the redirect Location is invalid") from None
                if not 200 <= status < 300:
                    raise _fetch_failed(param, f"the server answered HTTP {status}")
                _check_body_headers(response, policy.max_bytes, param)
                return await read_body(response, url)
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            raise _fetch_timeout(param) from None
        except httpx.ConnectError as exc:
            raise _fetch_failed(param, f"could not connect to {url.host}") from exc
        except httpx.RemoteProtocolError as exc:
            raise _fetch_failed(param, "the server sent an invalid HTTP response") from exc
        except httpx.HTTPError as exc:
            raise _fetch_failed(param, type(exc).__name__) from exc


async def _fetch(
    url: str,
    policy: FetchPolicy,
    read_body: Callable[[httpx.Response, httpx.URL], Awaitable[_T]],
    *,
    param: str,
    accept: str | None,
    remedy: str,
) -> _T:
    """Follow ``url`` through validated, address-pinned hops to a 2xx answer, and return
    what ``read_body`` makes of it; the whole exchange is bounded by ``total_timeout``."""
    ssl_context = tls_context()
    current = url
    try:
        async with asyncio.timeout(policy.total_timeout):
            for _hop in range(policy.max_redirects + 1):
                parsed, ip = await validate_url(current, policy, param=param, remedy=remedy)
                outcome = await _one_hop(
                    parsed, ip, policy, ssl_context, read_body, param=param, accept=accept
                )
                if not isinstance(outcome, _Redirect):
                    return outcome
                current = outcome.location
    except TimeoutError:
        raise _fetch_timeout(param) from None
    raise _fetch_failed(param, f"it redirected more than {policy.max_redirects} times")


async def fetch_url(
    url: str,
    policy: FetchPolicy,
    *,
    param: str = "input_image",
    accept: str | None = None,
    remedy: str = DEFAULT_REMEDY,
) -> FetchedContent:
    """GET ``url`` under ``policy``: validated, address-pinned, capped and timed out.

    Only a 2xx answer succeeds. ``FetchedContent.url`` is the final URL after redirects.
    The body is held in memory: use ``fetch_to_file`` for anything large.
    """

    async def read_body(response: httpx.Response, final: httpx.URL) -> FetchedContent:
        chunks: list[bytes] = []
        async with contextlib.aclosing(
            _capped(response.aiter_raw(), policy.max_bytes, param)
        ) as body:
            async for chunk in body:
                chunks.append(chunk)
        return FetchedContent(
            content=b"".join(chunks),
            content_type=response.headers.get("content-type"),
            url=str(final),
        )

    return await _fetch(url, policy, read_body, param=param, accept=accept, remedy=remedy)


async def fetch_to_file(
    url: str,
    destination: Path,
    policy: FetchPolicy,
    *,
    param: str = "input_image",
    accept: str | None = None,
    remedy: str = DEFAULT_REMEDY,
) -> FetchedFile:
    """``fetch_url`` whose body is streamed to ``destination`` (see ``save_capped``) instead
    of being held in memory: the same validation, pinning, redirect checks, cap and timeouts.

    The scratch file lives in ``destination``'s directory; nothing is left there but
    ``destination`` on success, and nothing new on any failure or cancellation.
    """

    async def read_body(response: httpx.Response, final: httpx.URL) -> FetchedFile:
        size = await save_capped(
            response.aiter_raw(), destination, max_bytes=policy.max_bytes, param=param
        )
        return FetchedFile(
            path=destination,
            size=size,
            content_type=response.headers.get("content-type"),
            url=str(final),
        )

    return await _fetch(url, policy, read_body, param=param, accept=accept, remedy=remedy)
