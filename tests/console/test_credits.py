"""The credits page in a real browser: the balance as GET /v1/credits gives it, and the
ledger, newest first, paged forwards and back with the API's cursor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.console.conftest import PHONE, ConsoleServer, new_page, sign_in
from tests.console.test_tasks import client, new_account, submit, wait_finished

GRANTS = 11


@pytest.fixture(scope="module")
def ledger_account(console_server: ConsoleServer) -> Iterator[dict[str, Any]]:
    """An account with a page and a bit of ledger at 10 a page: its opening grant, eleven
    more grants and a completed task (a hold and a capture)."""
    account = new_account(console_server, credits=100)
    admin = {"Authorization": f"Bearer {console_server.admin['api_key']}"}
    for number in range(GRANTS):
        granted = httpx.post(
            f"{console_server.url}/v1/admin/accounts/{account['id']}/credits",
            json={"credits": number + 1, "description": f"top-up {number + 1}"},
            headers=admin,
            timeout=10,
        )
        assert granted.status_code == 200, granted.text
    with client(console_server, account["api_key"]) as api:
        wait_finished(api, submit(api)["id"])
        account["client"] = api
        yield account


def ledger(api: httpx.Client) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = api.get("/v1/credits/ledger", params={"limit": 100}).json()[
        "data"
    ]
    return entries


def test_the_ledger_pages_through(page: Page, ledger_account: dict[str, Any]) -> None:
    api = ledger_account["client"]
    entries = ledger(api)
    assert len(entries) == 1 + GRANTS + 2  # opening grant, top-ups, hold and capture
    balance = api.get("/v1/credits").json()

    sign_in(page, ledger_account["api_key"], "/console/credits")
    expect(page.locator("#balance-available")).to_have_text(f"{balance['available']:,}")
    expect(page.locator("#balance-held")).to_have_text(f"{balance['held']:,}")
    rows = page.locator("#ledger-rows tr")

    def shown() -> list[str]:
        ids: list[str] = rows.evaluate_all("rows => rows.map(r => r.dataset.entryId)")
        return ids

    expect(rows).to_have_count(len(entries))  # 20 a page by default: all of them
    assert shown() == [e["id"] for e in entries]
    newest = rows.first
    expect(newest.locator(".badge")).to_have_text(entries[0]["kind"])
    assert entries[0]["kind"] == "capture"
    expect(newest.get_by_role("link")).to_have_text(entries[0]["task_id"])

    page.get_by_label("Entries per page").select_option("10")
    previous = page.get_by_role("button", name="Previous")
    following = page.get_by_role("button", name="Next")
    expect(page.locator("#ledger-page")).to_have_text("Page 1 · 10 entries")
    assert shown() == [e["id"] for e in entries[:10]]
    expect(previous).to_be_disabled()
    following.click()
    expect(page.locator("#ledger-page")).to_have_text("Page 2 · 4 entries")
    assert shown() == [e["id"] for e in entries[10:]]
    expect(following).to_be_disabled()
    # The oldest entry is the opening grant; amounts are signed, balances run on.
    oldest = rows.last
    expect(oldest.locator(".badge")).to_have_text("grant")
    expect(oldest.locator("td.amount")).to_have_text("+100")
    expect(oldest).to_contain_text("opening credits")
    expect(rows.nth(0)).to_contain_text("top-up 3")
    # Back with the keyboard: the focus moved to Previous when Next turned off.
    expect(previous).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#ledger-page")).to_have_text("Page 1 · 10 entries")
    assert shown() == [e["id"] for e in entries[:10]]
    # A task's entry links to the task.
    rows.first.get_by_role("link").click()
    expect(page.locator("#task-id")).to_have_text(entries[0]["task_id"])


def test_the_credits_page_fits_a_phone(
    browser: Browser, console_server: ConsoleServer, ledger_account: dict[str, Any]
) -> None:
    context, page, watch = new_page(browser, console_server, PHONE)
    try:
        sign_in(page, ledger_account["api_key"], "/console/credits")
        expect(page.locator("#ledger-rows tr")).to_have_count(14)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        expect(page.get_by_role("button", name="Next")).to_be_disabled()
    finally:
        context.close()
    assert not watch.errors and not watch.foreign, (watch.errors, watch.foreign)
