"""The API keys page: a key made in the console (its secret shown once) works on the API,
revoking it there answers 401 and ends the console sessions signed in with it, rotating
shows a new working secret; errors name the field."""

from __future__ import annotations

import re
import secrets
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.console.conftest import DESKTOP, ConsoleServer, new_page, sign_in


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def fresh_account(server: ConsoleServer, credits: int = 1000) -> dict[str, Any]:
    """A new account and its first key, made with the admin key through the API (quicker
    than the CLI)."""
    made = httpx.post(
        f"{server.url}/v1/admin/accounts",
        json={"name": f"keys-{secrets.token_hex(3)}", "credits": credits},
        headers=bearer(server.admin["api_key"]),
    )
    assert made.status_code == 201, made.text
    account: dict[str, Any] = made.json()
    return account


def test_a_key_made_in_the_console_works_until_revoked_there(
    page: Page, browser: Browser, console_server: ConsoleServer
) -> None:
    owner = fresh_account(console_server)
    sign_in(page, owner["api_key"], "/console/keys")
    scopes = page.get_by_role("group", name="Scopes")
    # Only what the signed-in key may grant: everything but admin.
    expect(scopes.get_by_role("checkbox")).to_have_count(5)
    expect(scopes.get_by_role("checkbox", name=re.compile(r"^admin"))).to_have_count(0)

    page.get_by_label("Name", exact=True).fill("reporting")
    for scope in ("videos:write", "images:write", "keys:manage"):
        scopes.get_by_role("checkbox", name=re.compile(f"^{scope}")).uncheck()
    cap = page.get_by_label("Spend cap in credits (optional)")
    # The API's refusal is shown, naming the field, and the field is marked.
    cap.fill("-5")
    page.get_by_role("button", name="Create key").click()
    alert = page.locator("#create-key").get_by_role("alert")
    expect(alert).to_contain_text("Spend cap:")
    expect(alert).to_contain_text("greater than or equal to 0")
    expect(cap).to_have_attribute("aria-invalid", "true")

    cap.fill("500")
    page.get_by_role("button", name="Create key").click()
    shown = page.locator("#key-secret")
    expect(shown).to_contain_text("you will not see it again")
    expect(shown.get_by_role("button", name="Copy secret")).to_be_visible()
    secret = page.locator("#new-key-secret").inner_text().strip()
    assert re.fullmatch(r"fg_live_\w+", secret)
    expect(alert).to_be_hidden()
    row = page.locator("#key-list tbody tr", has_text="reporting")
    for text in ("credits:read", "tasks:read", "500 credits", "active"):
        expect(row).to_contain_text(text)
    expect(row).not_to_contain_text("videos:write")

    # Shown once: a reload lists the key, not its secret.
    page.reload()
    expect(page.locator("#key-list tbody tr", has_text="reporting")).to_be_visible()
    expect(page.locator("#key-secret")).to_be_hidden()
    assert secret not in page.content()

    # It works on the API, with the scopes chosen.
    api = httpx.Client(base_url=console_server.url, headers=bearer(secret))
    assert api.get("/v1/credits").status_code == 200
    assert api.get("/v1/keys").status_code == 403

    # A second browser signs in with it.
    other, other_page, watch = new_page(browser, console_server, DESKTOP)
    try:
        sign_in(other_page, secret, "/console/models")

        row = page.locator("#key-list tbody tr", has_text="reporting")
        revoke = row.get_by_role("button", name="Revoke key reporting")
        # The keyboard opens the confirmation, which starts on Cancel; Escape closes it.
        revoke.focus()
        page.keyboard.press("Enter")
        dialog = page.get_by_role("dialog", name="Revoke key “reporting”?")
        expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
        page.keyboard.press("Escape")
        expect(dialog).to_have_count(0)
        expect(row).to_contain_text("active")

        revoke.click()
        dialog.get_by_role("button", name="Revoke key").click()
        expect(dialog).to_have_count(0)
        expect(row).to_contain_text("revoked")
        expect(row.get_by_role("button")).to_have_count(0)

        assert api.get("/v1/credits").status_code == 401
        # The other browser's session ended with the key: its next page is the sign-in.
        other_page.goto("/console/models")
        expect(other_page).to_have_url(re.compile(r"/console/sign-in\?next=/console/models$"))
    finally:
        other.close()
    assert not watch.errors and not watch.foreign
    api.close()


def test_rotating_shows_a_new_working_secret(page: Page, console_server: ConsoleServer) -> None:
    owner = fresh_account(console_server)
    old = httpx.post(
        f"{console_server.url}/v1/keys",
        json={"name": "worker", "scopes": ["credits:read"]},
        headers=bearer(owner["api_key"]),
    ).json()
    sign_in(page, owner["api_key"], "/console/keys")
    row = page.locator("#key-list tbody tr", has_text="worker")
    row.get_by_role("button", name="Rotate key worker").click()
    dialog = page.get_by_role("dialog", name="Rotate key “worker”")
    expect(dialog.get_by_label("The old secret")).to_have_value("0")
    dialog.get_by_role("button", name="Rotate").click()
    expect(page.locator("#key-secret")).to_contain_text("you will not see it again")
    expect(page.locator("#key-secret")).to_contain_text("The old secret no longer works")
    new_secret = page.locator("#new-key-secret").inner_text().strip()
    assert new_secret != old["secret"]

    with httpx.Client(base_url=console_server.url) as api:
        assert api.get("/v1/credits", headers=bearer(new_secret)).status_code == 200
        assert api.get("/v1/credits", headers=bearer(old["secret"])).status_code == 401
    # The list shows the new key and the old one as revoked.
    rows = page.locator("#key-list tbody tr", has_text="worker")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="active")).to_have_count(1)
    expect(rows.filter(has_text="revoked")).to_have_count(1)
    # Done hides the secret for good.
    page.get_by_role("button", name="Done — I have stored it").click()
    expect(page.locator("#key-secret")).to_be_hidden()
    assert new_secret not in page.content()
