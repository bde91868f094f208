"""The console's pages: sign-in and sign-out, the layout every page shares, and one route
per page. A page is a server-rendered shell (Jinja2) whose data comes from the JSON API the
clients use — fetched by the page's own ES module with the session cookie — so the console
sees exactly what the API allows its key to see, and does only what the API lets it do."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.types import Scope

from framegate import __version__
from framegate.console.guard import check_same_origin, csrf_matches, session_token
from framegate.console.sessions import COOKIE_NAME, ConsoleUser
from framegate.dependencies import RuntimeDep
from framegate.exceptions import ErrorResponse, Forbidden, FramegateError, NotFound, Unauthorized
from framegate.keys.middleware import CONSOLE_STATE_KEY
from framegate.keys.scopes import Scope as KeyScope
from framegate.keys.scopes import has_scope
from framegate.kit.credentials import malformed_key_message
from framegate.kit.dialects import Dialect
from framegate.runtime import Runtime

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)

SIGN_IN_PATH = "/console/sign-in"


@dataclass(frozen=True)
class Page:
    """One entry of the navigation: its path, its label, the scope it needs (None: any)."""

    name: str
    path: str
    label: str
    scope: str | None = None


PAGES = (
    Page("overview", "/console", "Overview", KeyScope.credits_read),
    Page("playground", "/console/playground", "Playground", KeyScope.videos_write),
    Page("tasks", "/console/tasks", "Tasks", KeyScope.tasks_read),
    Page("usage", "/console/usage", "Usage", KeyScope.credits_read),
    Page("credits", "/console/credits", "Credits", KeyScope.credits_read),
    Page("keys", "/console/keys", "API keys", KeyScope.keys_manage),
    Page("webhooks", "/console/webhooks", "Webhooks", KeyScope.keys_manage),
    Page("models", "/console/models", "Models"),
    Page("admin", "/console/admin", "Admin", KeyScope.admin),
)
PAGES_BY_NAME = {page.name: page for page in PAGES}


# -- security headers ---------------------------------------------------------------------


def content_security_policy(runtime: Runtime) -> str:
    """Everything from this origin only; media and images also from the bucket (or its
    CDN) when outputs live in object storage."""
    media = "'self' blob:"
    settings = runtime.settings
    if settings.storage == "s3":
        base = settings.s3_public_base_url or settings.s3_endpoint_url
        if base:
            parts = urlsplit(base)
            media += f" {parts.scheme}://{parts.netloc}"
        else:
            media += " https://*.amazonaws.com"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src {media} data:; media-src {media}; connect-src 'self'; "
        "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    )


def secure(response: Response, runtime: Runtime) -> Response:
    response.headers["Content-Security-Policy"] = content_security_policy(runtime)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    return response


def render(
    request: Request,
    template: str,
    *,
    user: ConsoleUser | None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    runtime: Runtime = request.app.state.runtime
    scopes = list(user.auth.key.scopes) if user else []
    nav = [page for page in PAGES if page.scope is None or has_scope(scopes, page.scope)]
    response = templates.TemplateResponse(
        request,
        template,
        {
            "user": user,
            "account": user.auth.account if user else None,
            "key": user.auth.key if user else None,
            "csrf_token": user.csrf_token if user else "",
            "nav": nav,
            "version": __version__,
            **context,
        },
        status_code=status_code,
    )
    return secure(response, runtime)


# -- who is signed in ---------------------------------------------------------------------


def current_user(request: Request) -> ConsoleUser | None:
    user: ConsoleUser | None = request.scope.get("state", {}).get(CONSOLE_STATE_KEY)
    return user


def signed_in(request: Request) -> ConsoleUser:
    """The session; without one, a page (GET) redirects to the sign-in page."""
    user = current_user(request)
    if user is None:
        raise Unauthorized("Sign in to the console first.", code="console_sign_in_required")
    return user


User = Annotated[ConsoleUser, Depends(signed_in)]


async def csrf_form(request: Request, user: User) -> ConsoleUser:
    """A console form's write: same origin, and the session's token in ``csrf_token``."""
    check_same_origin(request.scope, request.app.state.runtime.settings.public_url)
    form = await request.form()
    token = form.get("csrf_token")
    if not csrf_matches(user, token if isinstance(token, str) else None):
        raise Forbidden(
            "This form has expired or was not sent by the console: reload the page and try again.",
            code="csrf_token_invalid",
        )
    return user


def page(request: Request, user: ConsoleUser, name: str, **context: Any) -> Response:
    """A page of the navigation, or the 403 page when the key lacks its scope."""
    entry = PAGES_BY_NAME[name]
    if entry.scope is not None and not has_scope(list(user.auth.key.scopes), entry.scope):
        return render(
            request,
            "error.html",
            user=user,
            status_code=403,
            title="Not allowed",
            message=(
                f"The key this session signed in with lacks the '{entry.scope}' scope, "
                "which this page needs. Sign in with a key that has it."
            ),
        )
    return render(request, f"{name}.html", user=user, page=entry, **context)


# -- sign in and out ----------------------------------------------------------------------


@router.get("/", response_class=RedirectResponse)
async def root() -> RedirectResponse:
    """The installation's root opens the console."""
    return RedirectResponse("/console", status_code=307)


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only (never another site, nor out of
    the console by ``..``)."""
    if (
        target
        and target.startswith("/console")
        and "//" not in target
        and "\\" not in target
        and ".." not in target.split("?", 1)[0]
        and not any(ord(c) < 32 or ord(c) == 127 for c in target)
    ):
        return target
    return "/console"


@router.get(SIGN_IN_PATH, response_class=HTMLResponse)
async def sign_in_page(request: Request, next: str | None = None) -> Response:
    user = current_user(request)
    if user is not None:
        redirect = RedirectResponse(_safe_next(next), status_code=303)
        return secure(redirect, request.app.state.runtime)
    return render(request, "signin.html", user=None, next=_safe_next(next), error=None)


@router.post(SIGN_IN_PATH, response_class=HTMLResponse)
async def sign_in(
    request: Request,
    runtime: RuntimeDep,
    api_key: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/console",
) -> Response:
    check_same_origin(request.scope, runtime.settings.public_url)
    target = _safe_next(next)
    key = api_key.strip()
    try:
        if not key:
            raise Unauthorized("Paste an API key to sign in.", code="missing_api_key")
        malformed = malformed_key_message(key)
        if malformed:
            raise Unauthorized(malformed, code="malformed_api_key")
        token, _user = await runtime.console.open(key)
    except Unauthorized as failed:
        client = runtime.clients.client_address(request.scope)
        await runtime.clients.count_failure(client)
        await runtime.clients.check_failures(client)
        message = failed.message
        if failed.code == "invalid_api_key":
            message = (
                "That API key was not accepted: check that it was pasted whole "
                "(it starts with fg_live_) and has not been revoked."
            )
        return render(
            request, "signin.html", user=None, next=target, error=message, status_code=401
        )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=runtime.console.lifetime_seconds,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_is_https(request.scope, runtime.settings.public_url),
    )
    return secure(response, runtime)


def _is_https(scope: Scope, public_url: str) -> bool:
    return public_url.startswith("https://") or scope.get("scheme") == "https"


@router.post("/console/sign-out")
async def sign_out(request: Request, runtime: RuntimeDep) -> Response:
    """End the session (its form's token required); with no live session (its key was
    revoked meanwhile) there is nothing to end: the cookie is cleared all the same."""
    if current_user(request) is not None:
        await csrf_form(request, signed_in(request))
    else:
        check_same_origin(request.scope, runtime.settings.public_url)
    token = session_token(request.scope)
    if token is not None:
        await runtime.console.close(token)
    response = RedirectResponse(SIGN_IN_PATH, status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
    return secure(response, runtime)


# -- errors in the console's own shape ----------------------------------------------------


def render_error(request: Request, error: FramegateError) -> Response:
    """A console path's error as a page (a sign-in redirect for a missing session)."""
    if isinstance(error, Unauthorized) and request.method == "GET":
        return _to_sign_in(request)
    return render(
        request,
        "error.html",
        user=current_user(request),
        status_code=error.status_code,
        title=error.type.replace("_", " ").capitalize(),
        message=error.message,
    )


def _to_sign_in(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"{SIGN_IN_PATH}?next={quote(target)}", status_code=303)
    return secure(response, request.app.state.runtime)


DIALECT = Dialect(
    name="console",
    prefixes=("/console", "/console/"),
    render_error=render_error,
    error_model=ErrorResponse,
)


# Registered after every page: a console path with a trailing slash goes to the page
# without it (a relative redirect with the console's headers); anything else is a 404 page.
fallback_router = APIRouter(include_in_schema=False)


@fallback_router.api_route("/console/{rest:path}", methods=["GET", "HEAD"])
async def console_fallback(request: Request, rest: str) -> Response:
    if request.url.path.endswith("/"):
        target = "/console/" + rest.strip("/") if rest.strip("/") else "/console"
        query = f"?{request.url.query}" if request.url.query else ""
        redirect = RedirectResponse(quote(target, safe="/") + query, status_code=307)
        return secure(redirect, request.app.state.runtime)
    raise NotFound("There is no such console page.", code="page_not_found")
