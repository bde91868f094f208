"""Contract tests of the PixVerse engine against a fake of the PixVerse Platform API."""

from __future__ import annotations

import io
import secrets
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image

from framegate.config import Settings
from framegate.engines.base import GenerationRequest
from framegate.engines.vendors.base import (
    MODERATION_BLOCKED,
    UPSTREAM_AUTH,
    UPSTREAM_ERROR,
    UPSTREAM_INVALID,
    UPSTREAM_RATE_LIMITED,
    UPSTREAM_UNAVAILABLE,
    UpstreamError,
    UpstreamJob,
)
from framegate.engines.vendors.pixverse import (
    CONCURRENCY_RETRY_AFTER,
    PixVerseEngine,
)
from framegate.kit.addresses import parse_networks
from framegate.kit.safe_fetch import FetchPolicy
from tests.engines.vendors.common import (
    FAKE_HOST,
    SAMPLE_FRAMES,
    RecordedRequest,
    builtin_routes,
    poll_to_end,
)
from tests.engines.vendors.fake_pixverse import FakePixVerse

BUILTIN_ROUTES = builtin_routes("pixverse")

ROUTE = BUILTIN_ROUTES[0]
TEXT = "/openapi/v2/video/text/generate"
IMAGE = "/openapi/v2/video/img/generate"
TRANSITION = "/openapi/v2/video/transition/generate"
UPLOAD = "/openapi/v2/image/upload"
RESULT = "/openapi/v2/video/result/"
POLICY = FetchPolicy(allow_networks=parse_networks(f"{FAKE_HOST}/32"), max_bytes=50_000_000)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakePixVerse]:
    with FakePixVerse() as server:
        yield server


@pytest.fixture
def pixverse(fake: FakePixVerse) -> FakePixVerse:
    fake.reset()
    return fake


@pytest.fixture
def engine(pixverse: FakePixVerse) -> PixVerseEngine:
    return PixVerseEngine(**pixverse.engine_kwargs())


def make_request(**overrides: Any) -> GenerationRequest:
    values: dict[str, Any] = {
        "task_id": f"task_{secrets.token_hex(8)}",
        "kind": "video",
        "prompt": "A red fox trots through fresh snow at dawn",
        "width": 1280,
        "height": 720,
        "seed": 1234,
        "duration": 5.0,
        "fps": 24,
        "num_frames": 120,
        "settings": ROUTE["settings"],
    }
    values.update(overrides)
    return GenerationRequest(**values)


def picture(width: int, height: int, color: tuple[int, int, int] = (200, 60, 30)) -> Image.Image:
    return Image.new("RGB", (width, height), color)


def assert_headers(entry: RecordedRequest, key: str) -> None:
    assert entry.headers["api-key"] == key
    assert uuid.UUID(entry.headers["ai-trace-id"])
    assert "authorization" not in entry.headers


# -- catalog ---------------------------------------------------------------------------------


def test_settings_overrides_point_framegate_at_the_fake(fake: FakePixVerse) -> None:
    settings = Settings(**fake.settings_overrides())
    assert settings.pixverse_base_url == fake.url
    assert settings.pixverse_api_key is not None
    assert settings.pixverse_api_key.get_secret_value() == fake.api_key


# -- request shapes ------------------------------------------------------------------------


async def test_text_to_video_request(engine: PixVerseEngine, pixverse: FakePixVerse) -> None:
    request = make_request(negative_prompt="blurry, low quality", seed=987_654)
    job = await engine.submit(request)
    assert job.id.isdigit() and int(job.id) in pixverse.videos
    [entry] = pixverse.requests
    assert (entry.method, entry.path, entry.query) == ("POST", TEXT, {})
    assert_headers(entry, pixverse.api_key)
    assert entry.headers["content-type"] == "application/json"
    assert entry.json == {
        "aspect_ratio": "16:9",
        "duration": 5,
        "model": "v5",
        "motion_mode": "normal",
        "negative_prompt": "blurry, low quality",
        "prompt": "A red fox trots through fresh snow at dawn",
        "quality": "720p",
        "seed": 987_654,
        "water_mark": False,
    }
    assert pixverse.submitted == 1


@pytest.mark.parametrize(
    ("size", "quality", "ratio", "duration"),
    [
        ((640, 360), "360p", "16:9", 8),
        ((360, 640), "360p", "9:16", 5),
        ((720, 540), "540p", "4:3", 8),
        ((540, 540), "540p", "1:1", 5),
        ((720, 960), "720p", "3:4", 8),
        ((1440, 1080), "1080p", "4:3", 5),
        ((1080, 1920), "1080p", "9:16", 5),
    ],
)
async def test_size_maps_to_quality_and_aspect_ratio(
    engine: PixVerseEngine,
    pixverse: FakePixVerse,
    size: tuple[int, int],
    quality: str,
    ratio: str,
    duration: int,
) -> None:
    request = make_request(
        width=size[0], height=size[1], duration=float(duration), num_frames=duration * 24
    )
    job = await engine.submit(request)
    body = pixverse.requests_to(TEXT)[0].json
    assert (body["quality"], body["aspect_ratio"], body["duration"]) == (quality, ratio, duration)
    assert "negative_prompt" not in body
    status = (await poll_to_end(engine, job, request))[-1]
    video = pixverse.videos[int(job.id)]
    assert (video.width, video.height) == size
    assert status.state == "succeeded"


async def test_seed_is_folded_into_pixverse_range(
    engine: PixVerseEngine, pixverse: FakePixVerse
) -> None:
    await engine.submit(make_request(seed=2**32 - 1))
    await engine.submit(make_request(seed=2**31 - 1))
    seeds = [entry.json["seed"] for entry in pixverse.requests_to(TEXT)]
    assert seeds == [2**31 - 1, 2**31 - 1]


async def test_image_to_video_uploads_the_cropped_frame(
    engine: PixVerseEngine, pixverse: FakePixVerse
) -> None:
    # A 4:3 picture for a 16:9 clip: PixVerse follows the image, so it is cropped first.
    request = make_request(
        input_image=picture(1600, 1200),
        input_image_url="https://framegate.example/signed/input.png",
        negative_prompt="text, watermark",
    )
    job = await engine.submit(request)
    upload, generate = pixverse.requests
    assert (upload.method, upload.path) == ("POST", UPLOAD)
    assert_headers(upload, pixverse.api_key)
    assert upload.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert set(upload.form) == {"image"}
    sent = upload.form["image"]
    assert sent["content_type"] == "image/jpeg"
    with Image.open(io.BytesIO(sent["data"])) as image:
        assert image.format == "JPEG"
        assert image.size == (1600, 900)
        pixel = image.getpixel((800, 450))
        assert isinstance(pixel, tuple) and pixel[0] > 150
    img_id = next(iter(pixverse.images))
    assert (generate.method, generate.path) == ("POST", IMAGE)
    assert_headers(generate, pixverse.api_key)
    assert generate.json == {
        "duration": 5,
        "img_id": img_id,
        "model": "v5",
        "motion_mode": "normal",
        "negative_prompt": "text, watermark",
        "prompt": "A red fox trots through fresh snow at dawn",
        "quality": "720p",
        "seed": 1234,
        "water_mark": False,
    }
    assert upload.headers["ai-trace-id"] != generate.headers["ai-trace-id"]
    video = pixverse.videos[int(job.id)]
    assert (video.width, video.height) == (1280, 720)


async def test_small_images_are_scaled_up_to_the_output_size(
    engine: PixVerseEngine, pixverse: FakePixVerse
) -> None:
    await engine.submit(make_request(width=720, height=1280, input_image=picture(64, 48)))
    with Image.open(io.BytesIO(pixverse.requests_to(UPLOAD)[0].form["image"]["data"])) as im:
        assert im.size == (720, 1280)


async def test_first_and_last_frame_use_the_transition_endpoint(
    engine: PixVerseEngine, pixverse: FakePixVerse
) -> None:
    request = make_request(
        width=720,
        height=720,
        duration=8.0,
        num_frames=192,
        input_image=picture(900, 700, (10, 200, 10)),
        last_image=picture(500, 500, (10, 10, 200)),
    )
    job = await engine.submit(request)
    first, last, generate = pixverse.requests
    assert [first.path, last.path, generate.path] == [UPLOAD, UPLOAD, TRANSITION]
    first_id, last_id = list(pixverse.images)
    for entry in (first, last):
        with Image.open(io.BytesIO(entry.form["image"]["data"])) as image:
            assert image.width == image.height >= 720
    assert generate.json == {
        "duration": 8,
        "first_frame_img": first_id,
        "last_frame_img": last_id,
        "model": "v5",
        "motion_mode": "normal",
        "prompt": "A red fox trots through fresh snow at dawn",
        "quality": "720p",
        "seed": 1234,
    }
    assert job.data == {"mode": "transition"}
    assert len({e.headers["ai-trace-id"] for e in pixverse.requests}) == 3


# -- status and result ---------------------------------------------------------------------


async def test_success_then_download(
    engine: PixVerseEngine, pixverse: FakePixVerse, tmp_path: Path
) -> None:
    pixverse.script("succeed", polls=2)
    request = make_request()
    job = await engine.submit(request)
    statuses = await poll_to_end(engine, job, request)
    assert [s.state for s in statuses] == ["pending", "pending", "succeeded"]
    assert statuses[0].poll_after == pytest.approx(0.05)
    done = statuses[-1]
    assert done.video_url == f"{pixverse.url}/media/video/{job.id}.mp4"
    polls = pixverse.requests_to(RESULT)
    assert [p.path for p in polls] == [f"{RESULT}{job.id}"] * 3
    assert all(p.method == "GET" for p in polls)
    for entry in polls:
        assert_headers(entry, pixverse.api_key)
    # A reused trace id would get the first (pending) answer forever.
    assert len({p.headers["ai-trace-id"] for p in polls}) == 3

    destination = tmp_path / "result.mp4"
    assert done.video_url is not None
    await engine.download(done.video_url, destination, POLICY)
    with av.open(str(destination)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == SAMPLE_FRAMES


async def test_failed_generation(engine: PixVerseEngine, pixverse: FakePixVerse) -> None:
    pixverse.script("fail", polls=1)
    request = make_request()
    job = await engine.submit(request)
    status = (await poll_to_end(engine, job, request))[-1]
    assert status.state == "failed"
    assert status.error is not None and status.error.code == UPSTREAM_ERROR
    assert not status.error.retriable
    assert "status 8" in status.error.message


async def test_moderated_generation(engine: PixVerseEngine, pixverse: FakePixVerse) -> None:
    pixverse.script("moderate", polls=0)
    request = make_request()
    job = await engine.submit(request)
    [status] = await poll_to_end(engine, job, request)
    assert status.state == "failed"
    assert status.error is not None and status.error.code == MODERATION_BLOCKED
    assert not status.error.retriable


async def test_unknown_video_id(engine: PixVerseEngine) -> None:
    with pytest.raises(UpstreamError) as caught:
        await engine.poll(UpstreamJob(id="424242"), make_request())
    assert caught.value.code == UPSTREAM_ERROR and not caught.value.retriable
    assert "500008" in caught.value.message


# -- submission errors ---------------------------------------------------------------------


async def test_concurrency_limit_is_retried_with_a_new_trace_id(
    engine: PixVerseEngine, pixverse: FakePixVerse
) -> None:
    pixverse.script("throttle", throttles=3)
    request = make_request()
    for _ in range(3):
        with pytest.raises(UpstreamError) as caught:
            await engine.submit(request)
        error = caught.value
        assert error.code == UPSTREAM_RATE_LIMITED and error.retriable
        assert error.retry_after == CONCURRENCY_RETRY_AFTER
        assert "500044" in error.message
    job = await engine.submit(request)
    assert pixverse.submitted == 1 and int(job.id) in pixverse.videos
    traces = [e.headers["ai-trace-id"] for e in pixverse.requests_to(TEXT)]
    assert len(traces) == len(set(traces)) == 4


async def test_proxy_429_honours_retry_after(
    engine: PixVerseEngine, pixverse: FakePixVerse
) -> None:
    pixverse.script("http_429", throttles=1)
    request = make_request()
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(request)
    assert caught.value.code == UPSTREAM_RATE_LIMITED and caught.value.retriable
    assert caught.value.retry_after == 0
    await engine.submit(request)
    assert pixverse.submitted == 1


async def test_retried_submit_is_idempotent(engine: PixVerseEngine, pixverse: FakePixVerse) -> None:
    # The same task submitted again (the first answer was lost): PixVerse answers the
    # reused trace id with the job it already started.
    request = make_request()
    first = await engine.submit(request)
    again = await PixVerseEngine(**pixverse.engine_kwargs()).submit(request)
    assert again.id == first.id
    assert pixverse.submitted == 1
    other = await engine.submit(make_request())
    assert other.id != first.id and pixverse.submitted == 2


@pytest.mark.parametrize(
    ("outcome", "code", "retriable", "fragment"),
    [
        ("moderate_submit", MODERATION_BLOCKED, False, "500063"),
        ("no_balance", UPSTREAM_ERROR, False, "500090"),
        ("overloaded", UPSTREAM_UNAVAILABLE, True, "500069"),
        ("http_503", UPSTREAM_UNAVAILABLE, True, "HTTP 503"),
    ],
)
async def test_submission_refusals(
    engine: PixVerseEngine,
    pixverse: FakePixVerse,
    outcome: str,
    code: str,
    retriable: bool,
    fragment: str,
) -> None:
    pixverse.script(outcome)
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request())
    assert caught.value.code == code
    assert caught.value.retriable is retriable
    assert fragment in caught.value.message
    assert pixverse.submitted == 0


async def test_parameters_pixverse_rejects(engine: PixVerseEngine, pixverse: FakePixVerse) -> None:
    request = make_request(settings={"model": "v0.1"})
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(request)
    assert caught.value.code == UPSTREAM_INVALID and not caught.value.retriable
    assert "400017" in caught.value.message
    too_long = make_request(prompt="x" * 2049)
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(too_long)
    assert caught.value.code == UPSTREAM_INVALID and "400018" in caught.value.message


async def test_wrong_key(pixverse: FakePixVerse) -> None:
    key = "pv-sk-wrong-key-aaaaaaaaaaaa"
    engine = PixVerseEngine(**{**pixverse.engine_kwargs(), "api_key": key})
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request())
    assert caught.value.code == UPSTREAM_AUTH and not caught.value.retriable
    assert key not in caught.value.message and pixverse.api_key not in caught.value.message
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request(input_image=picture(100, 100)))
    assert caught.value.code == UPSTREAM_AUTH
    with pytest.raises(UpstreamError) as caught:
        await engine.poll(UpstreamJob(id="1"), make_request())
    assert caught.value.code == UPSTREAM_AUTH
    assert pixverse.requests_to(TEXT)[0].headers["api-key"] == key


async def test_no_key_means_no_call(pixverse: FakePixVerse) -> None:
    engine = PixVerseEngine(**{**pixverse.engine_kwargs(), "api_key": None})
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request())
    assert caught.value.code == UPSTREAM_AUTH
    assert pixverse.requests == []


async def test_connection_refused_is_retriable() -> None:
    with socket.socket() as sock:
        sock.bind((FAKE_HOST, 0))
        port = sock.getsockname()[1]
    engine = PixVerseEngine(api_key="k", base_url=f"http://{FAKE_HOST}:{port}", timeout=2.0)
    with pytest.raises(UpstreamError) as caught:
        await engine.submit(make_request())
    assert caught.value.code == UPSTREAM_UNAVAILABLE and caught.value.retriable
    with pytest.raises(UpstreamError) as caught:
        await engine.poll(UpstreamJob(id="1"), make_request())
    assert caught.value.code == UPSTREAM_UNAVAILABLE and caught.value.retriable
