"""Contract tests: KlingEngine against a fake of Kling's documented REST API."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import jwt
import pytest
from PIL import Image

from framegate.catalog.schemas import ModelRoute
from framegate.config import Settings
from framegate.engines.base import EngineError, GenerationRequest
from framegate.engines.vendors import kling
from framegate.engines.vendors.base import UpstreamError, UpstreamJob
from framegate.engines.vendors.kling import KlingEngine
from framegate.exceptions import InvalidValue
from framegate.kit.addresses import parse_networks
from framegate.kit.safe_fetch import FetchPolicy
from tests.engines.vendors.common import SAMPLE_FRAMES, builtin_routes, free_port, poll_to_end
from tests.engines.vendors.common import vendor_shape as shape
from tests.engines.vendors.fake_kling import FakeKling

BUILTIN_ROUTES = builtin_routes("kling")

ROUTES = {route["id"]: route for route in BUILTIN_ROUTES}
KEYS = {"access_key": "AK" + "a" * 30, "secret_key": "SK" + "b" * 30}
POLICY = FetchPolicy(allow_networks=parse_networks("127.0.0.3/32"), max_bytes=50_000_000)


@pytest.fixture(scope="module")
def running_fake() -> Iterator[FakeKling]:
    with FakeKling() as fake:
        yield fake


@pytest.fixture
def fake(running_fake: FakeKling) -> FakeKling:
    running_fake.requests.clear()
    running_fake.script("succeed")
    return running_fake


@pytest.fixture
def engine(fake: FakeKling) -> KlingEngine:
    return KlingEngine(**fake.engine_kwargs())


_counter = iter(range(1, 1_000_000))


def make_request(route_id: str = "kling-v2", **overrides: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "task_id": f"task_{next(_counter):06d}_{time.monotonic_ns()}",
        "kind": "video",
        "prompt": "a red fox running through snow",
        "width": 1280,
        "height": 720,
        "seed": 0,
        "duration": 5.0,
        "fps": 24,
        "num_frames": 120,
        "settings": ROUTES[route_id]["settings"],
    }
    fields.update(overrides)
    return GenerationRequest(**fields)


def picture(width: int = 800, height: int = 600, color: str = "orange") -> Image.Image:
    return Image.new("RGB", (width, height), color)


# -- catalog ---------------------------------------------------------------------------------


def test_builtin_routes_validate_and_match_the_models() -> None:
    assert "kling-v2" in ROUTES
    assert len(ROUTES) == len(BUILTIN_ROUTES)
    engine = KlingEngine(**KEYS)
    for raw in BUILTIN_ROUTES:
        route = ModelRoute.model_validate(raw)
        assert route.engine == "kling"
        assert route.kind == "video"
        engine.check_route(route)
        caps = route.capabilities
        assert caps.default_size in (caps.sizes or [])
        assert caps.min_duration == 5 and caps.max_duration == 10
        assert caps.min_fps == caps.max_fps == caps.default_fps == 24


def test_check_route_refuses_capabilities_the_model_lacks() -> None:
    engine = KlingEngine(**KEYS)
    bad = dict(ROUTES["kling-v2.1"])
    bad["capabilities"] = {**bad["capabilities"], "text_to_video": True, "first_last_frame": True}
    with pytest.raises(ValueError, match="text-to-video"):
        engine.check_route(ModelRoute.model_validate(bad))
    big = dict(ROUTES["kling-v2"])
    big["capabilities"] = {**big["capabilities"], "sizes": ["1920x1080"]}
    with pytest.raises(ValueError, match="sizes"):
        engine.check_route(ModelRoute.model_validate(big))
    typo = dict(ROUTES["kling-v2"])
    typo["settings"] = {"model_name": "kling-v9"}
    with pytest.raises(ValueError, match="settings"):
        engine.check_route(ModelRoute.model_validate(typo))


def test_is_available_needs_both_keys(fake: FakeKling) -> None:
    assert not KlingEngine(base_url=fake.url).is_available({})
    assert not KlingEngine(access_key="ak", base_url=fake.url).is_available({})
    assert not KlingEngine(secret_key="sk", base_url=fake.url).is_available({})
    assert KlingEngine(**KEYS).is_available({})
    # api_key stands for the access key.
    assert KlingEngine(api_key=KEYS["access_key"], secret_key=KEYS["secret_key"]).is_available({})
    assert KlingEngine(**fake.engine_kwargs()).is_available({})


def test_settings_overrides_point_framegate_at_the_fake(fake: FakeKling) -> None:
    settings = Settings(**fake.settings_overrides())
    assert settings.kling_base_url == fake.url
    assert settings.kling_access_key is not None
    assert settings.kling_access_key.get_secret_value() == fake.api_key
    assert settings.kling_secret_key is not None
    assert settings.kling_secret_key.get_secret_value() == fake.secret_key


@pytest.mark.parametrize(
    ("route_id", "overrides", "param"),
    [
        ("kling-v2", {"has_seed": True}, "seed"),
        ("kling-v2", {"duration": 7}, "duration"),
        ("kling-v2", {"duration": 15}, "duration"),
        ("kling-v2", {"fps": 30}, "fps"),
        ("kling-v2", {"num_frames": 100}, "duration"),
        ("kling-v2", {"width": 1920, "height": 1080}, "size"),
        ("kling-v2", {"width": 1024, "height": 576}, "size"),
        ("kling-v2.1-pro", {"width": 1280, "height": 720, "has_image": True}, "size"),
        ("kling-v2", {"has_image": True, "has_last_image": True}, "last_image"),
        ("kling-v2.1", {"has_image": True, "has_last_image": True}, "last_image"),
        (
            "kling-v2.1-master",
            {"width": 1920, "height": 1080, "has_image": True, "has_last_image": True},
            "last_image",
        ),
        ("kling-v2.1", {"has_image": False}, "input_image"),
        ("kling-v2.1-pro", {"width": 1920, "height": 1080}, "input_image"),
    ],
)
def test_refuse_names_the_field(route_id: str, overrides: dict[str, Any], param: str) -> None:
    engine = KlingEngine(**KEYS)
    with pytest.raises(InvalidValue) as caught:
        engine.refuse(ROUTES[route_id]["settings"], shape(**overrides))
    assert caught.value.param == param
    assert param.split("_")[-1] in caught.value.message


@pytest.mark.parametrize(
    ("route_id", "overrides"),
    [
        ("kling-v2", {}),
        (
            "kling-v2",
            {
                "width": 720,
                "height": 1280,
                "duration": 10,
                "num_frames": 240,
                "has_negative_prompt": True,
            },
        ),
        ("kling-v2", {"width": 720, "height": 720, "has_image": True}),
        ("kling-v2.1", {"has_image": True}),
        ("kling-v2.1-pro", {"width": 1080, "height": 1920, "has_image": True}),
        (
            "kling-v2.1-pro",
            {"width": 1920, "height": 1080, "has_image": True, "has_last_image": True},
        ),
        ("kling-v2.1-master", {"width": 1080, "height": 1080}),
    ],
)
def test_refuse_accepts_what_kling_makes(route_id: str, overrides: dict[str, Any]) -> None:
    KlingEngine(**KEYS).refuse(ROUTES[route_id]["settings"], shape(**overrides))


def test_refuse_rejects_bad_settings() -> None:
    with pytest.raises(EngineError) as caught:
        KlingEngine(**KEYS).refuse({"model_name": "kling-v7"}, shape())
    assert caught.value.code == "invalid_settings"


async def test_everything_the_routes_admit_is_accepted_by_kling(
    fake: FakeKling, engine: KlingEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Capabilities + refuse together: whatever gets past both is a request Kling takes."""
    # Encoding full-size frames is covered below; a small valid JPEG keeps this quick.
    small = kling.fitted_base64(picture(), 320, 320)
    monkeypatch.setattr(kling, "fitted_base64", lambda image, width, height: small)
    before = fake.submitted
    accepted = 0
    for raw in BUILTIN_ROUTES:
        route = ModelRoute.model_validate(raw)
        caps = route.capabilities
        variants = []
        if caps.text_to_video:
            variants.append((False, False))
        if caps.image_to_video:
            variants.append((True, False))
        if caps.first_last_frame:
            variants.append((True, True))
        for size in caps.sizes or []:
            width, height = (int(v) for v in size.split("x"))
            for seconds in range(caps.min_duration, caps.max_duration + 1):
                for has_image, has_last in variants:
                    candidate = shape(
                        width=width,
                        height=height,
                        duration=seconds,
                        num_frames=seconds * 24,
                        has_image=has_image,
                        has_last_image=has_last,
                        has_negative_prompt=True,
                    )
                    try:
                        engine.refuse(route.settings, candidate)
                    except InvalidValue:
                        continue
                    request = make_request(
                        route.id,
                        width=width,
                        height=height,
                        duration=float(seconds),
                        negative_prompt="blurry",
                        input_image=picture(320, 320) if has_image else None,
                        last_image=picture(320, 320, "navy") if has_last else None,
                    )
                    await engine.submit(request)
                    accepted += 1
    assert fake.submitted - before == accepted
    assert accepted >= 20


# -- request shapes --------------------------------------------------------------------------


def check_jwt(fake: FakeKling, authorization: str) -> dict[str, Any]:
    scheme, _, token = authorization.partition(" ")
    assert scheme == "Bearer"
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(token, fake.secret_key, algorithms=["HS256"])
    assert claims["iss"] == fake.api_key
    now = time.time()
    assert claims["exp"] - claims["nbf"] == 1805
    assert now + 1700 < claims["exp"] <= now + 1801
    assert claims["nbf"] <= now
    return claims


async def test_text_to_video_request_shape(fake: FakeKling, engine: KlingEngine) -> None:
    request = make_request(
        "kling-v2",
        width=720,
        height=1280,
        duration=10.0,
        num_frames=240,
        negative_prompt="blurry, watermark",
    )
    job = await engine.submit(request)
    assert job.data == {"endpoint": "text2video"}
    [sent] = fake.api_requests()
    assert sent.method == "POST"
    assert sent.path == "/v1/videos/text2video"
    assert sent.headers["content-type"] == "application/json"
    check_jwt(fake, sent.headers["authorization"])
    assert sent.json == {
        "model_name": "kling-v2-master",
        "mode": "std",
        "prompt": "a red fox running through snow",
        "negative_prompt": "blurry, watermark",
        "aspect_ratio": "9:16",
        "duration": "10",
    }
    assert fake.tasks[job.id].body == sent.json

    await engine.poll(job, request)
    poll = fake.api_requests()[-1]
    assert (poll.method, poll.path) == ("GET", f"/v1/videos/text2video/{job.id}")
    # The token is cached between calls.
    assert poll.headers["authorization"] == sent.headers["authorization"]


@pytest.mark.parametrize(
    ("size", "aspect"), [((1280, 720), "16:9"), ((720, 1280), "9:16"), ((720, 720), "1:1")]
)
async def test_aspect_ratios(
    fake: FakeKling, engine: KlingEngine, size: tuple[int, int], aspect: str
) -> None:
    await engine.submit(make_request("kling-v2", width=size[0], height=size[1]))
    assert fake.api_requests()[-1].json["aspect_ratio"] == aspect


async def test_cfg_scale_is_sent_only_when_configured(fake: FakeKling, engine: KlingEngine) -> None:
    settings = {"model_name": "kling-v2-master", "cfg_scale": 0.7}
    await engine.submit(make_request("kling-v2", settings=settings))
    assert fake.api_requests()[-1].json["cfg_scale"] == 0.7
    await engine.submit(make_request("kling-v2"))
    assert "cfg_scale" not in fake.api_requests()[-1].json


def decode_sent_image(value: str) -> Image.Image:
    assert not value.startswith("data:")
    image = Image.open(io.BytesIO(base64.b64decode(value, validate=True)))
    image.load()
    return image


async def test_image_to_video_with_last_frame_request_shape(
    fake: FakeKling, engine: KlingEngine
) -> None:
    # A 4:3 picture for a 16:9 clip: centre-cropped and resized to the requested size,
    # since image2video takes the first frame's shape.
    first = picture(800, 600, "orange")
    last = picture(640, 480, "navy")
    request = make_request(
        "kling-v2.1-pro", width=1920, height=1080, input_image=first, last_image=last
    )
    job = await engine.submit(request)
    assert job.data == {"endpoint": "image2video"}
    [sent] = fake.api_requests()
    assert (sent.method, sent.path) == ("POST", "/v1/videos/image2video")
    check_jwt(fake, sent.headers["authorization"])
    body = dict(sent.json)
    image, tail = decode_sent_image(body.pop("image")), decode_sent_image(body.pop("image_tail"))
    assert body == {
        "model_name": "kling-v2-1",
        "mode": "pro",
        "prompt": "a red fox running through snow",
        "duration": "5",
    }
    assert image.format == tail.format == "JPEG"
    assert image.size == tail.size == (1920, 1080)
    r, _, b = image.convert("RGB").getpixel((960, 540))  # type: ignore[misc]
    assert r > 200 and b < 60
    r, _, b = tail.convert("RGB").getpixel((960, 540))  # type: ignore[misc]
    assert b > 80 and r < 40

    status = (await poll_to_end(engine, job, request))[-1]
    assert status.state == "succeeded"
    polls = [r for r in fake.api_requests() if r.method == "GET"]
    assert {p.path for p in polls} == {f"/v1/videos/image2video/{job.id}"}


async def test_image_to_video_without_prompt(fake: FakeKling, engine: KlingEngine) -> None:
    request = make_request("kling-v2.1", prompt="", input_image=picture(1000, 1000))
    await engine.submit(request)
    sent = fake.api_requests()[-1].json
    assert "prompt" not in sent and "aspect_ratio" not in sent and "image_tail" not in sent
    assert decode_sent_image(sent["image"]).size == (1280, 720)


# -- statuses --------------------------------------------------------------------------------


async def test_success_then_download_decodes(
    fake: FakeKling, engine: KlingEngine, tmp_path: Path
) -> None:
    fake.script("succeed", polls=2)
    request = make_request("kling-v2")
    job = await engine.submit(request)
    statuses = await poll_to_end(engine, job, request)
    status = statuses[-1]
    assert [s.state for s in statuses] == ["pending", "pending", "succeeded"]
    assert status.video_url == f"{fake.url}/media/{job.id}.mp4"
    destination = tmp_path / "out.mp4"
    assert status.video_url is not None
    await engine.download(status.video_url, destination, POLICY)
    with av.open(str(destination)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == SAMPLE_FRAMES == 16


async def test_failed_task(fake: FakeKling, engine: KlingEngine) -> None:
    fake.script("fail", polls=1)
    request = make_request("kling-v2")
    job = await engine.submit(request)
    statuses = await poll_to_end(engine, job, request)
    status = statuses[-1]
    assert [s.state for s in statuses] == ["pending", "failed"]
    assert status.error is not None
    assert status.error.code == "upstream_error"
    assert not status.error.retriable
    assert "Video generation failed" in status.error.message


async def test_moderated_task(fake: FakeKling, engine: KlingEngine) -> None:
    fake.script("moderate", polls=0)
    request = make_request("kling-v2")
    job = await engine.submit(request)
    status = (await poll_to_end(engine, job, request))[-1]
    assert status.state == "failed"
    assert status.error is not None
    assert status.error.code == "moderation_blocked"


async def test_moderated_prompt_at_submission(fake: FakeKling, engine: KlingEngine) -> None:
    fake.script("moderate_prompt")
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request("kling-v2"))
    assert caught.value.code == "moderation_blocked"
    assert not caught.value.retriable
    assert caught.value.status_code == 400


async def test_rate_limited_then_accepted(fake: FakeKling, engine: KlingEngine) -> None:
    fake.script("throttle", throttles=2)
    before = fake.submitted
    for _ in range(2):
        with pytest.raises(UpstreamError) as caught:
            await engine.submit(make_request("kling-v2"))
        assert caught.value.code == "upstream_rate_limited"
        assert caught.value.retriable
        assert caught.value.retry_after == 0.0
        assert caught.value.status_code == 429
    assert fake.submitted == before
    request = make_request("kling-v2")
    job = await engine.submit(request)
    assert fake.submitted == before + 1
    status = (await poll_to_end(engine, job, request))[-1]
    assert status.state == "succeeded"


@pytest.mark.parametrize("which", ["secret", "access"])
async def test_wrong_key_is_upstream_auth(fake: FakeKling, which: str) -> None:
    kwargs = fake.engine_kwargs()
    wrong = f"wrong-{which}-key".ljust(32, "0")
    kwargs[f"{which}_key"] = wrong
    engine = KlingEngine(**kwargs)
    before = fake.submitted
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request("kling-v2"))
    assert caught.value.code == "upstream_auth"
    assert caught.value.status_code == 401
    assert not caught.value.retriable
    assert "1002" in caught.value.message
    for secret in (wrong, fake.secret_key, fake.api_key):
        assert secret not in caught.value.message
    assert fake.submitted == before


async def test_token_is_cached_then_renewed_before_it_expires(
    fake: FakeKling, engine: KlingEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await engine.submit(make_request("kling-v2"))
    await engine.submit(make_request("kling-v2"))
    first, second = (r.headers["authorization"] for r in fake.api_requests())
    assert first == second
    real = time.time
    # 20 minutes on: still the same token.
    monkeypatch.setattr(kling.time, "time", lambda: real() + 1200)
    assert engine._authorization() == first
    # 26 minutes on (under 5 minutes before expiry): a new one.
    monkeypatch.setattr(kling.time, "time", lambda: real() + 1560)
    renewed = engine._authorization()
    assert renewed != first
    claims = jwt.decode(
        renewed.removeprefix("Bearer "),
        fake.secret_key,
        algorithms=["HS256"],
        options={"verify_exp": False, "verify_nbf": False},
    )
    assert claims["iss"] == fake.api_key
    assert real() + 1560 + 1790 < claims["exp"] <= real() + 1560 + 1801


async def test_no_keys_is_upstream_auth_without_a_call(fake: FakeKling) -> None:
    engine = KlingEngine(base_url=fake.url)
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request("kling-v2"))
    assert caught.value.code == "upstream_auth"
    assert fake.api_requests() == []


async def test_unknown_task_is_invalid_request(fake: FakeKling, engine: KlingEngine) -> None:
    with pytest.raises(UpstreamError) as caught:
        await engine.poll(UpstreamJob(id="999", data={"endpoint": "text2video"}), make_request())
    assert caught.value.code == "upstream_invalid_request"
    assert caught.value.status_code == 404


async def test_unreachable_host_is_retriable() -> None:
    engine = KlingEngine(**KEYS, base_url=f"http://127.0.0.3:{free_port()}")
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request("kling-v2"))
    assert caught.value.code == "upstream_unavailable"
    assert caught.value.retriable


@pytest.mark.parametrize(
    ("status", "code", "expected", "retriable"),
    [
        (401, 1004, "upstream_auth", False),
        (429, 1101, "upstream_auth", False),
        (429, 1102, "upstream_auth", False),
        (403, 1103, "upstream_auth", False),
        (400, 1201, "upstream_invalid_request", False),
        (404, 1203, "upstream_invalid_request", False),
        (400, 1301, "moderation_blocked", False),
        (429, 1303, "upstream_rate_limited", True),
        (500, 5000, "upstream_unavailable", True),
        (503, 5001, "upstream_unavailable", True),
        (504, 5002, "upstream_timeout", True),
        (502, None, "upstream_unavailable", True),
    ],
)
async def test_error_codes(
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    code: int | None,
    expected: str,
    retriable: bool,
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if code is None:
            return httpx.Response(status, text="<html>bad gateway</html>")
        return httpx.Response(status, json={"code": code, "message": "nope", "request_id": "r-1"})

    engine = KlingEngine(
        access_key="AK" + "1" * 30, secret_key="SK" + "4" * 30, base_url="https://kling.test"
    )
    original = engine.http
    monkeypatch.setattr(
        engine, "http", lambda **kw: original(transport=httpx.MockTransport(answer), **kw)
    )
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request("kling-v2"))
    assert caught.value.code == expected
    assert caught.value.retriable is retriable
    assert "SK" + "4" * 30 not in caught.value.message


async def test_the_same_task_can_be_submitted_again(fake: FakeKling, engine: KlingEngine) -> None:
    # A retry after a lost answer, or a fallback to another Kling route, resubmits the
    # same framegate task: nothing in the body may make Kling refuse the second one.
    request = make_request("kling-v2")
    first = await engine.submit(request)
    second = await engine.submit(request)
    assert first.id != second.id
