"""Output URLs are signed and expire; tampering or expiry answers 403."""

from __future__ import annotations

import time

import httpx

from framegate.runtime import Runtime
from framegate.storage.signing import URLSigner
from tests.conftest import Tenant, file_path, wait_for_task


async def finished_output(client: httpx.AsyncClient, account: Tenant) -> dict:
    response = await client.post(
        "/v1/async/videos/generations",
        json={"model": "preview", "prompt": "x", "duration": 1, "size": "64x64"},
        headers=account.headers,
    )
    task = await wait_for_task(client, account, response.json()["id"])
    return task["result"]["data"][0]


async def test_signed_url_serves_and_tampering_is_403(
    client: httpx.AsyncClient, account: Tenant
) -> None:
    output = await finished_output(client, account)
    good = file_path(output["url"])
    assert (await client.get(good)).status_code == 200
    forged_sig = good[:-1] + ("0" if good[-1] != "0" else "1")
    response = await client.get(forged_sig)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_signature"
    other_file = good.replace("video-0.mp4", "thumbnail-0.jpg")
    assert (await client.get(other_file)).status_code == 403
    expires = httpx.URL(output["url"]).params["expires"]
    longer = good.replace(f"expires={expires}", f"expires={int(expires) + 3600}")
    assert (await client.get(longer)).status_code == 403


async def test_expired_url_is_403(
    client: httpx.AsyncClient, runtime: Runtime, account: Tenant
) -> None:
    output = await finished_output(client, account)
    key = httpx.URL(output["url"]).path.removeprefix("/v1/files/")
    signer = URLSigner(runtime.settings.effective_secret_key, ttl_seconds=1)
    stale = signer.sign_path(key, now=time.time() - 3600)
    response = await client.get(stale)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "url_expired"


async def test_path_traversal_is_refused(client: httpx.AsyncClient, runtime: Runtime) -> None:
    path = runtime.signer.sign_path("../secret.key")
    response = await client.get(path)
    assert response.status_code in (400, 403, 404, 422)
    assert b"secret" not in response.content or response.status_code != 200
