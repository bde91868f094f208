"""Keys and tenancy: 401 for bad or revoked keys, 403 for missing scopes, 404 across tenants."""

from __future__ import annotations

import httpx

from framegate.kit.crypto import generate_api_key, is_well_formed_api_key
from framegate.runtime import Runtime
from tests.conftest import Tenant, make_account

CLIP = {"model": "preview", "prompt": "x", "duration": 1, "size": "64x64"}


def test_key_format_has_prefix_and_checksum() -> None:
    key = generate_api_key()
    assert key.startswith("fg_live_") and len(key) >= 8 + 32
    assert is_well_formed_api_key(key)
    tampered = key[:-7] + ("A" if key[-7] != "A" else "B") + key[-6:]
    assert not is_well_formed_api_key(tampered)


async def test_missing_and_invalid_keys_are_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/tasks")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_api_key"
    unknown = {"Authorization": f"Bearer {generate_api_key()}"}
    response = await client.get("/v1/tasks", headers=unknown)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.json()["error"]["request_id"] == response.headers["x-request-id"]


async def test_other_accounts_task_is_404(
    client: httpx.AsyncClient, runtime: Runtime, account: Tenant
) -> None:
    other = await make_account(runtime)
    created = await client.post("/v1/async/videos/generations", json=CLIP, headers=account.headers)
    task_id = created.json()["id"]
    response = await client.get(f"/v1/tasks/{task_id}", headers=other.headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "task_not_found"
    listed = (await client.get("/v1/tasks", headers=other.headers)).json()["data"]
    assert task_id not in [t["id"] for t in listed]


async def test_revoked_key_is_401_at_once(client: httpx.AsyncClient, account: Tenant) -> None:
    created = await client.post(
        "/v1/keys", json={"name": "ci", "scopes": ["tasks:read"]}, headers=account.headers
    )
    assert created.status_code == 201, created.text
    secret, key_id = created.json()["secret"], created.json()["id"]
    headers = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/v1/tasks", headers=headers)).status_code == 200
    revoked = await client.post(f"/v1/keys/{key_id}/revoke", headers=account.headers)
    assert revoked.status_code == 200
    response = await client.get("/v1/tasks", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "revoked_api_key"
    listed = (await client.get("/v1/keys", headers=account.headers)).json()["data"]
    assert all("secret" not in k for k in listed)
    assert next(k for k in listed if k["id"] == key_id)["revoked_at"] is not None


async def test_missing_scope_is_403(client: httpx.AsyncClient, account: Tenant) -> None:
    created = await client.post(
        "/v1/keys", json={"scopes": ["tasks:read"]}, headers=account.headers
    )
    headers = {"Authorization": f"Bearer {created.json()['secret']}"}
    response = await client.post("/v1/async/videos/generations", json=CLIP, headers=headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
    assert "videos:write" in response.json()["error"]["message"]
    escalate = await client.post("/v1/keys", json={"scopes": ["admin"]}, headers=account.headers)
    assert escalate.status_code == 403


async def test_rotation_replaces_the_secret(client: httpx.AsyncClient, account: Tenant) -> None:
    created = await client.post("/v1/keys", json={"name": "rot"}, headers=account.headers)
    old_secret, key_id = created.json()["secret"], created.json()["id"]
    rotated = await client.post(f"/v1/keys/{key_id}/rotate", headers=account.headers)
    assert rotated.status_code == 201
    new_headers = {"Authorization": f"Bearer {rotated.json()['secret']}"}
    assert rotated.json()["scopes"] == created.json()["scopes"]
    assert (await client.get("/v1/tasks", headers=new_headers)).status_code == 200
    old_headers = {"Authorization": f"Bearer {old_secret}"}
    assert (await client.get("/v1/tasks", headers=old_headers)).status_code == 401


async def test_rotation_grace_keeps_the_old_secret_alive(
    client: httpx.AsyncClient, account: Tenant
) -> None:
    created = await client.post("/v1/keys", json={"name": "grace"}, headers=account.headers)
    old_headers = {"Authorization": f"Bearer {created.json()['secret']}"}
    rotated = await client.post(
        f"/v1/keys/{created.json()['id']}/rotate",
        json={"grace_seconds": 3600},
        headers=account.headers,
    )
    assert rotated.status_code == 201
    assert (await client.get("/v1/tasks", headers=old_headers)).status_code == 200


async def test_keys_are_stored_only_as_hashes(runtime: Runtime, account: Tenant) -> None:
    from sqlalchemy import select

    from framegate.models import APIKey

    async with runtime.sessionmaker() as session:
        rows = (await session.execute(select(APIKey))).scalars().all()
    assert rows
    assert all(account.api_key not in (k.secret_hash, k.display) for k in rows)


async def test_a_key_cannot_rotate_or_revoke_a_key_with_more_scopes(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    owner = await make_account(runtime, scopes=["admin"])
    manager = await client.post("/v1/keys", json={"scopes": ["keys:manage"]}, headers=owner.headers)
    headers = {"Authorization": f"Bearer {manager.json()['secret']}"}
    rotated = await client.post(f"/v1/keys/{owner.key_id}/rotate", headers=headers)
    assert rotated.status_code == 403
    assert "admin" in rotated.json()["error"]["message"]
    revoked = await client.post(f"/v1/keys/{owner.key_id}/revoke", headers=headers)
    assert revoked.status_code == 403
    assert (await client.get("/v1/keys", headers=owner.headers)).status_code == 200
