"""Errors raised before a dialect's route runs (the idempotency layer, unknown paths) still
come back in that dialect's envelope; native paths keep framegate's."""

from __future__ import annotations

import secrets

import httpx

from tests.conftest import Tenant


async def test_reused_idempotency_key_in_each_dialect(
    client: httpx.AsyncClient, account: Tenant
) -> None:
    cases = [
        ("/v1/videos", {"model": "preview", "prompt": "a", "seconds": "1"}),
        ("/v1/video/generate", {"model": "preview", "prompt": "a", "duration": 1}),
        ("/v2/video/generations", {"model": "preview", "prompt": "a", "duration": 1}),
        (
            "/openapi/v2/video/text/generate",
            {
                "model": "preview",
                "prompt": "a",
                "duration": 1,
                "quality": "360p",
                "aspect_ratio": "16:9",
            },
        ),
    ]
    bodies = {}
    for path, body in cases:
        headers = {**account.headers, "Idempotency-Key": secrets.token_hex(8)}
        first = await client.post(path, json=body, headers=headers)
        assert first.status_code < 400, (path, first.text)
        other = await client.post(path, json={**body, "prompt": "b"}, headers=headers)
        bodies[path] = (other.status_code, other.json())
    status, openai = bodies["/v1/videos"]
    assert status == 400  # OpenAI answers invalid requests with 400
    assert set(openai["error"]) == {"message", "type", "param", "code"}
    assert openai["error"]["code"] == "idempotency_key_reused"
    status, pixelapi = bodies["/v1/video/generate"]
    assert pixelapi["error"]["code"] and pixelapi["detail"] == pixelapi["error"]["message"]
    status, aiml = bodies["/v2/video/generations"]
    assert status == 400 and aiml["statusCode"] == 400 and "timestamp" in aiml
    status, pixverse = bodies["/openapi/v2/video/text/generate"]
    assert set(pixverse) == {"ErrCode", "ErrMsg", "Resp"} and pixverse["ErrCode"] != 0


async def test_unknown_paths_under_a_dialect(client: httpx.AsyncClient, account: Tenant) -> None:
    pixverse = await client.get("/openapi/v2/nothing/here", headers=account.headers)
    assert set(pixverse.json()) == {"ErrCode", "ErrMsg", "Resp"}
    # A method the path does not have stays an HTTP error, even for PixVerse.
    wrong_method = await client.delete("/openapi/v2/account/balance", headers=account.headers)
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "GET"
    assert set(wrong_method.json()) == {"ErrCode", "ErrMsg", "Resp"}
    openai = await client.get("/v1/videos/task_x/unknown", headers=account.headers)
    assert openai.status_code == 404
    assert set(openai.json()["error"]) == {"message", "type", "param", "code"}
    native = await client.get("/v1/nope")
    assert native.json()["error"]["type"] == "not_found_error"
    # The native deprecated path inside the OpenAI prefix keeps framegate's envelope.
    legacy = await client.post("/v1/videos/generations", json={}, headers=account.headers)
    assert legacy.json()["error"]["code"] == "use_async_endpoint"
