"""The operator API under /v1/admin: accounts (create, list, grant, update, disable) and plans,
as an operator uses it and as a tenant without the admin scope would try to abuse it."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import httpx
import pytest

from framegate.credits.schemas import MAX_CREDITS
from framegate.keys.scopes import ALL_SCOPES
from framegate.runtime import Runtime
from tests.conftest import Tenant, make_account

ACCOUNT_FIELDS = {"id", "object", "name", "plan", "credit_balance", "is_active", "created_at"}
CREATED_FIELDS = ACCOUNT_FIELDS | {"api_key", "api_key_id"}
PLAN_FIELDS = {
    "name",
    "object",
    "max_concurrent_videos",
    "max_concurrent_images",
    "requests_per_minute",
}
PLAN = {"max_concurrent_videos": 3, "max_concurrent_images": 4, "requests_per_minute": 1000}
MISSING_ACCOUNT = "acct_" + "0" * 24
CREATE_FIELDS = {"name", "credits", "plan"}  # what POST /v1/admin/accounts accepts


@pytest.fixture
async def admin(runtime: Runtime) -> Tenant:
    return await make_account(runtime, scopes=["admin"])


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def assert_error(response: httpx.Response, status: int, *, param: str | None = None) -> dict:
    """The one error envelope, with the field at fault; returns its `error` object."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"type", "code", "message", "param", "request_id"}
    assert error["request_id"] == response.headers["x-request-id"]
    assert error["message"]
    if param is not None:
        assert error["param"] == param, error
    return error


def assert_recent(created_at: object, since: float | None = None) -> None:
    """Integer Unix seconds (not a float, nor a string), at most a few seconds old."""
    assert type(created_at) is int, created_at
    now = time.time()
    assert (now - 5 if since is None else int(since)) <= created_at <= now + 1, (created_at, now)


async def create(client: httpx.AsyncClient, admin: Tenant, **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/admin/accounts", json={"name": unique("acme"), **body}, headers=admin.headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def listed_account(client: httpx.AsyncClient, admin: Tenant, account_id: str) -> dict:
    response = await client.get("/v1/admin/accounts", headers=admin.headers)
    assert response.status_code == 200, response.text
    matches = [a for a in response.json()["data"] if a["id"] == account_id]
    assert len(matches) == 1, matches
    found: dict[str, Any] = matches[0]
    return found


async def account_count(client: httpx.AsyncClient, admin: Tenant) -> int:
    response = await client.get("/v1/admin/accounts", headers=admin.headers)
    assert response.status_code == 200, response.text
    return len(response.json()["data"])


async def put_plan(
    client: httpx.AsyncClient, admin: Tenant, name: str, **limits: int
) -> dict[str, Any]:
    response = await client.put(
        f"/v1/admin/plans/{name}", json={**PLAN, **limits}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    plan: dict[str, Any] = response.json()
    return plan


async def statuses(client: httpx.AsyncClient, headers: dict[str, str], count: int) -> list[int]:
    return [(await client.get("/v1/tasks", headers=headers)).status_code for _ in range(count)]


# --- creating and listing -------------------------------------------------------------------


async def test_created_account_has_its_full_shape_and_a_key_shown_once(
    client: httpx.AsyncClient, admin: Tenant
) -> None:
    name = unique("Acme Studio")
    started = time.time()
    response = await client.post(
        "/v1/admin/accounts", json={"name": name, "credits": 250}, headers=admin.headers
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == CREATED_FIELDS
    assert body["object"] == "account"
    assert body["id"].startswith("acct_")
    assert body["name"] == name
    assert body["plan"] == "default"
    assert body["credit_balance"] == 250
    assert_recent(body["created_at"], since=started)
    assert body["api_key"].startswith("fg_live_")
    assert body["api_key_id"].startswith("key_")

    # The secret is shown once: never in the listing, nor in the account's own key list.
    listed = await client.get("/v1/admin/accounts", headers=admin.headers)
    assert body["api_key"] not in listed.text
    keys = await client.get("/v1/keys", headers=bearer(body["api_key"]))
    assert keys.status_code == 200, keys.text
    assert body["api_key"] not in keys.text


async def test_names_are_trimmed_and_credits_default_to_zero(
    client: httpx.AsyncClient, admin: Tenant
) -> None:
    name = unique("padded")
    body = await create(client, admin, name=f"  {name}\t")
    assert body["name"] == name
    assert body["credit_balance"] == 0
    tenant = bearer(body["api_key"])
    ledger = (await client.get("/v1/credits/ledger", headers=tenant)).json()
    assert ledger["data"] == []  # no zero-credit grant in the ledger
    available = (await client.get("/v1/credits", headers=tenant)).json()["available"]
    assert available == 0


async def test_first_key_works_with_every_scope_but_admin(
    client: httpx.AsyncClient, admin: Tenant
) -> None:
    body = await create(client, admin, credits=40)
    tenant = bearer(body["api_key"])

    balance = await client.get("/v1/credits", headers=tenant)
    assert balance.status_code == 200, balance.text
    assert balance.json()["account_id"] == body["id"]
    assert balance.json()["available"] == 40

    keys = (await client.get("/v1/keys", headers=tenant)).json()["data"]
    assert [k["id"] for k in keys] == [body["api_key_id"]]
    assert set(keys[0]["scopes"]) == set(ALL_SCOPES) - {"admin"}
    assert keys[0]["revoked_at"] is None

    # The opening credits are a ledger grant the tenant can see.
    ledger = (await client.get("/v1/credits/ledger", headers=tenant)).json()["data"]
    assert [(e["kind"], e["amount"], e["balance_after"]) for e in ledger] == [("grant", 40, 40)]

    # No admin scope: the new tenant cannot reach the operator routes.
    refused = await client.get("/v1/admin/accounts", headers=tenant)
    assert assert_error(refused, 403)["code"] == "insufficient_scope"


async def test_listing_includes_new_accounts_in_the_same_shape(
    client: httpx.AsyncClient, admin: Tenant
) -> None:
    first = await create(client, admin, credits=7)
    second = await create(client, admin)
    response = await client.get("/v1/admin/accounts", headers=admin.headers)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["object"] == "list"
    assert all(set(a) == ACCOUNT_FIELDS for a in page["data"])
    assert all(a["object"] == "account" for a in page["data"])
    ids = [a["id"] for a in page["data"]]
    assert len(ids) == len(set(ids))
    assert {first["id"], second["id"], admin.id} <= set(ids)
    listed = await listed_account(client, admin, first["id"])
    expected = {k: v for k, v in first.items() if k not in ("api_key", "api_key_id")}
    assert listed == expected


async def test_create_on_a_plan_applies_its_limits(
    client: httpx.AsyncClient, admin: Tenant
) -> None:
    plan = unique("starter")
    await put_plan(client, admin, plan, requests_per_minute=2)
    body = await create(client, admin, plan=plan)
    assert body["plan"] == plan
    assert await statuses(client, bearer(body["api_key"]), 3) == [200, 200, 429]


# --- granting credits -----------------------------------------------------------------------


async def test_grant_adds_credits_and_shows_in_the_ledger(
    client: httpx.AsyncClient, admin: Tenant
) -> None:
    body = await create(client, admin, credits=10)
    tenant = bearer(body["api_key"])
    response = await client.post(
        f"/v1/admin/accounts/{body['id']}/credits",
        json={"credits": 25, "description": "launch promo"},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    granted = response.json()
    assert set(granted) == ACCOUNT_FIELDS
    assert granted["object"] == "account"
    assert granted["id"] == body["id"]
    assert granted["credit_balance"] == 35
    assert granted["created_at"] == body["created_at"]

    # Without a description the entry still says what it was.
    second = await client.post(
        f"/v1/admin/accounts/{body['id']}/credits", json={"credits": 5}, headers=admin.headers
    )
    assert second.status_code == 200, second.text
    assert second.json()["credit_balance"] == 40

    ledger = await client.get("/v1/credits/ledger", headers=tenant)
    assert ledger.status_code == 200, ledger.text
    entries = ledger.json()["data"]
    assert [(e["kind"], e["amount"], e["credits"], e["balance_after"]) for e in entries] == [
        ("grant", 5, 5, 40),
        ("grant", 25, 25, 35),
        ("grant", 10, 10, 10),
    ]
    assert entries[1]["description"] == "launch promo"
    assert entries[0]["description"]
    assert all(e["object"] == "ledger_entry" and e["task_id"] is None for e in entries)
    for entry in entries:
        assert_recent(entry["created_at"])
    assert (await client.get("/v1/credits", headers=tenant)).json()["available"] == 40
    assert (await listed_account(client, admin, body["id"]))["credit_balance"] == 40


async def test_grant_up_to_the_maximum_is_accepted(
    client: httpx.AsyncClient, admin: Tenant
) -> None:
    body = await create(client, admin)
    response = await client.post(
        f"/v1/admin/accounts/{body['id']}/credits",
        json={"credits": MAX_CREDITS},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["credit_balance"] == MAX_CREDITS


# --- updating and disabling -----------------------------------------------------------------


async def test_update_each_field(client: httpx.AsyncClient, admin: Tenant) -> None:
    body = await create(client, admin, credits=3)
    url = f"/v1/admin/accounts/{body['id']}"
    new_name = unique("renamed")
    plan = unique("pro")
    await put_plan(client, admin, plan)

    renamed = await client.patch(url, json={"name": new_name}, headers=admin.headers)
    assert renamed.status_code == 200, renamed.text
    assert set(renamed.json()) == ACCOUNT_FIELDS
    assert renamed.json()["name"] == new_name
    assert renamed.json()["plan"] == "default"  # untouched fields stay

    moved = await client.patch(url, json={"plan": plan}, headers=admin.headers)
    assert moved.status_code == 200, moved.text
    assert (moved.json()["name"], moved.json()["plan"]) == (new_name, plan)

    disabled = await client.patch(url, json={"is_active": False}, headers=admin.headers)
    assert disabled.status_code == 200, disabled.text
    assert disabled.json() == {**moved.json(), "is_active": False}

    # An empty update changes nothing.
    same = await client.patch(url, json={}, headers=admin.headers)
    assert same.status_code == 200, same.text
    assert same.json() == disabled.json()

    listed = await listed_account(client, admin, body["id"])
    assert listed["name"] == new_name
    assert listed["plan"] == plan
    assert listed["credit_balance"] == 3
    assert listed["created_at"] == body["created_at"]


async def test_disabled_account_keys_are_401_at_once_and_work_again_when_enabled(
    client: httpx.AsyncClient, admin: Tenant
) -> None:
    body = await create(client, admin, credits=5)
    tenant = bearer(body["api_key"])
    created = await client.post("/v1/keys", json={"name": "second"}, headers=tenant)
    assert created.status_code == 201, created.text
    second = bearer(created.json()["secret"])
    bystander = await create(client, admin)

    # Both keys were just verified (and are cached as verified).
    assert await statuses(client, tenant, 1) == [200]
    assert await statuses(client, second, 1) == [200]

    url = f"/v1/admin/accounts/{body['id']}"
    disabled = await client.patch(url, json={"is_active": False}, headers=admin.headers)
    assert disabled.status_code == 200, disabled.text

    for headers in (tenant, second):
        for response in (
            await client.get("/v1/tasks", headers=headers),
            await client.get("/v1/credits", headers=headers),
            await client.post("/v1/keys", json={"name": "escape"}, headers=headers),
        ):
            error = assert_error(response, 401)
            assert error["type"] == "authentication_error"
            assert error["code"] == "account_disabled"
    # Other accounts are untouched.
    assert await statuses(client, bearer(bystander["api_key"]), 1) == [200]

    # The operator can still see and credit a disabled account.
    granted = await client.post(
        f"/v1/admin/accounts/{body['id']}/credits", json={"credits": 1}, headers=admin.headers
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["credit_balance"] == 6

    enabled = await client.patch(url, json={"is_active": True}, headers=admin.headers)
    assert enabled.status_code == 200, enabled.text
    assert await statuses(client, tenant, 1) == [200]
    assert await statuses(client, second, 1) == [200]
    assert (await client.get("/v1/credits", headers=tenant)).json()["available"] == 6
    # A key made while disabled was refused, not created.
    keys = (await client.get("/v1/keys", headers=tenant)).json()["data"]
    assert sorted(k["name"] for k in keys) == ["default", "second"]


async def test_disabling_the_callers_own_account_locks_its_admin_key_out(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    own = await make_account(runtime, scopes=["admin"])
    response = await client.patch(
        f"/v1/admin/accounts/{own.id}", json={"is_active": False}, headers=own.headers
    )
    assert response.status_code == 200, response.text
    after = await client.get("/v1/admin/accounts", headers=own.headers)
    assert assert_error(after, 401)["code"] == "account_disabled"


async def test_plan_change_applies_to_the_next_request(
    client: httpx.AsyncClient, admin: Tenant
) -> None:
    body = await create(client, admin)
    tenant = bearer(body["api_key"])
    assert await statuses(client, tenant, 1) == [200]  # verified on the default plan
    plan = unique("tight")
    await put_plan(client, admin, plan, requests_per_minute=2)
    url = f"/v1/admin/accounts/{body['id']}"
    moved = await client.patch(url, json={"plan": plan}, headers=admin.headers)
    assert moved.status_code == 200, moved.text
    assert await statuses(client, tenant, 3) == [200, 200, 429]
    back = await client.patch(url, json={"plan": "default"}, headers=admin.headers)
    assert back.status_code == 200, back.text
    assert await statuses(client, tenant, 1) == [200]


# --- unknown accounts -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [("post", "/credits", {"credits": 5}), ("patch", "", {"name": "ghost"})],
)
async def test_unknown_account_is_404(
    client: httpx.AsyncClient, admin: Tenant, method: str, suffix: str, body: dict
) -> None:
    response = await client.request(
        method, f"/v1/admin/accounts/{MISSING_ACCOUNT}{suffix}", json=body, headers=admin.headers
    )
    error = assert_error(response, 404, param="account_id")
    assert error["type"] == "not_found_error"
    assert error["code"] == "not_found"
    assert MISSING_ACCOUNT in error["message"]


async def test_overlong_account_id_is_422(client: httpx.AsyncClient, admin: Tenant) -> None:
    response = await client.patch(
        f"/v1/admin/accounts/acct_{'x' * 40}", json={"name": "x"}, headers=admin.headers
    )
    assert_error(response, 422, param="account_id")


# --- who may call ---------------------------------------------------------------------------

ROUTES = [
    ("post", "/v1/admin/accounts", {"name": "intruder", "credits": 10**6}),
    ("get", "/v1/admin/accounts", None),
    ("post", "/v1/admin/accounts/{own}/credits", {"credits": 10**6}),
    ("patch", "/v1/admin/accounts/{own}", {"plan": "unlimited"}),
    # Were this let through, it would loosen (not tighten) every default account's limits.
    (
        "put",
        "/v1/admin/plans/default",
        {"max_concurrent_videos": 100, "max_concurrent_images": 100, "requests_per_minute": 10**6},
    ),
    ("get", "/v1/admin/plans", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_tenant_key_is_403_and_changes_nothing(
    client: httpx.AsyncClient,
    account: Tenant,
    admin: Tenant,
    method: str,
    path: str,
    body: dict | None,
) -> None:
    before = await listed_account(client, admin, account.id)
    count = await account_count(client, admin)
    plans = (await client.get("/v1/admin/plans", headers=admin.headers)).json()
    response = await client.request(
        method, path.format(own=account.id), json=body, headers=account.headers
    )
    error = assert_error(response, 403)
    assert error["type"] == "permission_error"
    assert error["code"] == "insufficient_scope"
    assert "admin" in error["message"]
    assert await listed_account(client, admin, account.id) == before
    assert await account_count(client, admin) == count
    assert (await client.get("/v1/admin/plans", headers=admin.headers)).json() == plans


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_no_key_is_401(
    client: httpx.AsyncClient, account: Tenant, method: str, path: str, body: dict | None
) -> None:
    response = await client.request(method, path.format(own=account.id), json=body)
    error = assert_error(response, 401)
    assert error["code"] == "missing_api_key"


async def test_tenant_key_learns_nothing_from_bad_bodies_or_ids(
    client: httpx.AsyncClient, account: Tenant
) -> None:
    """Scope is checked before the body or the path: no validation detail leaks."""
    for response in (
        await client.post("/v1/admin/accounts", json={"credits": "x"}, headers=account.headers),
        await client.patch(
            f"/v1/admin/accounts/{MISSING_ACCOUNT}", json={"name": "x"}, headers=account.headers
        ),
        await client.patch(
            f"/v1/admin/accounts/{'x' * 100}", json={"bad": 1}, headers=account.headers
        ),
        await client.put("/v1/admin/plans/a b", json={}, headers=account.headers),
    ):
        assert_error(response, 403)


async def test_revoked_admin_key_is_401(client: httpx.AsyncClient, runtime: Runtime) -> None:
    owner = await make_account(runtime, scopes=["admin"])
    created = await client.post("/v1/keys", json={"scopes": ["admin"]}, headers=owner.headers)
    assert created.status_code == 201, created.text
    spare = bearer(created.json()["secret"])
    assert (await client.get("/v1/admin/plans", headers=spare)).status_code == 200
    revoked = await client.post(f"/v1/keys/{created.json()['id']}/revoke", headers=owner.headers)
    assert revoked.status_code == 200, revoked.text
    response = await client.post("/v1/admin/accounts", json={"name": "late"}, headers=spare)
    assert assert_error(response, 401)["code"] == "revoked_api_key"


# --- bad bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": 5}, "name"),
        ({"name": None}, "name"),
        ({"name": "a", "credits": "5"}, "credits"),
        ({"name": "a", "credits": True}, "credits"),
        ({"name": "a", "credits": 1.5}, "credits"),
        ({"name": "a", "credits": -1}, "credits"),
        ({"name": "a", "credits": MAX_CREDITS + 1}, "credits"),
        ({"name": "a", "credits": None}, "credits"),
        ({"name": "a", "plan": "p" * 41}, "plan"),
        ({"name": "a", "plan": 7}, "plan"),
        ({"name": "a", "scopes": ["admin"]}, "scopes"),
        ({"name": "a", "api_key": "fg_live_" + "a" * 40}, "api_key"),
        ({"name": "a", "id": "acct_chosen"}, "id"),
        ({"name": "a", "is_active": False}, "is_active"),
    ],
)
async def test_create_refuses_bad_bodies(
    client: httpx.AsyncClient, admin: Tenant, body: dict, param: str
) -> None:
    before = await account_count(client, admin)
    response = await client.post("/v1/admin/accounts", json=body, headers=admin.headers)
    error = assert_error(response, 422, param=param)
    assert error["type"] == "invalid_request_error"
    if param not in CREATE_FIELDS:
        assert error["code"] == "unknown_parameter"
    assert await account_count(client, admin) == before  # nothing half-created


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "credits"),
        ({"credits": 0}, "credits"),
        ({"credits": -5}, "credits"),
        ({"credits": "5"}, "credits"),
        ({"credits": True}, "credits"),
        ({"credits": 2.0}, "credits"),
        ({"credits": None}, "credits"),
        ({"credits": MAX_CREDITS + 1}, "credits"),
        ({"credits": 10**30}, "credits"),
        ({"credits": 5, "description": "d" * 301}, "description"),
        ({"credits": 5, "description": 5}, "description"),
        ({"credits": 5, "balance_after": 10**9}, "balance_after"),
        ({"credits": 5, "account_id": "acct_other"}, "account_id"),
    ],
)
async def test_grant_refuses_bad_bodies(
    client: httpx.AsyncClient, admin: Tenant, account: Tenant, body: dict, param: str
) -> None:
    response = await client.post(
        f"/v1/admin/accounts/{account.id}/credits", json=body, headers=admin.headers
    )
    error = assert_error(response, 422, param=param)
    assert error["type"] == "invalid_request_error"
    assert (await listed_account(client, admin, account.id))["credit_balance"] == 1000
    ledger = (await client.get("/v1/credits/ledger", headers=account.headers)).json()["data"]
    assert len(ledger) == 1  # only the opening grant


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": 5}, "name"),
        ({"plan": ""}, "plan"),
        ({"plan": "p" * 41}, "plan"),
        ({"plan": ["pro"]}, "plan"),
        ({"is_active": "false"}, "is_active"),
        ({"is_active": 0}, "is_active"),
        ({"is_active": "yes"}, "is_active"),
        ({"credit_balance": 10**9}, "credit_balance"),
        ({"credits": 5}, "credits"),
        ({"id": "acct_other"}, "id"),
        ({"created_at": 0}, "created_at"),
    ],
)
async def test_update_refuses_bad_bodies(
    client: httpx.AsyncClient, admin: Tenant, account: Tenant, body: dict, param: str
) -> None:
    before = await listed_account(client, admin, account.id)
    response = await client.patch(
        f"/v1/admin/accounts/{account.id}", json=body, headers=admin.headers
    )
    assert_error(response, 422, param=param)
    assert await listed_account(client, admin, account.id) == before
    assert await statuses(client, account.headers, 1) == [200]  # still active


async def test_non_object_bodies_are_refused(client: httpx.AsyncClient, admin: Tenant) -> None:
    for response in (
        await client.post("/v1/admin/accounts", json=["name"], headers=admin.headers),
        await client.post("/v1/admin/accounts", json="acme", headers=admin.headers),
        await client.patch(f"/v1/admin/accounts/{admin.id}", json=[], headers=admin.headers),
        await client.put("/v1/admin/plans/x", json=[1, 2, 3], headers=admin.headers),
    ):
        error = assert_error(response, 422)
        assert (error["code"], error["param"]) == ("invalid_value", None)
    broken = await client.post(
        "/v1/admin/accounts",
        content=b'{"name": ',
        headers={**admin.headers, "Content-Type": "application/json"},
    )
    assert assert_error(broken, 400)["code"] == "invalid_json"
    empty = await client.post("/v1/admin/accounts", headers=admin.headers)
    assert assert_error(empty, 400)["code"] == "missing_body"


@pytest.mark.parametrize(
    ("method", "path", "body", "param"),
    [
        ("post", "/v1/admin/accounts", {"name": "a\u0000b"}, "name"),
        ("post", "/v1/admin/accounts", {"name": "a\ud800b"}, "name"),
        ("post", "/v1/admin/accounts", {"name": "a", "plan": "p\u0000"}, "plan"),
        (
            "post",
            "/v1/admin/accounts/{id}/credits",
            {"credits": 1, "description": "\u0000"},
            "description",
        ),
        ("patch", "/v1/admin/accounts/{id}", {"name": "\udfff"}, "name"),
        ("patch", "/v1/admin/accounts/{id}", {"plan": "x\u0000"}, "plan"),
    ],
)
async def test_unstorable_text_is_422_on_both_databases(
    client: httpx.AsyncClient,
    admin: Tenant,
    account: Tenant,
    method: str,
    path: str,
    body: dict,
    param: str,
) -> None:
    """NUL (PostgreSQL cannot store it) and lone surrogates, sent as raw JSON escapes."""
    before = await listed_account(client, admin, account.id)
    response = await client.request(
        method,
        path.format(id=account.id),
        content=json.dumps(body, ensure_ascii=True).encode(),
        headers={**admin.headers, "Content-Type": "application/json"},
    )
    assert assert_error(response, 422, param=param)["code"] == "invalid_text"
    assert await listed_account(client, admin, account.id) == before


async def test_longest_values_are_accepted_in_characters_not_bytes(
    client: httpx.AsyncClient, admin: Tenant
) -> None:
    name, plan = "é" + "😀" * 199, "p" * 40
    body = await create(client, admin, name=name, plan=plan, credits=MAX_CREDITS)
    assert (body["name"], body["plan"], body["credit_balance"]) == (name, plan, MAX_CREDITS)
    listed = await listed_account(client, admin, body["id"])
    assert (listed["name"], listed["plan"]) == (name, plan)
    description = "d" * 300
    granted = await client.post(
        f"/v1/admin/accounts/{body['id']}/credits",
        json={"credits": 1, "description": description},
        headers=admin.headers,
    )
    assert granted.status_code == 200, granted.text
    ledger = (await client.get("/v1/credits/ledger", headers=bearer(body["api_key"]))).json()
    assert ledger["data"][0]["description"] == description


# --- plans ----------------------------------------------------------------------------------


async def test_plans_are_created_replaced_and_listed(
    client: httpx.AsyncClient, admin: Tenant
) -> None:
    name = unique("team")
    response = await client.put(f"/v1/admin/plans/{name}", json=PLAN, headers=admin.headers)
    assert response.status_code == 200, response.text
    created = response.json()
    assert set(created) == PLAN_FIELDS
    assert created == {"name": name, "object": "plan", **PLAN}

    replacement = {"max_concurrent_videos": 9, "max_concurrent_images": 1, "requests_per_minute": 7}
    replaced = await client.put(f"/v1/admin/plans/{name}", json=replacement, headers=admin.headers)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json() == {"name": name, "object": "plan", **replacement}

    other = unique("solo")
    await put_plan(client, admin, other)

    listing = await client.get("/v1/admin/plans", headers=admin.headers)
    assert listing.status_code == 200, listing.text
    page = listing.json()
    assert set(page) == {"object", "data", "default"}
    assert page["object"] == "list"
    assert all(set(p) == PLAN_FIELDS and p["object"] == "plan" for p in page["data"])
    mine = [p for p in page["data"] if p["name"] in (name, other)]
    assert sorted(mine, key=lambda p: p["name"] != name) == [
        {"name": name, "object": "plan", **replacement},
        {"name": other, "object": "plan", **PLAN},
    ]
    # The defaults are those of the settings the suite runs with (tests/conftest.py).
    assert page["default"] == {
        "name": "default",
        "object": "plan",
        "max_concurrent_videos": 100,
        "max_concurrent_images": 100,
        "requests_per_minute": 100_000,
    }
    assert "default" not in [p["name"] for p in page["data"]]


async def test_replacing_a_plan_applies_to_its_accounts_at_once(
    client: httpx.AsyncClient, admin: Tenant
) -> None:
    plan = unique("shrinking")
    await put_plan(client, admin, plan, requests_per_minute=1000)
    body = await create(client, admin, plan=plan)
    tenant = bearer(body["api_key"])
    assert await statuses(client, tenant, 3) == [200] * 3  # the plan's limits read and cached
    await put_plan(client, admin, plan, requests_per_minute=2)
    # A new limit counts in a window of its own: two requests pass, the third is refused.
    assert await statuses(client, tenant, 2) == [200] * 2
    refused = await client.get("/v1/tasks", headers=tenant)
    assert assert_error(refused, 429)["code"] == "rate_limit_exceeded"
    assert refused.headers["ratelimit-limit"] == "2"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({k: v for k, v in PLAN.items() if k != "requests_per_minute"}, "requests_per_minute"),
        ({**PLAN, "max_concurrent_videos": 0}, "max_concurrent_videos"),
        ({**PLAN, "max_concurrent_videos": 10_001}, "max_concurrent_videos"),
        ({**PLAN, "max_concurrent_images": -1}, "max_concurrent_images"),
        ({**PLAN, "max_concurrent_images": "5"}, "max_concurrent_images"),
        ({**PLAN, "max_concurrent_images": True}, "max_concurrent_images"),
        ({**PLAN, "requests_per_minute": 1.5}, "requests_per_minute"),
        ({**PLAN, "requests_per_minute": 1_000_001}, "requests_per_minute"),
        ({**PLAN, "requests_per_minute": None}, "requests_per_minute"),
        ({**PLAN, "name": "other"}, "name"),
        ({**PLAN, "max_concurrent_uploads": 5}, "max_concurrent_uploads"),
    ],
)
async def test_plan_refuses_bad_bodies(
    client: httpx.AsyncClient, admin: Tenant, body: dict, param: str
) -> None:
    name = unique("bad")
    response = await client.put(f"/v1/admin/plans/{name}", json=body, headers=admin.headers)
    assert_error(response, 422, param=param)
    plans = (await client.get("/v1/admin/plans", headers=admin.headers)).json()["data"]
    assert name not in [p["name"] for p in plans]


@pytest.mark.parametrize("name", ["a b", "   ", "p" * 41, "semi;colon", "ünï"])
async def test_plan_names_are_checked(client: httpx.AsyncClient, admin: Tenant, name: str) -> None:
    response = await client.put(f"/v1/admin/plans/{name}", json=PLAN, headers=admin.headers)
    assert_error(response, 422, param="name")


# --- PATCH checks names and plans as creation does ---------------------------------------------


@pytest.mark.parametrize("name", ["   ", "\t\n"])
async def test_update_refuses_a_blank_name_like_create_does(
    client: httpx.AsyncClient, admin: Tenant, account: Tenant, name: str
) -> None:
    created = await client.post("/v1/admin/accounts", json={"name": name}, headers=admin.headers)
    assert_error(created, 422, param="name")
    response = await client.patch(
        f"/v1/admin/accounts/{account.id}", json={"name": name}, headers=admin.headers
    )
    assert_error(response, 422, param="name")


async def test_update_trims_names_like_create_does(
    client: httpx.AsyncClient, admin: Tenant, account: Tenant
) -> None:
    response = await client.patch(
        f"/v1/admin/accounts/{account.id}", json={"name": "  Acme  "}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Acme"


@pytest.mark.parametrize(
    ("method", "plan"),
    [("post", ""), ("post", "   "), ("post", "a b"), ("patch", "   "), ("patch", "a b")],
)
async def test_accounts_only_take_plan_names_a_plan_can_have(
    client: httpx.AsyncClient, admin: Tenant, account: Tenant, method: str, plan: str
) -> None:
    """PUT /v1/admin/plans/{name} allows ^[A-Za-z0-9_.-]{1,40}$; an account put on any other
    name can never be given limits and silently keeps the defaults."""
    if method == "post":
        response = await client.post(
            "/v1/admin/accounts", json={"name": "typo", "plan": plan}, headers=admin.headers
        )
    else:
        response = await client.patch(
            f"/v1/admin/accounts/{account.id}", json={"plan": plan}, headers=admin.headers
        )
    assert_error(response, 422, param="plan")
