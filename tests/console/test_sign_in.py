"""Signing in to the console: a key exchanged for a server-side session, the messages a
person sees, what a session may reach, and requests from other sites refused."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.console.conftest import PHONE, ConsoleServer, new_page, sign_in


def test_signing_in_and_out(page: Page, console_server: ConsoleServer) -> None:
    page.goto("/console/tasks")
    # No session: the sign-in page, which comes back to the page asked for.
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next=/console/tasks$"))
    expect(page.get_by_label("API key")).to_be_focused()
    page.get_by_label("API key").fill(console_server.user["api_key"])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/console/tasks$"))
    expect(page.get_by_role("navigation", name="Console")).to_be_visible()
    # The key is never kept by the browser: one HttpOnly, SameSite=Strict session cookie.
    cookies = page.context.cookies()
    assert [c["name"] for c in cookies] == ["framegate_console"]
    (cookie,) = cookies
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert console_server.user["api_key"] not in cookie["value"]
    stored = page.evaluate("() => JSON.stringify({...localStorage, ...sessionStorage})")
    assert console_server.user["api_key"] not in stored
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    page.goto("/console")
    expect(page).to_have_url(re.compile(r"/console/sign-in"))


def test_a_wrong_key_gets_a_clear_message(page: Page, console_server: ConsoleServer) -> None:
    page.goto("/console/sign-in")
    for attempt, expected in (
        ("not a key", "malformed"),
        ("fg_live_" + "A" * 40, "malformed"),
    ):
        page.get_by_label("API key").fill(attempt)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text(expected)
    # A revoked key: refused, and the message says why.
    revoked = console_server.account()
    client = httpx.Client(base_url=console_server.url)
    made = client.post(
        "/v1/keys",
        json={"name": "soon revoked"},
        headers={"Authorization": f"Bearer {revoked['api_key']}"},
    ).json()
    client.post(
        f"/v1/keys/{made['id']}/revoke",
        headers={"Authorization": f"Bearer {revoked['api_key']}"},
    )
    page.get_by_label("API key").fill(made["secret"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("revoked")
    expect(page).to_have_url(re.compile(r"/console/sign-in"))


def test_the_keyboard_alone_signs_in(page: Page, console_server: ConsoleServer) -> None:
    page.goto("/console/sign-in")
    # The field takes the focus on its own (autofocus); type once it has it.
    expect(page.get_by_label("API key")).to_be_focused()
    page.keyboard.type(console_server.user["api_key"])
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/console$"))
    # Tab reaches the navigation's links (after the skip link and the brand).
    page.wait_for_load_state("networkidle")
    in_nav = "() => !!document.activeElement.closest('nav[aria-label=Console]')"
    for _ in range(4):
        page.keyboard.press("Tab")
        if page.evaluate(in_nav):
            break
    assert page.evaluate(in_nav), page.evaluate("() => document.activeElement.outerHTML")
    # The first is the page itself (Overview); the next link opens its page.
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/console/playground$"))


def test_a_key_without_admin_sees_no_admin_page(
    user_page: Page, console_server: ConsoleServer
) -> None:
    nav = user_page.get_by_role("navigation", name="Console")
    expect(nav.get_by_role("link", name="Admin")).to_have_count(0)
    response = user_page.goto("/console/admin")
    assert response is not None and response.status == 403
    expect(user_page.get_by_role("alert")).to_contain_text("admin")


def test_an_admin_key_sees_the_admin_page(admin_page: Page) -> None:
    nav = admin_page.get_by_role("navigation", name="Console")
    expect(nav.get_by_role("link", name="Admin")).to_be_visible()
    response = admin_page.goto("/console/admin")
    assert response is not None and response.status == 200


def test_a_cross_site_form_post_is_refused(browser: Browser, console_server: ConsoleServer) -> None:
    """A page on another site posts a form to the console and to the API with the victim
    signed in: the session cookie does not go along, and nothing changes."""
    context, page, _watch = new_page(browser, console_server, {"width": 1280, "height": 800})
    try:
        account = console_server.account()
        sign_in(page, account["api_key"])
        headers = {"Authorization": f"Bearer {account['api_key']}"}
        keys_before = httpx.get(f"{console_server.url}/v1/keys", headers=headers).json()
        attacker = "http://attacker.invalid"
        page.route(
            f"{attacker}/**",
            lambda route: route.fulfill(
                content_type="text/html",
                body=(
                    f'<form id="f" method="post" action="{console_server.url}/v1/keys">'
                    '<input name="name" value="stolen"></form>'
                    f'<form id="g" method="post" action="{console_server.url}/console/sign-out">'
                    '<input name="csrf_token" value="guess"></form>'
                ),
            ),
        )
        for form in ("f", "g"):
            page.goto(f"{attacker}/page")
            with page.expect_navigation():
                page.evaluate(f"document.getElementById('{form}').submit()")
            assert page.url.startswith(console_server.url)
        keys_after = httpx.get(f"{console_server.url}/v1/keys", headers=headers).json()
        assert len(keys_after["data"]) == len(keys_before["data"])
        # Still signed in: the forged sign-out did nothing.
        page.goto(f"{console_server.url}/console")
        expect(page).to_have_url(re.compile(r"/console$"))
    finally:
        context.close()


def test_the_console_fits_a_phone(browser: Browser, console_server: ConsoleServer) -> None:
    context, page, watch = new_page(browser, console_server, PHONE)
    try:
        sign_in(page, console_server.user["api_key"])
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px screen"
        expect(page.get_by_role("navigation", name="Console")).to_be_visible()
    finally:
        context.close()
    assert not watch.errors and not watch.foreign
