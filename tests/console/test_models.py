"""The models page lists the catalog with prices, capabilities, availability and health;
and the keys, webhooks, models and admin pages fit a phone."""

from __future__ import annotations

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.console.conftest import PHONE, ConsoleServer, new_page, sign_in


def test_the_catalog_with_prices_and_availability(
    page: Page, console_server: ConsoleServer
) -> None:
    sign_in(page, console_server.user["api_key"], "/console/models")
    preview = page.get_by_role("article", name="Preview (CPU test engine)", exact=True)
    expect(preview).to_contain_text("available")
    expect(preview).not_to_contain_text("not available")
    # Its price per resolution tier, as GET /v1/models has it.
    prices = preview.get_by_label("Prices of Preview (CPU test engine)")
    expect(prices).to_contain_text("480p")
    expect(prices).to_contain_text("1 credit / second")
    expect(prices).to_contain_text("2 credits / second")
    expect(prices).to_contain_text("4 credits / second")
    expect(preview).to_contain_text("text → video, image → video")
    expect(preview).to_contain_text("1\u201310 s (default 5 s)")
    expect(preview).to_contain_text("healthy")
    # An open-weight route without weights here: not available, and what it waits for.
    wan = page.locator('article[data-model="wan-2.1-t2v-1.3b"]')
    expect(wan).to_contain_text("not available")
    expect(wan).to_contain_text("framegate models pull wan-2.1-t2v-1.3b")

    # The filters: the available image routes, as many as the API lists.
    catalog = httpx.get(f"{console_server.url}/v1/models").json()["data"]
    images = [m["id"] for m in catalog if m["available"] and m["kind"] == "image"]
    page.get_by_label("Available only").check()
    page.get_by_label("Kind").select_option("image")
    expect(page.get_by_role("article")).to_have_count(len(images))
    expect(page.locator('article[data-model="preview-image"]')).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text(f"{len(images)} of {len(catalog)} models")
    page.get_by_label("Search").fill("nothing-like-this")
    expect(page.get_by_text("No model matches.")).to_be_visible()


def test_the_pages_fit_a_phone(browser: Browser, console_server: ConsoleServer) -> None:
    context, page, watch = new_page(browser, console_server, PHONE)
    try:
        sign_in(page, console_server.admin["api_key"], "/console/keys")
        for path, loaded in (
            ("/console/keys", "#key-list table"),
            ("/console/webhooks", "#webhook-list p, #webhook-list article"),
            ("/console/models", "#model-list article"),
            ("/console/admin", "#plan-list table"),
        ):
            if page.url != console_server.url + path:
                page.goto(path)
            expect(page.locator(loaded).first).to_be_visible()
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= PHONE["width"], (
                f"{path} is {width}px wide on a {PHONE['width']}px phone"
            )
    finally:
        context.close()
    assert not watch.errors, watch.errors
    assert not watch.foreign, watch.foreign
