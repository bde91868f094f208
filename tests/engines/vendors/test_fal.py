"""Contract tests of the fal.ai engine against a fake of fal's queue API."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from framegate.catalog.schemas import ModelRoute
from framegate.config import Settings
from framegate.engines.base import GenerationRequest
from framegate.engines.vendors import vendor_engines
from framegate.engines.vendors.base import (
    MODERATION_BLOCKED,
    UPSTREAM_AUTH,
    UPSTREAM_ERROR,
    UPSTREAM_INVALID,
    UPSTREAM_RATE_LIMITED,
    UPSTREAM_UNAVAILABLE,
    UpstreamError,
    UpstreamJob,
    UpstreamStatus,
    VendorShape,
)
from framegate.engines.vendors.fal import FalEngine, FalSettings
from framegate.exceptions import InvalidValue
from framegate.kit.addresses import parse_networks
from framegate.kit.safe_fetch import FetchPolicy
from tests.engines.vendors.common import (
    SAMPLE_FRAMES,
    builtin_routes,
    free_port,
    poll_to_end,
    vendor_shape,
)
from tests.engines.vendors.fake_fal import MODERATION_MESSAGE, FakeFal

BUILTIN_ROUTES = builtin_routes("fal")

KLING = "fal:fal-ai/kling-video/v2.1/master/text-to-video"
WAN_I2V = "fal:fal-ai/wan-i2v"
WAN_FLF = "fal:fal-ai/wan-flf2v"
POLICY = FetchPolicy(allow_networks=parse_networks("127.0.0.3/32"), max_bytes=50_000_000)


def route(route_id: str) -> ModelRoute:
    return ModelRoute.model_validate(next(r for r in BUILTIN_ROUTES if r["id"] == route_id))


def make_request(route_id: str, **overrides: Any) -> GenerationRequest:
    caps = route(route_id).capabilities
    width, height = (int(v) for v in caps.default_size.split("x"))
    fields: dict[str, Any] = {
        "task_id": "task_1",
        "kind": "video",
        "prompt": "a red fox runs through fresh snow",
        "width": width,
        "height": height,
        "seed": 1234,
        "duration": float(caps.default_duration),
        "fps": caps.default_fps,
        "num_frames": 81 if caps.frame_step == 4 else caps.default_duration * caps.default_fps,
        "settings": route(route_id).settings,
    }
    fields.update(overrides)
    return GenerationRequest(**fields)


def shape(**overrides: Any) -> VendorShape:
    return vendor_shape(**{"width": 1920, "height": 1080, **overrides})


def image(color: str, size: tuple[int, int] = (40, 24)) -> Image.Image:
    return Image.new("RGB", size, color)


def decode_data_uri(value: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert value.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(value[len(prefix) :])))


async def run(engine: FalEngine, request: GenerationRequest) -> UpstreamStatus:
    job = await engine.submit(request)
    status = (await poll_to_end(engine, job, request))[-1]
    return status


@pytest.fixture(scope="module")
def fal_server() -> Iterator[FakeFal]:
    with FakeFal() as server:
        yield server


@pytest.fixture
def fake(fal_server: FakeFal) -> FakeFal:
    fal_server.reset()
    return fal_server


@pytest.fixture
def engine(fake: FakeFal) -> FalEngine:
    return FalEngine(**fake.engine_kwargs())


# -- routes and settings ----------------------------------------------------------------------


def test_builtin_routes_validate() -> None:
    assert {r["id"] for r in BUILTIN_ROUTES} >= {KLING, WAN_I2V}
    engine = FalEngine(api_key="k", base_url="https://queue.fal.run")
    for raw in BUILTIN_ROUTES:
        parsed = ModelRoute.model_validate(raw)
        assert parsed.engine == "fal" and parsed.kind == "video"
        settings = FalSettings.model_validate(parsed.settings)
        assert parsed.id == f"fal:{settings.app}"
        engine.check_route(parsed)
        caps = parsed.capabilities
        # The sizes the route offers are exactly the ones the settings know how to ask for.
        assert settings.sizes is not None and caps.sizes == list(settings.sizes)
        assert caps.default_size in settings.sizes
        if settings.durations is not None:
            assert caps.default_duration in settings.durations
            assert set(settings.durations) <= set(range(caps.min_duration, caps.max_duration + 1))
        if settings.fps is not None:
            assert caps.min_fps == caps.max_fps == caps.default_fps == settings.fps
        if settings.frames is not None:
            assert caps.max_frames is not None and caps.max_frames <= settings.frames[1]
        assert caps.image_to_video == (settings.inputs.input_image is not None)
        assert caps.first_last_frame == (settings.inputs.last_image is not None)


def test_settings_refuse_bad_apps_and_unknown_fields() -> None:
    for app in ("wan-i2v", "fal-ai/../x", "/fal-ai/wan", "fal-ai/wan i2v", "workflows/x"):
        with pytest.raises(ValueError):
            FalSettings.model_validate({"app": app})
    with pytest.raises(ValueError):
        FalSettings.model_validate({"app": "fal-ai/x", "model": "y"})
    with pytest.raises(ValueError):
        FalSettings.model_validate({"app": "fal-ai/x", "sizes": {"720p": {}}})
    with pytest.raises(ValueError):
        FalSettings.model_validate({"app": "fal-ai/x", "durations": [5]})  # no duration input
    assert FalSettings(app="fal-ai/kling-video/v2.1/master/text-to-video").root == (
        "fal-ai/kling-video"
    )
    assert FalSettings(app="workflows/me/flow/run").root == "workflows/me/flow"


def test_is_available_needs_a_key(fake: FakeFal) -> None:
    settings = route(KLING).settings
    assert FalEngine(api_key="k", base_url=fake.url).is_available(settings)
    assert not FalEngine(api_key=None, base_url=fake.url).is_available(settings)
    assert not FalEngine(api_key="", base_url=fake.url).is_available(settings)


def test_settings_overrides_build_the_engine(fake: FakeFal) -> None:
    (engine,) = [
        e for e in vendor_engines(Settings(**fake.settings_overrides())) if e.name == "fal"
    ]
    assert engine.api_key == fake.api_key and engine.base_url == fake.url


# -- refuse ----------------------------------------------------------------------------------


def test_refuse_accepts_what_the_apps_make() -> None:
    engine = FalEngine(api_key="k", base_url="https://queue.fal.run")
    engine.refuse(route(KLING).settings, shape())
    engine.refuse(route(KLING).settings, shape(width=1080, height=1920, duration=10))
    engine.refuse(route(KLING).settings, shape(has_negative_prompt=True))
    wan = {"fps": 16, "num_frames": 81, "has_image": True, "has_seed": True}
    engine.refuse(route(WAN_I2V).settings, shape(width=832, height=480, **wan))
    engine.refuse(route(WAN_I2V).settings, shape(width=1280, height=720, duration=6, **wan))
    engine.refuse(
        route(WAN_FLF).settings,
        shape(width=720, height=1280, has_last_image=True, has_negative_prompt=True, **wan),
    )


@pytest.mark.parametrize(
    ("route_id", "overrides", "param", "hint"),
    [
        (KLING, {"width": 1280, "height": 720}, "size", "1920x1080, 1080x1920, 1080x1080"),
        (KLING, {"duration": 7}, "duration", "5 or 10"),
        (KLING, {"fps": 30}, "fps", "24"),
        (KLING, {"has_image": True}, "input_image", "text-to-video only"),
        (KLING, {"has_seed": True}, "seed", "drop seed"),
        (WAN_I2V, {"width": 960, "height": 960, "fps": 16, "num_frames": 81}, "size", "832x480"),
        (WAN_I2V, {"fps": 16, "num_frames": 65, "width": 1280, "height": 720}, "duration", "81"),
        (WAN_I2V, {"has_last_image": True, "width": 1280, "height": 720}, "last_image", "drop"),
    ],
)
def test_refuse_names_the_field(
    route_id: str, overrides: dict[str, Any], param: str, hint: str
) -> None:
    engine = FalEngine(api_key="k", base_url="https://queue.fal.run")
    fields = {"num_frames": 81, "has_image": route_id != KLING, **overrides}
    with pytest.raises(InvalidValue) as caught:
        engine.refuse(route(route_id).settings, shape(**fields))
    assert caught.value.param == param
    assert hint in caught.value.message


def test_refuse_negative_prompt_where_the_app_has_none() -> None:
    engine = FalEngine(api_key="k", base_url="https://queue.fal.run")
    settings = {"app": "fal-ai/some/app", "inputs": {"duration": "duration"}}
    with pytest.raises(InvalidValue) as caught:
        engine.refuse(settings, shape(has_negative_prompt=True))
    assert caught.value.param == "negative_prompt"


# -- request shapes ---------------------------------------------------------------------------


async def test_text_to_video_request(fake: FakeFal, engine: FalEngine) -> None:
    request = make_request(KLING, negative_prompt="blurry", width=1080, height=1920, duration=10.0)
    job = await engine.submit(request)
    [post] = fake.posts()
    assert post.path == "/fal-ai/kling-video/v2.1/master/text-to-video"
    assert post.headers["authorization"] == f"Key {fake.api_key}"
    assert post.headers["content-type"] == "application/json"
    assert post.json == {
        "prompt": "a red fox runs through fresh snow",
        "duration": "10",
        "aspect_ratio": "9:16",
        "negative_prompt": "blurry",
    }
    assert job.id in fake.jobs and job.data == {
        "app": "fal-ai/kling-video/v2.1/master/text-to-video"
    }


async def test_image_to_video_request(fake: FakeFal, engine: FalEngine) -> None:
    request = make_request(
        WAN_I2V,
        width=832,
        height=480,
        fps=24,
        num_frames=97,
        duration=4.0,
        input_image=image("red"),
        negative_prompt="static",
    )
    await engine.submit(request)
    [post] = fake.posts()
    assert post.path == "/fal-ai/wan-i2v"
    body = dict(post.json)
    sent = decode_data_uri(body.pop("image_url"))
    assert sent.size == (40, 24) and sent.convert("RGB").getpixel((0, 0)) == (255, 0, 0)
    assert body == {
        "prompt": "a red fox runs through fresh snow",
        "negative_prompt": "static",
        "seed": 1234,
        "num_frames": 97,
        "frames_per_second": 24,
        "resolution": "480p",
        "aspect_ratio": "16:9",
    }


async def test_first_last_frame_request(fake: FakeFal, engine: FalEngine) -> None:
    request = make_request(WAN_FLF, input_image=image("red"), last_image=image("blue"))
    await engine.submit(request)
    [post] = fake.posts()
    assert post.path == "/fal-ai/wan-flf2v"
    first = decode_data_uri(post.json["start_image_url"]).convert("RGB")
    last = decode_data_uri(post.json["end_image_url"]).convert("RGB")
    assert first.getpixel((0, 0)) == (255, 0, 0) and last.getpixel((0, 0)) == (0, 0, 255)
    assert post.json["resolution"] == "720p" and post.json["aspect_ratio"] == "16:9"
    assert "negative_prompt" not in post.json  # the app's default applies


async def test_large_images_go_as_jpeg(fake: FakeFal, engine: FalEngine) -> None:
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (1200, 1600, 3), dtype=np.uint8))
    await engine.submit(make_request(WAN_I2V, input_image=noise))
    sent = fake.posts()[-1].json["image_url"]
    assert sent.startswith("data:image/jpeg;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(sent.split(",", 1)[1]))).size == (1600, 1200)


async def test_fixed_arguments_and_duration_formats(fake: FakeFal, engine: FalEngine) -> None:
    settings = {
        "app": "fal-ai/other/app",
        "inputs": {"duration": "length"},
        "duration_format": "seconds",
        "arguments": {"generate_audio": False, "length": "ignored"},
    }
    await engine.submit(make_request(KLING, settings=settings))
    assert fake.posts()[-1].json == {
        "generate_audio": False,
        "length": "5s",
        "prompt": "a red fox runs through fresh snow",
    }


async def test_submit_refuses_what_the_app_cannot_take(engine: FalEngine) -> None:
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request(KLING, input_image=image("red")))
    assert caught.value.code == UPSTREAM_INVALID
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request(KLING, width=640, height=480))
    assert caught.value.code == UPSTREAM_INVALID


# -- job lifecycle -----------------------------------------------------------------------------


async def test_success_then_download(fake: FakeFal, engine: FalEngine, tmp_path: Path) -> None:
    fake.script("succeed", polls=2)
    request = make_request(KLING)
    job = await engine.submit(request)
    statuses = await poll_to_end(engine, job, request)
    status = statuses[-1]
    assert [s.state for s in statuses] == ["pending", "pending", "succeeded"]
    assert status.video_url is not None
    assert status.video_url == f"{fake.url}/files/{job.id}/output.mp4"
    # Status and result live under the app id without its sub-path.
    gets = [(r.path, r.headers.get("authorization")) for r in fake.requests if r.method == "GET"]
    base = f"/fal-ai/kling-video/requests/{job.id}"
    auth = f"Key {fake.api_key}"
    assert gets == [(f"{base}/status", auth)] * 3 + [(base, auth)]

    destination = tmp_path / "out.mp4"
    await engine.download(status.video_url, destination, POLICY)
    with av.open(str(destination)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == SAMPLE_FRAMES


async def test_failed_job(fake: FakeFal, engine: FalEngine) -> None:
    fake.script("fail", polls=1)
    status = await run(engine, make_request(KLING))
    assert status.state == "failed" and status.error is not None
    assert status.error.code == UPSTREAM_ERROR and not status.error.retriable
    assert "runner_server_error" in status.error.message
    assert "the model produced no output" in status.error.message


async def test_moderated_job(fake: FakeFal, engine: FalEngine) -> None:
    fake.script("moderate", polls=0)
    status = await run(engine, make_request(KLING))
    assert status.state == "failed" and status.error is not None
    assert status.error.code == MODERATION_BLOCKED
    assert MODERATION_MESSAGE in status.error.message


async def test_input_rejected_by_the_app(fake: FakeFal, engine: FalEngine) -> None:
    fake.script("invalid", polls=0)
    status = await run(engine, make_request(KLING))
    assert status.state == "failed" and status.error is not None
    assert status.error.code == UPSTREAM_INVALID
    assert "duration: Input should be '5' or '10'" in status.error.message


async def test_rate_limited_then_accepted(fake: FakeFal, engine: FalEngine) -> None:
    fake.script("throttle", throttles=2)
    request = make_request(KLING)
    for _ in range(2):
        with pytest.raises(UpstreamError) as caught:
            await engine.submit(request)
        assert caught.value.code == UPSTREAM_RATE_LIMITED
        assert caught.value.retriable and caught.value.retry_after == 0
    assert fake.submitted == 0
    status = await run(engine, request)
    assert status.state == "succeeded" and fake.submitted == 1


async def test_wrong_key(fake: FakeFal) -> None:
    key = "wrong-key-id:wrong-key-secret-123456"
    engine = FalEngine(api_key=key, base_url=fake.url, poll_interval=0.05)
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request(KLING))
    assert caught.value.code == UPSTREAM_AUTH and not caught.value.retriable
    assert key not in caught.value.message and "wrong-key-secret" not in caught.value.message
    job = await FalEngine(**fake.engine_kwargs()).submit(make_request(KLING))
    with pytest.raises(UpstreamError) as caught:
        await engine.poll(job, make_request(KLING))
    assert caught.value.code == UPSTREAM_AUTH


async def test_no_key_is_an_auth_error(fake: FakeFal) -> None:
    engine = FalEngine(api_key=None, base_url=fake.url)
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request(KLING))
    assert caught.value.code == UPSTREAM_AUTH
    assert fake.requests == []


async def test_unreachable_api_is_retriable() -> None:
    engine = FalEngine(api_key="k", base_url=f"http://127.0.0.3:{free_port()}", timeout=2)
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request(KLING))
    assert caught.value.code == UPSTREAM_UNAVAILABLE and caught.value.retriable


async def test_unknown_request_is_not_retried(fake: FakeFal, engine: FalEngine) -> None:
    job = UpstreamJob(id="no-such-request", data={"app": "fal-ai/wan-i2v"})
    with pytest.raises(UpstreamError) as caught:
        await engine.poll(job, make_request(WAN_I2V))
    assert caught.value.code == UPSTREAM_INVALID and caught.value.status_code == 404


async def test_cancel(fake: FakeFal, engine: FalEngine) -> None:
    fake.script("succeed", polls=3)
    request = make_request(WAN_I2V, input_image=image("red"))
    job = await engine.submit(request)
    await engine.cancel(job, request)
    [put] = [r for r in fake.requests if r.method == "PUT"]
    assert put.path == f"/fal-ai/wan-i2v/requests/{job.id}/cancel"
    assert put.headers["authorization"] == f"Key {fake.api_key}"
    assert fake.jobs[job.id].cancelled
    # Cancelling a finished job is harmless (fal answers 400 ALREADY_COMPLETED).
    fake.script("succeed", polls=0)
    done = await engine.submit(request)
    await poll_to_end(engine, done, request)
    await engine.cancel(done, request)
