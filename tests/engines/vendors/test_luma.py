"""Contract tests: LumaEngine (through the official lumaai SDK) against the Dream Machine fake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image

from framegate.catalog.schemas import ModelRoute
from framegate.config import Settings
from framegate.engines.base import EngineError, GenerationRequest
from framegate.engines.vendors.base import UpstreamError, UpstreamJob
from framegate.engines.vendors.luma import SIZES, LumaEngine
from framegate.exceptions import InvalidValue
from framegate.kit.addresses import parse_networks
from framegate.kit.safe_fetch import FetchPolicy
from tests.engines.vendors.common import (
    FAKE_HOST,
    SAMPLE_FRAMES,
    SAMPLE_HEIGHT,
    SAMPLE_WIDTH,
    builtin_routes,
    free_port,
    poll_to_end,
)
from tests.engines.vendors.common import vendor_shape as shape
from tests.engines.vendors.fake_luma import (
    FAILURE_REASON,
    FRAME_MODERATION_REASON,
    PROMPT_MODERATION_REASON,
    FakeLuma,
)

BUILTIN_ROUTES = builtin_routes("luma")

POLICY = FetchPolicy(allow_networks=parse_networks("127.0.0.3/32"), max_bytes=50_000_000)
PROMPT = "a red fox trotting through fresh snow, golden hour"
FIRST_URL = "https://framegate.example.com/v1/files/in_1/content?exp=1&sig=abc"
LAST_URL = "https://framegate.example.com/v1/files/in_2/content?exp=1&sig=def"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLuma]:
    with FakeLuma() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeLuma) -> FakeLuma:
    server.reset()
    return server


@pytest.fixture
def engine(fake: FakeLuma) -> LumaEngine:
    return LumaEngine(**fake.engine_kwargs())


def make_request(**overrides: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "task_id": "task_luma",
        "kind": "video",
        "prompt": PROMPT,
        "width": 1280,
        "height": 720,
        "seed": 0,
        "duration": 5.0,
        "fps": 24,
        "num_frames": 120,
        "settings": {"model": "ray-2"},
    }
    fields.update(overrides)
    return GenerationRequest(**fields)


def image() -> Image.Image:
    return Image.new("RGB", (64, 48), (200, 40, 40))


# -- request shape ---------------------------------------------------------------------------


async def test_text_to_video_request(fake: FakeLuma, engine: LumaEngine) -> None:
    job = await engine.submit(make_request())

    [call] = fake.api_requests()
    assert call.method == "POST"
    assert call.path == "/dream-machine/v1/generations/video"
    assert call.headers["authorization"] == f"Bearer {fake.api_key}"
    assert call.headers["content-type"] == "application/json"
    assert call.json == {
        "model": "ray-2",
        "prompt": PROMPT,
        "resolution": "720p",
        "aspect_ratio": "16:9",
        "duration": "5s",
        "loop": False,
    }
    assert job.id in fake.jobs
    assert fake.submitted == 1


@pytest.mark.parametrize(
    ("size", "duration", "resolution", "aspect_ratio", "sent_duration"),
    [
        ((720, 1280), 5.0, "720p", "9:16", "5s"),
        ((1920, 1080), 9.0, "1080p", "16:9", "9s"),
        ((1680, 720), 5.0, "720p", "21:9", "5s"),
        ((1080, 2520), 5.0, "1080p", "9:21", "5s"),
        ((1440, 1080), 9.0, "1080p", "4:3", "9s"),
        ((720, 960), 5.0, "720p", "3:4", "5s"),
        ((1080, 1080), 5.0, "1080p", "1:1", "5s"),
        ((960, 540), 5.0, "540p", "16:9", "5s"),
    ],
)
async def test_size_and_duration_mapping(
    fake: FakeLuma,
    engine: LumaEngine,
    size: tuple[int, int],
    duration: float,
    resolution: str,
    aspect_ratio: str,
    sent_duration: str,
) -> None:
    width, height = size
    request = make_request(
        width=width, height=height, duration=duration, num_frames=int(duration * 24)
    )
    await engine.submit(request)
    [call] = fake.api_requests()
    assert call.json["resolution"] == resolution
    assert call.json["aspect_ratio"] == aspect_ratio
    assert call.json["duration"] == sent_duration


async def test_route_settings_are_sent(fake: FakeLuma, engine: LumaEngine) -> None:
    await engine.submit(make_request(settings={"model": "ray-flash-2", "loop": True}))
    [call] = fake.api_requests()
    assert call.json["model"] == "ray-flash-2"
    assert call.json["loop"] is True


async def test_image_to_video_sends_the_first_frame_by_url(
    fake: FakeLuma, engine: LumaEngine
) -> None:
    request = make_request(input_image=image(), input_image_url=FIRST_URL)
    await engine.submit(request)
    [call] = fake.api_requests()
    assert call.json["keyframes"] == {"frame0": {"type": "image", "url": FIRST_URL}}
    assert call.json["prompt"] == PROMPT
    # Luma takes images only by URL: no image bytes travel.
    assert "base64" not in json.dumps(call.json)


async def test_first_and_last_frame(fake: FakeLuma, engine: LumaEngine) -> None:
    request = make_request(
        input_image=image(),
        input_image_url=FIRST_URL,
        last_image=image(),
        last_image_url=LAST_URL,
    )
    await engine.submit(request)
    [call] = fake.api_requests()
    assert call.json["keyframes"] == {
        "frame0": {"type": "image", "url": FIRST_URL},
        "frame1": {"type": "image", "url": LAST_URL},
    }
    assert call.json["loop"] is False


async def test_image_without_prompt_omits_the_prompt(fake: FakeLuma, engine: LumaEngine) -> None:
    await engine.submit(make_request(prompt="", input_image=image(), input_image_url=FIRST_URL))
    [call] = fake.api_requests()
    assert "prompt" not in call.json
    assert fake.submitted == 1


@pytest.mark.parametrize("which", ["input_image", "last_image"])
async def test_image_without_public_url_is_refused(
    fake: FakeLuma, engine: LumaEngine, which: str
) -> None:
    overrides: dict[str, Any] = {which: image()}
    if which == "last_image":
        overrides.update(input_image=image(), input_image_url=FIRST_URL)
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request(**overrides))
    assert caught.value.code == "upstream_invalid_request"
    assert not caught.value.retriable
    assert "FRAMEGATE_PUBLIC_URL" in caught.value.message
    assert which in caught.value.message
    assert fake.api_requests() == []


# -- status progression and download ---------------------------------------------------------


async def test_success_progression_and_download(
    fake: FakeLuma, engine: LumaEngine, tmp_path: Path
) -> None:
    fake.script("succeed", polls=2)
    request = make_request()
    job = await engine.submit(request)
    statuses = await poll_to_end(engine, job, request)

    assert [s.state for s in statuses] == ["pending", "pending", "succeeded"]
    polls = fake.api_requests()[1:]
    assert [(r.method, r.path) for r in polls] == [
        ("GET", f"/dream-machine/v1/generations/{job.id}")
    ] * 3
    assert all(r.headers["authorization"] == f"Bearer {fake.api_key}" for r in polls)

    url = statuses[-1].video_url
    assert url is not None and url.startswith(f"http://{FAKE_HOST}:")
    destination = tmp_path / "luma.mp4"
    await engine.download(url, destination, POLICY)
    with av.open(str(destination)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
    assert len(frames) == SAMPLE_FRAMES
    assert (frames[0].width, frames[0].height) == (SAMPLE_WIDTH, SAMPLE_HEIGHT)


async def test_job_survives_a_new_engine(fake: FakeLuma, engine: LumaEngine) -> None:
    """The worker parks the job and polls it later, possibly from another process."""
    fake.script("succeed", polls=0)
    request = make_request()
    job = await engine.submit(request)
    stored = UpstreamJob(id=job.id, data=json.loads(json.dumps(job.data)))
    status = await LumaEngine(**fake.engine_kwargs()).poll(stored, request)
    assert status.state == "succeeded"


async def test_failed_generation(fake: FakeLuma, engine: LumaEngine) -> None:
    fake.script("fail", polls=1)
    request = make_request()
    job = await engine.submit(request)
    statuses = await poll_to_end(engine, job, request)
    assert [s.state for s in statuses] == ["pending", "failed"]
    error = statuses[-1].error
    assert error is not None
    assert error.code == "upstream_error"
    assert not error.retriable
    assert FAILURE_REASON in error.message


async def test_prompt_moderation(fake: FakeLuma, engine: LumaEngine) -> None:
    fake.script("moderate", polls=1)
    request = make_request()
    job = await engine.submit(request)
    statuses = await poll_to_end(engine, job, request)
    error = statuses[-1].error
    assert statuses[-1].state == "failed" and error is not None
    assert error.code == "moderation_blocked"
    assert PROMPT_MODERATION_REASON in error.message


async def test_frame_moderation(fake: FakeLuma, engine: LumaEngine) -> None:
    fake.script("moderate", polls=0)
    request = make_request(input_image=image(), input_image_url=FIRST_URL)
    job = await engine.submit(request)
    status = await engine.poll(job, request)
    assert status.state == "failed" and status.error is not None
    assert status.error.code == "moderation_blocked"
    assert FRAME_MODERATION_REASON in status.error.message


# -- HTTP errors -----------------------------------------------------------------------------


async def test_rate_limited_then_accepted(fake: FakeLuma, engine: LumaEngine) -> None:
    fake.script("throttle", throttles=2)
    for _ in range(2):
        with pytest.raises(UpstreamError) as caught:
            await engine.submit(make_request())
        assert caught.value.code == "upstream_rate_limited"
        assert caught.value.retriable
        assert caught.value.retry_after == 0.0
        assert caught.value.status_code == 429
    # The SDK's own retries are off: one request per submit.
    assert len(fake.api_requests()) == 2
    assert fake.submitted == 0
    job = await engine.submit(make_request())
    assert fake.submitted == 1
    assert job.id in fake.jobs


async def test_wrong_key(fake: FakeLuma) -> None:
    wrong = "luma-wrong-key-should-not-leak"
    engine = LumaEngine(**{**fake.engine_kwargs(), "api_key": wrong})
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request())
    assert caught.value.code == "upstream_auth"
    assert not caught.value.retriable
    assert caught.value.status_code == 401
    assert wrong not in caught.value.message
    assert fake.api_requests()[0].headers["authorization"] == f"Bearer {wrong}"

    with pytest.raises(UpstreamError) as caught:
        await engine.poll(UpstreamJob(id="00000000-0000-0000-0000-000000000000"), make_request())
    assert caught.value.code == "upstream_auth"
    assert wrong not in caught.value.message


async def test_vendor_refusal_is_invalid_request(fake: FakeLuma, engine: LumaEngine) -> None:
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request(prompt="hi"))
    assert caught.value.code == "upstream_invalid_request"
    assert not caught.value.retriable
    assert "Prompt is too short" in caught.value.message
    assert fake.api_key not in caught.value.message


async def test_unknown_generation_is_invalid_request(engine: LumaEngine) -> None:
    with pytest.raises(UpstreamError) as caught:
        await engine.poll(UpstreamJob(id="00000000-0000-0000-0000-000000000000"), make_request())
    assert caught.value.code == "upstream_invalid_request"
    assert caught.value.status_code == 404


async def test_server_error_is_retriable(fake: FakeLuma, engine: LumaEngine) -> None:
    fake.script("unavailable")
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request())
    assert caught.value.code == "upstream_unavailable"
    assert caught.value.retriable
    assert len(fake.api_requests()) == 1


async def test_connection_refused_is_retriable() -> None:
    engine = LumaEngine(
        api_key="luma-key", base_url=f"http://{FAKE_HOST}:{free_port()}/dream-machine/v1"
    )
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request())
    assert caught.value.code == "upstream_unavailable"
    assert caught.value.retriable
    assert "luma-key" not in caught.value.message


async def test_cancel_deletes_the_generation(fake: FakeLuma, engine: LumaEngine) -> None:
    request = make_request()
    job = await engine.submit(request)
    await engine.cancel(job, request)
    last = fake.api_requests()[-1]
    assert (last.method, last.path) == ("DELETE", f"/dream-machine/v1/generations/{job.id}")
    assert last.headers["authorization"] == f"Bearer {fake.api_key}"
    # Best effort: a second cancel (404 now) does not raise.
    await engine.cancel(job, request)


# -- availability, refusals, catalog ---------------------------------------------------------


async def test_availability(fake: FakeLuma) -> None:
    assert LumaEngine(**fake.engine_kwargs()).is_available({})
    keyless = LumaEngine(**{**fake.engine_kwargs(), "api_key": None})
    assert not keyless.is_available({})
    with pytest.raises(UpstreamError) as caught:
        await keyless.submit(make_request())
    assert caught.value.code == "upstream_auth"
    assert fake.api_requests() == []


def test_settings_overrides_point_at_the_fake(fake: FakeLuma) -> None:
    settings = Settings(**fake.settings_overrides())
    assert settings.luma_api_key is not None
    assert settings.luma_api_key.get_secret_value() == fake.api_key
    assert settings.luma_base_url == fake.url


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"width": 1024, "height": 576}, "size"),
        ({"width": 854, "height": 480}, "size"),
        ({"width": 3840, "height": 2160}, "size"),
        ({"duration": 6, "num_frames": 144}, "duration"),
        ({"duration": 10, "num_frames": 240}, "duration"),
        ({"fps": 30, "num_frames": 150}, "fps"),
        ({"num_frames": 100}, "num_frames"),
        ({"has_negative_prompt": True}, "negative_prompt"),
        ({"has_seed": True}, "seed"),
    ],
)
def test_refuse(overrides: dict[str, Any], param: str) -> None:
    engine = LumaEngine(api_key="k", base_url="http://luma.invalid")
    with pytest.raises(InvalidValue) as caught:
        engine.refuse({"model": "ray-2"}, shape(**overrides))
    assert caught.value.param == param
    assert param.split("_")[0] in caught.value.message


def test_refuse_last_frame_on_a_looping_route() -> None:
    engine = LumaEngine(api_key="k", base_url="http://luma.invalid")
    with pytest.raises(InvalidValue) as caught:
        engine.refuse(
            {"model": "ray-2", "loop": True},
            shape(has_image=True, has_last_image=True),
        )
    assert caught.value.param == "last_image"
    engine.refuse({"model": "ray-2", "loop": True}, shape(has_image=True))


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"has_image": True},
        {"has_image": True, "has_last_image": True},
        {"has_last_image": True},
        {"duration": 9, "num_frames": 216},
        {"width": 540, "height": 960},
        {"width": 2520, "height": 1080},
    ],
)
def test_refuse_accepts_what_luma_does(overrides: dict[str, Any]) -> None:
    engine = LumaEngine(api_key="k", base_url="http://luma.invalid")
    engine.refuse({"model": "ray-2"}, shape(**overrides))


def test_bad_settings_are_refused() -> None:
    engine = LumaEngine(api_key="k", base_url="http://luma.invalid")
    with pytest.raises(EngineError) as caught:
        engine.refuse({"model": "ray-2", "seed": 1}, shape())
    assert caught.value.code == "invalid_settings"
    with pytest.raises(EngineError):
        engine.refuse({"model": "ray-9"}, shape())


@pytest.mark.parametrize("entry", BUILTIN_ROUTES, ids=lambda entry: entry["id"])
def test_builtin_routes(entry: dict[str, Any]) -> None:
    route = ModelRoute.model_validate(entry)
    assert route.engine == "luma" == LumaEngine.name
    engine = LumaEngine(api_key="k", base_url="http://luma.invalid")
    engine.check_route(route)
    caps = route.capabilities
    assert caps.sizes and caps.default_size in caps.sizes
    # Everything the capabilities offer at their bounds, Luma can make...
    for label in caps.sizes:
        assert label in SIZES
        width, height = (int(side) for side in label.split("x"))
        engine.refuse(route.settings, shape(width=width, height=height))
    fps = caps.default_fps
    assert caps.min_fps == caps.max_fps == fps
    for duration in range(caps.min_duration, caps.max_duration + 1):
        frames = duration * fps
        if duration in (5, 9):
            engine.refuse(route.settings, shape(duration=duration, num_frames=frames))
        else:
            # ...and refuse() covers what the duration range lets through.
            with pytest.raises(InvalidValue):
                engine.refuse(route.settings, shape(duration=duration, num_frames=frames))
    assert caps.default_duration in (5, 9)
    if caps.image_to_video:
        engine.refuse(route.settings, shape(has_image=True))
    if caps.first_last_frame:
        engine.refuse(route.settings, shape(has_image=True, has_last_image=True))


def test_builtin_route_ids() -> None:
    assert [entry["id"] for entry in BUILTIN_ROUTES] == ["luma-ray-2"]
