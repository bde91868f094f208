"""Bad input gets a clear error naming the field, before any credits are held."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Tenant

BASE = {"model": "preview", "prompt": "x", "duration": 1, "size": "64x64"}


@pytest.mark.parametrize(
    ("field", "value", "hint"),
    [
        ("seconds", 5, "duration"),
        ("image_url", "https://example.com/a.png", "input_image"),
        ("async", True, "/v1/async/videos/generations"),
    ],
)
async def test_other_dialects_fields_name_the_right_one(
    client: httpx.AsyncClient, account: Tenant, field: str, value: object, hint: str
) -> None:
    response = await client.post(
        "/v1/async/videos/generations", json={**BASE, field: value}, headers=account.headers
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == field
    assert hint in error["message"]


async def test_synchronous_route_points_to_async(
    client: httpx.AsyncClient, account: Tenant
) -> None:
    response = await client.post("/v1/videos/generations", json=BASE, headers=account.headers)
    assert response.status_code == 400
    assert "/v1/async/videos/generations" in response.json()["error"]["message"]
    assert response.json()["error"]["code"] == "use_async_endpoint"


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"size": "65x64"}, "size"),
        ({"size": "big"}, "size"),
        ({"size": "4000x4000"}, "size"),
        ({"duration": 99}, "duration"),
        ({"fps": 500}, "fps"),
        ({"model": "nope"}, "model"),
        ({"model": "preview-image"}, "model"),
        ({"resolution": "720p"}, "size"),
        ({"prompt": ""}, "prompt"),
        ({"colour": "red"}, "colour"),
        ({"seed": -1}, "seed"),
        ({"input_image": "/etc/passwd"}, "input_image"),
        ({"input_image": "http://127.0.0.1/x.png"}, "input_image"),
        ({"input_image": "data:image/png;base64,AAAA"}, "input_image"),
        ({"webhook_url": "http://169.254.169.254/latest"}, "webhook_url"),
    ],
)
async def test_invalid_values_name_the_field_and_hold_nothing(
    client: httpx.AsyncClient, account: Tenant, patch: dict, param: str
) -> None:
    before = (await client.get("/v1/credits", headers=account.headers)).json()
    response = await client.post(
        "/v1/async/videos/generations", json={**BASE, **patch}, headers=account.headers
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["param"] == param, error
    assert error["type"] == "invalid_request_error"
    assert error["message"]
    assert (await client.get("/v1/credits", headers=account.headers)).json() == before


async def test_missing_prompt_is_named(client: httpx.AsyncClient, account: Tenant) -> None:
    response = await client.post(
        "/v1/async/videos/generations", json={"model": "preview"}, headers=account.headers
    )
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "prompt"
    assert response.json()["error"]["code"] == "missing_parameter"


async def test_malformed_json_is_400(client: httpx.AsyncClient, account: Tenant) -> None:
    response = await client.post(
        "/v1/async/videos/generations",
        content=b"{not json",
        headers={**account.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
