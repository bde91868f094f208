"""The diffusers engine end to end over HTTP, with tiny randomly initialised pipelines that
the tests build and save themselves (no weights, no GPU, no network): Wan, LTX-Video and
CogVideoX text- and image-to-video, a text-to-image pipeline, progress, cancel, an injected
out-of-memory error, geometry refused before any hold, and the MP4s decoded with PyAV."""

from __future__ import annotations

import asyncio
import base64
import io
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
import torch
import yaml
from fastapi import FastAPI
from PIL import Image

from framegate.app import create_app
from framegate.catalog.schemas import ModelRoute
from framegate.catalog.service import Catalog, CatalogError
from framegate.config import Settings
from framegate.engines.base import GenerationRequest, TaskCancelledError
from framegate.engines.diffusers import DiffusersEngine
from framegate.engines.preview import PreviewEngine
from framegate.engines.registry import EngineRegistry
from framegate.runtime import Runtime
from tests.conftest import Tenant, file_path, make_account, wait_for_task
from tests.engines.tiny_pipelines import BUILDERS

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

# Tiny pipelines at 32x32 and 8 fps: one second is 8 frames, rounded up to 9 (4k+1 / 8k+1).
SIZE = "32x32"


def _capabilities(**overrides: Any) -> dict[str, Any]:
    caps: dict[str, Any] = {
        "text_to_video": True,
        "min_duration": 1,
        "max_duration": 2,
        "default_duration": 1,
        "min_fps": 8,
        "max_fps": 8,
        "default_fps": 8,
        "frame_step": 4,
        "max_frames": 17,
        "min_side": 16,
        "max_side": 64,
        "size_multiple": 16,
        "default_size": SIZE,
    }
    caps.update(overrides)
    return caps


def _route(
    route_id: str, weights: Path, pipeline: str, family: str, caps: dict[str, Any], **settings: Any
) -> dict[str, Any]:
    return {
        "id": route_id,
        "kind": "image" if family == "image" else "video",
        "engine": "diffusers",
        "settings": {
            "family": family,
            "pipeline": pipeline,
            "weights": str(weights),
            "device": "cpu",
            "dtype": "float32",
            "steps": 2,
            "guidance_scale": 2.0,
            **settings,
        },
        "capabilities": caps,
        "pricing": {
            "unit": "image" if family == "image" else "second",
            "credits": {"480p": 3},
        },
    }


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-models")
    return {name: build(root / name) for name, build in BUILDERS.items()}


def _routes(models: dict[str, Path]) -> list[dict[str, Any]]:
    ltx = {"size_multiple": 32, "frame_step": 8}
    cog = {"frame_step": 8, "text_to_video": True}
    return [
        _route("tiny-wan", models["wan-t2v"], "WanPipeline", "wan", _capabilities()),
        # Many steps: long enough to watch progress and to cancel mid-run.
        _route(
            "tiny-wan-slow", models["wan-t2v"], "WanPipeline", "wan", _capabilities(), steps=1000
        ),
        # The optional accelerations that run on a CPU: attention backend, first-block cache.
        _route(
            "tiny-wan-accel",
            models["wan-t2v"],
            "WanPipeline",
            "wan",
            _capabilities(),
            attention_backend="auto",
            cache={"type": "first_block", "threshold": 0.05},
        ),
        _route(
            "tiny-wan-i2v",
            models["wan-i2v"],
            "WanImageToVideoPipeline",
            "wan",
            _capabilities(text_to_video=False, image_to_video=True, first_last_frame=True),
        ),
        # Wan 2.1 first-last-frame (CLIP image encoder): needs both frames.
        _route(
            "tiny-wan-flf2v",
            models["wan-flf2v"],
            "WanImageToVideoPipeline",
            "wan",
            _capabilities(
                text_to_video=False,
                image_to_video=True,
                first_last_frame=True,
                last_image_required=True,
            ),
        ),
        # One route for both: LTXPipeline, and LTXImageToVideoPipeline over the same
        # components when the request has an input image.
        _route(
            "tiny-ltx",
            models["ltx-t2v"],
            "LTXPipeline",
            "ltx",
            _capabilities(image_to_video=True, **ltx),
            image_pipeline="LTXImageToVideoPipeline",
            call_args={"decode_timestep": 0.03},
        ),
        _route(
            "tiny-cogvideox",
            models["cogvideox-t2v"],
            "CogVideoXPipeline",
            "cogvideox",
            _capabilities(**cog),
        ),
        _route(
            "tiny-cogvideox-i2v",
            models["cogvideox-i2v"],
            "CogVideoXImageToVideoPipeline",
            "cogvideox",
            _capabilities(text_to_video=False, image_to_video=True, frame_step=8),
        ),
        _route(
            "tiny-image",
            models["t2i"],
            "CogView3PlusPipeline",
            "image",
            {
                "text_to_image": True,
                "size_multiple": 8,
                "min_side": 16,
                "max_side": 64,
                "default_size": SIZE,
                "max_images": 2,
            },
        ),
    ]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DiffusersEngine]:
    value = DiffusersEngine(models_dir=tmp_path_factory.mktemp("models"), max_pipelines=8)
    yield value
    value.close()


@pytest.fixture(scope="module")
async def dapp(
    tiny_models: dict[str, Path],
    engine: DiffusersEngine,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[FastAPI]:
    data_dir = tmp_path_factory.mktemp("diffusers-data")
    catalog = data_dir / "catalog.yaml"
    catalog.write_text(yaml.safe_dump({"routes": _routes(tiny_models)}))
    settings = Settings(
        env="test",
        data_dir=data_dir,
        secret_key=secrets.token_urlsafe(40),
        catalog_file=catalog,
        worker_concurrency=2,
        task_lease_seconds=5.0,
        reaper_interval_seconds=0.5,
        worker_poll_seconds=0.1,
        default_max_concurrent_videos=100,
        default_requests_per_minute=100_000,
    )
    application = create_app(settings, engines=EngineRegistry([PreviewEngine(), engine]))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="module")
async def dclient(dapp: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=dapp)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def tenant(dapp: FastAPI) -> Tenant:
    runtime: Runtime = dapp.state.runtime
    return await make_account(runtime, credits=100)


def data_uri(color: tuple[int, int, int], size: tuple[int, int] = (48, 40)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


async def submit(client: httpx.AsyncClient, tenant: Tenant, **body: Any) -> httpx.Response:
    return await client.post(
        "/v1/async/videos/generations",
        json={"prompt": "a red fox runs in the snow", "seed": 7, **body},
        headers=tenant.headers,
    )


async def download_frames(client: httpx.AsyncClient, url: str) -> tuple[np.ndarray, Any]:
    response = await client.get(file_path(url))
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(response.content)) as container:
        stream = container.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        return frames, stream


async def balance(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get("/v1/credits", headers=tenant.headers)).json()
    return body


# -- generation over HTTP ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "extra", "frames"),
    [
        ("tiny-wan", {}, 9),
        ("tiny-wan-accel", {}, 9),
        ("tiny-wan-i2v", {"input_image": "red", "last_image": "blue"}, 9),
        ("tiny-wan-flf2v", {"input_image": "red", "last_image": "blue"}, 9),
        ("tiny-ltx", {}, 9),
        ("tiny-ltx", {"input_image": "green"}, 9),
        ("tiny-cogvideox", {}, 9),
        ("tiny-cogvideox-i2v", {"input_image": "red"}, 9),
    ],
)
async def test_video_end_to_end(
    dclient: httpx.AsyncClient, tenant: Tenant, model: str, extra: dict[str, str], frames: int
) -> None:
    colors = {"red": (220, 30, 30), "green": (30, 200, 60), "blue": (30, 60, 220)}
    body = {k: data_uri(colors[v]) for k, v in extra.items()}
    response = await submit(dclient, tenant, model=model, size=SIZE, duration=1, **body)
    assert response.status_code == 202, response.text
    submitted = response.json()
    assert submitted["credits_reserved"] == 3  # 1 s x 3 credits
    task = await wait_for_task(dclient, tenant, submitted["id"], timeout=120)
    assert task["status"] == "completed", task["error"]
    assert task["credits_used"] == 3
    output = task["result"]["data"][0]
    assert (output["width"], output["height"], output["fps"]) == (32, 32, 8)
    assert output["num_frames"] == frames
    assert output["duration"] == pytest.approx(frames / 8)
    decoded, stream = await download_frames(dclient, output["url"])
    assert decoded.shape == (frames, 32, 32, 3)
    assert stream.codec_context.name == "h264"
    assert stream.average_rate == 8
    thumbnail = await dclient.get(file_path(output["thumbnail_url"]))
    assert Image.open(io.BytesIO(thumbnail.content)).format == "JPEG"


async def test_explicit_num_frames_and_same_seed_same_video(
    dclient: httpx.AsyncClient, tenant: Tenant
) -> None:
    outputs = []
    for _ in range(2):
        response = await submit(dclient, tenant, model="tiny-wan", num_frames=13, seed=42)
        assert response.status_code == 202, response.text
        task = await wait_for_task(dclient, tenant, response.json()["id"], timeout=120)
        assert task["status"] == "completed", task["error"]
        assert task["result"]["data"][0]["num_frames"] == 13
        outputs.append((await download_frames(dclient, task["result"]["data"][0]["url"]))[0])
    assert np.array_equal(outputs[0], outputs[1])
    other = await submit(dclient, tenant, model="tiny-wan", num_frames=13, seed=43)
    task = await wait_for_task(dclient, tenant, other.json()["id"], timeout=120)
    third = (await download_frames(dclient, task["result"]["data"][0]["url"]))[0]
    assert not np.array_equal(outputs[0], third)


async def test_images_end_to_end(dclient: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await dclient.post(
        "/v1/images/generations",
        json={"model": "tiny-image", "prompt": "a small red boat", "n": 2, "size": SIZE},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert len(data) == 2
    for item in data:
        image = Image.open(io.BytesIO((await dclient.get(file_path(item["url"]))).content))
        assert image.format == "PNG" and image.size == (32, 32)
    assert (await balance(dclient, tenant))["available"] == 100 - 6


# -- refused before any hold ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"model": "tiny-wan", "size": "40x40"}, "size", "multiples of 16"),
        ({"model": "tiny-ltx", "size": "48x48"}, "size", "multiples of 32"),
        ({"model": "tiny-wan", "num_frames": 8}, "num_frames", "4k+1"),
        ({"model": "tiny-ltx", "num_frames": 13}, "num_frames", "8k+1"),
        ({"model": "tiny-wan", "num_frames": 21}, "num_frames", "at most 17 frames"),
        ({"model": "tiny-wan", "num_frames": 9, "duration": 1}, "num_frames", "not both"),
        ({"model": "tiny-wan", "input_image": "x"}, "input_image", "image-to-video"),
        ({"model": "tiny-ltx", "last_image": "x", "input_image": "x"}, "last_image", "last"),
        ({"model": "tiny-wan-flf2v", "input_image": "x"}, "last_image", "give last_image"),
    ],
)
async def test_invalid_geometry_refused_before_hold(
    dclient: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], param: str, fragment: str
) -> None:
    before = await balance(dclient, tenant)
    response = await submit(dclient, tenant, **body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert fragment in error["message"]
    assert await balance(dclient, tenant) == before
    listed = (await dclient.get("/v1/tasks", headers=tenant.headers)).json()
    assert listed["data"] == []


# -- progress, cancel, failures ---------------------------------------------------------


async def test_progress_rises_then_cancel_releases_the_hold(
    dclient: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await submit(dclient, tenant, model="tiny-wan-slow", size=SIZE)
    task_id = response.json()["id"]
    seen: list[int] = []
    for _ in range(1200):
        task = (await dclient.get(f"/v1/tasks/{task_id}", headers=tenant.headers)).json()
        if task["status"] == "processing" and task["progress"] > 0:
            seen.append(task["progress"])
        if len(set(seen)) >= 3:
            break
        await asyncio.sleep(0.02)
    assert len(set(seen)) >= 3, seen
    assert seen == sorted(seen) and 0 < seen[-1] < 85
    cancelled = await dclient.post(f"/v1/tasks/{task_id}/cancel", headers=tenant.headers)
    assert cancelled.json()["status"] == "cancelled"
    credits = await balance(dclient, tenant)
    assert credits["available"] == 100 and credits["held"] == 0
    # The engine stops at its next step: the device is free for the next task well before
    # the 1000 steps would have finished.
    follow = await submit(dclient, tenant, model="tiny-wan", size=SIZE)
    done = await wait_for_task(dclient, tenant, follow.json()["id"], timeout=120)
    assert done["status"] == "completed"
    final = (await dclient.get(f"/v1/tasks/{task_id}", headers=tenant.headers)).json()
    assert final["status"] == "cancelled" and final["result"] is None


async def test_out_of_memory_fails_with_code_and_refund(
    dclient: httpx.AsyncClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffusers import CogVideoXTransformer3DModel

    def exhausted(*args: Any, **kwargs: Any) -> Any:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(CogVideoXTransformer3DModel, "forward", exhausted)
    response = await submit(dclient, tenant, model="tiny-cogvideox", size=SIZE)
    task = await wait_for_task(dclient, tenant, response.json()["id"], timeout=120)
    assert task["status"] == "failed"
    assert task["error"]["code"] == "gpu_out_of_memory"
    assert "refunded" in task["error"]["message"]
    assert task["credits_used"] == 0 and task["credits_refunded"] == 3
    assert (await balance(dclient, tenant))["available"] == 100


async def test_engine_error_fails_with_refund(
    dclient: httpx.AsyncClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffusers import CogVideoXTransformer3DModel

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("shape mismatch in /secret/path")

    monkeypatch.setattr(CogVideoXTransformer3DModel, "forward", broken)
    response = await submit(dclient, tenant, model="tiny-cogvideox", size=SIZE)
    task = await wait_for_task(dclient, tenant, response.json()["id"], timeout=120)
    assert task["status"] == "failed"
    assert task["error"]["code"] == "engine_error"
    assert "/secret/path" not in task["error"]["message"]
    assert (await balance(dclient, tenant))["available"] == 100


async def test_pipelines_stay_warm(
    dclient: httpx.AsyncClient, tenant: Tenant, engine: DiffusersEngine
) -> None:
    first = await submit(dclient, tenant, model="tiny-wan", size=SIZE)
    await wait_for_task(dclient, tenant, first.json()["id"], timeout=120)
    loads = engine.cache.loads
    second = await submit(dclient, tenant, model="tiny-wan", size=SIZE, seed=9)
    assert (await wait_for_task(dclient, tenant, second.json()["id"]))["status"] == "completed"
    assert engine.cache.loads == loads


async def test_models_list_marks_local_routes_available(dclient: httpx.AsyncClient) -> None:
    models = {m["id"]: m for m in (await dclient.get("/v1/models")).json()["data"]}
    assert models["tiny-wan"]["available"] is True
    assert models["tiny-wan"]["capabilities"]["frame_step"] == 4
    # Built-in open-weight routes are listed, unavailable until their weights are pulled.
    assert models["wan-2.1-t2v-1.3b"]["available"] is False


# -- the engine directly ----------------------------------------------------------------


def _request(settings: dict[str, Any], **overrides: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "task_id": "task_direct",
        "kind": "video",
        "prompt": "a dog on a beach",
        "width": 32,
        "height": 32,
        "seed": 1,
        "duration": 9 / 8,
        "fps": 8,
        "num_frames": 9,
        "settings": settings,
    }
    fields.update(overrides)
    return GenerationRequest(**fields)


async def test_cancel_is_checked_at_every_step(
    engine: DiffusersEngine, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    route = _route("x", tiny_models["wan-t2v"], "WanPipeline", "wan", _capabilities(), steps=50)
    fractions: list[float] = []

    def cancelled() -> bool:
        return len(fractions) >= 3

    with pytest.raises(TaskCancelledError):
        await engine.generate(_request(route["settings"]), tmp_path, fractions.append, cancelled)
    # Three steps reported, then the check before the fourth step's report stopped it.
    assert len(fractions) == 3
    assert fractions == sorted(fractions) and fractions[-1] < 0.1
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []


def test_catalog_refuses_geometry_the_family_cannot_make(
    engine: DiffusersEngine, tiny_models: dict[str, Path]
) -> None:
    registry = EngineRegistry([engine])
    bad = [
        _route("a", tiny_models["wan-t2v"], "WanPipeline", "wan", _capabilities(size_multiple=8)),
        _route("b", tiny_models["wan-t2v"], "WanPipeline", "wan", _capabilities(frame_step=2)),
        _route("c", tiny_models["ltx-t2v"], "LTXPipeline", "ltx", _capabilities(sizes=["48x32"])),
        _route("d", tiny_models["wan-t2v"], "WanPipeline", "wan", _capabilities()),
        _route("e", tiny_models["wan-t2v"], "wan_pipeline", "wan", _capabilities()),
    ]
    bad[3]["settings"]["family"] = "image"  # an image family on a video route
    messages = []
    for route in bad:
        with pytest.raises(CatalogError) as caught:
            Catalog([ModelRoute.model_validate(route)], registry)
        messages.append(str(caught.value))
    assert "size_multiple must be a multiple of 16" in messages[0]
    assert "frame_step must be a multiple of 4" in messages[1]
    assert "48x32 is not a multiple of 32" in messages[2]
    assert "does not generate videos" in messages[3]
    assert "pipeline must name a diffusers pipeline class" in messages[4]


def test_unavailable_without_weights(engine: DiffusersEngine, tmp_path: Path) -> None:
    settings = {"family": "wan", "pipeline": "WanPipeline", "weights": str(tmp_path / "none")}
    assert engine.is_available({**settings, "device": "cpu"}) is False
    assert engine.is_available({"family": "wan"}) is False
