"""The dialects whose requests are multipart forms (OpenAI's input_reference, PixelAPI's
image) decode the form's image only after the request has passed every check that costs
no decode (plan, limits, credits), as the JSON routes do; PixVerse's image upload is rate
limited before its form is read."""

from __future__ import annotations

import io
import secrets
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select

from framegate.config import Settings
from framegate.kit import images
from framegate.limits.service import PlanLimits
from framegate.models import Upload
from framegate.runtime import Runtime
from tests.conftest import Tenant, make_account, wait_for_task

OPENAI = "/v1/videos"
OPENAI_FORM = {"model": "preview", "prompt": "form intake", "seconds": "1", "size": "640x360"}
PIXELAPI = "/v1/video/generate"
PIXELAPI_FORM = {"model": "preview", "prompt": "form intake", "duration": "1"}
PIXVERSE_UPLOAD = "/openapi/v2/image/upload"
GATED = {"model": "test-gated", "prompt": "holds the slot", "duration": 1, "size": "64x64"}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# A PNG signature followed by nothing decodable: refused as invalid_image once decoded.
CORRUPT_PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
# A well-formed PNG header declaring 60000x60000 pixels: refused as image_too_large.
HUGE_PNG = (
    b"\x89PNG\r\n\x1a\n"
    + _chunk(b"IHDR", struct.pack(">IIBBBBB", 60_000, 60_000, 8, 2, 0, 0, 0))
    + _chunk(b"IEND", b"")
)


def png_bytes(size: tuple[int, int] = (64, 36)) -> bytes:
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize(size).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The params of the files decoded for requests during the test (uploads and input
    images both decode through the process's limiter)."""
    seen: list[str] = []
    run = images.image_decoding.run

    async def counted(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("param", "?"))
        return await run(function, *args, **kwargs)

    monkeypatch.setattr(images.image_decoding, "run", counted)
    return seen


@pytest.fixture
def scratch(settings: Settings) -> Callable[[], set[Path]]:
    """The partial uploads on scratch disk now."""
    folder = settings.data_dir / "tmp" / "uploads"
    return lambda: set(folder.glob("*")) if folder.exists() else set()


async def upload_rows(runtime: Runtime, tenant: Tenant) -> int:
    async with runtime.sessionmaker() as session:
        statement = select(func.count()).select_from(Upload).where(Upload.account_id == tenant.id)
        return int((await session.execute(statement)).scalar_one())


async def openai_form(
    client: httpx.AsyncClient,
    tenant: Tenant,
    image: bytes,
    headers: dict[str, str] | None = None,
    **fields: str,
) -> httpx.Response:
    return await client.post(
        OPENAI,
        data={**OPENAI_FORM, **fields},
        files={"input_reference": ("frame.png", image, "image/png")},
        headers=headers or tenant.headers,
    )


async def pixelapi_form(client: httpx.AsyncClient, tenant: Tenant, image: bytes) -> httpx.Response:
    return await client.post(
        PIXELAPI,
        data=PIXELAPI_FORM,
        files={"image": ("frame.png", image, "image/png")},
        headers=tenant.headers,
    )


async def one_slot_account(runtime: Runtime, *, requests_per_minute: int = 100_000) -> Tenant:
    plan = f"form-intake-{secrets.token_hex(4)}"
    async with runtime.sessionmaker() as session:
        await runtime.limits.save_plan(
            session,
            PlanLimits(
                name=plan,
                max_concurrent_videos=1,
                max_concurrent_images=1,
                requests_per_minute=requests_per_minute,
            ),
        )
        created = await runtime.accounts.create(session, name="form", credits=100, plan=plan)
        await session.commit()
    return Tenant(created.account.id, created.key.secret, created.key.key.id)


# -- OpenAI: multipart input_reference ---------------------------------------------------


@pytest.mark.parametrize("image", [CORRUPT_PNG, HUGE_PNG], ids=["corrupt", "huge"])
async def test_openai_form_without_credits_is_insufficient_quota_before_any_decode(
    client: httpx.AsyncClient,
    runtime: Runtime,
    decodes: list[str],
    scratch: Callable[[], set[Path]],
    image: bytes,
) -> None:
    broke = await make_account(runtime, credits=0)
    before = scratch()
    response = await openai_form(client, broke, image)
    assert response.status_code == 429, response.text
    assert response.json()["error"]["type"] == "insufficient_quota"
    assert response.json()["error"]["code"] == "insufficient_quota"
    assert response.headers["x-should-retry"] == "false"
    assert decodes == []
    assert await upload_rows(runtime, broke) == 0
    assert scratch() == before


async def test_openai_form_over_the_key_spend_cap_is_refused_before_any_decode(
    client: httpx.AsyncClient, runtime: Runtime, decodes: list[str]
) -> None:
    tenant = await make_account(runtime, credits=1000)
    capped = await client.post(
        "/v1/keys", json={"name": "capped", "spend_cap": 1}, headers=tenant.headers
    )
    assert capped.status_code == 201, capped.text
    headers = {"Authorization": f"Bearer {capped.json()['secret']}"}
    # Three seconds cost more than the key's cap of one credit.
    response = await openai_form(client, tenant, CORRUPT_PNG, headers=headers, seconds="3")
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "insufficient_quota"
    assert decodes == []


@pytest.mark.parametrize(
    ("image", "code"),
    [(CORRUPT_PNG, "invalid_image"), (HUGE_PNG, "image_too_large")],
    ids=["corrupt", "huge"],
)
async def test_openai_form_with_credits_refuses_the_image_itself(
    client: httpx.AsyncClient, runtime: Runtime, decodes: list[str], image: bytes, code: str
) -> None:
    funded = await make_account(runtime, credits=100)
    response = await openai_form(client, funded, image)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        code,
        "input_reference",
    )
    assert decodes == ["input_reference"]
    assert await upload_rows(runtime, funded) == 0


async def test_openai_form_with_a_valid_image_completes(
    client: httpx.AsyncClient, runtime: Runtime, decodes: list[str]
) -> None:
    funded = await make_account(runtime, credits=100)
    response = await openai_form(client, funded, png_bytes())
    assert response.status_code == 200, response.text
    # The upload is decoded to type it, then the task service reduces it for the output.
    assert decodes == ["input_reference", "input_image"]
    task = await wait_for_task(client, funded, response.json()["id"])
    assert task["status"] == "completed", task
    assert task["input"]["input_image"].startswith("upl_")
    assert await upload_rows(runtime, funded) == 1


# -- PixelAPI: multipart image -------------------------------------------------------------


@pytest.mark.parametrize("image", [CORRUPT_PNG, HUGE_PNG], ids=["corrupt", "huge"])
async def test_pixelapi_form_without_credits_is_402_before_any_decode(
    client: httpx.AsyncClient,
    runtime: Runtime,
    decodes: list[str],
    scratch: Callable[[], set[Path]],
    image: bytes,
) -> None:
    broke = await make_account(runtime, credits=0)
    before = scratch()
    response = await pixelapi_form(client, broke, image)
    assert response.status_code == 402, response.text
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"]["code"] == "insufficient_credits"
    assert decodes == []
    assert await upload_rows(runtime, broke) == 0
    assert scratch() == before


async def test_pixelapi_form_at_the_concurrency_limit_is_429_before_any_decode(
    client: httpx.AsyncClient, runtime: Runtime, decodes: list[str]
) -> None:
    tenant = await one_slot_account(runtime)
    running = await client.post("/v1/async/videos/generations", json=GATED, headers=tenant.headers)
    assert running.status_code == 202, running.text
    try:
        response = await pixelapi_form(client, tenant, CORRUPT_PNG)
        assert response.status_code == 429, response.text
        assert response.json()["error"]["code"] == "concurrency_limit_exceeded"
        assert decodes == []
    finally:
        await client.post(f"/v1/tasks/{running.json()['id']}/cancel", headers=tenant.headers)


@pytest.mark.parametrize("image", [CORRUPT_PNG, HUGE_PNG], ids=["corrupt", "huge"])
async def test_pixelapi_form_with_credits_refuses_the_image_itself(
    client: httpx.AsyncClient, runtime: Runtime, decodes: list[str], image: bytes
) -> None:
    funded = await make_account(runtime, credits=100)
    response = await pixelapi_form(client, funded, image)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    # PixelAPI has one code for an image it cannot take.
    assert (error["code"], error["param"]) == ("invalid_image", "image")
    assert decodes == ["image"]
    assert await upload_rows(runtime, funded) == 0


async def test_pixelapi_form_with_a_valid_image_completes(
    client: httpx.AsyncClient, runtime: Runtime, decodes: list[str]
) -> None:
    funded = await make_account(runtime, credits=100)
    response = await pixelapi_form(client, funded, png_bytes())
    assert response.status_code == 200, response.text
    assert decodes == ["image", "input_image"]
    task = await wait_for_task(client, funded, response.json()["task_id"])
    assert task["status"] == "completed", task
    assert task["input"]["input_image"].startswith("upl_")


# -- PixVerse: the image upload is an upload, rate limited like every authenticated route ---


async def test_pixverse_upload_is_rate_limited_before_its_form_is_read(
    client: httpx.AsyncClient, runtime: Runtime, decodes: list[str]
) -> None:
    tenant = await one_slot_account(runtime, requests_per_minute=1)
    headers = {"API-KEY": tenant.api_key}
    files = {"image": ("frame.png", png_bytes(), "image/png")}
    first = await client.post(PIXVERSE_UPLOAD, files=files, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["ErrCode"] == 0
    assert decodes == ["image"]
    second = await client.post(PIXVERSE_UPLOAD, files=files, headers=headers)
    assert second.status_code == 429, second.text
    assert second.json()["ErrCode"] == 500044
    assert second.json()["Resp"] is None
    assert "retry-after" in second.headers
    assert decodes == ["image"]
    assert await upload_rows(runtime, tenant) == 1
