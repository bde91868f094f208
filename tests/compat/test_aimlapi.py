"""The AI/ML API (aimlapi.com) dialect against a live framegate on loopback, driven with plain
httpx the way AI/ML's documentation does: create a generation, poll it by generation_id until
completed, download video.url (decoded with PyAV). Image-to-video from an image URL and from
bare base64; a failed generation as status "error" with its refund; the task seen through the
native API with the same credits; and every error (bad key, bad field, scope, no credits,
concurrency limit, unknown generation) in AI/ML's envelope with AI/ML's statuses."""

from __future__ import annotations

import asyncio
import base64
import io
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
import yaml
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from framegate.app import create_app
from framegate.config import Settings
from framegate.engines.preview import PreviewEngine
from framegate.engines.registry import EngineRegistry
from framegate.runtime import Runtime
from tests.conftest import Tenant, make_account
from tests.engines.vendors.common import FAKE_HOST, LoopbackServer
from tests.engines_for_tests import FailingEngine, GatedEngine

VENDOR_URL = "/v2/generate/video/pixverse/generation"
UNIVERSAL_URL = "/v2/video/generations"
ENVELOPE_KEYS = {"statusCode", "message", "path", "requestId", "timestamp", "code", "param"}
IMAGE_COLOR = (200, 40, 40)

CATALOG: dict[str, Any] = {
    "routes": [
        {
            # AI/ML's model names aliased onto the built-in CPU preview engine.
            "id": "aiml-preview",
            "aliases": [
                "pixverse/v5/text-to-video",
                "pixverse/v5/image-to-video",
                "kling-video/v1.6/standard/image-to-video",
            ],
            "kind": "video",
            "engine": "preview",
            "capabilities": {"text_to_video": True, "image_to_video": True},
            "pricing": {"unit": "second", "credits": {"480p": 1, "720p": 2, "1080p": 4}},
        },
        {
            "id": "aiml-failing",
            "aliases": ["failing/v1/text-to-video"],
            "kind": "video",
            "engine": "failing",
            "capabilities": {"text_to_video": True},
            "pricing": {"unit": "clip", "credits": {"480p": 3}},
        },
        {
            "id": "aiml-gated",
            "kind": "video",
            "engine": "gated",
            "capabilities": {"text_to_video": True},
            "pricing": {"unit": "clip", "credits": {"480p": 3}},
        },
    ]
}


@dataclass
class Live:
    url: str
    tenants: dict[str, Tenant]


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    data_dir: Path = tmp_path_factory.mktemp("aimlapi")
    catalog = data_dir / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(CATALOG))
    settings = Settings(
        env="test",
        data_dir=data_dir,
        secret_key=secrets.token_urlsafe(40),
        catalog_file=catalog,
        worker_concurrency=2,
        worker_poll_seconds=0.05,
        allow_private_networks=f"{FAKE_HOST}/32",
        # One running video per account: the second concurrent submission is the 429.
        default_max_concurrent_videos=1,
        default_requests_per_minute=100_000,
    )
    engines = EngineRegistry([PreviewEngine(), FailingEngine(), GatedEngine()])
    runtime = await Runtime.create(settings, engines=engines)
    try:
        tenants = {
            "text": await make_account(runtime, credits=1000),
            "image": await make_account(runtime, credits=1000),
            "failing": await make_account(runtime, credits=1000),
            "errors": await make_account(runtime, credits=1000),
            "busy": await make_account(runtime, credits=1000),
            "replay": await make_account(runtime, credits=1000),
            "broke": await make_account(runtime, credits=0),
            "reader": await make_account(runtime, credits=1000, scopes=["tasks:read"]),
        }
    finally:
        await runtime.close()
    app = create_app(settings, engines=engines)
    server = LoopbackServer(app, lifespan=True).start()
    try:
        yield Live(server.url, tenants)
    finally:
        await asyncio.to_thread(server.stop)


@pytest.fixture(scope="module")
async def client(live: Live) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as c:
        yield c


def png_bytes(size: tuple[int, int] = (320, 180)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, IMAGE_COLOR).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def image_server() -> Iterator[str]:
    """An image host on loopback, as AI/ML's image_url examples point at one."""
    data = png_bytes()

    async def frame(request: Request) -> Response:
        return Response(data, media_type="image/png")

    with LoopbackServer(Starlette(routes=[Route("/frame.png", frame)])) as server:
        yield f"{server.url}/frame.png"


async def create(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], url: str = VENDOR_URL
) -> dict[str, Any]:
    response = await client.post(url, json=body, headers=tenant.headers)
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


async def poll(
    client: httpx.AsyncClient,
    tenant: Tenant,
    generation_id: str,
    url: str = VENDOR_URL,
    timeout: float = 30,
) -> tuple[dict[str, Any], set[str]]:
    """Poll as AI/ML's example does (while queued or generating), bounded; the final body
    and every status seen."""
    seen: set[str] = set()
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await client.get(
            url, params={"generation_id": generation_id}, headers=tenant.headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        seen.add(body["status"])
        if body["status"] not in ("queued", "generating"):
            return body, seen
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{generation_id} still {body['status']} after {timeout}s")
        await asyncio.sleep(0.05)


async def download_frames(client: httpx.AsyncClient, url: str) -> list[np.ndarray]:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(response.content), mode="r") as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def assert_envelope(response: httpx.Response, status: int, code: str, path: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == ENVELOPE_KEYS, body
    assert body["statusCode"] == status
    assert body["code"] == code, body
    assert body["path"] == path
    assert body["requestId"] == response.headers["x-request-id"]
    assert body["timestamp"].endswith("Z")
    assert isinstance(body["message"], str) and body["message"]
    return body


async def test_text_to_video_create_poll_download(live: Live, client: httpx.AsyncClient) -> None:
    tenant = live.tenants["text"]
    created = await create(
        client,
        tenant,
        {
            "model": "pixverse/v5/text-to-video",
            "prompt": "A menacing evil dragon appears above the tallest mountain",
            "aspect_ratio": "16:9",
            "resolution": "360p",
            "duration": "2",  # AI/ML's examples send it as a string too
            "negative_prompt": "blurry",
            "seed": 7,
            "style": "anime",  # accepted, not applied
        },
    )
    generation_id = created["id"]
    assert generation_id.startswith("task_")
    assert created["generation_id"] == generation_id
    assert created["status"] == "queued"
    assert created["meta"] == {"usage": {"credits_used": 2}}  # 2 s x 1 credit (480p tier)
    assert "video" not in created and "error" not in created

    done, seen = await poll(client, tenant, generation_id)
    assert seen <= {"queued", "generating", "completed"}
    assert done["status"] == "completed", done
    assert done["id"] == generation_id
    assert done["meta"] == {"usage": {"credits_used": 2}}
    assert "error" not in done
    video = done["video"]
    assert video["content_type"] == "video/mp4"
    assert (video["width"], video["height"]) == (640, 360)
    frames = await download_frames(client, video["url"])
    assert len(frames) == 48  # 2 s at 24 fps
    assert frames[0].shape == (360, 640, 3)

    # The same task through the native API, with the same credits.
    native = (await client.get(f"/v1/tasks/{generation_id}", headers=tenant.headers)).json()
    assert native["status"] == "completed"
    assert native["model"] == "aiml-preview"
    assert native["credits_reserved"] == native["credits_used"] == 2
    assert native["input"]["size"] == "640x360"
    assert native["input"]["seed"] == 7
    assert native["input"]["negative_prompt"] == "blurry"

    # The universal URL and an AI/ML-style "id:model" generation id name the same task.
    again, _ = await poll(
        client, tenant, f"{generation_id}:pixverse/v5/text-to-video", url=UNIVERSAL_URL
    )
    assert again["id"] == generation_id and again["status"] == "completed"
    assert httpx.URL(again["video"]["url"]).path == httpx.URL(video["url"]).path


async def test_image_to_video_from_url_and_from_bare_base64(
    live: Live, client: httpx.AsyncClient, image_server: str
) -> None:
    tenant = live.tenants["image"]
    sources = {
        "url": image_server,
        "base64": base64.b64encode(png_bytes()).decode(),
    }
    for kind, image_url in sources.items():
        created = await create(
            client,
            tenant,
            {
                "model": "kling-video/v1.6/standard/image-to-video",
                "prompt": "The camera drifts slowly",
                "image_url": image_url,
                "resolution": "480p",
                "ratio": "16:9",
                "duration": 1,
            },
            url=UNIVERSAL_URL if kind == "url" else "/v2/generate/video/kling/generation",
        )
        done, _ = await poll(client, tenant, created["id"])
        assert done["status"] == "completed", (kind, done)
        assert (done["video"]["width"], done["video"]["height"]) == (854, 480)
        frames = await download_frames(client, done["video"]["url"])
        assert len(frames) == 24
        # A solid red input image: the clip shows it, whatever the camera move.
        mean = frames[0].reshape(-1, 3).mean(axis=0)
        assert np.allclose(mean, IMAGE_COLOR, atol=16), (kind, mean)
        native = (await client.get(f"/v1/tasks/{created['id']}", headers=tenant.headers)).json()
        described = native["input"]["input_image"]
        assert described == image_url if kind == "url" else described.startswith("data URI")


async def test_failed_generation_is_error_and_refunded(
    live: Live, client: httpx.AsyncClient
) -> None:
    tenant = live.tenants["failing"]
    created = await create(
        client, tenant, {"model": "failing/v1/text-to-video", "prompt": "anything"}
    )
    assert created["meta"] == {"usage": {"credits_used": 3}}
    done, _ = await poll(client, tenant, created["id"])
    assert done["status"] == "error"
    assert done["error"]["name"] == "engine_error"
    assert "crashed" in done["error"]["message"]
    assert "video" not in done
    assert done["meta"] == {"usage": {"credits_used": 0}}
    native = (await client.get(f"/v1/tasks/{created['id']}", headers=tenant.headers)).json()
    assert native["status"] == "failed"
    assert native["credits_reserved"] == native["credits_refunded"] == 3
    assert native["credits_used"] == 0


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": "pixverse/v5/text-to-video"}, "prompt", "missing_parameter"),
        ({"prompt": "a dragon"}, "model", "missing_parameter"),
        ({"model": "pixverse/v6", "prompt": "a dragon"}, "model", "model_not_found"),
        ({"model": "aiml-preview", "prompt": "x", "duration": 60}, "duration", "invalid_value"),
        ({"model": "aiml-preview", "prompt": "x", "duration": "five"}, "duration", None),
        ({"model": "aiml-preview", "prompt": "x", "duration": True}, "duration", None),
        ({"model": "aiml-preview", "prompt": "x", "duration": 5.5}, "duration", None),
        ({"model": "aiml-preview", "prompt": "x", "aspect_ratio": "wide"}, "aspect_ratio", None),
        ({"model": "aiml-preview", "prompt": "x", "camera_fixed": "yes"}, "camera_fixed", None),
        ({"model": "aiml-preview", "prompt": "x", "resolution": "huge"}, "resolution", None),
        ({"model": "aiml-preview", "prompt": "x", "resolution": "2160p"}, "resolution", None),
        ({"model": "aiml-preview", "prompt": "x", "seed": -1}, "seed", None),
        ({"model": "aiml-preview", "prompt": "x", "image_url": "ftp://h/a.png"}, "image_url", None),
        ({"model": "aiml-preview", "prompt": "x", "durations": 5}, "durations", None),
        (
            {"model": "aiml-preview", "prompt": "x", "lip_sync_tts_content": "Hello"},
            "lip_sync_tts_content",
            "unsupported_parameter",
        ),
    ],
)
async def test_invalid_body_is_400_body_validation_error(
    live: Live,
    client: httpx.AsyncClient,
    body: dict[str, Any],
    param: str,
    code: str | None,
) -> None:
    response = await client.post(VENDOR_URL, json=body, headers=live.tenants["errors"].headers)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["param"] == param, error
    assert error["message"].startswith("Body validation error! ")
    # framegate's field names never leak into the dialect's messages.
    assert "input_image" not in error["message"]
    assert_envelope(response, 400, code or error["code"], VENDOR_URL)


async def test_key_and_scope_errors(live: Live, client: httpx.AsyncClient) -> None:
    body = {"model": "aiml-preview", "prompt": "a dragon"}
    bad = {"Authorization": "Bearer fg_live_" + "x" * 40}
    response = await client.post(VENDOR_URL, json=body, headers=bad)
    assert_envelope(response, 401, "invalid_api_key", VENDOR_URL)
    # The key is checked before the body.
    response = await client.post(VENDOR_URL, json={"prompt": 1}, headers=bad)
    assert_envelope(response, 401, "invalid_api_key", VENDOR_URL)
    response = await client.get(VENDOR_URL, params={"generation_id": "task_x"})
    assert_envelope(response, 401, "missing_api_key", VENDOR_URL)
    reader = live.tenants["reader"]
    response = await client.post(UNIVERSAL_URL, json=body, headers=reader.headers)
    assert_envelope(response, 403, "insufficient_scope", UNIVERSAL_URL)


async def test_vendor_segment_is_checked_after_the_key(
    live: Live, client: httpx.AsyncClient
) -> None:
    path = f"/v2/generate/video/{'v' * 65}/generation"
    body = {"model": "aiml-preview", "prompt": 1}
    bad = {"Authorization": "Bearer fg_live_" + "x" * 40}
    response = await client.post(path, json=body, headers=bad)
    assert_envelope(response, 401, "invalid_api_key", path)
    tenant = live.tenants["errors"]
    # Over-long vendor and invalid body: the vendor is named, as the path comes first.
    response = await client.post(path, json=body, headers=tenant.headers)
    error = assert_envelope(response, 400, "invalid_value", path)
    assert error["param"] == "vendor"
    assert error["message"].startswith("Body validation error! vendor: ")
    response = await client.get(path, headers=tenant.headers)
    error = assert_envelope(response, 400, "invalid_value", path)
    assert error["param"] == "vendor"


async def test_unknown_or_missing_generation_id(live: Live, client: httpx.AsyncClient) -> None:
    tenant = live.tenants["errors"]
    response = await client.get(VENDOR_URL, headers=tenant.headers)
    body = assert_envelope(response, 400, "missing_parameter", VENDOR_URL)
    assert body["param"] == "generation_id"
    for unknown in ("task_doesnotexist", "123456789"):
        response = await client.get(
            VENDOR_URL, params={"generation_id": unknown}, headers=tenant.headers
        )
        body = assert_envelope(response, 404, "task_not_found", VENDOR_URL)
        assert body["param"] == "generation_id"
    # Another account's generation is indistinguishable from a missing one.
    other = live.tenants["text"]
    tasks = (await client.get("/v1/tasks", headers=other.headers)).json()["data"]
    assert tasks
    response = await client.get(
        VENDOR_URL, params={"generation_id": tasks[0]["id"]}, headers=tenant.headers
    )
    assert_envelope(response, 404, "task_not_found", VENDOR_URL)


async def test_no_credits_is_403_as_aimlapi_answers_it(
    live: Live, client: httpx.AsyncClient
) -> None:
    broke = live.tenants["broke"]
    body = {"model": "pixverse/v5/text-to-video", "prompt": "a dragon", "duration": 1}
    response = await client.post(VENDOR_URL, json=body, headers=broke.headers)
    assert_envelope(response, 403, "insufficient_credits", VENDOR_URL)
    assert (await client.get("/v1/tasks", headers=broke.headers)).json()["data"] == []


async def test_concurrency_limit_is_429_with_retry_after(
    live: Live, client: httpx.AsyncClient
) -> None:
    tenant = live.tenants["busy"]
    body = {"model": "aiml-gated", "prompt": "wait", "duration": 1, "resolution": "360p"}
    running = await create(client, tenant, body)
    response = await client.post(VENDOR_URL, json=body, headers=tenant.headers)
    assert_envelope(response, 429, "concurrency_limit_exceeded", VENDOR_URL)
    assert int(response.headers["retry-after"]) >= 1
    cancelled = await client.post(f"/v1/tasks/{running['id']}/cancel", headers=tenant.headers)
    assert cancelled.status_code == 200, cancelled.text
    done, _ = await poll(client, tenant, running["id"])
    assert done["status"] == "error"
    assert done["error"]["name"] == "cancelled"
    assert done["meta"] == {"usage": {"credits_used": 0}}


async def test_idempotency_key_replays_the_generation(
    live: Live, client: httpx.AsyncClient
) -> None:
    tenant = live.tenants["replay"]
    body = {"model": "pixverse/v5/text-to-video", "prompt": "a dragon", "duration": 1}
    headers = {**tenant.headers, "Idempotency-Key": secrets.token_hex(8)}
    first = await client.post(VENDOR_URL, json=body, headers=headers)
    # The key is marked complete just after the first response is sent: a retry that fast
    # may get 409 "still in progress" (Retry-After: 1); a client retries it.
    for _ in range(50):
        second = await client.post(VENDOR_URL, json=body, headers=headers)
        if second.status_code != 409:
            break
        await asyncio.sleep(0.05)
    assert first.status_code == second.status_code == 200, second.text
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    done, _ = await poll(client, tenant, first.json()["id"])
    assert done["status"] == "completed"
    tasks = (await client.get("/v1/tasks", headers=tenant.headers)).json()["data"]
    assert [t["id"] for t in tasks] == [first.json()["id"]]


async def test_openapi_documents_the_routes(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in ("/v2/generate/video/{vendor}/generation", UNIVERSAL_URL):
        for method in ("post", "get"):
            operation = paths[path][method]
            assert operation["summary"].startswith("AI/ML API:")
            assert operation["description"]
            assert "compat: aimlapi" in operation["tags"]
            assert "422" not in operation["responses"]
