"""Input images are fetched and decoded only after every cheap check has passed, and what is
kept of them is reduced to the output's size."""

from __future__ import annotations

import base64
import io
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from framegate.kit import images
from framegate.limits.service import PlanLimits
from framegate.runtime import Runtime
from tests.conftest import Tenant, make_account

CLIP = {"model": "preview", "prompt": "intake", "duration": 1, "size": "640x360"}
GATED = {"model": "test-gated", "prompt": "holds the slot", "duration": 1, "size": "64x64"}
SUBMIT = "/v1/async/videos/generations"
# Well formed as a data URI, but not an image: refused with 422 invalid_image once decoded.
CORRUPT_PNG = (
    "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode()
)
# Nothing listens here: fetching it would fail (and take a while).
UNREACHABLE = "http://127.0.0.3:9/never.png"


def png_uri(size: tuple[int, int]) -> str:
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize(size).convert("RGB").save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


async def account_with_one_video_slot(runtime: Runtime) -> Tenant:
    plan = f"one-video-{secrets.token_hex(4)}"
    async with runtime.sessionmaker() as session:
        await runtime.limits.save_plan(
            session,
            PlanLimits(
                name=plan,
                max_concurrent_videos=1,
                max_concurrent_images=1,
                requests_per_minute=100_000,
            ),
        )
        created = await runtime.accounts.create(session, name="one", credits=100, plan=plan)
        await session.commit()
    return Tenant(created.account.id, created.key.secret, created.key.key.id)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The params of the input images decoded during the test."""
    seen: list[str] = []
    intake = images.intake_image

    def counted(data: bytes, **kwargs: Any) -> bytes:
        seen.append(kwargs.get("param", "input_image"))
        return intake(data, **kwargs)

    monkeypatch.setattr("framegate.tasks.service.intake_image", counted)
    yield seen


async def submit(client: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> httpx.Response:
    return await client.post(SUBMIT, json={**CLIP, **fields}, headers=tenant.headers)


@pytest.mark.parametrize("image", [CORRUPT_PNG, UNREACHABLE])
async def test_no_credits_is_402_before_the_image_is_read(
    client: httpx.AsyncClient, runtime: Runtime, decodes: list[str], image: str
) -> None:
    broke = await make_account(runtime, credits=0)
    response = await submit(client, broke, input_image=image)
    assert response.status_code == 402, response.text
    assert response.json()["error"]["code"] == "insufficient_credits"
    assert decodes == []


async def test_no_credits_is_402_before_an_upload_is_read(
    client: httpx.AsyncClient, runtime: Runtime, decodes: list[str]
) -> None:
    broke = await make_account(runtime, credits=0)
    response = await submit(client, broke, input_image="upl_doesnotexist")
    assert response.status_code == 402, response.text
    assert decodes == []


async def test_with_credits_the_same_corrupt_image_is_422(
    client: httpx.AsyncClient, runtime: Runtime, decodes: list[str]
) -> None:
    funded = await make_account(runtime, credits=100)
    response = await submit(client, funded, input_image=CORRUPT_PNG)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_image"
    assert decodes == ["input_image"]


async def test_concurrency_limit_is_429_before_the_image_is_read(
    client: httpx.AsyncClient, runtime: Runtime, decodes: list[str]
) -> None:
    tenant = await account_with_one_video_slot(runtime)
    running = await client.post(SUBMIT, json=GATED, headers=tenant.headers)
    assert running.status_code == 202, running.text
    try:
        response = await submit(client, tenant, input_image=CORRUPT_PNG)
        assert response.status_code == 429, response.text
        assert response.json()["error"]["code"] == "concurrency_limit_exceeded"
        assert decodes == []
    finally:
        await client.post(f"/v1/tasks/{running.json()['id']}/cancel", headers=tenant.headers)


async def test_key_spend_cap_is_402_before_the_image_is_read(
    client: httpx.AsyncClient, runtime: Runtime, decodes: list[str]
) -> None:
    tenant = await make_account(runtime, credits=1000)
    capped = await client.post(
        "/v1/keys", json={"name": "capped", "spend_cap": 1}, headers=tenant.headers
    )
    headers = {"Authorization": f"Bearer {capped.json()['secret']}"}
    response = await client.post(
        SUBMIT, json={**CLIP, "input_image": CORRUPT_PNG, "duration": 3}, headers=headers
    )
    assert response.status_code == 402, response.text
    assert response.json()["error"]["code"] == "key_budget_exceeded"
    assert decodes == []


async def test_a_broken_last_image_is_not_decoded_either(
    client: httpx.AsyncClient, runtime: Runtime, decodes: list[str]
) -> None:
    broke = await make_account(runtime, credits=0)
    response = await submit(
        client, broke, model="test-failing", input_image=CORRUPT_PNG, last_image=CORRUPT_PNG
    )
    # test-failing takes no last frame: the plan refuses it, before any decode.
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == "last_image"
    assert decodes == []


async def test_the_dialects_refuse_before_decoding_too(
    client: httpx.AsyncClient, runtime: Runtime, decodes: list[str]
) -> None:
    broke = await make_account(runtime, credits=0)
    response = await client.post(
        "/v1/videos",
        json={"model": "preview", "prompt": "x", "input_reference": {"image_url": CORRUPT_PNG}},
        headers=broke.headers,
    )
    assert response.json()["error"]["code"] == "insufficient_quota", response.text
    assert decodes == []


async def test_the_kept_input_is_reduced_to_the_output(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    funded = await make_account(runtime, credits=100)
    response = await submit(client, funded, input_image=png_uri((2400, 2400)))
    assert response.status_code == 202, response.text
    task = await runtime.tasks.get(funded.id, response.json()["id"])
    stored = await runtime.storage.get_bytes(task.params["input_image_key"])
    with Image.open(io.BytesIO(stored)) as kept:
        # 640x360 output: the square input needs 640x640 to cover it.
        assert (kept.format, kept.size) == ("PNG", (640, 640))
    assert task.params["input_image"].startswith("data URI (")
