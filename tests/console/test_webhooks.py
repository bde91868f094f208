"""The webhooks page against a real receiver on loopback: an endpoint made in the console
gets a test event signed with the secret shown once, its deliveries list it as delivered;
event filters are edited, the secret rotated, the endpoint deleted; errors name the field."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from standardwebhooks import Webhook, WebhookVerificationError

from tests.console.conftest import ConsoleServer, sign_in


@dataclass
class Receiver:
    """What a loopback webhook receiver got: (lower-cased headers, raw body) per request."""

    url: str
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def wait_for(self, count: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            assert time.monotonic() < deadline, f"{len(self.requests)} of {count} requests came"
            time.sleep(0.05)


@contextmanager
def receiver() -> Iterator[Receiver]:
    """A small HTTP server on 127.0.0.1 (which the test server may deliver to) that records
    every POST and answers 204."""
    got = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            got.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    got.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def fresh_account(server: ConsoleServer) -> dict[str, Any]:
    made = httpx.post(
        f"{server.url}/v1/admin/accounts",
        json={"name": f"hooks-{secrets.token_hex(3)}", "credits": 100},
        headers={"Authorization": f"Bearer {server.admin['api_key']}"},
    )
    assert made.status_code == 201, made.text
    account: dict[str, Any] = made.json()
    return account


def test_an_endpoint_made_in_the_console_gets_a_signed_test_event(
    page: Page, console_server: ConsoleServer
) -> None:
    owner = fresh_account(console_server)
    api = httpx.Client(
        base_url=console_server.url, headers={"Authorization": f"Bearer {owner['api_key']}"}
    )
    sign_in(page, owner["api_key"], "/console/webhooks")
    expect(page.get_by_text("No endpoints yet.")).to_be_visible()
    url_field = page.get_by_label("URL", exact=True)
    events = page.get_by_role("group", name="Events")

    # A private address the server does not allow: refused, the alert names the field.
    url_field.fill("http://10.1.2.3/hook")
    page.get_by_role("button", name="Add endpoint").click()
    alert = page.locator("#create-webhook").get_by_role("alert")
    expect(alert).to_contain_text("URL:")
    expect(url_field).to_have_attribute("aria-invalid", "true")
    expect(url_field).to_be_focused()

    with receiver() as hook:
        url_field.fill(hook.url)
        events.get_by_role("checkbox", name="task.cancelled").uncheck()
        events.get_by_role("checkbox", name="task.progress").check()
        page.get_by_role("button", name="Add endpoint").click()
        shown = page.locator("#webhook-secret")
        expect(shown).to_contain_text("you will not see it again")
        secret = page.locator("#new-webhook-secret").inner_text().strip()
        assert secret.startswith("whsec_")
        card = page.get_by_role("article", name=hook.url)
        expect(card).to_contain_text("enabled")
        for event in ("task.completed", "task.failed", "task.progress"):
            expect(card).to_contain_text(event)
        expect(card).not_to_contain_text("task.cancelled")
        (endpoint,) = api.get("/v1/webhooks").json()["data"]
        assert endpoint["events"] == ["task.completed", "task.failed", "task.progress"]

        card.get_by_role("button", name="Send test event").click()
        expect(card.get_by_role("status")).to_contain_text("Test event delivered")
        hook.wait_for(1)
        headers, body = hook.requests[0]
        event = Webhook(secret).verify(body, headers)
        assert event["type"] == "webhook.test"
        assert event["data"] == {"object": "webhook_endpoint", "id": endpoint["id"]}
        # The deliveries opened with it: delivered at the first attempt, by the same id.
        delivery = card.locator("tbody tr", has_text="webhook.test")
        expect(delivery).to_have_count(1)
        expect(delivery).to_contain_text("delivered")
        expect(delivery.locator('td[data-label="Attempts"]')).to_have_text("1")
        expect(delivery).to_contain_text(headers["webhook-id"])
        expect(card.get_by_role("button", name="Deliveries")).to_have_attribute(
            "aria-expanded", "true"
        )

        # Edit the filters: task.progress off again.
        card.get_by_role("button", name="Edit…").click()
        dialog = page.get_by_role("dialog", name="Edit endpoint")
        dialog.get_by_role("checkbox", name="task.progress").uncheck()
        dialog.get_by_role("button", name="Save").click()
        expect(dialog).to_have_count(0)
        expect(card).not_to_contain_text("task.progress")
        assert api.get(f"/v1/webhooks/{endpoint['id']}").json()["events"] == [
            "task.completed",
            "task.failed",
        ]

        # Rotate, the old secret ending at once: the next test event verifies with the new
        # secret only.
        card.get_by_role("button", name="Rotate secret…").click()
        dialog = page.get_by_role("dialog", name="Rotate the signing secret")
        dialog.get_by_label("The old secret").select_option("0")
        dialog.get_by_role("button", name="Rotate secret").click()
        expect(shown).to_contain_text("The old secret no longer signs")
        rotated = page.locator("#new-webhook-secret").inner_text().strip()
        assert rotated.startswith("whsec_") and rotated != secret
        card.get_by_role("button", name="Send test event").click()
        expect(card.get_by_role("status")).to_contain_text("Test event delivered")
        hook.wait_for(2)
        headers, body = hook.requests[1]
        assert Webhook(rotated).verify(body, headers)["type"] == "webhook.test"
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(body, headers)
        expect(card.locator("tbody tr", has_text="webhook.test")).to_have_count(2)

    # Delete, after a confirmation.
    card.get_by_role("button", name="Delete…").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete endpoint").click()
    expect(page.get_by_text("No endpoints yet.")).to_be_visible()
    assert api.get("/v1/webhooks").json()["data"] == []
    api.close()
