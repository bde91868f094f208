"""The PixVerse Platform API dialect, driven the way PixVerse's own client code drives it:
plain httpx against a live server, the key in ``API-KEY`` and a fresh ``Ai-trace-id`` on
every request, answers read from ``{"ErrCode", "ErrMsg", "Resp"}``."""

from __future__ import annotations

import asyncio
import io
import secrets
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
import yaml
from PIL import Image

from framegate.app import create_app
from framegate.compat.pixverse.endpoints import account_number
from framegate.config import Settings
from framegate.engines.base import (
    CancelCheck,
    EngineError,
    GenerationRequest,
    GenerationResult,
    ProgressCallback,
)
from framegate.engines.preview import PreviewEngine
from framegate.engines.registry import EngineRegistry
from framegate.engines.vendors.pixverse import PixVerseEngine
from framegate.kit.addresses import parse_networks
from framegate.kit.safe_fetch import FetchPolicy
from framegate.limits.service import PlanLimits
from framegate.runtime import Runtime
from tests.conftest import make_account
from tests.engines.vendors.common import FAKE_HOST, LoopbackServer
from tests.engines_for_tests import FailingEngine, GatedEngine

# PixVerse's model names as aliases of test routes (v5 is left to the built-in route
# pixverse-v5, unavailable here without a PixVerse key); 8 fps keeps the clips quick.
FPS = {"min_fps": 8, "max_fps": 8, "default_fps": 8}
PRICING = {"unit": "second", "credits": {"480p": 1, "720p": 2, "1080p": 4}}
CATALOG: dict[str, Any] = {
    "routes": [
        {
            "id": "pv-preview",
            "aliases": ["v4.5", "v3.5"],
            "kind": "video",
            "engine": "preview",
            "capabilities": {"text_to_video": True, "image_to_video": True, **FPS},
            "pricing": PRICING,
        },
        {
            "id": "pv-failing",
            "aliases": ["v-broken"],
            "kind": "video",
            "engine": "failing",
            "capabilities": {"text_to_video": True, **FPS},
            "pricing": PRICING,
        },
        {
            "id": "pv-moderated",
            "aliases": ["v-strict"],
            "kind": "video",
            "engine": "moderating",
            "capabilities": {"text_to_video": True, **FPS},
            "pricing": PRICING,
        },
        {
            "id": "pv-gated",
            "aliases": ["v-slow"],
            "kind": "video",
            "engine": "gated",
            "capabilities": {"text_to_video": True, **FPS},
            "pricing": PRICING,
        },
    ]
}
TEXT = {
    "aspect_ratio": "16:9",
    "duration": 2,
    "model": "v4.5",
    "motion_mode": "normal",
    "negative_prompt": "blurry",
    "prompt": "a lighthouse at dusk",
    "quality": "360p",
    "seed": 7,
    "water_mark": False,
}
POLL_TIMEOUT = 30.0


class ModeratingEngine:
    """Refuses every job the way a vendor's safety filter does."""

    name = "moderating"

    def is_available(self, settings: Mapping[str, Any]) -> bool:
        return True

    async def generate(
        self,
        request: GenerationRequest,
        workdir: Path,
        progress: ProgressCallback,
        cancelled: CancelCheck,
    ) -> GenerationResult:
        raise EngineError("the safety filter refused the prompt", code="moderation_blocked")


@dataclass
class Live:
    url: str
    keys: dict[str, str]
    account_ids: dict[str, str]


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    data_dir = tmp_path_factory.mktemp("pixverse")
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
    gate = GatedEngine()

    def engines() -> EngineRegistry:
        return EngineRegistry([PreviewEngine(), FailingEngine(), ModeratingEngine(), gate])

    runtime = await Runtime.create(settings, engines=engines())
    keys: dict[str, str] = {}
    account_ids: dict[str, str] = {}
    try:
        async with runtime.sessionmaker() as session:
            # "solo": one video at a time; "slow": two requests a minute.
            for plan in (PlanLimits("solo", 1, 1, 100_000), PlanLimits("slow", 5, 5, 2)):
                await runtime.limits.save_plan(session, plan)
            for name, plan in (("solo", "solo"), ("slow", "slow")):
                created = await runtime.accounts.create(session, name=name, credits=1000, plan=plan)
                keys[name] = created.key.secret
                account_ids[name] = created.account.id
            await session.commit()
        for name, credits, scopes in (
            ("main", 1000, None),
            ("trace", 1000, None),
            ("poor", 1, None),
            ("reader", 1000, ["tasks:read"]),
        ):
            tenant = await make_account(runtime, credits=credits, scopes=scopes)
            keys[name] = tenant.api_key
            account_ids[name] = tenant.id
    finally:
        await runtime.close()
    app = create_app(settings, engines=engines())
    server = LoopbackServer(app, lifespan=True)
    await asyncio.to_thread(server.start)
    try:
        yield Live(server.url, keys, account_ids)
    finally:
        gate.gate.set()  # nothing left waiting at shutdown
        await asyncio.to_thread(server.stop)


@pytest.fixture
async def client(live: Live) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.url, timeout=20) as c:
        yield c


def pv(key: str, trace_id: str | None = None) -> dict[str, str]:
    """PixVerse's headers: the key, and a new trace id unless one is given."""
    return {"API-KEY": key, "Ai-trace-id": trace_id or str(uuid.uuid4())}


def native(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def png(width: int, height: int) -> bytes:
    image = Image.effect_mandelbrot((width, height), (-2.0, -1.5, 1.0, 1.5), 64).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def ok(response: httpx.Response) -> dict[str, Any]:
    """The Resp of a successful PixVerse answer."""
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["ErrCode"] == 0, body
    assert body["ErrMsg"] == "success"
    resp: dict[str, Any] = body["Resp"]
    return resp


def refused(response: httpx.Response, status: int, err_code: int) -> str:
    """Check a refusal's HTTP status and ErrCode; its ErrMsg."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"ErrCode", "ErrMsg", "Resp"}, body
    assert body["ErrCode"] == err_code, body
    assert body["Resp"] is None
    message: str = body["ErrMsg"]
    assert message
    return message


async def generate(client: httpx.AsyncClient, key: str, **fields: Any) -> int:
    response = await client.post(
        "/openapi/v2/video/text/generate", json={**TEXT, **fields}, headers=pv(key)
    )
    video_id: int = ok(response)["video_id"]
    return video_id


async def wait_result(client: httpx.AsyncClient, key: str, video_id: int) -> dict[str, Any]:
    """Poll like a PixVerse client until the status leaves 5 (bounded)."""
    deadline = asyncio.get_running_loop().time() + POLL_TIMEOUT
    while True:
        response = await client.get(f"/openapi/v2/video/result/{video_id}", headers=pv(key))
        resp = ok(response)
        assert resp["id"] == video_id
        if resp["status"] != 5:
            return resp
        assert resp["url"] == ""
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"video {video_id} still generating after {POLL_TIMEOUT}s")
        await asyncio.sleep(0.05)


async def balance(client: httpx.AsyncClient, key: str) -> int:
    resp = ok(await client.get("/openapi/v2/account/balance", headers=pv(key)))
    credits: int = resp["credit_package"]
    return credits


def decode(data: bytes) -> tuple[int, int, int]:
    """Width, height and frame count of an MP4."""
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        frames = len(list(container.decode(stream)))
        return stream.codec_context.width, stream.codec_context.height, frames


async def native_task(client: httpx.AsyncClient, key: str, prompt: str) -> dict[str, Any]:
    """The native view of the account's task with this prompt."""
    listed = (await client.get("/v1/tasks?limit=100", headers=native(key))).json()
    (task_id,) = [t["id"] for t in listed["data"] if t["input"]["prompt"] == prompt]
    response = await client.get(f"/v1/tasks/{task_id}", headers=native(key))
    assert response.status_code == 200, response.text
    task: dict[str, Any] = response.json()
    return task


# -- the PixVerse flow ---------------------------------------------------------------------


async def test_upload_then_image_to_video_then_download(
    client: httpx.AsyncClient, live: Live
) -> None:
    key = live.keys["main"]
    before = await balance(client, key)
    trace_id, files = str(uuid.uuid4()), {"image": ("frame.png", png(320, 240), "image/png")}
    upload = "/openapi/v2/image/upload"
    uploaded = ok(await client.post(upload, files=files, headers=pv(key, trace_id)))
    img_id = uploaded["img_id"]
    assert isinstance(img_id, int) and 0 < img_id < 2**53
    # A retried upload (same trace id, the form under a new boundary) is the same image.
    retried = ok(await client.post(upload, files=files, headers=pv(key, trace_id)))
    assert retried["img_id"] == img_id
    image = await client.get(uploaded["img_url"])
    assert image.status_code == 200
    assert Image.open(io.BytesIO(image.content)).size == (320, 240)

    prompt = f"the frame comes alive {uuid.uuid4()}"
    body = {"duration": 2, "img_id": img_id, "model": "v3.5", "prompt": prompt, "quality": "360p"}
    response = await client.post("/openapi/v2/video/img/generate", json=body, headers=pv(key))
    video_id = ok(response)["video_id"]
    assert isinstance(video_id, int)

    result = await wait_result(client, key, video_id)
    assert result["status"] == 1, result
    # A 4:3 image at 360p: PixVerse's 480x360.
    assert (result["outputWidth"], result["outputHeight"]) == (480, 360)
    assert result["resolution_ratio"] == 360
    assert result["prompt"] == prompt
    assert 0 <= result["seed"] < 2**31  # drawn in PixVerse's range when not given
    video = await client.get(result["url"])
    assert video.status_code == 200
    assert result["size"] == len(video.content)
    assert decode(video.content) == (480, 360, 16)  # 2 s at the route's 8 fps

    # The same task, natively: same credits as the balance moved.
    task = await native_task(client, key, prompt)
    assert task["status"] == "completed"
    assert task["model"] == "pv-preview"
    assert task["input"]["size"] == "480x360"
    assert task["input"]["input_image"].startswith("upl_")
    assert task["credits_reserved"] == task["credits_used"] == 2  # 2 s at the 480p price
    assert await balance(client, key) == before - task["credits_used"]


async def test_text_to_video_with_quality_and_aspect_ratio(
    client: httpx.AsyncClient, live: Live
) -> None:
    key = live.keys["main"]
    prompt = f"a lighthouse at dusk {uuid.uuid4()}"
    video_id = await generate(client, key, prompt=prompt, aspect_ratio="9:16", quality="540p")
    result = await wait_result(client, key, video_id)
    assert result["status"] == 1, result
    assert (result["outputWidth"], result["outputHeight"]) == (540, 960)
    assert result["seed"] == 7
    assert result["negative_prompt"] == "blurry"
    assert result["create_time"].endswith("Z") and result["modify_time"] >= result["create_time"]
    video = await client.get(result["url"])
    assert decode(video.content) == (540, 960, 16)
    task = await native_task(client, key, prompt)
    assert task["input"]["size"] == "540x960"
    assert task["input"]["seed"] == 7
    assert task["credits_used"] == 4  # 540p bills at the 720p price


async def test_reused_trace_id_returns_the_same_video_and_holds_once(
    client: httpx.AsyncClient, live: Live
) -> None:
    key = live.keys["trace"]
    before = await balance(client, key)
    trace_id = str(uuid.uuid4())
    body = {**TEXT, "prompt": "one video only"}
    first = await client.post(
        "/openapi/v2/video/text/generate", json=body, headers=pv(key, trace_id)
    )
    again = await client.post(
        "/openapi/v2/video/text/generate", json=body, headers=pv(key, trace_id)
    )
    assert ok(again)["video_id"] == ok(first)["video_id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert await balance(client, key) == before - 2
    ledger = (await client.get("/v1/credits/ledger", headers=native(key))).json()["data"]
    assert [e["kind"] for e in ledger].count("hold") == 1
    # A new trace id is a new video.
    other = await client.post("/openapi/v2/video/text/generate", json=body, headers=pv(key))
    assert ok(other)["video_id"] != ok(first)["video_id"]
    assert await balance(client, key) == before - 4


async def test_balance_is_the_available_credits(client: httpx.AsyncClient, live: Live) -> None:
    key = live.keys["main"]
    resp = ok(await client.get("/openapi/v2/account/balance", headers=pv(key)))
    credits = (await client.get("/v1/credits", headers=native(key))).json()
    assert resp == {
        "account_id": account_number(live.account_ids["main"]),
        "credit_monthly": 0,
        "credit_package": credits["available"],
    }


async def test_failed_and_moderated_videos(client: httpx.AsyncClient, live: Live) -> None:
    key = live.keys["main"]
    failed = await wait_result(client, key, await generate(client, key, model="v-broken"))
    assert (failed["status"], failed["url"]) == (8, "")
    moderated = await wait_result(client, key, await generate(client, key, model="v-strict"))
    assert (moderated["status"], moderated["url"]) == (7, "")


async def test_framegates_own_pixverse_client_works_against_the_dialect(
    live: Live, tmp_path: Path
) -> None:
    """framegate's PixVerse vendor engine, written from PixVerse's documentation, pointed
    at this dialect instead of PixVerse: upload, both generations, polling, download."""
    engine = PixVerseEngine(api_key=live.keys["main"], base_url=live.url, poll_interval=0.05)
    policy = FetchPolicy(allow_networks=parse_networks(f"{FAKE_HOST}/32"), max_bytes=50_000_000)
    frame = Image.open(io.BytesIO(png(400, 300))).convert("RGB")
    for name, image in (("text", None), ("image", frame)):
        request = GenerationRequest(
            task_id=f"task_{uuid.uuid4().hex}",
            kind="video",
            prompt=f"through the vendor engine: {name}",
            width=640,
            height=360,
            seed=3,
            duration=5.0,
            fps=24,
            num_frames=120,
            input_image=image,
            settings={"model": "v4.5"},
        )
        job = await engine.submit(request)
        deadline = asyncio.get_running_loop().time() + POLL_TIMEOUT
        while (status := await engine.poll(job, request)).state == "pending":
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        assert status.state == "succeeded", status
        assert status.video_url is not None
        destination = tmp_path / f"{name}.mp4"
        await engine.download(status.video_url, destination, policy)
        assert decode(destination.read_bytes()) == (640, 360, 40)  # 5 s at the route's 8 fps


# -- errors in PixVerse's envelope ---------------------------------------------------------


async def test_bad_or_missing_key_is_401_invalid_api_key(client: httpx.AsyncClient) -> None:
    for headers in ({"API-KEY": "fg_live_not-a-real-key"}, {}):
        for method, path in (
            ("POST", "/openapi/v2/video/text/generate"),
            ("GET", "/openapi/v2/account/balance"),
            ("GET", "/openapi/v2/video/result/1"),
        ):
            body = TEXT if method == "POST" else None
            response = await client.request(method, path, json=body, headers=headers)
            refused(response, 401, 400012)


@pytest.mark.parametrize(
    ("fields", "err_code", "mentions"),
    [
        ({"quality": None}, 400011, "quality"),  # a required field left out
        ({"prompt": ""}, 400011, "prompt"),
        ({"duration": "5"}, 400013, "duration"),  # a string where PixVerse takes an int
        ({"duration": True}, 400013, "duration"),  # a boolean is not an int either
        ({"seed": 5.0}, 400013, "seed"),
        ({"water_mark": "false"}, 400013, "water_mark"),
        ({"quality": "4k"}, 400017, "quality"),
        ({"aspect_ratio": "2:1"}, 400017, "aspect_ratio"),
        ({"model": "no-such-model"}, 400017, "model"),
        ({"model": "v5"}, 400017, "'pixverse-v5' is not available"),  # no PixVerse key here
        ({"duration": 30}, 400017, "duration"),
        ({"seed": 2**31}, 400017, "seed"),
        ({"style": "anime"}, 400017, "style"),
        ({"motion_mode": "fast"}, 400017, "motion_mode"),
        ({"water_mark": True}, 400017, "water_mark"),
        ({"img_id": 5}, 400017, "img_id"),  # not a text-to-video field
        ({"prompt": "x" * 2049}, 400018, "prompt"),
    ],
)
async def test_invalid_fields_are_answered_200_with_their_err_code(
    client: httpx.AsyncClient,
    live: Live,
    fields: dict[str, Any],
    err_code: int,
    mentions: str,
) -> None:
    key = live.keys["main"]
    body = {k: v for k, v in {**TEXT, **fields}.items() if v is not None}
    response = await client.post("/openapi/v2/video/text/generate", json=body, headers=pv(key))
    assert mentions in refused(response, 200, err_code)


async def test_malformed_bodies_and_unknown_ids(client: httpx.AsyncClient, live: Live) -> None:
    key = live.keys["main"]
    text, image = "/openapi/v2/video/text/generate", "/openapi/v2/video/img/generate"
    refused(await client.post(text, content=b"{nope", headers=pv(key)), 200, 400013)
    refused(await client.post(text, content=b"[]", headers=pv(key)), 200, 400013)
    refused(await client.post(text, headers=pv(key)), 200, 400011)
    i2v = {"duration": 2, "model": "v4.5", "prompt": "p", "quality": "360p"}
    for img_id in (123, 0, 2**60):
        response = await client.post(image, json={**i2v, "img_id": img_id}, headers=pv(key))
        assert "img_id" in refused(response, 200, 400032)
    # An image of another account is not this account's.
    other = ok(
        await client.post(
            "/openapi/v2/image/upload",
            files={"image": ("a.png", png(64, 64), "image/png")},
            headers=pv(live.keys["trace"]),
        )
    )
    response = await client.post(image, json={**i2v, "img_id": other["img_id"]}, headers=pv(key))
    refused(response, 200, 400032)
    refused(await client.get("/openapi/v2/video/result/424242", headers=pv(key)), 200, 500008)
    refused(await client.get("/openapi/v2/video/result/abc", headers=pv(key)), 200, 400017)
    # Another account's video is not found either.
    theirs = await generate(client, live.keys["trace"])
    response = await client.get(f"/openapi/v2/video/result/{theirs}", headers=pv(key))
    refused(response, 200, 500008)


async def test_upload_errors(client: httpx.AsyncClient, live: Live) -> None:
    key, path = live.keys["main"], "/openapi/v2/image/upload"
    not_image = {"image": ("a.png", b"definitely not an image", "image/png")}
    refused(await client.post(path, files=not_image, headers=pv(key)), 200, 500032)
    empty = {"image": ("a.png", b"", "image/png")}
    refused(await client.post(path, files=empty, headers=pv(key)), 200, 500031)
    # A form without the image part: by URL (documented by PixVerse, not served here)...
    boundary = "pixverse-test-boundary"
    form = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image_url"\r\n\r\n'
        f"https://example.com/a.png\r\n--{boundary}--\r\n"
    ).encode()
    multipart = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    by_url = await client.post(path, content=form, headers={**pv(key), **multipart})
    assert "image_url" in refused(by_url, 200, 400017)
    # ...or with nothing at all.
    nothing = f"--{boundary}--\r\n".encode()
    empty_form = await client.post(path, content=nothing, headers={**pv(key), **multipart})
    assert "image" in refused(empty_form, 200, 400011)
    unknown = {"image": ("a.png", png(8, 8), "image/png"), "extra": ("b.png", b"x", "image/png")}
    assert "extra" in refused(await client.post(path, files=unknown, headers=pv(key)), 200, 400017)
    not_form = await client.post(path, json={"image": "x"}, headers=pv(key))
    assert "field image" in refused(not_form, 200, 400013)


async def test_no_credits_is_500090_and_holds_nothing(
    client: httpx.AsyncClient, live: Live
) -> None:
    key = live.keys["poor"]
    response = await client.post("/openapi/v2/video/text/generate", json=TEXT, headers=pv(key))
    assert "2 credits" in refused(response, 200, 500090)
    assert await balance(client, key) == 1
    listed = (await client.get("/v1/tasks", headers=native(key))).json()
    assert listed["data"] == []


async def test_key_without_the_scope_is_403(client: httpx.AsyncClient, live: Live) -> None:
    key = live.keys["reader"]
    response = await client.post("/openapi/v2/video/text/generate", json=TEXT, headers=pv(key))
    refused(response, 403, 500020)


async def test_concurrency_limit_is_429_with_retry_after(
    client: httpx.AsyncClient, live: Live
) -> None:
    key = live.keys["solo"]
    running = await generate(client, key, model="v-slow", prompt="holding the only slot")
    response = await client.post(
        "/openapi/v2/video/text/generate", json={**TEXT, "model": "v-slow"}, headers=pv(key)
    )
    refused(response, 429, 500044)
    assert int(response.headers["retry-after"]) >= 1
    result = ok(await client.get(f"/openapi/v2/video/result/{running}", headers=pv(key)))
    assert result["status"] == 5
    task = await native_task(client, key, "holding the only slot")
    cancelled = await client.post(f"/v1/tasks/{task['id']}/cancel", headers=native(key))
    assert cancelled.status_code == 200, cancelled.text
    assert (await wait_result(client, key, running))["status"] == 8
    await generate(client, key)  # the slot is free again


async def test_request_rate_limit_is_429_with_retry_after(
    client: httpx.AsyncClient, live: Live
) -> None:
    key = live.keys["slow"]
    statuses = []
    for _ in range(3):
        response = await client.get("/openapi/v2/account/balance", headers=pv(key))
        statuses.append(response.status_code)
    assert statuses == [200, 200, 429]
    refused(response, 429, 500044)
    assert 1 <= int(response.headers["retry-after"]) <= 60
