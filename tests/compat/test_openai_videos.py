"""The OpenAI Videos API dialect (/v1/videos) against a live server on loopback, driven by the
official `openai` SDK: create and poll to completed, retrieve, list with cursors, download the
MP4 (decoded with PyAV), its thumbnail and a spritesheet, multipart input_reference, remix,
delete; and OpenAI's error envelope for a bad key, a bad field, no credits and the
concurrency limit. Every video is a framegate task with the same credits."""

from __future__ import annotations

import asyncio
import base64
import io
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import openai
import pytest
import yaml
from PIL import Image

from framegate.app import create_app
from framegate.config import Settings
from framegate.engines.preview import PreviewEngine
from framegate.engines.registry import EngineRegistry
from framegate.limits.service import PlanLimits
from framegate.runtime import Runtime
from tests.conftest import Tenant, make_account
from tests.engines.vendors.common import FAKE_HOST, LoopbackServer
from tests.engines_for_tests import FailingEngine, GatedEngine

# The SDK marks the Sora methods deprecated (OpenAI's own service is being retired).
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")

FPS = 12
PRICE_720P = 2  # credits per second
CATALOG: dict[str, Any] = {
    "routes": [
        {
            "id": "openai-preview",
            "aliases": ["sora-2"],
            "kind": "video",
            "engine": "preview",
            "capabilities": {
                "text_to_video": True,
                "image_to_video": True,
                "default_duration": 4,
                "default_fps": FPS,
            },
            "pricing": {"unit": "second", "credits": {"480p": 1, "720p": PRICE_720P}},
        },
        {
            "id": "openai-preview-pro",
            "aliases": ["sora-2-pro"],
            "kind": "video",
            "engine": "preview",
            "capabilities": {"text_to_video": True, "default_fps": FPS},
            "pricing": {"unit": "second", "credits": {"480p": 3, "720p": 5}},
        },
        {
            "id": "openai-failing",
            "kind": "video",
            "engine": "failing",
            "capabilities": {"text_to_video": True},
            "pricing": {"unit": "clip", "credits": {"480p": 3}},
        },
        {
            "id": "openai-gated",
            "kind": "video",
            "engine": "gated",
            "capabilities": {"text_to_video": True},
            "pricing": {"unit": "clip", "credits": {"480p": 3}},
        },
    ]
}
SMALL = "128x72"  # a fast clip where the size does not matter
ONE_VIDEO_PLAN = "one-video-at-a-time"


@dataclass
class Live:
    url: str
    tenants: dict[str, Tenant]

    def client(self, tenant: str, **options: Any) -> openai.OpenAI:
        options.setdefault("max_retries", 0)
        return openai.OpenAI(
            base_url=f"{self.url}/v1", api_key=self.tenants[tenant].api_key, timeout=30, **options
        )

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


async def _account_on_plan(runtime: Runtime, plan: str) -> Tenant:
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
        created = await runtime.accounts.create(session, name="limited", credits=100, plan=plan)
        await session.commit()
    return Tenant(created.account.id, created.key.secret, created.key.key.id)


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    data_dir: Path = tmp_path_factory.mktemp("openai-videos")
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
        default_max_concurrent_videos=100,
        default_requests_per_minute=100_000,
    )
    engines = EngineRegistry([PreviewEngine(), FailingEngine(), GatedEngine()])
    runtime = await Runtime.create(settings, engines=engines)
    try:
        tenants = {
            "main": await make_account(runtime, credits=10_000),
            "lister": await make_account(runtime, credits=10_000),
            "deleter": await make_account(runtime, credits=10_000),
            "broke": await make_account(runtime, credits=0),
            "reader": await make_account(runtime, credits=100, scopes=["tasks:read"]),
            "limited": await _account_on_plan(runtime, ONE_VIDEO_PLAN),
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
def completed(live: Live) -> Any:
    """One 4-second 1280x720 video made through create_and_poll, which waits as long as
    the openai-poll-after-ms header says."""
    client = live.client("main")
    video = client.videos.create_and_poll(
        model="sora-2", prompt="A lighthouse at dusk, waves below", seconds="4", size="1280x720"
    )
    return video


def png_bytes(
    size: tuple[int, int] = (320, 180), color: tuple[int, int, int] = (200, 90, 30)
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def native_task(live: Live, tenant: str, task_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {live.tenants[tenant].api_key}"}
    with live.http() as http:
        response = http.get(f"/v1/tasks/{task_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def decoded_frames(data: bytes) -> tuple[int, int, int]:
    """(frames, width, height) of an MP4, decoded with PyAV."""
    with av.open(io.BytesIO(data)) as container:
        frames = list(container.decode(video=0))
    return len(frames), frames[0].width, frames[0].height


# --- the happy path ---------------------------------------------------------------------------


def test_create_and_poll_to_completed_and_retrieve(live: Live, completed: Any) -> None:
    assert completed.object == "video"
    assert completed.status == "completed" and completed.progress == 100
    assert completed.model == "openai-preview"  # the route the alias sora-2 names
    assert (completed.seconds, completed.size) == ("4", "1280x720")
    assert completed.prompt == "A lighthouse at dusk, waves below"
    assert completed.completed_at >= completed.created_at
    assert completed.expires_at > completed.completed_at
    assert completed.error is None

    raw = live.client("main").videos.with_raw_response.retrieve(completed.id)
    assert raw.headers["openai-poll-after-ms"] == "0"  # finished: nothing to wait for
    assert raw.parse().model_dump() == completed.model_dump()


def test_the_video_is_a_framegate_task_with_its_credits(live: Live, completed: Any) -> None:
    task = native_task(live, "main", completed.id)
    assert task["status"] == "completed" and task["model"] == "openai-preview"
    assert task["input"]["duration"] == 4 and task["input"]["size"] == "1280x720"
    assert task["credits_reserved"] == task["credits_used"] == 4 * PRICE_720P


def test_download_content_is_the_mp4(live: Live, completed: Any) -> None:
    content = live.client("main").videos.download_content(completed.id)
    assert content.response.headers["content-type"] == "video/mp4"
    assert decoded_frames(content.content) == (4 * FPS, 1280, 720)


def test_thumbnail_and_spritesheet_are_jpegs(live: Live, completed: Any) -> None:
    client = live.client("main")
    thumbnail = client.videos.download_content(completed.id, variant="thumbnail")
    with Image.open(io.BytesIO(thumbnail.content)) as image:
        assert image.format == "JPEG"
        assert image.width / image.height == pytest.approx(16 / 9, rel=0.02)
    sheet = client.videos.download_content(completed.id, variant="spritesheet")
    with Image.open(io.BytesIO(sheet.content)) as image:
        # 48 frames: 25 of them, 5 per row, each 256 px wide (256x144).
        assert image.format == "JPEG" and image.size == (5 * 256, 5 * 144)


def test_unfinished_video_polls_after_a_second_and_has_no_content(live: Live) -> None:
    client = live.client("main")
    raw = client.videos.with_raw_response.create(model="openai-gated", prompt="wait")
    video = raw.parse()
    assert video.status == "queued" and raw.headers["openai-poll-after-ms"] == "1000"
    with pytest.raises(openai.ConflictError) as refused:
        client.videos.download_content(video.id)
    assert refused.value.code == "video_not_ready"
    client.videos.delete(video.id)


def test_failed_video_carries_its_error(live: Live) -> None:
    client = live.client("main")
    video = client.videos.create_and_poll(
        model="openai-failing", prompt="crash", poll_interval_ms=100
    )
    assert video.status == "failed"
    assert video.error is not None and video.error.code == "engine_error"
    task = native_task(live, "main", video.id)
    assert task["credits_used"] == 0 and task["credits_refunded"] == task["credits_reserved"]


# --- input_reference ---------------------------------------------------------------------------


def test_multipart_input_reference_file_becomes_the_input_image(live: Live) -> None:
    client = live.client("main")
    video = client.videos.create_and_poll(
        model="sora-2",
        prompt="Animate this",
        seconds="1",
        size="320x180",
        input_reference=("reference.png", png_bytes(), "image/png"),
        poll_interval_ms=100,
    )
    assert video.status == "completed", video.error
    task = native_task(live, "main", video.id)
    assert task["input"]["input_image"].startswith("upl_")  # stored as an upload
    content = client.videos.download_content(video.id).content
    assert decoded_frames(content) == (FPS, 320, 180)
    with pytest.raises(openai.BadRequestError) as refused:
        client.videos.create(
            model="sora-2", prompt="x", input_reference=("notes.png", b"not an image", "image/png")
        )
    assert refused.value.param == "input_reference"


def test_input_reference_by_image_url_in_a_form_and_in_json(live: Live) -> None:
    data_url = "data:image/png;base64," + base64.b64encode(png_bytes((16, 16))).decode()
    headers = {"Authorization": f"Bearer {live.tenants['main'].api_key}"}
    # An object in a form: input_reference[image_url], as OpenAI's SDKs encode it.
    form = {"prompt": "From a form", "seconds": "1", "size": SMALL}
    parts = [(name, (None, value)) for name, value in form.items()]
    parts.append(("input_reference[image_url]", (None, data_url)))
    body = {
        "prompt": "JSON",
        "seconds": 1,
        "size": SMALL,
        "input_reference": {"image_url": data_url},
    }
    with live.http() as http:
        in_form = http.post("/v1/videos", files=parts, headers=headers)
        in_json = http.post("/v1/videos", json=body, headers=headers)
    for response in (in_form, in_json):
        assert response.status_code == 200, response.text
        assert response.json()["model"] == "openai-preview"  # model defaults to sora-2
        task = native_task(live, "main", response.json()["id"])
        assert task["input"]["input_image"].startswith("data URI")


def test_a_prompt_of_the_longest_length_fits_in_the_sdks_form(live: Live) -> None:
    # OpenAI's SDK always sends create as multipart/form-data, the prompt as a text field.
    prompt = "A very detailed shot description. " * 117  # 3978 characters
    video = live.client("main").videos.create(
        model="sora-2", prompt=prompt, seconds="1", size=SMALL
    )
    assert video.prompt == prompt


# --- remix -------------------------------------------------------------------------------------


def test_remix_keeps_the_parameters_with_a_new_prompt(live: Live, completed: Any) -> None:
    client = live.client("main")
    remix = client.videos.remix(completed.id, prompt="The same lighthouse, at night")
    assert remix.remixed_from_video_id == completed.id
    assert (remix.seconds, remix.size, remix.model) == ("4", "1280x720", "openai-preview")
    assert remix.prompt == "The same lighthouse, at night"
    source, task = native_task(live, "main", completed.id), native_task(live, "main", remix.id)
    assert task["input"]["seed"] == source["input"]["seed"]
    assert task["input"]["num_frames"] == source["input"]["num_frames"] == 4 * FPS
    assert task["credits_reserved"] == source["credits_reserved"]
    assert client.videos.poll(remix.id, poll_interval_ms=100).status == "completed"


# --- list and delete --------------------------------------------------------------------------


def test_list_paginates_with_after_and_limit_in_both_orders(live: Live) -> None:
    client = live.client("lister")
    ids = [
        client.videos.create(model=model, prompt="clip", seconds="1", size=SMALL).id
        for model in ("sora-2", "sora-2", "sora-2-pro")
    ]
    newest_first = ids[::-1]
    first = client.videos.list(limit=2)
    assert [v.id for v in first.data] == newest_first[:2]
    assert [v.model for v in first.data] == ["openai-preview-pro", "openai-preview"]
    assert first.has_more is True and first.last_id == newest_first[1]
    second = client.videos.list(limit=2, after=first.last_id)
    assert [v.id for v in second.data] == newest_first[2:] and second.has_more is False
    # The SDK's auto-pagination follows last_id.
    assert [v.id for v in client.videos.list(limit=2)] == newest_first
    assert [v.id for v in client.videos.list(limit=1, order="asc")] == ids
    assert [v.id for v in client.videos.list(order="asc", after=ids[0])] == ids[1:]


def test_delete_cancels_an_unfinished_video_and_refunds_it(live: Live) -> None:
    client = live.client("deleter")
    video = client.videos.create(model="openai-gated", prompt="never finishes")
    deleted = client.videos.delete(video.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (video.id, "video.deleted", True)
    task = native_task(live, "deleter", video.id)
    assert task["status"] == "cancelled"
    assert task["credits_refunded"] == task["credits_reserved"] and task["credits_used"] == 0
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)


def test_delete_removes_a_finished_video_and_its_files(live: Live) -> None:
    client = live.client("deleter")
    video = client.videos.create_and_poll(
        model="sora-2", prompt="to delete", seconds="1", size=SMALL, poll_interval_ms=100
    )
    kept = client.videos.create(model="sora-2", prompt="to keep", seconds="1", size=SMALL)
    assert client.videos.delete(video.id).deleted is True
    assert video.id not in [v.id for v in client.videos.list()]
    assert kept.id in [v.id for v in client.videos.list()]
    for call in (client.videos.retrieve, client.videos.download_content, client.videos.delete):
        with pytest.raises(openai.NotFoundError) as missing:
            call(video.id)
        assert missing.value.code == "video_not_found"
    task = native_task(live, "deleter", video.id)  # framegate keeps the task and its charge
    assert task["status"] == "completed" and task["result"] is None
    assert task["credits_used"] == task["credits_reserved"] > 0


def test_another_accounts_video_is_not_found(live: Live, completed: Any) -> None:
    with pytest.raises(openai.NotFoundError):
        live.client("lister").videos.retrieve(completed.id)
    with pytest.raises(openai.NotFoundError):
        live.client("lister").videos.delete(completed.id)


# --- errors ------------------------------------------------------------------------------------


def test_bad_key_is_an_authentication_error(live: Live) -> None:
    client = openai.OpenAI(base_url=f"{live.url}/v1", api_key="fg_live_not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        client.videos.list()
    assert refused.value.status_code == 401 and refused.value.code == "invalid_api_key"
    with live.http() as http:
        response = http.get("/v1/videos")  # no key at all
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "message": response.json()["error"]["message"],
            "type": "invalid_request_error",
            # The header the key belongs in.
            "param": "Authorization",
            "code": "invalid_api_key",
        }
    }


def test_key_without_the_scope_is_permission_denied(live: Live) -> None:
    client = live.client("reader")
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.videos.create(model="sora-2", prompt="x")
    assert refused.value.code == "insufficient_scope"
    assert client.videos.list().data == []  # reading is allowed


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"seconds": "12"}, "seconds", "invalid_value"),  # the model makes 1-10 s
        ({"seconds": "four"}, "seconds", "invalid_value"),
        ({"seconds": True}, "seconds", "invalid_value"),  # a boolean is not a number
        ({"size": "large"}, "size", "invalid_value"),
        ({"size": "1281x720"}, "size", "invalid_value"),  # odd width
        ({"model": "sora-3"}, "model", "model_not_found"),
    ],
)
def test_bad_field_is_a_bad_request_naming_it(
    live: Live, fields: dict[str, Any], param: str, code: str
) -> None:
    request = {"model": "sora-2", "prompt": "x", **fields}
    with pytest.raises(openai.BadRequestError) as refused:
        live.client("main").videos.create(**request)  # type: ignore[arg-type]
    assert refused.value.status_code == 400
    assert (refused.value.param, refused.value.code) == (param, code)
    assert refused.value.type == "invalid_request_error"


def test_json_errors_use_the_envelope(live: Live) -> None:
    headers = {"Authorization": f"Bearer {live.tenants['main'].api_key}"}
    with live.http() as http:
        unknown = http.post("/v1/videos", json={"prompt": "x", "duration": 4}, headers=headers)
        missing = http.post("/v1/videos", json={"model": "sora-2"}, headers=headers)
        limit = http.get("/v1/videos?limit=0", headers=headers)
    assert unknown.status_code == missing.status_code == limit.status_code == 400
    assert unknown.json()["error"]["param"] == "duration"
    assert unknown.json()["error"]["code"] == "unknown_parameter"
    assert missing.json()["error"]["param"] == "prompt"
    assert missing.json()["error"]["code"] == "missing_required_parameter"
    assert limit.json()["error"]["param"] == "limit"
    for response in (unknown, missing, limit):
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_no_credits_is_insufficient_quota_and_not_retried(live: Live) -> None:
    # Default retries: the x-should-retry header stops the SDK's usual retries of a 429.
    client = live.client("broke", max_retries=2)
    with pytest.raises(openai.RateLimitError) as refused:
        client.videos.create(model="sora-2", prompt="x", seconds="4", size="1280x720")
    error = refused.value
    assert error.status_code == 429
    assert (error.type, error.code) == ("insufficient_quota", "insufficient_quota")
    assert error.response.headers["x-should-retry"] == "false"
    assert "credits" in error.message


def test_concurrency_limit_is_a_rate_limit_error_with_retry_after(live: Live) -> None:
    client = live.client("limited")
    running = client.videos.create(model="openai-gated", prompt="holds the only slot")
    with pytest.raises(openai.RateLimitError) as refused:
        client.videos.create(model="openai-gated", prompt="one too many")
    error = refused.value
    assert (error.type, error.code) == ("requests", "concurrency_limit_exceeded")
    assert int(error.response.headers["retry-after"]) >= 1
    client.videos.delete(running.id)  # frees the slot
    again = client.videos.create(model="openai-gated", prompt="now there is room")
    client.videos.delete(again.id)


def test_key_in_api_key_header_and_idempotency_key(live: Live) -> None:
    headers = {"X-API-Key": live.tenants["main"].api_key, "Idempotency-Key": secrets.token_hex(8)}
    body = {"model": "sora-2", "prompt": "once", "seconds": "1", "size": SMALL}
    with live.http() as http:
        first = http.post("/v1/videos", json=body, headers=headers)
        second = http.post("/v1/videos", json=body, headers=headers)
    assert first.status_code == second.status_code == 200, first.text
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"


def test_openapi_documents_the_dialect(live: Live) -> None:
    with live.http() as http:
        spec = http.get("/openapi.json").json()
    paths = spec["paths"]
    for path, method in [
        ("/v1/videos", "post"),
        ("/v1/videos", "get"),
        ("/v1/videos/{video_id}", "get"),
        ("/v1/videos/{video_id}", "delete"),
        ("/v1/videos/{video_id}/content", "get"),
        ("/v1/videos/{video_id}/remix", "post"),
    ]:
        operation = paths[path][method]
        assert operation["summary"] and operation["description"], (method, path)
        assert operation["tags"] == ["compat: openai"]
        assert "422" not in operation["responses"]  # invalid values are 400 here
    create = paths["/v1/videos"]["post"]["requestBody"]["content"]
    assert create["multipart/form-data"]["schema"]["properties"]["input_reference"]["format"] == (
        "binary"
    )
    assert {"prompt", "model", "seconds", "size"} <= set(
        create["application/json"]["schema"]["properties"]
    )
