"""The tasks pages in a real browser: the gallery shows a finished task with its thumbnail,
filters (status, model, kind, a metadata tag, a range of UTC days) and pages through
GET /v1/tasks; a task's page shows what the API says of it (the
credits captured, the route that served it, a failure's code and message) and cancels an
unfinished task through the API.

Each module works on an account of its own, so the other console tests' tasks never change
what these pages show."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.console.conftest import PHONE, ConsoleServer, new_page, sign_in
from tests.waiting import wait_until_sync

# Small and short: the preview engine renders these in well under a second.
CLIP = {"duration": 1, "size": "320x180"}
FINISHED = {"completed", "failed", "cancelled"}


def new_account(server: ConsoleServer, credits: int = 1000) -> dict[str, Any]:
    """A fresh account and its first key, through the admin API (faster than the CLI)."""
    response = httpx.post(
        f"{server.url}/v1/admin/accounts",
        json={"name": "console-pages", "credits": credits},
        headers={"Authorization": f"Bearer {server.admin['api_key']}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    account: dict[str, Any] = response.json()
    return account


def client(server: ConsoleServer, api_key: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10
    )


def submit(api: httpx.Client, model: str = "preview", **fields: Any) -> dict[str, Any]:
    body = {"model": model, "prompt": f"a lighthouse at dusk ({model})", **CLIP, **fields}
    response = api.post("/v1/async/videos/generations", json=body)
    assert response.status_code == 202, response.text
    task: dict[str, Any] = response.json()
    return task


def task(api: httpx.Client, task_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/tasks/{task_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def wait_finished(api: httpx.Client, task_id: str, timeout: float = 60) -> dict[str, Any]:
    return wait_until_sync(
        lambda: (t := task(api, task_id))["status"] in FINISHED and t,
        timeout,
        f"task {task_id} to finish",
        interval=0.2,
    )


def thumbnail_loaded(image: Locator) -> None:
    """The image really arrived and decoded (not just an <img> with a URL)."""
    expect(image).to_be_visible()
    image.evaluate(
        """img => img.complete && img.naturalWidth > 0 ? null :
           new Promise((ok, fail) => { img.addEventListener("load", ok);
                                       img.addEventListener("error", fail); })"""
    )
    assert image.evaluate("img => img.naturalWidth") > 0


@pytest.fixture(scope="module")
def tasks_account(console_server: ConsoleServer) -> Iterator[dict[str, Any]]:
    """An account with a completed video (tagged), a completed image and a failed video."""
    account = new_account(console_server)
    with client(console_server, account["api_key"]) as api:
        video = submit(api, metadata={"customer": "acme"})
        broken = submit(api, "console-broken")
        image = api.post(
            "/v1/images/generations",
            json={"model": "preview-image", "prompt": "a red cube", "size": "256x256"},
        )
        assert image.status_code == 200, image.text
        account["video"] = wait_finished(api, video["id"])
        account["failed"] = wait_finished(api, broken["id"])
        account["image"] = task(api, image.json()["task_id"])
        yield account


def card(page: Page, task_id: str) -> Locator:
    return page.locator(f'.task-card[data-task-id="{task_id}"]')


def test_a_completed_task_is_listed_and_shown(page: Page, tasks_account: dict[str, Any]) -> None:
    video = tasks_account["video"]
    assert video["status"] == "completed", video
    sign_in(page, tasks_account["api_key"], "/console/tasks")
    listed = card(page, video["id"])
    expect(listed).to_be_visible()
    expect(listed.locator(".badge")).to_have_text("completed")
    expect(listed).to_contain_text("preview")
    thumbnail_loaded(listed.locator("img.thumb"))
    expect(page.locator(".task-card")).to_have_count(3)
    expect(page.get_by_role("status")).to_contain_text("3 tasks")

    listed.get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/console/tasks/{video['id']}$"))
    expect(page.locator("#task-status .badge")).to_have_text("completed")
    expect(page.locator("#credits-captured")).to_have_text(str(video["credits_used"]))
    expect(page.locator("#credits-held")).to_have_text(str(video["credits_reserved"]))
    expect(page.locator("#credits-refunded")).to_have_text(str(video["credits_refunded"]))
    expect(page.locator("#served-by")).to_have_text(video["served_by"])
    assert video["served_by"] == "preview"
    expect(page.locator("#attempts")).to_have_text(str(video["attempts"]))
    expect(page.locator("#failure-section")).to_be_hidden()
    # The clip itself, with its thumbnail as the poster, and the parameters it was made with.
    player = page.get_by_label(f"The video of task {video['id']}")
    expect(player).to_have_attribute("src", re.compile(r"/v1/files/outputs/.+\.mp4\?"))
    expect(page.get_by_role("link", name="Download video")).to_be_visible()
    params = page.locator("#task-params")
    expect(params).to_contain_text("320x180")
    expect(page.locator("#task-metadata")).to_contain_text("acme")
    # Nothing to cancel on a finished task; its id is one keystroke from the clipboard.
    expect(page.get_by_role("button", name="Cancel task")).to_be_hidden()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    copy = page.get_by_role("button", name="Copy the task id")
    copy.focus()
    page.keyboard.press("Enter")
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == video["id"]


def test_a_failed_task_shows_its_error(page: Page, tasks_account: dict[str, Any]) -> None:
    failed = tasks_account["failed"]
    assert failed["status"] == "failed" and failed["error"], failed
    sign_in(page, tasks_account["api_key"], f"/console/tasks/{failed['id']}")
    expect(page.locator("#task-status .badge")).to_have_text("failed")
    section = page.get_by_role("region", name="Error")
    expect(section).to_be_visible()
    expect(page.locator("#error-code")).to_have_text(failed["error"]["code"])
    expect(page.locator("#error-message")).to_have_text(failed["error"]["message"])
    assert failed["error"]["code"] == "invalid_settings"
    # The hold went back in full; nothing was captured.
    expect(page.locator("#credits-captured")).to_have_text("0")
    expect(page.locator("#credits-refunded")).to_have_text(str(failed["credits_refunded"]))
    assert failed["credits_refunded"] == failed["credits_reserved"] > 0
    expect(page.get_by_role("region", name="Output")).to_be_hidden()
    # The gallery marks it too, without a thumbnail.
    page.get_by_role("link", name="All tasks").click()
    listed = card(page, failed["id"])
    expect(listed.locator(".badge")).to_have_text("failed")
    expect(listed.locator("img")).to_have_count(0)


def test_filters_and_pages_narrow_the_list(page: Page, tasks_account: dict[str, Any]) -> None:
    video, failed, image = (tasks_account[k]["id"] for k in ("video", "failed", "image"))
    sign_in(page, tasks_account["api_key"], "/console/tasks")
    cards = page.locator(".task-card")

    def expect_cards(*ids: str) -> None:
        """Exactly these tasks' cards, once the list has caught up with the request."""
        expect(page.locator("#task-list")).not_to_have_attribute("aria-busy", "true")
        for task_id in ids:
            expect(card(page, task_id)).to_be_visible()
        expect(cards).to_have_count(len(ids))

    expect_cards(video, failed, image)
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Apply filters").click()
    expect_cards(failed)
    expect(page).to_have_url(re.compile(r"status=failed"))

    page.get_by_label("Status").select_option("completed")
    page.get_by_label("Kind").select_option("image.generation")
    page.get_by_label("Model").press("Enter")  # Enter in a field applies the filters
    expect_cards(image)

    page.get_by_label("Kind").select_option("")
    page.get_by_label("Model").fill("preview")
    page.get_by_role("button", name="Apply filters").click()
    expect_cards(video)

    page.get_by_label("Model").fill("no-such-model")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_role("status")).to_have_text("No tasks match these filters.")
    expect_cards()

    # The address keeps the filters: a reload shows the same; Clear shows everything.
    page.reload()
    expect(page.get_by_label("Model")).to_have_value("no-such-model")
    expect(page.get_by_role("status")).to_have_text("No tasks match these filters.")
    page.get_by_role("button", name="Clear").click()
    expect_cards(video, failed, image)

    # Pages of two, newest first, with the API's cursor forwards and back.
    page.goto("/console/tasks?limit=2")
    expect_cards(image, failed)
    previous = page.get_by_role("button", name="Previous")
    following = page.get_by_role("button", name="Next")
    expect(previous).to_be_disabled()
    following.click()
    expect(page.locator("#tasks-page")).to_have_text("Page 2")
    expect_cards(video)
    expect(following).to_be_disabled()
    expect(previous).to_be_focused()  # the keyboard stays on the pager
    page.keyboard.press("Enter")
    expect(page.locator("#tasks-page")).to_have_text("Page 1")
    expect_cards(image, failed)
    # Back in the browser's history goes to the page before, too.
    page.go_back()
    expect(page.locator("#tasks-page")).to_have_text("Page 2")
    expect_cards(video)


@pytest.fixture(scope="module")
def tagged_account(console_server: ConsoleServer) -> Iterator[dict[str, Any]]:
    """An account of its own with five finished videos: two tagged campaign=spring (one
    with a second tag), one campaign=spring sale (the same tag, another value), one
    campaign=summer and one untagged."""
    account = new_account(console_server)
    tags: dict[str, dict[str, str]] = {
        "spring": {"campaign": "spring"},
        "spring2": {"campaign": "spring", "customer": "acme"},
        "sale": {"campaign": "spring sale"},
        "summer": {"campaign": "summer"},
        "untagged": {},
    }
    with client(console_server, account["api_key"]) as api:
        submitted = {name: submit(api, metadata=metadata) for name, metadata in tags.items()}
        account["tasks"] = {name: wait_finished(api, t["id"]) for name, t in submitted.items()}
        yield account


def expect_only(page: Page, *ids: str) -> None:
    """Exactly these tasks' cards, once the list has caught up with the request."""
    expect(page.locator("#task-list")).not_to_have_attribute("aria-busy", "true")
    for task_id in ids:
        expect(card(page, task_id)).to_be_visible()
    expect(page.locator(".task-card")).to_have_count(len(ids))


def test_a_metadata_tag_narrows_the_list(page: Page, tagged_account: dict[str, Any]) -> None:
    ids = {name: t["id"] for name, t in tagged_account["tasks"].items()}
    sign_in(page, tagged_account["api_key"], "/console/tasks")
    expect_only(page, *ids.values())
    tag = page.get_by_label("Tag")
    expect(tag).to_have_accessible_description(re.compile("tag:value"))

    # Exactly that value: not "spring sale", not the other tag's tasks, not the untagged one.
    tag.fill("campaign:spring")
    page.get_by_role("button", name="Apply filters").click()
    expect_only(page, ids["spring"], ids["spring2"])
    expect(page).to_have_url(re.compile(r"[?&]metadata=campaign%3Aspring(&|$)"))
    expect(page.get_by_role("status")).to_have_text("Page 1: 2 tasks matching the filters.")

    tag.fill("campaign:spring sale")
    tag.press("Enter")
    expect_only(page, ids["sale"])
    tag.fill("customer:acme")
    page.get_by_role("button", name="Apply filters").click()
    expect_only(page, ids["spring2"])
    tag.fill("campaign:autumn")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_role("status")).to_have_text("No tasks match these filters.")
    expect_only(page)

    # The address keeps the tag: a reload shows the same, Back the tag before.
    page.reload()
    expect(tag).to_have_value("campaign:autumn")
    expect_only(page)
    page.go_back()
    expect(tag).to_have_value("customer:acme")
    expect_only(page, ids["spring2"])

    # A task's page links each of its tags to the list filtered by it.
    page.goto(f"/console/tasks/{ids['spring2']}")
    metadata = page.locator("#task-metadata")
    expect(metadata.get_by_role("link")).to_have_count(2)
    metadata.get_by_role("link", name="the tasks tagged campaign:spring").click()
    expect(page).to_have_url(re.compile(r"/console/tasks\?metadata=campaign%3Aspring$"))
    expect(tag).to_have_value("campaign:spring")
    expect_only(page, ids["spring"], ids["spring2"])


def test_a_malformed_tag_shows_the_apis_error(page: Page, tagged_account: dict[str, Any]) -> None:
    ids = {name: t["id"] for name, t in tagged_account["tasks"].items()}
    sign_in(page, tagged_account["api_key"], "/console/tasks")
    expect_only(page, *ids.values())
    tag = page.get_by_label("Tag")
    tag.fill("campaign")  # no colon: GET /v1/tasks answers 422 naming metadata
    page.get_by_role("button", name="Apply filters").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("metadata filters by one tag")
    expect(alert).to_contain_text("tag:value")
    expect(tag).to_have_attribute("aria-invalid", "true")
    expect(tag).to_have_accessible_description(re.compile("metadata filters by one tag"))
    expect_only(page)  # no list stands for a filter that was not applied
    expect(page.get_by_role("status")).to_contain_text("Tag")

    tag.fill("campaign:summer")
    page.get_by_role("button", name="Apply filters").click()
    expect_only(page, ids["summer"])
    expect(alert).to_be_hidden()
    expect(tag).not_to_have_attribute("aria-invalid", "true")


def test_a_range_of_days_narrows_the_list(page: Page, tagged_account: dict[str, Any]) -> None:
    tasks = tagged_account["tasks"].values()
    ids = [t["id"] for t in tasks]
    # The UTC days the tasks were made on (one, unless the fixture ran across midnight).
    days = sorted({datetime.fromtimestamp(t["created_at"], UTC).date() for t in tasks})
    first, last = days[0], days[-1]
    assert last == datetime.now(UTC).date() or last == datetime.now(UTC).date() - timedelta(1)
    yesterday = first - timedelta(days=1)
    sign_in(page, tagged_account["api_key"], "/console/tasks")
    expect_only(page, *ids)
    start, end = page.get_by_label("From"), page.get_by_label("To", exact=True)

    def apply_range(since: date | None, until: date | None) -> None:
        start.fill(since.isoformat() if since else "")
        end.fill(until.isoformat() if until else "")
        page.get_by_role("button", name="Apply filters").click()

    # A week ending yesterday: none of today's tasks.
    apply_range(yesterday - timedelta(days=6), yesterday)
    expect(page.get_by_role("status")).to_have_text("No tasks match these filters.")
    expect_only(page)
    # The address keeps the days as chosen (To is the last day shown, not the API's bound).
    expect(page).to_have_url(re.compile(rf"from={yesterday - timedelta(days=6)}&to={yesterday}$"))

    # To is included: a range of just today shows today's tasks.
    apply_range(first, last)
    expect_only(page, *ids)
    apply_range(yesterday, None)
    expect_only(page, *ids)
    apply_range(None, last)
    expect_only(page, *ids)
    apply_range(last + timedelta(days=1), None)
    expect_only(page)

    # Reload keeps the range; Back goes through the ranges before.
    page.reload()
    expect(start).to_have_value((last + timedelta(days=1)).isoformat())
    expect_only(page)
    page.go_back()
    expect(start).to_have_value("")
    expect(end).to_have_value(last.isoformat())
    expect_only(page, *ids)
    page.go_back()
    page.go_back()
    expect(start).to_have_value(first.isoformat())
    expect_only(page, *ids)
    page.go_back()
    expect(end).to_have_value(yesterday.isoformat())
    expect_only(page)

    # The range and the tag together; a To before From is refused before asking the API.
    page.get_by_label("Tag").fill("campaign:summer")
    apply_range(first, last)
    expect_only(page, tagged_account["tasks"]["summer"]["id"])
    apply_range(last, yesterday)
    expect(page.get_by_role("alert")).to_contain_text("must not come before")
    expect(end).to_have_attribute("aria-invalid", "true")
    expect_only(page)
    page.get_by_role("button", name="Clear").click()
    expect_only(page, *ids)
    expect(page.get_by_role("alert")).to_be_hidden()
    expect(page).to_have_url(re.compile(r"/console/tasks$"))


def test_an_unfinished_task_is_cancelled_from_its_page(
    page: Page, console_server: ConsoleServer, tasks_account: dict[str, Any]
) -> None:
    with client(console_server, tasks_account["api_key"]) as api:
        # Ten hours of tiny frames (minutes of work): still running when the page cancels
        # it, and stopped a frame later.
        slow = submit(api, "console-slow", duration=36000, size="64x64", fps=8)
        try:
            sign_in(page, tasks_account["api_key"], f"/console/tasks/{slow['id']}")
            badge = page.locator("#task-status .badge")
            expect(badge).to_have_text(re.compile("queued|processing"))
            expect(page.get_by_role("progressbar", name="Progress")).to_be_visible()
            expect(page.locator("#credits-held")).to_have_text(str(slow["credits_reserved"]))
            page.get_by_role("button", name="Cancel task").click()
            expect(badge).to_have_text("cancelled")
            expect(page.get_by_role("status")).to_contain_text("cancelled")
            expect(page.get_by_role("button", name="Cancel task")).to_be_hidden()
            expect(page.get_by_role("progressbar")).to_have_count(0)
            cancelled = task(api, slow["id"])
            assert cancelled["status"] == "cancelled"
            assert cancelled["credits_refunded"] == slow["credits_reserved"]
            expect(page.locator("#credits-refunded")).to_have_text(str(slow["credits_reserved"]))
            assert api.get("/v1/credits").json()["held"] == 0
        finally:
            # Never leave minutes of work behind for the next tests' worker slots.
            api.post(f"/v1/tasks/{slow['id']}/cancel")


def test_a_missing_task_says_so(page: Page, tasks_account: dict[str, Any]) -> None:
    sign_in(page, tasks_account["api_key"], "/console/tasks/task_doesnotexist")
    expect(page.get_by_role("alert")).to_contain_text("task_doesnotexist")
    expect(page.get_by_role("region", name="Credits")).to_be_hidden()


def test_the_tasks_pages_fit_a_phone(
    browser: Browser, console_server: ConsoleServer, tasks_account: dict[str, Any]
) -> None:
    context, page, watch = new_page(browser, console_server, PHONE)
    try:
        sign_in(page, tasks_account["api_key"], "/console/tasks")
        thumbnail_loaded(card(page, tasks_account["video"]["id"]).locator("img.thumb"))
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.goto(f"/console/tasks/{tasks_account['video']['id']}")
        expect(page.locator("#served-by")).to_have_text("preview")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        context.close()
    assert not watch.errors and not watch.foreign, (watch.errors, watch.foreign)
