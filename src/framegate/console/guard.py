"""Who a browser is (its console session) and whether its request is its own (CSRF)."""

from __future__ import annotations

import hmac
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

from starlette.types import Scope

from framegate.console.sessions import COOKIE_NAME, ConsoleSessions, ConsoleUser
from framegate.exceptions import Forbidden

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = b"x-csrf-token"
CONSOLE_PREFIX = "/console"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def session_token(scope: Scope) -> str | None:
    """The console cookie's value, if the request carries one."""
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(raw)
    except CookieError:
        return None
    morsel = cookies.get(COOKIE_NAME)
    return morsel.value if morsel is not None else None


async def console_user(scope: Scope, sessions: ConsoleSessions) -> ConsoleUser | None:
    token = session_token(scope)
    return None if token is None else await sessions.resolve(token)


def own_origin(scope: Scope, public_url: str) -> str:
    if public_url:
        parts = urlsplit(public_url)
        return f"{parts.scheme}://{parts.netloc}".lower()
    host = _header(scope, b"host") or ""
    return f"{scope.get('scheme', 'http')}://{host}".lower()


def check_same_origin(scope: Scope, public_url: str) -> None:
    """Refuse an unsafe request a browser says came from another site (Origin, or
    Sec-Fetch-Site); requests without either header (not from a browser) pass."""
    if scope.get("method") not in UNSAFE_METHODS:
        return
    site = _header(scope, b"sec-fetch-site")
    origin = _header(scope, b"origin")
    foreign = site in ("cross-site", "same-site") or (
        origin is not None and origin.lower() != own_origin(scope, public_url)
    )
    if foreign:
        raise Forbidden(
            "Cross-site request refused: the console only accepts its own pages' requests.",
            code="cross_site_request",
        )


def check_request(scope: Scope, user: ConsoleUser, public_url: str) -> None:
    """A session-authenticated request: same origin for writes, and on the JSON API the
    session's CSRF token in X-CSRF-Token (console forms carry it as a field instead, which
    their routes check)."""
    check_same_origin(scope, public_url)
    if scope.get("method") not in UNSAFE_METHODS or scope["path"].startswith(CONSOLE_PREFIX + "/"):
        return
    if not csrf_matches(user, _header(scope, CSRF_HEADER)):
        raise Forbidden(
            "Missing or wrong X-CSRF-Token: a console session's writes carry its token.",
            param="X-CSRF-Token",
            code="csrf_token_invalid",
        )


def csrf_matches(user: ConsoleUser, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(
        presented.encode(), user.csrf_token.encode()
    )
