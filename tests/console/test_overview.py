"""The overview in a real browser: the balance equal to GET /v1/credits, today's tasks, the
last 30 days' spend as the server-drawn plot with today's bar, and the latest tasks with
their thumbnails, each a link to its page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.console.conftest import PHONE, ConsoleServer, new_page, sign_in
from tests.console.test_tasks import client, new_account, submit, thumbnail_loaded, wait_finished


@pytest.fixture(scope="module")
def overview_account(console_server: ConsoleServer) -> Iterator[dict[str, Any]]:
    account = new_account(console_server, credits=750)
    with client(console_server, account["api_key"]) as api:
        account["done"] = [wait_finished(api, submit(api, duration=2)["id"])]
        account["done"].append(wait_finished(api, submit(api, "console-broken")["id"]))
        account["client"] = api
        yield account


def test_the_overview_matches_the_api(page: Page, overview_account: dict[str, Any]) -> None:
    api: httpx.Client = overview_account["client"]
    completed, failed = overview_account["done"]
    balance = api.get("/v1/credits").json()
    assert balance["available"] == 750 - completed["credits_used"]

    sign_in(page, overview_account["api_key"], "/console")
    expect(page.locator("#credits-available")).to_have_text(f"{balance['available']:,}")
    expect(page.locator("#credits-held")).to_have_text(f"{balance['held']:,}")
    expect(page.locator("#tasks-today")).to_have_text("2")
    spent = completed["credits_used"]
    expect(page.locator("#spent-30d")).to_have_text(str(spent))

    day = datetime.now(UTC).date().isoformat()
    chart = page.get_by_role("img", name="Credits spent per day")
    expect(chart).to_be_visible()
    expect(chart.locator(f'g.bar[data-label="{day}"]')).to_have_attribute("data-value", str(spent))
    expect(chart).to_have_attribute("data-total", str(spent))

    recent = page.locator("#recent-tasks .task-card")
    expect(recent).to_have_count(2)
    newest = recent.first
    expect(newest).to_have_attribute("data-task-id", failed["id"])
    expect(newest.locator(".badge")).to_have_text("failed")
    done = page.locator(f'#recent-tasks .task-card[data-task-id="{completed["id"]}"]')
    thumbnail_loaded(done.locator("img.thumb"))
    # Each card is one link, reachable with the keyboard.
    done.get_by_role("link").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/console/tasks/{completed['id']}$"))
    expect(page.locator("#credits-captured")).to_have_text(str(completed["credits_used"]))


def test_a_key_without_tasks_read_still_sees_its_balance(
    page: Page, overview_account: dict[str, Any]
) -> None:
    api: httpx.Client = overview_account["client"]
    made = api.post("/v1/keys", json={"name": "credits only", "scopes": ["credits:read"]})
    assert made.status_code == 201, made.text
    sign_in(page, made.json()["secret"], "/console")
    balance = api.get("/v1/credits").json()
    expect(page.locator("#credits-available")).to_have_text(f"{balance['available']:,}")
    expect(page.locator("#tasks-today")).to_have_text("—")
    expect(page.get_by_role("region", name="Recent tasks")).to_contain_text("tasks:read")
    expect(page.get_by_role("img", name="Credits spent per day")).to_be_visible()
    expect(page.get_by_role("alert")).to_be_hidden()


def test_the_overview_fits_a_phone(
    browser: Browser, console_server: ConsoleServer, overview_account: dict[str, Any]
) -> None:
    context, page, watch = new_page(browser, console_server, PHONE)
    try:
        sign_in(page, overview_account["api_key"], "/console")
        expect(page.locator("#recent-tasks .task-card")).to_have_count(2)
        chart = page.locator("#spend-chart svg")
        expect(chart).to_be_visible()
        assert int(chart.get_attribute("width") or 0) <= PHONE["width"]
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        context.close()
    assert not watch.errors and not watch.foreign, (watch.errors, watch.foreign)
