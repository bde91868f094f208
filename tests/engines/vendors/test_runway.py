"""Contract tests: RunwayEngine (through the official runwayml SDK) against FakeRunway."""

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
from framegate.engines.vendors.base import UpstreamError, UpstreamJob, VendorShape
from framegate.engines.vendors.runway import (
    MAX_DATA_URI,
    MODELS,
    RunwayEngine,
    _image_uri,
)
from framegate.exceptions import InvalidValue
from framegate.kit.addresses import parse_networks
from framegate.kit.safe_fetch import FetchPolicy
from tests.engines.vendors.common import SAMPLE_FRAMES, builtin_routes, free_port, vendor_shape
from tests.engines.vendors.fake_runway import FakeRunway

BUILTIN_ROUTES = builtin_routes("runway")

POLICY = FetchPolicy(allow_networks=parse_networks("127.0.0.3/32"), max_bytes=50_000_000)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeRunway]:
    with FakeRunway() as server:
        yield server


@pytest.fixture
def engine(fake: FakeRunway) -> RunwayEngine:
    fake.script("succeed")
    return RunwayEngine(**fake.engine_kwargs())


def gradient(width: int, height: int, shift: int = 0) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[..., 0] = x
    pixels[..., 1] = (x[::-1].astype(np.int32) + shift) % 256
    pixels[..., 2] = 80
    return Image.fromarray(pixels)


def make_request(**overrides: Any) -> GenerationRequest:
    values: dict[str, Any] = {
        "task_id": "task_1",
        "kind": "video",
        "prompt": "A paper boat drifting down a rainy street",
        "width": 1280,
        "height": 720,
        "seed": 1234,
        "duration": 5.0,
        "fps": 24,
        "num_frames": 120,
        "settings": {"model": "gen4.5"},
    }
    values.update(overrides)
    return GenerationRequest(**values)


def shape(**overrides: Any) -> VendorShape:
    return vendor_shape(**{"has_image": True, **overrides})


def decode_data_uri(value: str) -> Image.Image:
    prefix, _, data = value.partition(",")
    assert prefix == "data:image/png;base64"
    return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")


# -- request shapes -------------------------------------------------------------------------


async def test_text_to_video_request(fake: FakeRunway, engine: RunwayEngine) -> None:
    request = make_request(width=720, height=1280, seed=7, settings={"model": "gen4.5"})
    job = await engine.submit(request)

    sent = fake.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/v1/text_to_video")
    assert sent.headers["authorization"] == f"Bearer {fake.api_key}"
    assert sent.headers["x-runway-version"] == "2024-11-06"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json == {
        "model": "gen4.5",
        "promptText": "A paper boat drifting down a rainy street",
        "ratio": "720:1280",
        "duration": 5,
        "seed": 7,
    }
    assert job.id in fake.tasks
    assert job.data == {"model": "gen4.5", "endpoint": "text_to_video"}


async def test_image_to_video_request(fake: FakeRunway, engine: RunwayEngine) -> None:
    image = gradient(1104, 832)
    request = make_request(
        width=1104,
        height=832,
        duration=10.0,
        num_frames=240,
        input_image=image,
        settings={"model": "gen4_turbo", "public_figure_threshold": "low"},
    )
    job = await engine.submit(request)

    sent = fake.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/v1/image_to_video")
    assert sent.headers["authorization"] == f"Bearer {fake.api_key}"
    assert sent.headers["x-runway-version"] == "2024-11-06"
    body = dict(sent.json)
    prompt_image = body.pop("promptImage")
    assert body == {
        "model": "gen4_turbo",
        "promptText": "A paper boat drifting down a rainy street",
        "ratio": "1104:832",
        "duration": 10,
        "seed": 1234,
        "contentModeration": {"publicFigureThreshold": "low"},
    }
    # A single first frame goes as a plain data URI string.
    assert isinstance(prompt_image, str)
    decoded = decode_data_uri(prompt_image)
    assert decoded.size == (1104, 832)
    assert np.array_equal(np.asarray(decoded), np.asarray(image))
    assert job.data == {"model": "gen4_turbo", "endpoint": "image_to_video"}


async def test_gen45_image_to_video_request(fake: FakeRunway, engine: RunwayEngine) -> None:
    request = make_request(
        width=1584, height=672, input_image=gradient(320, 136), settings={"model": "gen4.5"}
    )
    await engine.submit(request)

    sent = fake.requests[-1]
    assert sent.path == "/v1/image_to_video"
    assert sent.json["model"] == "gen4.5"
    assert sent.json["ratio"] == "1584:672"
    assert sent.json["promptImage"].startswith("data:image/png;base64,")


async def test_first_and_last_frame_request(fake: FakeRunway, engine: RunwayEngine) -> None:
    first, last = gradient(128, 72), gradient(128, 72, shift=90)
    request = make_request(
        width=1920,
        height=1080,
        duration=8.0,
        num_frames=192,
        input_image=first,
        last_image=last,
        negative_prompt="blurry, text overlays",
        settings={"model": "veo3.1_fast"},
    )
    await engine.submit(request)

    sent = fake.requests[-1]
    assert sent.path == "/v1/image_to_video"
    body = dict(sent.json)
    images = body.pop("promptImage")
    assert body == {
        "model": "veo3.1_fast",
        "promptText": "A paper boat drifting down a rainy street",
        "ratio": "1920:1080",
        "duration": 8,
        "seed": 1234,
        "negativePrompt": "blurry, text overlays",
        "audio": False,
    }
    assert [item["position"] for item in images] == ["first", "last"]
    assert set(images[0]) == {"uri", "position"}
    assert np.array_equal(np.asarray(decode_data_uri(images[0]["uri"])), np.asarray(first))
    assert np.array_equal(np.asarray(decode_data_uri(images[1]["uri"])), np.asarray(last))


async def test_veo_text_to_video_with_audio(fake: FakeRunway, engine: RunwayEngine) -> None:
    request = make_request(
        duration=4.0,
        num_frames=96,
        negative_prompt="rain",
        settings={"model": "veo3.1", "audio": True},
    )
    await engine.submit(request)
    sent = fake.requests[-1]
    assert sent.path == "/v1/text_to_video"
    assert sent.json["negativePrompt"] == "rain"
    assert sent.json["audio"] is True
    assert sent.json["duration"] == 4


def test_large_images_fit_the_data_uri_limit() -> None:
    rng = np.random.default_rng(1)
    noise = Image.fromarray(rng.integers(0, 256, (1400, 2000, 3), dtype=np.uint8))
    uri = _image_uri(noise)
    assert len(uri) < MAX_DATA_URI
    prefix, _, data = uri.partition(",")
    assert prefix == "data:image/jpeg;base64"
    assert Image.open(io.BytesIO(base64.b64decode(data))).size[0] > 0


# -- status progression and results ---------------------------------------------------------


async def test_progression_to_success_and_download(
    fake: FakeRunway, engine: RunwayEngine, tmp_path: Path
) -> None:
    fake.script("succeed", polls=2)
    request = make_request()
    job = await engine.submit(request)

    first = await engine.poll(job, request)
    second = await engine.poll(job, request)
    done = await engine.poll(job, request)
    assert (first.state, first.progress) == ("pending", None)
    assert (second.state, second.progress) == ("pending", 0.5)
    assert done.state == "succeeded"
    assert done.video_url is not None
    assert done.video_url.startswith(f"{fake.url}/outputs/{job.id}.mp4")

    polls = fake.requests_to(f"/v1/tasks/{job.id}", "GET")
    assert len(polls) == 3
    assert all(p.headers["authorization"] == f"Bearer {fake.api_key}" for p in polls)
    assert all(p.headers["x-runway-version"] == "2024-11-06" for p in polls)

    destination = tmp_path / "out.mp4"
    await engine.download(done.video_url, destination, POLICY)
    with av.open(str(destination)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == SAMPLE_FRAMES


async def test_failed_task(fake: FakeRunway, engine: RunwayEngine) -> None:
    fake.script("fail", polls=1)
    request = make_request()
    job = await engine.submit(request)
    assert (await engine.poll(job, request)).state == "pending"
    status = await engine.poll(job, request)
    assert status.state == "failed"
    assert status.error is not None
    assert status.error.code == "upstream_error"
    assert not status.error.retriable
    assert "INTERNAL.BAD_OUTPUT.CODE01" in status.error.message


async def test_moderated_task(fake: FakeRunway, engine: RunwayEngine) -> None:
    fake.script("moderate", polls=0)
    request = make_request()
    job = await engine.submit(request)
    status = await engine.poll(job, request)
    assert status.state == "failed"
    assert status.error is not None
    assert status.error.code == "moderation_blocked"
    assert "SAFETY.INPUT.TEXT" in status.error.message


async def test_cancel(fake: FakeRunway, engine: RunwayEngine) -> None:
    request = make_request()
    job = await engine.submit(request)
    await engine.cancel(job, request)
    assert len(fake.requests_to(f"/v1/tasks/{job.id}", "DELETE")) == 1
    status = await engine.poll(job, request)
    assert status.state == "failed"
    # Cancelling an unknown task is best effort: no exception.
    await engine.cancel(UpstreamJob(id="missing"), request)


# -- errors -----------------------------------------------------------------------------------


async def test_rate_limited_then_accepted(fake: FakeRunway, engine: RunwayEngine) -> None:
    fake.script("throttle", throttles=2)
    before = fake.submitted
    sent = len(fake.requests_to("/v1/text_to_video"))
    for _ in range(2):
        with pytest.raises(UpstreamError) as caught:
            await engine.submit(make_request())
        assert caught.value.code == "upstream_rate_limited"
        assert caught.value.retriable
        assert caught.value.retry_after == 0.0
        assert caught.value.status_code == 429
    assert fake.submitted == before
    # Exactly one request per submit: the SDK's own retries are off.
    assert len(fake.requests_to("/v1/text_to_video")) == sent + 2
    request = make_request()
    job = await engine.submit(request)
    assert fake.submitted == before + 1
    assert job.id in fake.tasks
    # Over the concurrency limit the task waits as THROTTLED: still pending.
    status = await engine.poll(job, request)
    assert (status.state, status.progress) == ("pending", None)


async def test_wrong_key(fake: FakeRunway) -> None:
    secret = "key_" + "f" * 128
    engine = RunwayEngine(**{**fake.engine_kwargs(), "api_key": secret})
    count = len(fake.requests)
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request())
    assert caught.value.code == "upstream_auth"
    assert not caught.value.retriable
    assert secret not in caught.value.message
    assert len(fake.requests) == count + 1
    with pytest.raises(UpstreamError) as polled:
        await engine.poll(UpstreamJob(id="whatever"), make_request())
    assert polled.value.code == "upstream_auth"
    assert secret not in polled.value.message


async def test_vendor_rejects_parameters(fake: FakeRunway, engine: RunwayEngine) -> None:
    # gen4.5 text-to-video offers only 1280:720 and 720:1280 (refuse would stop this).
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request(width=1104, height=832))
    assert caught.value.code == "upstream_invalid_request"
    assert not caught.value.retriable
    assert "ratio" in caught.value.message
    assert fake.api_key not in caught.value.message


async def test_too_long_prompt_is_refused_before_sending(
    fake: FakeRunway, engine: RunwayEngine
) -> None:
    count = len(fake.requests)
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request(prompt="x" * 1001))
    assert caught.value.code == "upstream_invalid_request"
    assert len(fake.requests) == count


async def test_unreachable_vendor_is_retriable() -> None:
    engine = RunwayEngine(api_key="key_x", base_url=f"http://127.0.0.3:{free_port()}")
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request())
    assert caught.value.code == "upstream_unavailable"
    assert caught.value.retriable
    assert "key_x" not in caught.value.message


# -- refuse, settings, routes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "overrides", "param"),
    [
        ("gen4_turbo", {"has_image": False}, "input_image"),
        ("gen4_turbo", {"has_last_image": True}, "last_image"),
        ("gen4.5", {"has_last_image": True}, "last_image"),
        ("veo3.1", {"has_image": False, "has_last_image": True}, "input_image"),
        ("gen4_turbo", {"has_negative_prompt": True}, "negative_prompt"),
        ("gen4.5", {"has_negative_prompt": True}, "negative_prompt"),
        ("gen4_turbo", {"width": 1920, "height": 1080}, "size"),
        ("gen4_turbo", {"width": 1280, "height": 768}, "size"),
        ("gen4.5", {"has_image": False, "width": 1104, "height": 832}, "size"),
        ("gen4.5", {"has_image": False, "width": 960, "height": 960}, "size"),
        ("veo3.1", {"width": 1104, "height": 832}, "size"),
        ("gen4_turbo", {"fps": 30, "num_frames": 150}, "fps"),
        ("gen4.5", {"fps": 16, "num_frames": 80}, "fps"),
        ("gen4_turbo", {"duration": 6, "num_frames": 144}, "duration"),
        ("gen4_turbo", {"duration": 2, "num_frames": 48}, "duration"),
        ("gen4.5", {"duration": 1, "num_frames": 24}, "duration"),
        ("gen4.5", {"duration": 11, "num_frames": 264}, "duration"),
        ("veo3.1_fast", {"duration": 5, "num_frames": 120}, "duration"),
        ("gen4.5", {"duration": 5, "num_frames": 100}, "num_frames"),
    ],
)
def test_refuse(model: str, overrides: dict[str, Any], param: str) -> None:
    engine = RunwayEngine(api_key="k", base_url="http://unused")
    with pytest.raises(InvalidValue) as caught:
        engine.refuse({"model": model}, shape(**overrides))
    assert caught.value.param == param
    # The message names the field.
    assert param.split("_")[0] in caught.value.message


@pytest.mark.parametrize(
    ("model", "overrides"),
    [
        ("gen4_turbo", {}),
        ("gen4_turbo", {"width": 1584, "height": 672, "duration": 10, "num_frames": 240}),
        ("gen4.5", {"has_image": False, "width": 720, "height": 1280}),
        ("gen4.5", {"width": 960, "height": 960, "duration": 2, "num_frames": 48}),
        ("gen4.5", {"has_seed": True, "duration": 10, "num_frames": 240}),
        (
            "veo3.1",
            {"has_last_image": True, "has_negative_prompt": True, "duration": 8},
        ),
        ("veo3.1_fast", {"has_image": False, "width": 1080, "height": 1920, "duration": 4}),
    ],
)
def test_refuse_accepts(model: str, overrides: dict[str, Any]) -> None:
    values = {**overrides}
    values.setdefault("num_frames", values.get("duration", 5) * 24)
    RunwayEngine(api_key="k", base_url="http://unused").refuse({"model": model}, shape(**values))


def test_settings() -> None:
    engine = RunwayEngine(api_key="k", base_url="http://unused")
    for bad in (
        {},
        {"model": "gen3a_turbo"},
        {"model": "gen4.5", "extra": 1},
        {"model": "gen4_turbo", "audio": True},
        {"model": "veo3.1", "public_figure_threshold": "low"},
    ):
        route = ModelRoute.model_validate(
            {**BUILTIN_ROUTES[0], "settings": bad, "id": "runway-custom"}
        )
        with pytest.raises(ValueError):
            engine.check_route(route)


def test_is_available(fake: FakeRunway) -> None:
    assert RunwayEngine(**fake.engine_kwargs()).is_available({"model": "gen4.5"})
    assert not RunwayEngine(api_key=None, base_url=fake.url).is_available({"model": "gen4.5"})
    assert not RunwayEngine(api_key="", base_url=fake.url).is_available({"model": "gen4.5"})


def test_settings_overrides_point_at_the_fake(fake: FakeRunway) -> None:
    settings = Settings(**fake.settings_overrides())
    assert settings.runway_base_url == fake.url
    assert settings.runway_api_key is not None
    assert settings.runway_api_key.get_secret_value() == fake.api_key


def test_builtin_routes() -> None:
    ids = [route["id"] for route in BUILTIN_ROUTES]
    assert ids == ["runway-gen4", "runway-gen4.5"]
    engine = RunwayEngine(api_key="k", base_url="http://unused")
    for data in BUILTIN_ROUTES:
        route = ModelRoute.model_validate(data)
        assert route.engine == "runway"
        engine.check_route(route)
        caps = route.capabilities
        spec = MODELS[route.settings["model"]]
        assert caps.text_to_video == bool(spec.text_ratios)
        assert caps.first_last_frame == spec.last_frame
        assert caps.sizes is not None
        assert caps.default_size in caps.sizes
        assert set(caps.sizes) == {r.replace(":", "x") for r in spec.image_ratios}
        assert caps.min_duration == min(spec.durations)
        assert caps.max_duration == max(spec.durations)
        assert caps.min_fps == caps.max_fps == caps.default_fps == 24
        # Every size and duration the route advertises is accepted for image-to-video,
        # and the default size and duration for text-to-video where offered.
        for size in caps.sizes:
            width, height = (int(v) for v in size.split("x"))
            for duration in spec.durations:
                engine.refuse(
                    route.settings,
                    shape(width=width, height=height, duration=duration, num_frames=duration * 24),
                )
        width, height = (int(v) for v in caps.default_size.split("x"))
        default = shape(
            width=width,
            height=height,
            duration=caps.default_duration,
            num_frames=caps.default_duration * 24,
            has_image=not caps.text_to_video,
        )
        engine.refuse(route.settings, default)
