"""The usage page in a real browser: the spend plot (an SVG the console draws on the server)
shows today's spend and the same total as GET /v1/usage, the table holds the API's numbers by
day, model or a metadata tag, and the CSV export downloads those numbers."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.console.conftest import PHONE, ConsoleServer, new_page, sign_in
from tests.console.test_tasks import client, new_account, submit, wait_finished


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def usage_of(api: httpx.Client, group_by: str, first: str, last: str) -> dict[str, Any]:
    """GET /v1/usage over the UTC days first..last, as the page asks for them."""
    end = (datetime.fromisoformat(last) + timedelta(days=1)).date().isoformat()
    response = api.get("/v1/usage", params={"group_by": group_by, "from": first, "to": end})
    assert response.status_code == 200, response.text
    usage: dict[str, Any] = response.json()
    return usage


@pytest.fixture(scope="module")
def usage_account(console_server: ConsoleServer) -> Iterator[dict[str, Any]]:
    """An account that spent credits today on two tagged clips (and nothing on a failure)."""
    account = new_account(console_server)
    with client(console_server, account["api_key"]) as api:
        tasks = [
            submit(api, metadata={"customer": "acme"}),
            submit(api, duration=2, metadata={"customer": "zeta"}),
            submit(api, "console-broken", metadata={"customer": "acme"}),
        ]
        done = [wait_finished(api, t["id"]) for t in tasks]
        assert [t["status"] for t in done] == ["completed", "completed", "failed"]
        account["client"] = api
        yield account


def test_the_plot_shows_todays_spend(page: Page, usage_account: dict[str, Any]) -> None:
    api = usage_account["client"]
    day = today()
    first = (datetime.fromisoformat(day) - timedelta(days=29)).date().isoformat()
    usage = usage_of(api, "day", first, day)
    spent = usage["total"]["credits"]
    assert spent > 0 and [row["group"] for row in usage["data"]] == [day]

    sign_in(page, usage_account["api_key"], "/console/usage")
    chart = page.locator("#usage-chart svg")
    expect(chart).to_be_visible()
    # An accessible image: named by its <title>, described by its text alternative.
    expect(page.get_by_role("img", name="Credits spent per day")).to_be_visible()
    expect(chart.locator("desc")).to_contain_text(f"{spent} in all")
    expect(chart).to_have_attribute("data-total", str(spent))
    bar = chart.locator(f'g.bar[data-label="{day}"]')
    expect(bar).to_have_attribute("data-value", str(spent))
    expect(bar.locator("rect")).to_have_count(1)
    expect(bar.locator("title")).to_have_text(f"{day}: {spent} credits")
    expect(chart.locator("text.x-label", has_text=day)).to_have_count(1)
    expect(chart.locator("g.bar")).to_have_count(30)
    # The table: the API's rows and total.
    rows = page.locator("#usage-rows tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("th")).to_have_text(day)
    expect(rows.first.locator("td").last).to_have_text(str(spent))
    expect(rows.first.locator("td").first).to_have_text(str(usage["total"]["tasks"]))
    expect(page.locator("#usage-total td").last).to_have_text(str(spent))

    # By model, then by the metadata tag: the table follows the API, the plot stacks groups.
    page.get_by_label("Group by").select_option("model")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"group_by=model"))
    expect(page.locator("#usage-group-heading")).to_have_text("Model")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("th")).to_have_text("preview")
    expect(page.get_by_role("img", name="Credits spent per day, by model")).to_be_visible()

    page.get_by_label("Group by").select_option("metadata")
    expect(page.get_by_label("Tag name")).to_be_focused()
    page.keyboard.type("customer")
    page.keyboard.press("Enter")
    by_tag = usage_of(api, "metadata.customer", first, day)
    expect(rows).to_have_count(len(by_tag["data"]))
    for number, row in enumerate(by_tag["data"]):
        expect(rows.nth(number).locator("th")).to_have_text(row["group"])
        expect(rows.nth(number).locator("td").last).to_have_text(str(row["credits"]))
    assert {row["group"] for row in by_tag["data"]} == {"acme", "zeta"}
    legend = page.locator("#usage-chart svg .legend-item")
    expect(legend).to_have_count(2)
    expect(page.locator("#usage-chart svg desc")).to_contain_text("acme")

    # A range the API refuses is explained before anything is asked.
    page.get_by_label("From (UTC day)").fill("2020-01-01")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("alert")).to_contain_text("at most 366 days")


def test_the_csv_has_the_same_numbers(page: Page, usage_account: dict[str, Any]) -> None:
    api = usage_account["client"]
    day = today()
    first = (datetime.fromisoformat(day) - timedelta(days=6)).date().isoformat()
    sign_in(page, usage_account["api_key"], "/console/usage")
    # The page's state is its address: a link to a view opens that view.
    page.goto(f"/console/usage?group_by=model&from={first}&to={day}")
    expect(page.get_by_label("From (UTC day)")).to_have_value(first)
    expect(page.locator("#usage-group-heading")).to_have_text("Model")
    usage = usage_of(api, "model", first, day)
    expect(page.locator("#usage-rows tr")).to_have_count(len(usage["data"]))
    link = page.get_by_role("link", name="Download CSV")
    with page.expect_download() as waiting:
        link.click()
    download = waiting.value
    assert download.suggested_filename == f"framegate-usage-by-model-{first}-to-{day}.csv"
    path = download.path()
    assert path is not None
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert rows[0] == ["model", "tasks", "video_seconds", "images", "credits"]
    expected = [
        [
            row["group"],
            str(row["tasks"]),
            f"{row['video_seconds']:g}",
            str(row["images"]),
            str(row["credits"]),
        ]
        for row in [*usage["data"], usage["total"]]
    ]
    assert rows[1:] == expected
    assert rows[-1][0] == "total" and int(rows[-1][4]) == usage["total"]["credits"] > 0


def test_the_plot_and_file_need_the_scope(
    console_server: ConsoleServer, usage_account: dict[str, Any]
) -> None:
    """A session whose key cannot read credits gets neither the plot nor the file."""
    api = usage_account["client"]
    made = api.post("/v1/keys", json={"name": "tasks only", "scopes": ["tasks:read"]})
    assert made.status_code == 201, made.text
    with httpx.Client(base_url=console_server.url, timeout=10) as browser:
        signed = browser.post("/console/sign-in", data={"api_key": made.json()["secret"]})
        assert signed.status_code == 303
        for path in ("/console/usage/chart.svg", "/console/usage.csv", "/console/usage"):
            refused = browser.get(path)
            assert refused.status_code == 403, (path, refused.text)
            assert "credits:read" in refused.text
        # Without a session at all: the sign-in page.
        browser.cookies.clear()
        assert browser.get("/console/usage.csv").status_code == 303


def test_the_usage_page_fits_a_phone(
    browser: Browser, console_server: ConsoleServer, usage_account: dict[str, Any]
) -> None:
    context, page, watch = new_page(browser, console_server, PHONE)
    try:
        sign_in(page, usage_account["api_key"], "/console/usage")
        chart = page.locator("#usage-chart svg")
        expect(chart).to_be_visible()
        # Drawn for the phone's width, so its labels stay legible.
        width = int(chart.get_attribute("width") or 0)
        assert 300 <= width <= PHONE["width"]
        expect(chart.locator(f'g.bar[data-label="{today()}"]')).to_have_count(1)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        context.close()
    assert not watch.errors and not watch.foreign, (watch.errors, watch.foreign)
