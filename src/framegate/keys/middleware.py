"""Authentication once per request, before anything else reads the request.

Whatever key a request presents is checked here, on every route (a browser signed in to the
console presents its session cookie instead, and acts as the session's key): a wrong, malformed or
revoked key is answered 401 even on routes that need no key, so a mistyped key shows up on
the first call. Requests without a key, and failed authentications, are counted per client
address (see limits.clients). Routes read the result with ``request_auth``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from framegate.console.guard import check_request, console_user
from framegate.exceptions import FramegateError, Unauthorized
from framegate.keys.service import AuthContext
from framegate.kit.credentials import presented_key
from framegate.kit.responses import send_error
from framegate.limits.clients import ClientLimiter

# Probes from load balancers and orchestrators carry no key and are never limited.
_UNCOUNTED_PATHS = frozenset({"/healthz"})
# The console's scripts, styles and icons: public files, no key read, nothing counted.
_PUBLIC_PREFIX = "/console/static/"
_STATE_KEY = "auth"
CONSOLE_STATE_KEY = "console_user"


class AuthenticationMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] in _UNCOUNTED_PATHS
            or scope["path"].startswith(_PUBLIC_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        runtime = scope["app"].state.runtime
        clients = runtime.clients
        client = clients.client_address(scope)
        try:
            presented = presented_key(scope)
            user = None if presented is not None else await console_user(scope, runtime.console)
            if user is not None:
                # A console session acts as its key (writes only from its own pages).
                check_request(scope, user, runtime.settings.public_url)
                state = scope.setdefault("state", {})
                state[_STATE_KEY], state[CONSOLE_STATE_KEY] = user.auth, user
            elif presented is None:
                await clients.count_anonymous(client)
            else:
                scope.setdefault("state", {})[_STATE_KEY] = await runtime.keys.authenticate(
                    presented.token, may_look_up=lambda: clients.check_failures(client)
                )
        except Unauthorized as failed:
            await send_error(scope, send, await _counted(clients, client, failed))
            return
        except FramegateError as error:
            await send_error(scope, send, error)
            return
        await self.app(scope, receive, send)


async def _counted(clients: ClientLimiter, client: str, error: Unauthorized) -> FramegateError:
    """Counts a failed authentication; the 429 instead once the address failed too often."""
    await clients.count_failure(client)
    try:
        await clients.check_failures(client)
    except FramegateError as limited:
        return limited
    return error


def request_auth(scope: Scope) -> AuthContext:
    """The request's authenticated key; 401 when it presented none."""
    context: AuthContext | None = scope.get("state", {}).get(_STATE_KEY)
    if context is None:
        raise Unauthorized(
            "Missing API key. Send it as 'Authorization: Bearer fg_live_…'.",
            param="Authorization",
            code="missing_api_key",
        )
    return context


def optional_auth(scope: Scope) -> AuthContext | None:
    """The request's authenticated key, None when it presented none."""
    context: AuthContext | None = scope.get("state", {}).get(_STATE_KEY)
    return context
