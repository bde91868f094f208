"""The PixelAPI dialect against a live server: a client written the way PixelAPI's docs show
(plain HTTP, Bearer key, JSON or a multipart form, poll GET /v1/video/{id}, download
output_url) works unchanged, and every error comes back in PixelAPI's envelope."""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import av
import httpx
import numpy as np
import pytest
import yaml

from framegate.app import create_app
from framegate.compat.pixelapi.endpoints import _to_framegate, generation_id, task_number
from framegate.compat.pixelapi.errors import dialect_code
from framegate.compat.pixelapi.schemas import PixelVideoRequest
from framegate.config import Settings
from framegate.engines.preview import PreviewEngine
from framegate.engines.registry import EngineRegistry
from framegate.exceptions import ServiceUnavailable
from framegate.runtime import Runtime
from tests.conftest import Tenant, make_account
from tests.engines.vendors.common import FAKE_HOST, LoopbackServer
from tests.engines_for_tests import FailingEngine, GatedEngine
from tests.uploads.samples import image_bytes

PRICE = 90  # PixelAPI's price of a clip, in credits
CLIP = {
    "prompt": "A cinematic drone shot gliding over a misty mountain valley at dawn",
    "resolution": "1080p",
    "duration": 5,
}
CATALOG: dict[str, Any] = {
    "routes": [
        {
            # What an operator does to serve PixelAPI clients: alias a video route.
            "id": "pixelapi-preview",
            "aliases": ["pixelapi"],
            "kind": "video",
            "engine": "preview",
            # 8 fps keeps 1080p clips quick on a CPU.
            "capabilities": {"text_to_video": True, "image_to_video": True, "default_fps": 8},
            "pricing": {"unit": "clip", "credits": {"480p": PRICE, "720p": PRICE, "1080p": PRICE}},
        },
        {
            "id": "test-failing",
            "kind": "video",
            "engine": "failing",
            "capabilities": {"text_to_video": True},
            "pricing": {"unit": "clip", "credits": {"480p": PRICE}},
        },
        {
            "id": "test-gated",
            "kind": "video",
            "engine": "gated",
            "capabilities": {"text_to_video": True},
            "pricing": {"unit": "clip", "credits": {"480p": PRICE}},
        },
    ]
}
TIMEOUT = 30.0


@dataclass
class Live:
    url: str
    tenant: Tenant
    other: Tenant
    poor: Tenant
    limited: Tenant
    admin: Tenant
    uploads_dir: Path


def bearer(tenant: Tenant) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant.api_key}"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data_dir: Path = tmp_path_factory.mktemp("pixelapi")
    catalog = data_dir / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(CATALOG))
    settings = Settings(
        env="test",
        data_dir=data_dir,
        secret_key=secrets.token_urlsafe(40),
        catalog_file=catalog,
        worker_concurrency=2,
        worker_poll_seconds=0.05,
        default_max_concurrent_videos=20,
        default_requests_per_minute=100_000,
        allow_private_networks=f"{FAKE_HOST}/32",
    )

    async def accounts() -> tuple[Tenant, ...]:
        runtime = await Runtime.create(settings)
        try:
            return (
                await make_account(runtime, credits=10_000),
                await make_account(runtime, credits=10_000),
                await make_account(runtime, credits=PRICE - 1),
                await make_account(runtime, credits=10_000),
                await make_account(runtime, scopes=["admin"]),
            )
        finally:
            await runtime.close()

    tenant, other, poor, limited, admin = asyncio.run(accounts())
    engines = EngineRegistry([PreviewEngine(), FailingEngine(), GatedEngine()])
    app = create_app(settings, engines=engines)
    with LoopbackServer(app, lifespan=True) as server:
        yield Live(
            server.url, tenant, other, poor, limited, admin, settings.storage_dir / "uploads"
        )


def wait_until_done(base: str, headers: dict[str, str], generation_id: str) -> dict[str, Any]:
    """Poll GET /v1/video/{id} as PixelAPI's docs say, until it leaves `processing`."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        response = httpx.get(f"{base}/v1/video/{generation_id}", headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] != "processing":
            return body
        assert time.monotonic() < deadline, f"{generation_id} still processing: {body}"
        time.sleep(0.1)


def decode(data: bytes) -> tuple[int, int, list[np.ndarray[Any, Any]]]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return stream.width, stream.height, frames


def native_task(live: Live, task_id: str) -> dict[str, Any]:
    response = httpx.get(f"{live.url}/v1/tasks/{task_id}", headers=bearer(live.tenant))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_pixel_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "detail"}, body
    assert body["error"]["code"] == code, body
    assert body["detail"] == body["error"]["message"] != ""
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    return body


def test_text_to_video_json_as_in_the_quick_start(live: Live) -> None:
    # Step 1 of the docs, byte for byte: a JSON body and a Bearer key.
    submitted = httpx.post(
        f"{live.url}/v1/video/generate",
        headers={**bearer(live.tenant), "Content-Type": "application/json"},
        content=json.dumps(CLIP),
        timeout=10,
    )
    assert submitted.status_code == 200, submitted.text
    job = submitted.json()
    assert uuid.UUID(job["generation_id"]).version == 8
    assert job["status"] == "processing"
    assert job["estimated_seconds"] >= 1
    assert job["credits_used"] == PRICE  # charged on submission, refunded if it fails
    assert job["output_url"] is None
    assert (job["resolution"], job["width"], job["height"]) == ("1080p", 1920, 1080)
    assert (job["duration"], job["model"]) == (5, "pixelapi-preview")

    # Step 2: poll until completed, then download the MP4 from output_url.
    result = wait_until_done(live.url, bearer(live.tenant), job["generation_id"])
    assert result["status"] == "completed", result
    assert result["generation_id"] == job["generation_id"]
    assert result["error_message"] is None
    assert result["credits_used"] == PRICE
    assert isinstance(result["processing_ms"], int)
    video = httpx.get(result["output_url"], timeout=10)
    assert video.status_code == 200
    assert video.headers["content-type"] == "video/mp4"
    width, height, frames = decode(video.content)
    assert (width, height, len(frames)) == (1920, 1080, 5 * 8)

    # The same task in framegate's own API, with the same credits.
    task = native_task(live, job["task_id"])
    assert task["status"] == "completed"
    assert task["credits_reserved"] == task["credits_used"] == result["credits_used"]
    assert task["input"]["prompt"] == CLIP["prompt"]
    # And the dialect finds it by its task id as well.
    by_task_id = httpx.get(f"{live.url}/v1/video/{job['task_id']}", headers=bearer(live.tenant))
    assert by_task_id.json()["generation_id"] == job["generation_id"]


def test_image_to_video_multipart_form(live: Live) -> None:
    # The docs' image-to-video curl: -F prompt=… -F resolution=… -F duration=… -F image=@….
    photo = image_bytes("JPEG", 320, 180)  # red left half, blue right half
    submitted = httpx.post(
        f"{live.url}/v1/video/generate",
        headers=bearer(live.tenant),
        data={
            "prompt": "Camera slowly zooms in, warm lighting, cinematic",
            "resolution": "720p",
            "duration": "2",
            "camera_fixed": "true",
        },
        files={"image": ("product.jpg", photo, "image/jpeg")},
        timeout=10,
    )
    assert submitted.status_code == 200, submitted.text
    job = submitted.json()
    assert job["camera_fixed"] is True
    result = wait_until_done(live.url, bearer(live.tenant), job["generation_id"])
    assert result["status"] == "completed", result
    width, height, frames = decode(httpx.get(result["output_url"], timeout=10).content)
    assert (width, height, len(frames)) == (1280, 720, 2 * 8)
    # The clip animates the image: red on the left, blue on the right.
    red, _, blue = frames[0][height // 2, width // 8].astype(int)
    assert red > blue + 60
    red, _, blue = frames[0][height // 2, width - width // 8].astype(int)
    assert blue > red + 60

    task = native_task(live, job["task_id"])
    assert task["input"]["input_image"].startswith("upl_")
    assert task["input"]["camera_fixed"] is True
    assert task["credits_used"] == result["credits_used"] == PRICE


def test_failed_generation_reports_error_message_and_refund(live: Live) -> None:
    submitted = httpx.post(
        f"{live.url}/v1/video/generate",
        headers=bearer(live.tenant),
        json={"prompt": "x", "model": "test-failing", "resolution": "720p"},
    )
    assert submitted.status_code == 200, submitted.text
    result = wait_until_done(live.url, bearer(live.tenant), submitted.json()["generation_id"])
    assert result["status"] == "failed"
    assert "the model crashed" in result["error_message"]
    assert result["credits_used"] == 0 and result["output_url"] is None
    task = native_task(live, result["task_id"])
    assert (task["credits_used"], task["credits_refunded"]) == (0, PRICE)


def test_same_idempotency_key_gives_the_same_generation(live: Live) -> None:
    headers = {**bearer(live.tenant), "Idempotency-Key": secrets.token_hex(8)}
    body = {"prompt": "once", "resolution": "720p", "duration": 1}
    first = httpx.post(f"{live.url}/v1/video/generate", headers=headers, json=body)
    again = httpx.post(f"{live.url}/v1/video/generate", headers=headers, json=body)
    assert first.status_code == again.status_code == 200
    assert first.json()["generation_id"] == again.json()["generation_id"]


def test_key_errors(live: Live) -> None:
    url = f"{live.url}/v1/video/generate"
    missing = httpx.post(url, json=CLIP)
    assert_pixel_error(missing, 401, "missing_api_key")
    wrong = httpx.post(url, json=CLIP, headers={"Authorization": "Bearer pk_live_not_a_key"})
    assert_pixel_error(wrong, 401, "invalid_api_key")
    poll = httpx.get(f"{live.url}/v1/video/{uuid.uuid4()}", headers={"X-API-Key": "nope"})
    assert_pixel_error(poll, 401, "invalid_api_key")

    created = httpx.post(
        f"{live.url}/v1/keys",
        json={"name": "reader", "scopes": ["tasks:read"]},
        headers=bearer(live.tenant),
    )
    assert created.status_code == 201, created.text
    reader = {"Authorization": f"Bearer {created.json()['secret']}"}
    assert_pixel_error(httpx.post(url, json=CLIP, headers=reader), 403, "forbidden")

    # The read-only key can poll, also sent the way other clients send keys.
    job = httpx.post(url, json={**CLIP, "duration": 1}, headers=bearer(live.tenant)).json()
    polled = httpx.get(
        f"{live.url}/v1/video/{job['generation_id']}",
        headers={"X-API-Key": created.json()["secret"]},
    )
    assert polled.status_code == 200, polled.text


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"resolution": "1080p"}, 422, "missing_parameter", "prompt"),
        ({**CLIP, "resolution": "4k"}, 422, "invalid_parameter", "resolution"),
        ({**CLIP, "duration": 60}, 422, "invalid_parameter", "duration"),
        # Strict JSON: a boolean or a string is not a duration, nor a string a flag.
        ({**CLIP, "duration": True}, 422, "invalid_parameter", "duration"),
        ({**CLIP, "duration": "5"}, 422, "invalid_parameter", "duration"),
        ({**CLIP, "camera_fixed": "true"}, 422, "invalid_parameter", "camera_fixed"),
        ({**CLIP, "aspect_ratio": "wide"}, 422, "invalid_parameter", "aspect_ratio"),
        ({**CLIP, "fps": 30}, 422, "unknown_parameter", "fps"),
        ({**CLIP, "model": "no-such-model"}, 422, "model_not_found", "model"),
        ({**CLIP, "image": "data:image/png;base64,AAAA"}, 422, "invalid_image", "image"),
    ],
)
def test_invalid_fields(
    live: Live, body: dict[str, Any], status: int, code: str, param: str
) -> None:
    response = httpx.post(f"{live.url}/v1/video/generate", json=body, headers=bearer(live.tenant))
    assert assert_pixel_error(response, status, code)["error"]["param"] == param


def test_malformed_bodies(live: Live) -> None:
    url = f"{live.url}/v1/video/generate"
    headers = bearer(live.tenant)
    not_json = httpx.post(
        url, content=b"{prompt", headers={**headers, "Content-Type": "application/json"}
    )
    assert_pixel_error(not_json, 400, "invalid_json")
    text = httpx.post(url, content=b"hi", headers={**headers, "Content-Type": "text/plain"})
    assert_pixel_error(text, 400, "invalid_request")
    not_an_image = httpx.post(
        url,
        headers=headers,
        data={"prompt": "x"},
        files={"image": ("product.jpg", b"not an image", "image/jpeg")},
    )
    body = assert_pixel_error(not_an_image, 422, "invalid_image")
    assert body["error"]["param"] == "image"
    stored = sorted(live.uploads_dir.iterdir()) if live.uploads_dir.exists() else []
    bad_form_field = httpx.post(
        url,
        headers=headers,
        data={"prompt": "x", "resolution": "8k"},
        files={"image": ("product.png", image_bytes("PNG"), "image/png")},
    )
    assert_pixel_error(bad_form_field, 422, "invalid_parameter")
    too_long = httpx.post(
        url,
        headers=headers,
        data={"prompt": "x", "duration": "60"},
        files={"image": ("product.png", image_bytes("PNG"), "image/png")},
    )
    assert assert_pixel_error(too_long, 422, "invalid_parameter")["error"]["param"] == "duration"
    # A refused request leaves no stored image behind.
    assert (sorted(live.uploads_dir.iterdir()) if live.uploads_dir.exists() else []) == stored


def test_not_enough_credits_is_402(live: Live) -> None:
    response = httpx.post(f"{live.url}/v1/video/generate", json=CLIP, headers=bearer(live.poor))
    body = assert_pixel_error(response, 402, "insufficient_credits")
    assert str(PRICE) in body["detail"]


def test_unknown_or_foreign_generation_is_404(live: Live) -> None:
    headers = bearer(live.tenant)
    for unknown in (str(uuid.uuid4()), "task_nope", "x" * 500):
        response = httpx.get(f"{live.url}/v1/video/{unknown}", headers=headers)
        assert_pixel_error(response, 404, "not_found")
    mine = httpx.post(
        f"{live.url}/v1/video/generate", json={**CLIP, "duration": 1}, headers=headers
    ).json()
    for foreign in (mine["generation_id"], mine["task_id"]):
        response = httpx.get(f"{live.url}/v1/video/{foreign}", headers=bearer(live.other))
        assert_pixel_error(response, 404, "not_found")


def put_on_plan(live: Live, tenant: Tenant, *, videos: int, rpm: int) -> None:
    admin = bearer(live.admin)
    plan = f"plan-{secrets.token_hex(3)}"
    limits = {
        "max_concurrent_videos": videos,
        "max_concurrent_images": 1,
        "requests_per_minute": rpm,
    }
    assert httpx.put(f"{live.url}/v1/admin/plans/{plan}", json=limits, headers=admin).is_success
    moved = httpx.patch(
        f"{live.url}/v1/admin/accounts/{tenant.id}", json={"plan": plan}, headers=admin
    )
    assert moved.status_code == 200, moved.text


def test_concurrency_limit_is_429_with_retry_after(live: Live) -> None:
    tenant = live.other
    put_on_plan(live, tenant, videos=1, rpm=600)
    url = f"{live.url}/v1/video/generate"
    held = httpx.post(url, json={"prompt": "wait", "model": "test-gated"}, headers=bearer(tenant))
    assert held.status_code == 200, held.text
    try:
        refused = httpx.post(url, json=CLIP, headers=bearer(tenant))
        assert_pixel_error(refused, 429, "concurrency_limit_exceeded")
        assert int(refused.headers["retry-after"]) >= 1
    finally:
        cancelled = httpx.post(
            f"{live.url}/v1/tasks/{held.json()['task_id']}/cancel", headers=bearer(tenant)
        )
        assert cancelled.status_code == 200, cancelled.text
    # A cancelled generation reads as failed, refunded.
    after = httpx.get(f"{live.url}/v1/video/{held.json()['generation_id']}", headers=bearer(tenant))
    assert (after.json()["status"], after.json()["credits_used"]) == ("failed", 0)


def test_openapi_documents_both_routes(live: Live) -> None:
    schema = httpx.get(f"{live.url}/openapi.json").json()
    generate = schema["paths"]["/v1/video/generate"]["post"]
    assert generate["summary"] and generate["description"]
    assert set(generate["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    poll = schema["paths"]["/v1/video/{generation_id}"]["get"]
    assert poll["summary"] and poll["description"]
    # The native synchronous route is a different path and is untouched.
    assert "/v1/videos/generations" in schema["paths"]


def test_request_rate_limit_is_429_with_retry_after(live: Live) -> None:
    put_on_plan(live, live.limited, videos=5, rpm=2)
    poll = f"{live.url}/v1/video/{uuid.uuid4()}"
    statuses = [httpx.get(poll, headers=bearer(live.limited)).status_code for _ in range(2)]
    assert statuses == [404, 404]
    refused = httpx.post(f"{live.url}/v1/video/generate", json=CLIP, headers=bearer(live.limited))
    assert_pixel_error(refused, 429, "rate_limit_exceeded")
    assert 1 <= int(refused.headers["retry-after"]) <= 60


def test_no_model_for_pixelapi_requests_is_503() -> None:
    # An installation whose catalog has no route aliased 'pixelapi' says what to configure.
    runtime: Any = SimpleNamespace(catalog=SimpleNamespace(get=lambda name: None))
    with pytest.raises(ServiceUnavailable, match="alias 'pixelapi'") as caught:
        _to_framegate(runtime, PixelVideoRequest(prompt="x"))
    assert dialect_code(caught.value) == "service_unavailable"
    # Naming a model works without the alias.
    native = _to_framegate(runtime, PixelVideoRequest(prompt="x", model="preview"))
    assert native.model == "preview"


def test_generation_ids_carry_the_task_number() -> None:
    for number in (1, 12345, 2**53 - 1):
        task: Any = SimpleNamespace(number=number, id="task_x")
        value = generation_id(task)
        assert uuid.UUID(value).version == 8
        assert task_number(value) == number
        assert task_number(value.upper()) == number
    assert task_number(str(uuid.uuid4())) is None
    assert task_number("task_abc") is None
    unnumbered: Any = SimpleNamespace(number=None, id="task_x")  # made before numbers existed
    assert generation_id(unnumbered) == "task_x"
