"""Contract tests of the Veo engine against a fake of the Gemini API."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from PIL import Image

from framegate.catalog.schemas import ModelRoute
from framegate.config import Settings
from framegate.engines.base import GenerationRequest
from framegate.engines.vendors.base import UpstreamError, UpstreamJob, VendorShape
from framegate.engines.vendors.veo import VeoEngine
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
from tests.engines.vendors.fake_veo import FakeVeo, _check_body

BUILTIN_ROUTES = builtin_routes("veo")

VEO_3 = {"model": "veo-3.0-generate-001"}
VEO_3_FAST = {"model": "veo-3.0-fast-generate-001"}
POLICY = FetchPolicy(allow_networks=parse_networks("127.0.0.3/32"), max_bytes=50_000_000)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeVeo]:
    with FakeVeo() as server:
        yield server


@pytest.fixture
def engine(fake: FakeVeo) -> VeoEngine:
    fake.script("succeed", polls=2)
    fake.redirect_downloads = False
    return VeoEngine(**fake.engine_kwargs())


def make_request(
    *,
    width: int = 1280,
    height: int = 720,
    duration: float = 8.0,
    settings: dict[str, Any] | None = None,
    image: Image.Image | None = None,
    last_image: Image.Image | None = None,
    negative_prompt: str | None = None,
) -> GenerationRequest:
    return GenerationRequest(
        task_id="task_1",
        kind="video",
        prompt="a lighthouse in a storm, waves crashing",
        width=width,
        height=height,
        seed=1234,
        duration=duration,
        fps=24,
        num_frames=round(duration * 24),
        negative_prompt=negative_prompt,
        input_image=image,
        last_image=last_image,
        settings=settings or VEO_3,
    )


def shape(**overrides: Any) -> VendorShape:
    return vendor_shape(**{"duration": 8, "num_frames": 192, **overrides})


# -- request shapes ------------------------------------------------------------------------


async def test_text_to_video_request_shape(fake: FakeVeo, engine: VeoEngine) -> None:
    before = len(fake.requests)
    submitted = fake.submitted
    request = make_request(negative_prompt="blurry, text")
    job = await engine.submit(request)

    [sent] = fake.requests[before:]
    assert sent.method == "POST"
    assert sent.path == "/v1beta/models/veo-3.0-generate-001:predictLongRunning"
    assert sent.headers["x-goog-api-key"] == fake.api_key
    assert sent.headers["content-type"] == "application/json"
    assert "key" not in sent.query
    assert sent.json == {
        "instances": [{"prompt": "a lighthouse in a storm, waves crashing"}],
        "parameters": {
            "aspectRatio": "16:9",
            "resolution": "720p",
            "durationSeconds": 8,
            "sampleCount": 1,
            "negativePrompt": "blurry, text",
        },
    }
    assert fake.submitted == submitted + 1
    assert job.id.startswith("models/veo-3.0-generate-001/operations/")
    assert job.data == {"operation": job.id, "model": "veo-3.0-generate-001"}


async def test_image_to_video_request_shape(fake: FakeVeo, engine: VeoEngine) -> None:
    before = len(fake.requests)
    image = Image.new("RGB", (72, 128), (200, 30, 60))
    request = make_request(width=720, height=1280, duration=6, image=image, settings=VEO_3_FAST)
    await engine.submit(request)

    [sent] = fake.requests[before:]
    assert sent.path == "/v1beta/models/veo-3.0-fast-generate-001:predictLongRunning"
    instance = sent.json["instances"][0]
    assert set(instance) == {"prompt", "image"}
    assert instance["image"]["mimeType"] == "image/png"
    decoded = Image.open(io.BytesIO(base64.b64decode(instance["image"]["bytesBase64Encoded"])))
    assert decoded.format == "PNG"
    assert decoded.size == (72, 128)
    assert decoded.convert("RGB").getpixel((3, 3)) == (200, 30, 60)
    assert sent.json["parameters"] == {
        "aspectRatio": "9:16",
        "resolution": "720p",
        "durationSeconds": 6,
        "sampleCount": 1,
    }


async def test_1080p_and_route_settings(fake: FakeVeo) -> None:
    engine = VeoEngine(**fake.engine_kwargs())
    fake.script("succeed")
    before = len(fake.requests)
    settings = {**VEO_3, "person_generation": "allow_adult"}
    await engine.submit(make_request(width=1080, height=1920, settings=settings))
    [sent] = fake.requests[before:]
    assert sent.json["parameters"] == {
        "aspectRatio": "9:16",
        "resolution": "1080p",
        "durationSeconds": 8,
        "sampleCount": 1,
        "personGeneration": "allow_adult",
    }


async def test_last_frame_for_a_model_that_takes_one(fake: FakeVeo, engine: VeoEngine) -> None:
    before = len(fake.requests)
    first = Image.new("RGB", (64, 36), (0, 0, 255))
    last = Image.new("RGB", (64, 36), (255, 0, 0))
    settings = {"model": "veo-3.1-generate-preview", "last_frame": True}
    engine.refuse(settings, shape(has_image=True, has_last_image=True))
    await engine.submit(make_request(image=first, last_image=last, settings=settings))
    [sent] = fake.requests[before:]
    frame = sent.json["instances"][0]["lastFrame"]
    assert frame["mimeType"] == "image/png"
    decoded = Image.open(io.BytesIO(base64.b64decode(frame["bytesBase64Encoded"])))
    assert decoded.convert("RGB").getpixel((0, 0)) == (255, 0, 0)


# -- job lifecycle ---------------------------------------------------------------------------


async def test_progression_to_success_and_download(
    fake: FakeVeo, engine: VeoEngine, tmp_path: Path
) -> None:
    fake.script("succeed", polls=2)
    request = make_request()
    job = await engine.submit(request)
    before = len(fake.requests)
    seen = await poll_to_end(engine, job, request)
    final = seen[-1]

    assert [s.state for s in seen] == ["pending", "pending", "succeeded"]
    polls = fake.requests[before:]
    assert all(r.method == "GET" and r.path == f"/v1beta/{job.id}" for r in polls)
    assert all(r.headers["x-goog-api-key"] == fake.api_key for r in polls)
    assert final.video_url is not None
    assert final.video_url.startswith(f"{fake.url}/v1beta/files/")

    before = len(fake.requests)
    destination = tmp_path / "out.mp4"
    await engine.download(final.video_url, destination, POLICY)
    [fetched] = fake.requests[before:]
    assert fetched.path.endswith(":download") and fetched.query == {"alt": "media"}
    assert fetched.headers["x-goog-api-key"] == fake.api_key
    with av.open(str(destination)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == SAMPLE_FRAMES


async def test_download_follows_a_redirect_without_the_key(
    fake: FakeVeo, engine: VeoEngine, tmp_path: Path
) -> None:
    fake.redirect_downloads = True
    request = make_request()
    job = await engine.submit(request)
    final = (await poll_to_end(engine, job, request))[-1]
    assert final.video_url is not None
    before = len(fake.requests)
    destination = tmp_path / "out.mp4"
    await engine.download(final.video_url, destination, POLICY)
    api_hit, signed_hit = fake.requests[before:]
    assert api_hit.headers["x-goog-api-key"] == fake.api_key
    assert signed_hit.path.startswith("/signed/")
    assert "x-goog-api-key" not in signed_hit.headers
    assert destination.read_bytes() == fake.video


async def test_download_is_capped(fake: FakeVeo, engine: VeoEngine, tmp_path: Path) -> None:
    request = make_request()
    job = await engine.submit(request)
    final = (await poll_to_end(engine, job, request))[-1]
    assert final.video_url is not None
    small = FetchPolicy(allow_networks=POLICY.allow_networks, max_bytes=100)
    with pytest.raises(UpstreamError):
        await engine.download(final.video_url, tmp_path / "out.mp4", small)


async def test_download_sends_the_key_only_to_the_configured_host(
    fake: FakeVeo, engine: VeoEngine, tmp_path: Path
) -> None:
    request = make_request()
    job = await engine.submit(request)
    final = (await poll_to_end(engine, job, request))[-1]
    assert final.video_url is not None
    file_part = final.video_url.split("/v1beta/", 1)[1]
    elsewhere = f"https://attacker.example/v1beta/{file_part}"
    before = len(fake.requests)
    await engine.download(elsewhere, tmp_path / "out.mp4", POLICY)
    [fetched] = fake.requests[before:]
    assert fetched.headers["host"].startswith("127.0.0.3")
    with pytest.raises(UpstreamError):
        await engine.download("https://example.com/video.mp4", tmp_path / "x.mp4", POLICY)


async def test_failed_job(fake: FakeVeo, engine: VeoEngine) -> None:
    fake.script("fail", polls=1)
    request = make_request()
    job = await engine.submit(request)
    seen = await poll_to_end(engine, job, request)
    final = seen[-1]
    assert [s.state for s in seen] == ["pending", "failed"]
    assert final.error is not None
    assert final.error.code == "upstream_error"
    assert not final.error.retriable
    assert "internal error" in final.error.message


async def test_moderated_job(fake: FakeVeo, engine: VeoEngine) -> None:
    fake.script("moderate", polls=0)
    request = make_request()
    job = await engine.submit(request)
    final = (await poll_to_end(engine, job, request))[-1]
    assert final.state == "failed"
    assert final.error is not None
    assert final.error.code == "moderation_blocked"
    assert "usage guidelines" in final.error.message


async def test_throttled_submit(fake: FakeVeo, engine: VeoEngine) -> None:
    fake.script("throttle", throttles=2)
    submitted = fake.submitted
    for _ in range(2):
        with pytest.raises(UpstreamError) as caught:
            await engine.submit(make_request())
        assert caught.value.code == "upstream_rate_limited"
        assert caught.value.retriable
        assert caught.value.retry_after == 0.0
        assert caught.value.status_code == 429
    assert fake.submitted == submitted
    request = make_request()
    job = await engine.submit(request)
    assert fake.submitted == submitted + 1
    final = (await poll_to_end(engine, job, request))[-1]
    assert final.state == "succeeded"


async def test_wrong_key(fake: FakeVeo) -> None:
    engine = VeoEngine(**{**fake.engine_kwargs(), "api_key": "AIza-wrong-key-123"})
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request())
    assert caught.value.code == "upstream_auth"
    assert not caught.value.retriable
    assert "AIza-wrong-key-123" not in caught.value.message
    assert fake.api_key not in caught.value.message
    job = UpstreamJob(id="models/veo-3.0-generate-001/operations/nope")
    with pytest.raises(UpstreamError) as polled:
        await engine.poll(job, make_request())
    assert polled.value.code == "upstream_auth"


async def test_missing_key(fake: FakeVeo) -> None:
    engine = VeoEngine(**{**fake.engine_kwargs(), "api_key": None})
    assert not engine.is_available(VEO_3)
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request())
    assert caught.value.code == "upstream_auth"
    assert VeoEngine(**fake.engine_kwargs()).is_available(VEO_3)


async def test_unreachable_api_is_retriable() -> None:
    port = free_port()
    engine = VeoEngine(api_key="k", base_url=f"http://127.0.0.3:{port}", timeout=2.0)
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request())
    assert caught.value.code == "upstream_unavailable"
    assert caught.value.retriable


async def test_unknown_operation(fake: FakeVeo, engine: VeoEngine) -> None:
    job = UpstreamJob(id="x", data={"operation": "models/veo-3.0-generate-001/operations/none"})
    with pytest.raises(UpstreamError) as caught:
        await engine.poll(job, make_request())
    assert caught.value.code == "upstream_invalid_request"
    assert caught.value.status_code == 404


def test_settings_overrides_point_at_the_fake(fake: FakeVeo) -> None:
    settings = Settings(**fake.settings_overrides())
    assert settings.veo_api_key is not None
    assert settings.veo_api_key.get_secret_value() == fake.api_key
    assert settings.veo_base_url == fake.url


# -- refusals and routes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"width": 1024, "height": 1024}, "size"),
        ({"width": 854, "height": 480}, "size"),
        ({"width": 3840, "height": 2160}, "size"),
        ({"duration": 5, "num_frames": 120}, "duration"),
        ({"duration": 10, "num_frames": 240}, "duration"),
        ({"width": 1920, "height": 1080, "duration": 4, "num_frames": 96}, "duration"),
        ({"width": 1080, "height": 1920, "duration": 6, "num_frames": 144}, "duration"),
        ({"fps": 30, "num_frames": 240}, "fps"),
        ({"num_frames": 190}, "num_frames"),
        ({"has_image": True, "has_last_image": True}, "last_image"),
        ({"has_seed": True}, "seed"),
    ],
)
def test_refuse(overrides: dict[str, Any], param: str) -> None:
    engine = VeoEngine(api_key="k", base_url="http://127.0.0.3:9")
    with pytest.raises(InvalidValue) as caught:
        engine.refuse(VEO_3, shape(**overrides))
    assert caught.value.param == param
    assert param.split("_")[0] in caught.value.message


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"width": 720, "height": 1280, "duration": 4, "num_frames": 96},
        {"width": 1920, "height": 1080},
        {"width": 1080, "height": 1920, "has_image": True},
        {"has_negative_prompt": True, "has_image": True, "duration": 6, "num_frames": 144},
    ],
)
def test_accept(overrides: dict[str, Any]) -> None:
    VeoEngine(api_key="k", base_url="http://127.0.0.3:9").refuse(VEO_3, shape(**overrides))


def test_builtin_routes_validate() -> None:
    assert [r["id"] for r in BUILTIN_ROUTES] == ["veo-3", "veo-3-fast"]
    engine = VeoEngine(api_key="k", base_url="http://127.0.0.3:9")
    for raw in BUILTIN_ROUTES:
        route = ModelRoute.model_validate(raw)
        assert route.engine == "veo"
        engine.check_route(route)
        caps = route.capabilities
        assert caps.sizes is not None and caps.default_size in caps.sizes
        # The route's defaults are accepted.
        width, height = (int(v) for v in caps.default_size.split("x"))
        default = shape(
            width=width,
            height=height,
            duration=caps.default_duration,
            fps=caps.default_fps,
            num_frames=caps.default_duration * caps.default_fps,
        )
        engine.refuse(route.settings, default)


def test_refuse_and_capabilities_cover_what_the_api_refuses() -> None:
    """Every combination the capabilities allow and refuse() lets through is a request the
    (documented) API accepts, and every size/duration the API accepts is reachable."""
    engine = VeoEngine(api_key="k", base_url="http://127.0.0.3:9")
    image = Image.new("RGB", (16, 9))
    for raw in BUILTIN_ROUTES:
        route = ModelRoute.model_validate(raw)
        caps = route.capabilities
        config = engine.route_settings(route.settings)
        accepted = 0
        for size in caps.sizes or []:
            width, height = (int(v) for v in size.split("x"))
            for duration in range(caps.min_duration, caps.max_duration + 1):
                for has_image in (False, True):
                    candidate = shape(
                        width=width,
                        height=height,
                        duration=duration,
                        num_frames=duration * 24,
                        has_image=has_image,
                    )
                    try:
                        engine.refuse(route.settings, candidate)
                    except InvalidValue:
                        continue
                    accepted += 1
                    request = make_request(
                        width=width,
                        height=height,
                        duration=duration,
                        image=image if has_image else None,
                        settings=route.settings,
                    )
                    body = engine.request_body(request, config)
                    assert _check_body(config.model, body) is None, (size, duration)
        # 720p: 4/6/8 s in both orientations; 1080p: 8 s; each with and without an image.
        assert accepted == (2 * 3 + 2 * 1) * 2


def test_check_route_refuses_capabilities_veo_cannot_honour() -> None:
    engine = VeoEngine(api_key="k", base_url="http://127.0.0.3:9")
    base = BUILTIN_ROUTES[0]
    bad_caps: list[dict[str, Any]] = [
        {"sizes": ["1280x720", "1024x1024"]},
        {"min_fps": 8, "max_fps": 30},
        {"default_duration": 5},
        {"first_last_frame": True},
    ]
    for change in bad_caps:
        route = ModelRoute.model_validate(
            {**base, "capabilities": {**base["capabilities"], **change}}
        )
        with pytest.raises(ValueError):
            engine.check_route(route)
    with pytest.raises(ValueError):
        engine.check_route(ModelRoute.model_validate({**base, "settings": {"modle": "veo"}}))


def _google(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    request = httpx.Request("POST", "http://127.0.0.3/v1beta/models/veo:predictLongRunning")
    if isinstance(body, bytes):
        return httpx.Response(status, content=body, headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


def _envelope(code: int, status: str, message: str, *details: Any) -> dict[str, Any]:
    return {"error": {"code": code, "status": status, "message": message, "details": details}}


@pytest.mark.parametrize(
    ("response", "code", "retriable", "retry_after"),
    [
        (
            _google(429, _envelope(429, "RESOURCE_EXHAUSTED", "quota")),
            "upstream_rate_limited",
            True,
            None,
        ),
        (
            _google(
                429,
                _envelope(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "quota",
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12.5s"},
                ),
            ),
            "upstream_rate_limited",
            True,
            12.5,
        ),
        (_google(429, b"slow down", {"retry-after": "7"}), "upstream_rate_limited", True, 7.0),
        (
            _google(
                400,
                _envelope(
                    400,
                    "INVALID_ARGUMENT",
                    "API key not valid.",
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                    },
                ),
            ),
            "upstream_auth",
            False,
            None,
        ),
        (_google(403, _envelope(403, "PERMISSION_DENIED", "denied")), "upstream_auth", False, None),
        (
            _google(
                400, _envelope(400, "INVALID_ARGUMENT", "The prompt violates the usage guidelines.")
            ),
            "moderation_blocked",
            False,
            None,
        ),
        (
            _google(400, _envelope(400, "INVALID_ARGUMENT", "durationSeconds out of bound")),
            "upstream_invalid_request",
            False,
            None,
        ),
        (_google(500, _envelope(500, "INTERNAL", "internal")), "upstream_unavailable", True, None),
        (
            _google(503, _envelope(503, "UNAVAILABLE", "overloaded")),
            "upstream_unavailable",
            True,
            None,
        ),
        (_google(502, b"<html>bad gateway</html>"), "upstream_unavailable", True, None),
    ],
)
def test_error_envelope_mapping(
    response: httpx.Response, code: str, retriable: bool, retry_after: float | None
) -> None:
    engine = VeoEngine(api_key="AIza-secret", base_url="http://127.0.0.3:9")
    error = engine._error(response)
    assert (error.code, error.retriable, error.retry_after) == (code, retriable, retry_after)
    assert error.status_code == response.status_code
    assert "AIza-secret" not in error.message


def test_transport_errors() -> None:
    engine = VeoEngine(api_key="AIza-secret", base_url="http://127.0.0.3:9")
    timeout = engine.transport_error(httpx.ReadTimeout("timed out"), "polling")
    assert (timeout.code, timeout.retriable) == ("upstream_timeout", True)
    refused = engine.transport_error(httpx.ConnectError("refused AIza-secret"), "polling")
    assert (refused.code, refused.retriable) == ("upstream_unavailable", True)
    assert "AIza-secret" not in refused.message
