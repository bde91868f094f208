"""Contract tests: ReplicateEngine (through the official ``replicate`` SDK) against the
fake Replicate API in ``fake_replicate.py``."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image

from framegate.catalog.schemas import ModelRoute
from framegate.config import Settings
from framegate.engines.base import EngineError, GenerationRequest
from framegate.engines.vendors.base import UpstreamJob, VendorShape
from framegate.engines.vendors.replicate import (
    ReplicateEngine,
    ReplicateSettings,
    throttle_delay,
)
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
from tests.engines.vendors.fake_replicate import FAIL_MESSAGE, FakeReplicate

BUILTIN_ROUTES = builtin_routes("replicate")

WAN = "replicate:wavespeedai/wan-2.1-t2v-480p"
MINIMAX = "replicate:minimax/video-01"
ROUTES = {route["id"]: route for route in BUILTIN_ROUTES}
POLICY = FetchPolicy(allow_networks=parse_networks("127.0.0.3/32"), max_bytes=50_000_000)
VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeReplicate]:
    with FakeReplicate() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeReplicate) -> FakeReplicate:
    server.requests.clear()
    server.script("succeed", polls=2)
    return server


@pytest.fixture
def engine(fake: FakeReplicate) -> ReplicateEngine:
    return ReplicateEngine(**fake.engine_kwargs())


def make_request(route_id: str = WAN, **overrides: Any) -> GenerationRequest:
    values: dict[str, Any] = {
        "task_id": "task_1",
        "kind": "video",
        "prompt": "a red fox running through snow",
        "width": 832,
        "height": 480,
        "seed": 1234,
        "duration": 5.0,
        "fps": 16,
        "num_frames": 81,
        "settings": ROUTES[route_id]["settings"],
    }
    if route_id == MINIMAX:
        values.update(width=1280, height=720, duration=6.0, fps=25, num_frames=150)
    values.update(overrides)
    return GenerationRequest(**values)


def shape(**overrides: Any) -> VendorShape:
    return vendor_shape(**{"width": 832, "height": 480, "fps": 16, "num_frames": 81, **overrides})


def gradient(width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height))
    image.putdata(
        [(x * 255 // width, y * 255 // height, 90) for y in range(height) for x in range(width)]
    )
    return image


# -- catalog -------------------------------------------------------------------------------


def test_builtin_routes_validate() -> None:
    engine = ReplicateEngine(api_key="k", base_url="https://api.replicate.com")
    assert set(ROUTES) == {WAN, MINIMAX}
    for raw in BUILTIN_ROUTES:
        route = ModelRoute.model_validate(raw)
        assert route.engine == "replicate"
        assert route.id.startswith("replicate:")
        engine.check_route(route)
        settings = ReplicateSettings.model_validate(route.settings)
        assert route.id == f"replicate:{settings.ref}"
        caps = route.capabilities
        assert caps.default_size in (caps.sizes or [])
        assert caps.min_duration <= caps.default_duration <= caps.max_duration
        assert caps.min_fps <= caps.default_fps <= caps.max_fps


def test_wan_default_clip_fits_the_model() -> None:
    """5 s at 16 fps rounds to 81 frames (frame_step 4), inside Wan's 81..100."""
    route = ModelRoute.model_validate(ROUTES[WAN])
    caps = route.capabilities
    frames = caps.default_duration * caps.default_fps
    frames = -(-(frames - 1) // caps.frame_step) * caps.frame_step + 1
    assert frames == 81
    ReplicateEngine(api_key="k", base_url="http://x").refuse(route.settings, shape())


def test_is_available_needs_a_key() -> None:
    settings = ROUTES[WAN]["settings"]
    assert not ReplicateEngine(api_key=None, base_url="http://x").is_available(settings)
    assert not ReplicateEngine(api_key="", base_url="http://x").is_available(settings)
    assert ReplicateEngine(api_key="r8_x", base_url="http://x").is_available(settings)


def test_settings_overrides_configure_framegate(fake: FakeReplicate) -> None:
    settings = Settings(**fake.settings_overrides())
    assert settings.replicate_base_url == fake.url
    assert settings.replicate_api_token is not None
    assert settings.replicate_api_token.get_secret_value() == fake.api_key


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ReplicateSettings.model_validate({"model": "a/b", "version": VERSION})
    with pytest.raises(ValueError, match="exactly one"):
        ReplicateSettings.model_validate({})
    with pytest.raises(ValueError):
        ReplicateSettings.model_validate({"model": "a/b", "unknown": 1})
    with pytest.raises(ValueError, match="same model input"):
        ReplicateSettings.model_validate(
            {"model": "a/b", "inputs": {"seed": "seed", "num_frames": "seed"}}
        )
    with pytest.raises(ValueError, match="mapped in inputs and set"):
        ReplicateSettings.model_validate(
            {"model": "a/b", "inputs": {"seed": "seed"}, "fixed_inputs": {"seed": 1}}
        )
    engine = ReplicateEngine(api_key="k", base_url="http://x")
    with pytest.raises(EngineError) as caught:
        engine.refuse({"model": "not a model"}, shape())
    assert caught.value.code == "invalid_settings"
    # Capabilities the mapping cannot serve are refused when the catalog loads.
    raw = {**ROUTES[WAN], "capabilities": {**ROUTES[WAN]["capabilities"], "image_to_video": True}}
    with pytest.raises(ValueError, match="input_image"):
        engine.check_route(ModelRoute.model_validate(raw))
    raw = {**ROUTES[WAN], "capabilities": {**ROUTES[WAN]["capabilities"], "sizes": ["1280x720"]}}
    with pytest.raises(ValueError, match="sizes"):
        engine.check_route(ModelRoute.model_validate(raw))


@pytest.mark.parametrize(
    ("route_id", "overrides", "param"),
    [
        (WAN, {"has_negative_prompt": True}, "negative_prompt"),
        (WAN, {"has_image": True}, "input_image"),
        (WAN, {"has_last_image": True}, "last_image"),
        (WAN, {"width": 1280, "height": 720}, "size"),
        (WAN, {"width": 480, "height": 480}, "size"),
        (WAN, {"num_frames": 77, "duration": 5}, "duration"),
        (WAN, {"num_frames": 65, "duration": 4}, "duration"),
        (WAN, {"num_frames": 101, "fps": 24, "duration": 5}, "duration"),
        (MINIMAX, {"has_seed": True}, "seed"),
        (MINIMAX, {"has_negative_prompt": True}, "negative_prompt"),
        (MINIMAX, {"has_image": True, "has_last_image": True}, "last_image"),
        (MINIMAX, {"width": 720, "height": 1280}, "size"),
    ],
)
def test_refuse(route_id: str, overrides: dict[str, Any], param: str) -> None:
    engine = ReplicateEngine(api_key="k", base_url="http://x")
    base = {"width": 1280, "height": 720, "duration": 6, "fps": 25, "num_frames": 150}
    values = {**(base if route_id == MINIMAX else {}), **overrides}
    with pytest.raises(InvalidValue) as caught:
        engine.refuse(ROUTES[route_id]["settings"], shape(**values))
    assert caught.value.param == param
    assert param in caught.value.message


def test_refuse_messages_name_the_fix() -> None:
    engine = ReplicateEngine(api_key="k", base_url="http://x")
    with pytest.raises(InvalidValue) as caught:
        engine.refuse(ROUTES[WAN]["settings"], shape(width=1280, height=720))
    assert "832x480, 480x832" in caught.value.message
    with pytest.raises(InvalidValue) as caught:
        engine.refuse(ROUTES[WAN]["settings"], shape(num_frames=65, duration=4))
    assert "81 to 100 frames" in caught.value.message
    assert "5 to 6 s" in caught.value.message
    settings = {"model": "a/b", "durations": [5, 10]}
    with pytest.raises(InvalidValue) as caught:
        engine.refuse(settings, shape(duration=7))
    assert caught.value.param == "duration"
    assert "5 or 10 seconds" in caught.value.message


def test_refuse_accepts_what_the_models_do() -> None:
    engine = ReplicateEngine(api_key="k", base_url="http://x")
    wan = ROUTES[WAN]["settings"]
    engine.refuse(wan, shape(has_seed=True))
    engine.refuse(wan, shape(width=480, height=832, fps=24, duration=4, num_frames=97))
    minimax = ROUTES[MINIMAX]["settings"]
    engine.refuse(
        minimax, shape(width=1280, height=720, duration=6, fps=25, num_frames=150, has_image=True)
    )


# -- requests ------------------------------------------------------------------------------


async def test_text_to_video_request(fake: FakeReplicate, engine: ReplicateEngine) -> None:
    job = await engine.submit(make_request(seed=77))
    assert fake.submitted >= 1
    [sent] = fake.requests_to("POST", "/v1/")
    assert sent.path == "/v1/models/wavespeedai/wan-2.1-t2v-480p/predictions"
    assert sent.headers["authorization"] == f"Bearer {fake.api_key}"
    assert sent.headers["content-type"].startswith("application/json")
    assert "prefer" not in sent.headers  # no blocking "Prefer: wait"
    assert sent.json == {
        "input": {
            "prompt": "a red fox running through snow",
            "aspect_ratio": "16:9",
            "seed": 77,
            "frames_per_second": 16,
            "num_frames": 81,
        }
    }
    assert job.id in fake.predictions
    assert job.data == {"model": "wavespeedai/wan-2.1-t2v-480p"}


async def test_portrait_and_fps(fake: FakeReplicate, engine: ReplicateEngine) -> None:
    await engine.submit(make_request(width=480, height=832, fps=24, duration=4.0, num_frames=97))
    [sent] = fake.requests_to("POST", "/v1/")
    assert sent.json["input"]["aspect_ratio"] == "9:16"
    assert sent.json["input"]["frames_per_second"] == 24
    assert sent.json["input"]["num_frames"] == 97


async def test_image_to_video_request(fake: FakeReplicate, engine: ReplicateEngine) -> None:
    first = gradient(320, 240)
    await engine.submit(make_request(MINIMAX, input_image=first, input_image_url="https://x/y"))
    [sent] = fake.requests_to("POST", "/v1/")
    assert sent.path == "/v1/models/minimax/video-01/predictions"
    assert sent.headers["authorization"] == f"Bearer {fake.api_key}"
    inputs = sent.json["input"]
    assert set(inputs) == {"prompt", "first_frame_image"}
    assert inputs["prompt"] == "a red fox running through snow"
    uri = inputs["first_frame_image"]
    assert uri.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    # Cropped to the requested 16:9 frame: the model keeps the first frame's shape.
    assert decoded.size == (1280, 720)
    assert decoded.mode == "RGB"
    # The centre is preserved: left-to-right red ramp, top-to-bottom green ramp.
    red, green, _ = decoded.getpixel((640, 360))
    assert abs(red - 127) < 8 and abs(green - 127) < 8


async def test_minimax_text_to_video_sends_only_the_prompt(
    fake: FakeReplicate, engine: ReplicateEngine
) -> None:
    await engine.submit(make_request(MINIMAX))
    [sent] = fake.requests_to("POST", "/v1/")
    assert sent.json == {"input": {"prompt": "a red fox running through snow"}}


async def test_large_images_go_as_jpeg(fake: FakeReplicate, engine: ReplicateEngine) -> None:
    noise = Image.frombytes("RGB", (1280, 720), bytes(range(256)) * (1280 * 720 * 3 // 256))
    noise = noise.effect_spread(40)
    await engine.submit(make_request(MINIMAX, input_image=noise))
    [sent] = fake.requests_to("POST", "/v1/")
    uri = sent.json["input"]["first_frame_image"]
    assert uri.startswith("data:image/jpeg;base64,")
    assert len(base64.b64decode(uri.split(",", 1)[1])) <= 1_000_000


async def test_version_route_and_full_mapping(fake: FakeReplicate) -> None:
    settings = {
        "version": f"someone/custom-video:{VERSION}",
        "inputs": {
            "prompt": "text",
            "negative_prompt": "negative",
            "seed": "noise_seed",
            "duration": "seconds",
            "fps": "fps",
            "num_frames": "frames",
            "width": "width",
            "height": "height",
            "input_image": "start_image",
            "last_image": "end_image",
        },
        "fixed_inputs": {"steps": 30, "enhance": False},
    }
    engine = ReplicateEngine(**fake.engine_kwargs())
    request = make_request(
        settings=settings,
        width=64,
        height=48,
        negative_prompt="blurry",
        input_image=gradient(64, 48),
        last_image=gradient(64, 48),
    )
    job = await engine.submit(request)
    [sent] = fake.requests_to("POST", "/v1/")
    assert sent.path == "/v1/predictions"
    assert sent.json["version"] == VERSION
    inputs = sent.json["input"]
    assert inputs["text"] == "a red fox running through snow"
    assert inputs["negative"] == "blurry"
    assert inputs["noise_seed"] == 1234
    assert (inputs["seconds"], inputs["fps"], inputs["frames"]) == (5, 16, 81)
    assert (inputs["width"], inputs["height"]) == (64, 48)
    assert inputs["start_image"].startswith("data:image/png;base64,")
    assert inputs["end_image"].startswith("data:image/png;base64,")
    assert (inputs["steps"], inputs["enhance"]) == (30, False)
    assert fake.predictions[job.id].version == VERSION


async def test_base_url_may_end_with_v1(fake: FakeReplicate) -> None:
    engine = ReplicateEngine(**{**fake.engine_kwargs(), "base_url": f"{fake.url}/v1/"})
    await engine.submit(make_request())
    [sent] = fake.requests_to("POST", "/v1/")
    assert sent.path == "/v1/models/wavespeedai/wan-2.1-t2v-480p/predictions"


# -- status, download ----------------------------------------------------------------------


async def test_success_then_download(
    fake: FakeReplicate, engine: ReplicateEngine, tmp_path: Path
) -> None:
    fake.script("succeed", polls=2)
    request = make_request()
    job = await engine.submit(request)
    statuses = await poll_to_end(engine, job, request)
    assert [s.state for s in statuses] == ["pending", "pending", "succeeded"]
    assert statuses[0].progress is None  # "starting"
    assert statuses[1].progress == pytest.approx(0.5)  # "processing", from the logs
    final = statuses[-1]
    assert final.error is None
    assert final.video_url == f"{fake.url}/delivery/{job.id}/output.mp4"
    polls = fake.requests_to("GET", "/v1/predictions/")
    assert [r.path for r in polls] == [f"/v1/predictions/{job.id}"] * 3
    assert all(r.headers["authorization"] == f"Bearer {fake.api_key}" for r in polls)

    destination = tmp_path / "video.mp4"
    await engine.download(final.video_url, destination, POLICY)
    with av.open(str(destination)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == SAMPLE_FRAMES


async def test_failure(fake: FakeReplicate, engine: ReplicateEngine) -> None:
    fake.script("fail", polls=1)
    request = make_request()
    job = await engine.submit(request)
    final = (await poll_to_end(engine, job, request))[-1]
    assert final.state == "failed"
    assert final.error is not None
    assert final.error.code == "upstream_error"
    assert not final.error.retriable
    assert FAIL_MESSAGE in final.error.message


async def test_moderation(fake: FakeReplicate, engine: ReplicateEngine) -> None:
    fake.script("moderate", polls=0)
    request = make_request()
    job = await engine.submit(request)
    [final] = await poll_to_end(engine, job, request)
    assert final.state == "failed"
    assert final.error is not None
    assert final.error.code == "moderation_blocked"
    assert "E005" in final.error.message


async def test_cancel(fake: FakeReplicate, engine: ReplicateEngine) -> None:
    fake.script("succeed", polls=5)
    request = make_request()
    job = await engine.submit(request)
    await engine.cancel(job, request)
    [sent] = fake.requests_to("POST", f"/v1/predictions/{job.id}/cancel")
    assert sent.headers["authorization"] == f"Bearer {fake.api_key}"
    status = await engine.poll(job, request)
    assert status.state == "failed"
    assert status.error is not None and status.error.code == "upstream_error"


# -- errors --------------------------------------------------------------------------------


async def test_throttled(fake: FakeReplicate, engine: ReplicateEngine) -> None:
    fake.script("throttle", throttles=2)
    before = fake.submitted
    for _ in range(2):
        with pytest.raises(EngineError) as caught:
            await engine.submit(make_request())
        error = caught.value
        assert error.code == "upstream_rate_limited"
        assert error.retriable
        assert getattr(error, "retry_after", None) == 0.0
        assert getattr(error, "status_code", None) == 429
    assert fake.submitted == before
    # Then it goes through (one POST per submit: the SDK does not retry POSTs).
    job = await engine.submit(make_request())
    assert fake.submitted == before + 1
    assert len(fake.requests_to("POST", "/v1/")) == 3
    assert job.id in fake.predictions


def test_throttle_delay_from_the_message() -> None:
    assert throttle_delay("Request was throttled. Expected available in 1 second.", {}) == 1.0
    assert throttle_delay("Request was throttled. Your rate limit resets in ~30s.", {}) == 30.0
    assert throttle_delay("whatever", {"retry-after": "7"}) == 7.0
    assert throttle_delay("whatever", {}) is None


async def test_poll_errors_are_one_request_and_retriable(
    fake: FakeReplicate, engine: ReplicateEngine
) -> None:
    request = make_request()
    job = await engine.submit(request)
    fake.script_poll_errors(503)
    with pytest.raises(EngineError) as caught:
        await engine.poll(job, request)
    assert caught.value.code == "upstream_unavailable"
    assert caught.value.retriable
    # The SDK's own retry loop is bypassed: framegate retries later, honouring its backoff.
    assert len(fake.requests_to("GET", "/v1/predictions/")) == 1
    fake.script_poll_errors(500)
    with pytest.raises(EngineError) as caught:
        await engine.poll(job, request)
    assert caught.value.code == "upstream_unavailable"
    assert (await engine.poll(job, request)).state == "pending"


async def test_wrong_key(fake: FakeReplicate) -> None:
    engine = ReplicateEngine(**{**fake.engine_kwargs(), "api_key": "r8_wrong_key_secret"})
    with pytest.raises(EngineError) as caught:
        await engine.submit(make_request())
    assert caught.value.code == "upstream_auth"
    assert not caught.value.retriable
    assert "r8_wrong_key_secret" not in caught.value.message
    assert "valid authentication token" in caught.value.message
    with pytest.raises(EngineError) as caught:
        await engine.poll(UpstreamJob(id="abc"), make_request())
    assert caught.value.code == "upstream_auth"


async def test_no_key_sends_nothing(fake: FakeReplicate) -> None:
    engine = ReplicateEngine(**{**fake.engine_kwargs(), "api_key": None})
    with pytest.raises(EngineError) as caught:
        await engine.submit(make_request())
    assert caught.value.code == "upstream_auth"
    assert fake.requests == []


async def test_parameters_the_vendor_refuses(fake: FakeReplicate) -> None:
    settings = {**ROUTES[WAN]["settings"], "inputs": {"prompt": "prompt", "fps": "fps"}}
    engine = ReplicateEngine(**fake.engine_kwargs())
    with pytest.raises(EngineError) as caught:
        await engine.submit(make_request(settings=settings))
    assert caught.value.code == "upstream_invalid_request"
    assert "fps" in caught.value.message
    assert not caught.value.retriable


async def test_unknown_prediction(fake: FakeReplicate, engine: ReplicateEngine) -> None:
    with pytest.raises(EngineError) as caught:
        await engine.poll(UpstreamJob(id="doesnotexist"), make_request())
    assert caught.value.code == "upstream_invalid_request"


async def test_connection_refused_is_retriable() -> None:
    engine = ReplicateEngine(api_key="k", base_url=f"http://127.0.0.3:{free_port()}", timeout=2)
    with pytest.raises(EngineError) as caught:
        await engine.submit(make_request())
    assert caught.value.code == "upstream_unavailable"
    assert caught.value.retriable
