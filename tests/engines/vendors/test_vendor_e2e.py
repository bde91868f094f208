"""Upstream vendors end to end through framegate's HTTP API: each vendor's engine (its SDK
or REST client) against its fake on loopback, configured the way an operator does (keys
and base URLs in the settings). Submit → upstream submit → polls (parked in between, no
worker slot held) → the MP4 stored in framegate's storage → completed and charged; a
vendor failure and a moderation block → failed and refunded; a 429 storm → retried, then
completed; a fallback route serving after the primary fails; the circuit breaker opening;
another framegate installation as an upstream."""

from __future__ import annotations

import asyncio
import base64
import io
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
import yaml
from fastapi import FastAPI
from PIL import Image

from framegate.app import create_app
from framegate.config import Settings
from framegate.runtime import Runtime
from tests.conftest import Tenant, file_path, make_account, wait_for_task
from tests.engines.vendors.common import FAKE_HOST, SAMPLE_FRAMES, LoopbackServer
from tests.engines.vendors.fake_fal import FakeFal
from tests.engines.vendors.fake_kling import FakeKling
from tests.engines.vendors.fake_luma import FakeLuma
from tests.engines.vendors.fake_pixverse import FakePixVerse
from tests.engines.vendors.fake_replicate import FakeReplicate
from tests.engines.vendors.fake_runway import FakeRunway
from tests.engines.vendors.fake_veo import FakeVeo
from tests.waiting import wait_until


def png_data_uri(size: tuple[int, int] = (1280, 720)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


# vendor → (fake class, route, extra request fields)
VENDORS: dict[str, tuple[type[Any], str, dict[str, Any]]] = {
    "veo": (FakeVeo, "veo-3", {}),
    "runway": (FakeRunway, "runway-gen4", {"input_image": "png"}),
    "luma": (FakeLuma, "luma-ray-2", {}),
    "fal": (FakeFal, "fal:fal-ai/kling-video/v2.1/master/text-to-video", {}),
    "replicate": (FakeReplicate, "replicate:wavespeedai/wan-2.1-t2v-480p", {}),
    "pixverse": (FakePixVerse, "pixverse-v5", {}),
    "kling": (FakeKling, "kling-v2", {}),
}

EXTRA_ROUTES: list[dict[str, Any]] = [
    # Veo first, the CPU preview engine when Veo fails (cheaper: the difference is released).
    {
        "id": "veo-with-fallback",
        "kind": "video",
        "engine": "veo",
        "settings": {"model": "veo-3.0-generate-001"},
        "capabilities": {
            "text_to_video": True,
            "min_duration": 4,
            "max_duration": 8,
            "default_duration": 8,
            "min_fps": 24,
            "max_fps": 24,
            "default_fps": 24,
            "sizes": ["1280x720"],
            "default_size": "1280x720",
        },
        "pricing": {"unit": "second", "credits": {"720p": 10}},
        "fallbacks": ["preview"],
    },
    # PixVerse with no fallback, for the breaker.
    {
        "id": "pixverse-breaker",
        "kind": "video",
        "engine": "pixverse",
        "settings": {"model": "v5"},
        "capabilities": {
            "text_to_video": True,
            "min_duration": 5,
            "max_duration": 5,
            "default_duration": 5,
            "min_fps": 24,
            "max_fps": 24,
            "default_fps": 24,
            "sizes": ["640x360"],
            "default_size": "640x360",
        },
        "pricing": {"unit": "clip", "credits": {"480p": 4}},
    },
    # Another framegate installation's preview model.
    {
        "id": "federated-preview",
        "kind": "video",
        "engine": "framegate",
        "settings": {"model": "preview"},
        "capabilities": {"text_to_video": True, "max_duration": 3, "default_duration": 1},
        "pricing": {"unit": "clip", "credits": {"480p": 2, "720p": 2}},
    },
]


def _settings(data_dir: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "env": "test",
        "data_dir": data_dir,
        "secret_key": secrets.token_urlsafe(40),
        "worker_concurrency": 2,
        "worker_poll_seconds": 0.05,
        "task_lease_seconds": 5.0,
        "reaper_interval_seconds": 0.5,
        "allow_private_networks": f"{FAKE_HOST}/32",
        "default_max_concurrent_videos": 100,
        "default_requests_per_minute": 100_000,
        "vendor_poll_seconds": 0.05,
        "vendor_poll_max_seconds": 0.2,
        "breaker_failures": 3,
        "breaker_cooldown_seconds": 60,
    }
    base.update(overrides)
    return Settings(**base)


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, Any]]:
    with ExitStack() as stack:
        yield {name: stack.enter_context(fake()) for name, (fake, _, _) in VENDORS.items()}


@pytest.fixture(scope="module")
async def upstream_framegate(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[str, str]]:
    """A second framegate installation on loopback, and an API key there."""
    settings = _settings(tmp_path_factory.mktemp("upstream-framegate"))
    runtime = await Runtime.create(settings)
    try:
        key = (await make_account(runtime, credits=1000)).api_key
    finally:
        await runtime.close()
    server = LoopbackServer(create_app(settings), lifespan=True).start()
    try:
        yield server.url, key
    finally:
        await asyncio.to_thread(server.stop)


@pytest.fixture(scope="module")
async def vapp(
    fakes: dict[str, Any],
    upstream_framegate: tuple[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[FastAPI]:
    data_dir = tmp_path_factory.mktemp("vendors")
    catalog = data_dir / "catalog.yaml"
    catalog.write_text(yaml.safe_dump({"routes": EXTRA_ROUTES}))
    overrides: dict[str, Any] = {}
    for fake in fakes.values():
        overrides.update(fake.settings_overrides())
    url, key = upstream_framegate
    settings = _settings(
        data_dir,
        catalog_file=catalog,
        public_url=f"http://{FAKE_HOST}:9",
        upstream_framegate_url=url,
        upstream_framegate_api_key=key,
        **overrides,
    )
    # The real engine registry, built from the settings as `framegate serve` builds it.
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="module")
async def vclient(vapp: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=vapp)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def tenant(vapp: FastAPI) -> Tenant:
    return await make_account(vapp.state.runtime, credits=10_000)


async def submit(
    client: httpx.AsyncClient, tenant: Tenant, model: str, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "prompt": "a lighthouse at dusk, waves below"}
    body.update({k: png_data_uri() if v == "png" else v for k, v in extra.items()})
    response = await client.post("/v1/async/videos/generations", json=body, headers=tenant.headers)
    assert response.status_code == 202, response.text
    task: dict[str, Any] = response.json()
    return task


async def balance(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get("/v1/credits", headers=tenant.headers)).json()
    return body


async def assert_stored_video(client: httpx.AsyncClient, task: dict[str, Any]) -> None:
    output = task["result"]["data"][0]
    assert httpx.URL(output["url"]).path.startswith("/v1/files/outputs/")  # ours, not theirs
    response = await client.get(file_path(output["url"]))
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(response.content)) as container:
        assert sum(1 for _ in container.decode(video=0)) == SAMPLE_FRAMES
    assert output["num_frames"] == SAMPLE_FRAMES


@pytest.mark.parametrize("vendor", list(VENDORS))
async def test_vendor_success_is_stored_and_charged(
    vclient: httpx.AsyncClient, tenant: Tenant, fakes: dict[str, Any], vendor: str
) -> None:
    fake = fakes[vendor]
    _, route, extra = VENDORS[vendor]
    fake.script("succeed", polls=3)
    before = fake.submitted
    submitted = await submit(vclient, tenant, route, **extra)
    task = await wait_for_task(vclient, tenant, submitted["id"], timeout=60)
    assert task["status"] == "completed", task["error"]
    assert task["credits_used"] == submitted["credits_reserved"] > 0
    assert task["served_by"] == route
    assert fake.submitted == before + 1
    await assert_stored_video(vclient, task)
    models = {m["id"]: m for m in (await vclient.get("/v1/models")).json()["data"]}
    assert models[route]["available"] is True
    assert models[route]["health"]["state"] == "closed"


@pytest.mark.parametrize("vendor", list(VENDORS))
@pytest.mark.parametrize(
    ("outcome", "code"), [("fail", "upstream_error"), ("moderate", "moderation_blocked")]
)
async def test_vendor_failure_and_moderation_are_refunded(
    vclient: httpx.AsyncClient,
    tenant: Tenant,
    fakes: dict[str, Any],
    vendor: str,
    outcome: str,
    code: str,
) -> None:
    fake = fakes[vendor]
    _, route, extra = VENDORS[vendor]
    fake.script(outcome, polls=1)
    before = await balance(vclient, tenant)
    submitted = await submit(vclient, tenant, route, **extra)
    task = await wait_for_task(vclient, tenant, submitted["id"], timeout=60)
    assert task["status"] == "failed"
    assert task["error"]["code"] == code, task["error"]
    assert "refunded" in task["error"]["message"]
    assert task["credits_used"] == 0 and task["credits_refunded"] == submitted["credits_reserved"]
    assert await balance(vclient, tenant) == before
    vapp_health = (await vclient.get(f"/v1/models/{route}")).json()["health"]
    # One failure does not open the breaker (3 do); reset it for the next tests.
    assert vapp_health["state"] == "closed"
    fake.script("succeed")
    done = await submit(vclient, tenant, route, **extra)
    assert (await wait_for_task(vclient, tenant, done["id"], timeout=60))["status"] == "completed"


@pytest.mark.parametrize("vendor", list(VENDORS))
async def test_vendor_429_storm_is_retried_then_completes(
    vclient: httpx.AsyncClient, tenant: Tenant, fakes: dict[str, Any], vendor: str
) -> None:
    fake = fakes[vendor]
    _, route, extra = VENDORS[vendor]
    # PixVerse's own concurrency answer (ErrCode 500044) carries no Retry-After and the
    # engine waits 15 s on it (its contract test covers that); here, an HTTP 429 storm.
    fake.script("http_429" if vendor == "pixverse" else "throttle", throttles=4, polls=1)
    submitted = await submit(vclient, tenant, route, **extra)
    task = await wait_for_task(vclient, tenant, submitted["id"], timeout=60)
    assert task["status"] == "completed", task["error"]
    assert task["attempts"] == 1  # retried by rescheduling, not as new attempts
    assert task["credits_used"] == submitted["credits_reserved"]
    await assert_stored_video(vclient, task)


async def test_fallback_serves_after_the_primary_fails(
    vclient: httpx.AsyncClient, tenant: Tenant, fakes: dict[str, Any]
) -> None:
    fakes["veo"].script("fail", polls=0)
    before = await balance(vclient, tenant)
    submitted = await submit(vclient, tenant, "veo-with-fallback", duration=4)
    assert submitted["credits_reserved"] == 40  # 4 s x 10 at 720p, held for Veo
    task = await wait_for_task(vclient, tenant, submitted["id"], timeout=60)
    assert task["status"] == "completed", task["error"]
    assert task["model"] == "veo-with-fallback" and task["served_by"] == "preview"
    # Priced by the route that served it (preview: 4 s x 2 at 720p), never above the hold.
    assert task["credits_used"] == 8 and task["credits_refunded"] == 32
    assert (await balance(vclient, tenant))["available"] == before["available"] - 8
    output = task["result"]["data"][0]
    assert (output["width"], output["height"]) == (1280, 720)
    fakes["veo"].script("succeed")


async def test_breaker_opens_after_consecutive_failures(
    vclient: httpx.AsyncClient, tenant: Tenant, fakes: dict[str, Any], vapp: FastAPI
) -> None:
    fake = fakes["pixverse"]
    fake.script("fail", polls=0)
    for _ in range(3):
        task = await submit(vclient, tenant, "pixverse-breaker")
        finished = await wait_for_task(vclient, tenant, task["id"], timeout=60)
        assert finished["error"]["code"] == "upstream_error"
    health = (await vclient.get("/v1/models/pixverse-breaker")).json()["health"]
    assert health["state"] == "open" and health["consecutive_failures"] == 3
    assert 0 < health["retry_after"] <= 60
    submitted = fake.submitted
    refused = await vclient.post(
        "/v1/async/videos/generations",
        json={"model": "pixverse-breaker", "prompt": "x"},
        headers=tenant.headers,
    )
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "model_unhealthy"
    assert int(refused.headers["retry-after"]) > 0
    assert fake.submitted == submitted  # nothing reached the vendor
    # Other routes of the same vendor are unaffected.
    fake.script("succeed")
    other = await submit(vclient, tenant, "pixverse-v5")
    assert (await wait_for_task(vclient, tenant, other["id"], timeout=60))["status"] == "completed"
    await vapp.state.runtime.catalog.health.success("pixverse-breaker")


async def test_an_open_breaker_sends_new_tasks_to_the_fallback(
    vclient: httpx.AsyncClient, tenant: Tenant, fakes: dict[str, Any], vapp: FastAPI
) -> None:
    health = vapp.state.runtime.catalog.health
    for _ in range(3):
        await health.failure("veo-with-fallback")
    submitted_before = fakes["veo"].submitted
    task = await submit(vclient, tenant, "veo-with-fallback", duration=4)
    finished = await wait_for_task(vclient, tenant, task["id"], timeout=60)
    assert finished["status"] == "completed" and finished["served_by"] == "preview"
    assert fakes["veo"].submitted == submitted_before
    await health.success("veo-with-fallback")


async def test_parked_tasks_hold_no_worker_slot(
    vclient: httpx.AsyncClient, tenant: Tenant, fakes: dict[str, Any]
) -> None:
    """Two workers, six slow upstream jobs: all are submitted upstream at once (parked),
    and a local preview task still runs meanwhile."""
    fake = fakes["kling"]
    fake.script("succeed", polls=40)
    before = fake.submitted
    tasks = [await submit(vclient, tenant, "kling-v2") for _ in range(6)]
    await wait_until(lambda: fake.submitted - before == 6, 10, "six submissions upstream")
    local = await submit(vclient, tenant, "preview", duration=1, size="320x240")
    assert (await wait_for_task(vclient, tenant, local["id"], timeout=30))["status"] == "completed"
    for task in tasks:
        assert (await wait_for_task(vclient, tenant, task["id"], timeout=60))[
            "status"
        ] == "completed"
    fake.script("succeed")


async def test_cancel_releases_the_hold_and_cancels_upstream(
    vclient: httpx.AsyncClient, tenant: Tenant, fakes: dict[str, Any]
) -> None:
    fake = fakes["runway"]
    fake.script("succeed", polls=200)
    before = await balance(vclient, tenant)
    task = await submit(vclient, tenant, "runway-gen4", input_image="png")

    async def submitted_upstream() -> bool:
        current = (await vclient.get(f"/v1/tasks/{task['id']}", headers=tenant.headers)).json()
        return bool(fake.tasks) and current["status"] == "processing"

    await wait_until(submitted_upstream, 10, "the task to be processing upstream", interval=0.02)
    cancelled = await vclient.post(f"/v1/tasks/{task['id']}/cancel", headers=tenant.headers)
    assert cancelled.json()["status"] == "cancelled"
    assert await balance(vclient, tenant) == before
    await wait_until(
        lambda: fake.requests_to(f"/v1/tasks/{list(fake.tasks)[-1]}", "DELETE"),
        5,
        "the upstream task to be cancelled",
        interval=0.02,
    )
    fake.script("succeed")


async def test_federated_framegate_upstream(vclient: httpx.AsyncClient, tenant: Tenant) -> None:
    submitted = await submit(vclient, tenant, "federated-preview", duration=1, size="320x240")
    task = await wait_for_task(vclient, tenant, submitted["id"], timeout=60)
    assert task["status"] == "completed", task["error"]
    assert task["credits_used"] == 2 and task["served_by"] == "federated-preview"
    output = task["result"]["data"][0]
    response = await vclient.get(file_path(output["url"]))
    with av.open(io.BytesIO(response.content)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (320, 240)


async def test_vendor_keys_are_never_returned(
    vclient: httpx.AsyncClient, fakes: dict[str, Any]
) -> None:
    listing = (await vclient.get("/v1/models")).text + (await vclient.get("/openapi.json")).text
    for fake in fakes.values():
        assert fake.api_key not in listing


def test_vendor_routes_unavailable_without_keys(tmp_path: Path) -> None:
    async def available() -> dict[str, bool]:
        runtime = await Runtime.create(_settings(tmp_path))
        try:
            catalog = runtime.catalog
            return {r.id: catalog.is_available(r) for r in catalog.routes()}
        finally:
            await runtime.close()

    state = asyncio.run(available())
    for _, route, _ in VENDORS.values():
        assert state[route] is False
    assert state["preview"] is True
