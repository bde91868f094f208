"""The web console in a real browser: Debian's Chromium driven by Playwright against a live
`framegate serve` (SQLite, embedded worker, the preview engine) on loopback.

Every test's page fails the test if it logs a JavaScript error or makes a request to any
origin but framegate's own."""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    sync_playwright,
)
from playwright.sync_api import Request as BrowserRequest

from tests.processes import Server, cli_json, environment, free_port

CHROMIUM = os.environ.get("FRAMEGATE_TEST_CHROMIUM", "/usr/bin/chromium")
# Loopback receivers (webhooks) the tests start may be reached by the server.
RECEIVER_NETWORK = "127.0.0.0/8"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


@dataclass
class ConsoleServer:
    """A live framegate with two accounts: an admin's and an ordinary user's."""

    url: str
    env: dict[str, str]
    log: Path
    admin: dict[str, Any]
    user: dict[str, Any]

    def account(self, credits: int = 1000, *, admin: bool = False) -> dict[str, Any]:
        """A fresh account and its first key (``--json`` of `framegate admin create-account`)."""
        args = ["admin", "create-account", "--name", f"acct-{secrets.token_hex(3)}"]
        args += ["--credits", str(credits)] + (["--admin"] if admin else [])
        return cli_json(self.env, *args)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


# Routes the console's tests need besides the built-ins: one whose every task fails (the
# preview engine refuses its settings when a task runs, not when the catalog loads), and one
# that takes clips up to ten hours long, so a tiny but long clip (cheap frames, checked for
# cancellation one by one) is still running when a page cancels it.
TEST_ROUTES: list[dict[str, Any]] = [
    {
        "id": "console-broken",
        "name": "Always fails (console tests)",
        "kind": "video",
        "engine": "preview",
        "settings": {"crf": 99},
        "capabilities": {"text_to_video": True},
        "pricing": {"unit": "clip", "credits": {"480p": 3, "720p": 3, "1080p": 3}},
    },
    {
        "id": "console-slow",
        "name": "Long clips (console tests)",
        "kind": "video",
        "engine": "preview",
        "capabilities": {"text_to_video": True, "max_duration": 36000},
        "pricing": {"unit": "clip", "credits": {"480p": 2, "720p": 2, "1080p": 2}},
    },
]


# Package-scoped: Playwright's sync API runs an event loop of its own while it is started,
# and the asyncio tests of the other packages need it stopped before they run.
@pytest.fixture(scope="package")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        raise RuntimeError(f"Chromium is missing at {CHROMIUM}: apt-get install -y chromium")
    root = tmp_path_factory.mktemp("console")
    catalog = root / "catalog.yaml"
    catalog.write_text(yaml.safe_dump({"routes": TEST_ROUTES}))
    env = environment(
        root / "data",
        "",
        FRAMEGATE_ENV="test",
        FRAMEGATE_SECRET_KEY=secrets.token_urlsafe(40),
        FRAMEGATE_ALLOW_PRIVATE_NETWORKS=RECEIVER_NETWORK,
        FRAMEGATE_WORKER_CONCURRENCY="2",
        FRAMEGATE_WORKER_POLL_SECONDS="0.2",
        FRAMEGATE_DEFAULT_MAX_CONCURRENT_VIDEOS="50",
        FRAMEGATE_DEFAULT_REQUESTS_PER_MINUTE="100000",
        FRAMEGATE_ANONYMOUS_REQUESTS_PER_MINUTE="100000",
        FRAMEGATE_FAILED_AUTH_PER_MINUTE="1000",
        FRAMEGATE_WEBHOOK_RETRY_SCHEDULE="[0, 0.5, 0.5]",
        FRAMEGATE_WEBHOOK_POLL_SECONDS="0.1",
        FRAMEGATE_CATALOG_FILE=str(catalog),
    )
    admin = cli_json(
        env, "admin", "create-account", "--name", "operators", "--credits", "100000", "--admin"
    )
    user = cli_json(env, "admin", "create-account", "--name", "acme", "--credits", "5000")
    server = Server(env, free_port(), root / "server.log")
    server.start()
    try:
        yield ConsoleServer(server.url, env, server.log, admin, user)
    finally:
        server.stop()


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    launched = playwright.chromium.launch(
        executable_path=executable,
        # As root in a container Chromium needs this; the pages under test are our own.
        args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
    )
    yield launched
    launched.close()


@dataclass
class Watch:
    """What a page did that a test must not accept: JavaScript errors, foreign requests."""

    origin: str
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        # Chromium also logs every 4xx/5xx response ("Failed to load resource"); pages answer
        # those on purpose (a refused key, a missing scope): they are not script errors.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(f"console: {message.text}")

    def on_page_error(self, error: Exception) -> None:
        self.errors.append(f"uncaught: {error}")

    def on_request(self, request: BrowserRequest) -> None:
        url = request.url
        if url.startswith(("data:", "blob:", "about:")):
            return
        if not url.startswith(self.origin + "/") and url != self.origin:
            self.foreign.append(url)


def new_page(
    browser: Browser, server: ConsoleServer, viewport: dict[str, int]
) -> tuple[BrowserContext, Page, Watch]:
    context = browser.new_context(viewport=viewport, base_url=server.url, accept_downloads=True)
    context.set_default_timeout(20_000)
    watch = Watch(server.url)
    context.on("request", watch.on_request)
    page = context.new_page()
    page.on("console", watch.on_console)
    page.on("pageerror", watch.on_page_error)
    return context, page, watch


@pytest.fixture
def watched(browser: Browser, console_server: ConsoleServer) -> Iterator[tuple[Page, Watch]]:
    """A fresh browser context (no cookies) at desktop size; the test fails if the page
    logged a JavaScript error or asked any other origin for anything."""
    context, page, watch = new_page(browser, console_server, DESKTOP)
    try:
        yield page, watch
    finally:
        context.close()
    assert not watch.errors, f"JavaScript errors: {watch.errors}\n{console_server.logs()}"
    assert not watch.foreign, f"requests to other origins: {watch.foreign}"


@pytest.fixture
def page(watched: tuple[Page, Watch]) -> Page:
    return watched[0]


def sign_in(page: Page, api_key: str, then: str = "/console") -> None:
    """Sign in through the form, as a person does, and land on ``then``."""
    page.goto(f"/console/sign-in?next={then}")
    page.get_by_label("API key").fill(api_key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(then) + r"(\?.*)?$"))


@pytest.fixture
def user_page(page: Page, console_server: ConsoleServer) -> Page:
    """The ordinary user's session, on the overview."""
    sign_in(page, console_server.user["api_key"])
    return page


@pytest.fixture
def admin_page(page: Page, console_server: ConsoleServer) -> Page:
    sign_in(page, console_server.admin["api_key"])
    return page
