"""What the diffusers engine does to be correct on real GPUs, pinned on the CPU with the tiny
pipelines of tiny_pipelines.py: image variants that share (and keep the dtypes of) the warm
components, cache hooks reset after a cancelled call, an attention backend scoped to its
route, ``cuda`` and ``cuda:0`` as one device, CPU-drawn starting latents, a uint8 conversion
that does not double the frames' memory, the encode after the device is released, one
request at a time per pipeline, compiled warm-up (and its fallback), and torch imported at
start-up rather than on the event loop."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import diffusers
import numpy as np
import pytest
import torch
from diffusers.models.attention_dispatch import AttentionBackendName, _AttentionBackendRegistry
from PIL import Image
from torch._dynamo.utils import counters

from framegate.engines.base import EngineError, GenerationJob, GenerationRequest, TaskCancelledError
from framegate.engines.diffusers import DiffusersEngine, accel, pipelines
from framegate.engines.diffusers.cache import PipelineCache
from framegate.engines.diffusers.engine import STEP_SHARE, to_uint8
from framegate.engines.diffusers.noise import initial_latents
from framegate.engines.diffusers.pipelines import LoadedPipeline
from framegate.engines.diffusers.settings import DiffusersSettings

pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    # Raised inside torch when torch.compile first imports its compiler.
    pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"),
]

SEED = 5


# -- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[DiffusersEngine]:
    value = DiffusersEngine(models_dir=tmp_path, max_pipelines=8)
    yield value
    value.close()


@pytest.fixture
def frames_seen(monkeypatch: pytest.MonkeyPatch) -> dict[str, np.ndarray]:
    """The uint8 frames each request (by task id) handed to the encoder."""
    seen: dict[str, np.ndarray] = {}
    encode = DiffusersEngine._encode_video

    def record(frames: np.ndarray, job: GenerationJob, *rest: Any) -> Any:
        seen[job.request.task_id] = frames.copy()
        return encode(frames, job, *rest)

    monkeypatch.setattr(DiffusersEngine, "_encode_video", staticmethod(record))
    return seen


def _settings(weights: Path, pipeline: str, family: str = "wan", **extra: Any) -> dict[str, Any]:
    return {
        "family": family,
        "pipeline": pipeline,
        "weights": str(weights),
        "device": "cpu",
        "dtype": "float32",
        "steps": 2,
        "guidance_scale": 2.0,
        **extra,
    }


def _request(settings: dict[str, Any], **overrides: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "task_id": "task_gpu_path",
        "kind": "video",
        "prompt": "a dog on a beach",
        "width": 32,
        "height": 32,
        "seed": SEED,
        "duration": 5 / 8,
        "fps": 8,
        "num_frames": 5,
        "settings": settings,
    }
    fields.update(overrides)
    return GenerationRequest(**fields)


async def _generate(
    engine: DiffusersEngine, settings: dict[str, Any], workdir: Path, **overrides: Any
) -> Any:
    return await engine.generate(
        _request(settings, **overrides), workdir, lambda _: None, lambda: False
    )


def _workdir(root: Path, name: str) -> Path:
    path = root / name
    path.mkdir()
    return path


def _listing(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def _warm(engine: DiffusersEngine, settings: dict[str, Any], variant: str | None = None) -> Any:
    parsed = engine.parse(settings)
    return engine.cache.get(parsed, parsed.weights_dir(engine.models_dir), variant=variant).pipe


def _dtypes(pipe: Any) -> dict[str, torch.dtype]:
    return {
        # ModelMixin's and PreTrainedModel's dtype: that of the weights, past the few
        # layers a model keeps in float32.
        name: cast(torch.dtype, component.dtype)
        for name, component in pipe.components.items()
        if isinstance(component, torch.nn.Module)
    }


def _swap_call(pipe: Any, call: Callable[..., Any]) -> type:
    """Give ``pipe`` a subclass whose ``__call__`` is ``call``; returns the original class,
    through which ``call`` reaches the real one and which undoes the swap when assigned back
    to ``pipe.__class__``. The subclass keeps the name noise.py looks pipelines up by."""
    original = type(pipe)
    pipe.__class__ = type(original.__name__, (original,), {"__call__": call})
    return original


def _picture(width: int = 32, height: int = 32) -> Image.Image:
    return Image.new("RGB", (width, height), (200, 40, 40))


# -- image variants keep the warm components and their dtypes ---------------------------


@pytest.mark.parametrize(
    ("model", "family", "pipeline", "image_pipeline", "extra", "frames", "vae_dtype"),
    [
        # Wan keeps its VAE in float32 beside the bfloat16 transformer (the family default).
        ("wan-ti2v-5b", "wan", "WanPipeline", "WanImageToVideoPipeline", {}, 5, torch.float32),
        (
            "ltx-t2v",
            "ltx",
            "LTXPipeline",
            "LTXImageToVideoPipeline",
            {"call_args": {"decode_timestep": 0.03}},
            9,
            torch.bfloat16,
        ),
    ],
)
async def test_image_variant_shares_the_components_without_casting_them(
    engine: DiffusersEngine,
    pipeline_dir: Callable[[str], Path],
    tmp_path: Path,
    model: str,
    family: str,
    pipeline: str,
    image_pipeline: str,
    extra: dict[str, Any],
    frames: int,
    vae_dtype: torch.dtype,
) -> None:
    settings = _settings(
        pipeline_dir(model),
        pipeline,
        family,
        image_pipeline=image_pipeline,
        dtype="bfloat16",
        **extra,
    )
    expected = {"transformer": torch.bfloat16, "text_encoder": torch.bfloat16, "vae": vae_dtype}
    base = _warm(engine, settings)
    assert _dtypes(base) == expected

    shape = {"num_frames": frames, "duration": frames / 8}
    await _generate(engine, settings, _workdir(tmp_path, "i2v"), input_image=_picture(), **shape)
    variant = _warm(engine, settings, variant=image_pipeline)
    assert type(variant).__name__ == image_pipeline
    assert _dtypes(base) == expected
    assert _dtypes(variant) == expected
    for name, component in base.components.items():
        if component is not None:
            assert variant.components[name] is component, name

    # Text to video afterwards, on the same (uncast) components.
    result = await _generate(engine, settings, _workdir(tmp_path, "t2v"), **shape)
    assert result.outputs[0].num_frames == frames
    assert _dtypes(base) == expected
    assert engine.cache.loads == 1


@pytest.mark.parametrize(
    ("component_dtypes", "expected"),
    [
        (
            {},
            {"transformer": torch.bfloat16, "text_encoder": torch.bfloat16, "vae": torch.bfloat16},
        ),
        (
            {"text_encoder": "float32"},
            {"transformer": torch.bfloat16, "text_encoder": torch.float32, "vae": torch.bfloat16},
        ),
    ],
)
async def test_component_dtypes_replace_the_family_defaults(
    engine: DiffusersEngine,
    pipeline_dir: Callable[[str], Path],
    tmp_path: Path,
    component_dtypes: dict[str, str],
    expected: dict[str, torch.dtype],
) -> None:
    settings = _settings(
        pipeline_dir("wan-t2v"), "WanPipeline", dtype="bfloat16", component_dtypes=component_dtypes
    )
    assert _dtypes(_warm(engine, settings)) == expected
    result = await _generate(engine, settings, tmp_path)
    assert result.outputs[0].num_frames == 5


# -- a cancelled call leaves no stale cache state --------------------------------------


async def test_request_after_a_cancel_with_first_block_cache_at_another_shape(
    engine: DiffusersEngine, pipeline_dir: Callable[[str], Path], tmp_path: Path
) -> None:
    cache = {"threshold": 0.05}
    slow = _settings(pipeline_dir("wan-t2v"), "WanPipeline", steps=50, cache=cache)
    reported: list[float] = []
    with pytest.raises(TaskCancelledError):
        await engine.generate(
            _request(slow),
            _workdir(tmp_path, "cancelled"),
            reported.append,
            lambda: len(reported) >= 3,
        )
    assert len(reported) == 3

    # Same warm pipeline (steps are not a loading setting), another width, height and length:
    # the cache hook must not compare against the cancelled call's residuals.
    fast = {**slow, "steps": 2}
    result = await _generate(
        engine,
        fast,
        _workdir(tmp_path, "next"),
        width=48,
        height=16,
        num_frames=9,
        duration=9 / 8,
    )
    output = result.outputs[0]
    assert (output.width, output.height, output.num_frames) == (48, 16, 9)
    assert engine.cache.loads == 1


# -- attention backends -----------------------------------------------------------------


async def test_route_attention_backend_leaves_the_global_backend_alone(
    engine: DiffusersEngine, pipeline_dir: Callable[[str], Path], tmp_path: Path
) -> None:
    before = _AttentionBackendRegistry._active_backend
    settings = _settings(pipeline_dir("wan-t2v"), "WanPipeline", attention_backend="_native_math")
    result = await _generate(engine, settings, tmp_path)
    assert result.outputs[0].num_frames == 5
    assert _AttentionBackendRegistry._active_backend == before
    pipe = _warm(engine, settings)
    backends = {
        module.processor._attention_backend
        for module in pipe.transformer.modules()
        if hasattr(getattr(module, "processor", None), "_attention_backend")
    }
    assert backends == {AttentionBackendName._NATIVE_MATH}


async def test_mask_refusing_backend_is_refused_for_a_model_that_passes_masks(
    engine: DiffusersEngine, pipeline_dir: Callable[[str], Path], tmp_path: Path
) -> None:
    before = _AttentionBackendRegistry._active_backend
    settings = _settings(pipeline_dir("ltx-t2v"), "LTXPipeline", "ltx", attention_backend="flash")
    with pytest.raises(EngineError) as caught:
        await _generate(engine, settings, tmp_path, num_frames=9, duration=9 / 8)
    assert caught.value.code == "invalid_settings"
    assert "'flash' does not take attention masks" in caught.value.message
    assert "LTXVideoTransformer3DModel" in caught.value.message
    assert engine.cache.warm() == []
    assert _AttentionBackendRegistry._active_backend == before


def test_auto_order_on_hopper_prefers_cudnn_to_flash() -> None:
    order = accel.auto_order((9, 0), needs_masks=False)
    assert order.index("_native_cudnn") < order.index("flash")


@pytest.mark.parametrize("capability", [(9, 0), (8, 0), (10, 0), None])
def test_auto_order_with_masks_keeps_only_backends_that_take_them(
    capability: tuple[int, int] | None,
) -> None:
    order = accel.auto_order(capability, needs_masks=True)
    assert order
    assert not {"flash", "_flash_3", "_native_flash"} & set(order)
    assert set(order) <= accel.MASK_BACKENDS


# -- cuda is cuda:0 ---------------------------------------------------------------------


def _on(device: str) -> DiffusersSettings:
    return DiffusersSettings(
        family="wan", pipeline="WanPipeline", weights="/models/wan", device=device, memory_gb=1
    )


def test_cuda_and_cuda0_are_one_device_and_one_pipeline() -> None:
    bare, indexed = _on("cuda"), _on("cuda:0")
    assert bare.device == "cuda:0"
    assert bare.cache_key() == indexed.cache_key()
    loads: list[str] = []

    def loader(settings: DiffusersSettings, weights_dir: Path) -> LoadedPipeline:
        loads.append(settings.device)
        return LoadedPipeline(object(), settings, 1, frozenset())

    cache = PipelineCache(max_pipelines=1, loader=loader, device_memory=lambda _: None)
    first = cache.get(bare, Path("/models/wan"))
    assert cache.get(indexed, Path("/models/wan")) is first
    assert loads == ["cuda:0"]


async def test_cuda_route_waits_for_the_cuda0_slot(engine: DiffusersEngine, tmp_path: Path) -> None:
    slot = engine._slot("cuda:0")
    await slot.acquire()
    settings = _settings(tmp_path / "never-loaded", "WanPipeline", device="cuda")
    job = asyncio.create_task(
        engine.generate(_request(settings), tmp_path, lambda _: None, lambda: True)
    )
    await asyncio.sleep(0.1)
    assert not job.done()  # queued behind the cuda:0 job
    slot.release()
    with pytest.raises(TaskCancelledError):
        await job
    assert set(engine._slots) == {"cuda:0"}


# -- starting latents -------------------------------------------------------------------


class _Drawn(Exception):
    def __init__(self, latents: torch.Tensor) -> None:
        super().__init__("drawn")
        self.latents = latents


def _drawn_latents(pipe: Any, **call: Any) -> torch.Tensor:
    """The noise latents the pipeline's own prepare_latents returns for this call (the call
    stops right there)."""
    prepare = pipe.prepare_latents

    def stop_after(*args: Any, **kwargs: Any) -> Any:
        out = prepare(*args, **kwargs)
        raise _Drawn(out[0] if isinstance(out, tuple) else out)

    pipe.prepare_latents = stop_after
    try:
        pipe(**call)
    except _Drawn as drawn:
        return drawn.latents
    finally:
        del pipe.prepare_latents
    raise AssertionError("the pipeline did not draw its latents")


def _load(directory: Path, class_name: str, dtype: torch.dtype = torch.float32) -> Any:
    pipe = getattr(diffusers, class_name).from_pretrained(directory, torch_dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize(
    ("model", "pipeline", "width", "height", "image", "dtype"),
    [
        ("wan-t2v", "WanPipeline", 48, 32, False, torch.float32),
        ("wan-t2v", "WanPipeline", 48, 32, False, torch.bfloat16),
        ("wan-t2v-a14b", "WanPipeline", 48, 32, False, torch.float32),
        ("wan-ti2v-5b", "WanPipeline", 64, 32, False, torch.float32),
        ("wan-i2v", "WanImageToVideoPipeline", 48, 32, True, torch.float32),
        ("wan-ti2v-5b", "WanImageToVideoPipeline", 64, 32, True, torch.float32),
        ("ltx-t2v", "LTXPipeline", 64, 32, False, torch.float32),
        ("cogvideox-t2v", "CogVideoXPipeline", 48, 32, False, torch.float32),
        # CogVideoX draws its noise in the text encoder's dtype, and keeps given latents' dtype.
        ("cogvideox-t2v", "CogVideoXPipeline", 48, 32, False, torch.bfloat16),
    ],
)
def test_initial_latents_are_what_the_pipeline_draws_from_a_cpu_generator(
    pipeline_dir: Callable[[str], Path],
    model: str,
    pipeline: str,
    width: int,
    height: int,
    image: bool,
    dtype: torch.dtype,
) -> None:
    pipe = _load(pipeline_dir(model), pipeline, dtype)
    frames = 9
    call: dict[str, Any] = {
        "prompt": "a cat",
        "width": width,
        "height": height,
        "num_frames": frames,
        "num_inference_steps": 1,
        "output_type": "latent",
    }
    if image:
        call["image"] = _picture(width, height)
    own = _drawn_latents(pipe, generator=torch.Generator("cpu").manual_seed(SEED), **call)
    ours = initial_latents(pipe, width=width, height=height, num_frames=frames, batch=1, seed=SEED)
    assert ours is not None
    given = _drawn_latents(pipe, latents=ours, **call)
    assert own.dtype == given.dtype
    assert torch.equal(own, given)


@pytest.mark.parametrize(
    ("model", "pipeline"),
    [
        ("t2i-flux", "FluxPipeline"),
        ("t2i", "CogView3PlusPipeline"),
        ("ltx-i2v", "LTXImageToVideoPipeline"),
    ],
)
def test_initial_latents_of_an_unknown_layout_are_left_to_the_pipeline(
    pipeline_dir: Callable[[str], Path], model: str, pipeline: str
) -> None:
    pipe = _load(pipeline_dir(model), pipeline)
    assert initial_latents(pipe, width=32, height=32, num_frames=1, batch=1, seed=SEED) is None


def _direct_frames(pipe: Any, seed: int) -> np.ndarray:
    """What calling the pipeline with a CPU generator makes (the engine before CPU noise)."""
    output = pipe(
        prompt="a dog on a beach",
        width=32,
        height=32,
        num_frames=5,
        num_inference_steps=2,
        guidance_scale=2.0,
        generator=torch.Generator("cpu").manual_seed(seed),
        output_type="pt",
    )
    return to_uint8(output.frames[0])


async def test_seeded_video_is_the_cpu_generators_and_repeats(
    engine: DiffusersEngine,
    pipeline_dir: Callable[[str], Path],
    tmp_path: Path,
    frames_seen: dict[str, np.ndarray],
) -> None:
    settings = _settings(pipeline_dir("wan-t2v"), "WanPipeline")
    for task, seed in (("first", SEED), ("again", SEED), ("other", SEED + 1)):
        await _generate(engine, settings, _workdir(tmp_path, task), task_id=task, seed=seed)
    expected = _direct_frames(_warm(engine, settings), SEED)
    assert np.array_equal(frames_seen["first"], expected)
    assert np.array_equal(frames_seen["again"], expected)
    assert not np.array_equal(frames_seen["other"], expected)


async def test_seeded_video_does_not_depend_on_the_devices_generator(
    engine: DiffusersEngine,
    pipeline_dir: Callable[[str], Path],
    tmp_path: Path,
    frames_seen: dict[str, np.ndarray],
) -> None:
    settings = _settings(pipeline_dir("wan-t2v"), "WanPipeline")
    pipe = _warm(engine, settings)
    expected = _direct_frames(pipe, SEED)

    def another_device(self: Any, *args: Any, **kwargs: Any) -> Any:
        # A GPU's generator, seeded alike, draws another stream than the CPU's.
        kwargs["generator"] = torch.Generator("cpu").manual_seed(SEED + 1000)
        return original.__call__(self, *args, **kwargs)

    original = _swap_call(pipe, another_device)
    try:
        await _generate(engine, settings, tmp_path, task_id="device")
    finally:
        pipe.__class__ = original
    assert np.array_equal(frames_seen["device"], expected)


async def test_bfloat16_cogvideox_route_generates(
    engine: DiffusersEngine, pipeline_dir: Callable[[str], Path], tmp_path: Path
) -> None:
    # CogVideoXPipeline.prepare_latents moves given latents to the device but keeps their
    # dtype, so CPU-drawn float32 noise must reach a bfloat16 transformer as bfloat16.
    settings = _settings(
        pipeline_dir("cogvideox-t2v"), "CogVideoXPipeline", "cogvideox", dtype="bfloat16"
    )
    result = await _generate(engine, settings, tmp_path, num_frames=9, duration=9 / 8)
    assert result.outputs[0].num_frames == 9


# -- uint8 conversion -------------------------------------------------------------------

_PEAK_SCRIPT = """
import resource
import torch
from framegate.engines.diffusers.engine import to_uint8

frames = torch.empty(81, 3, 480, 832).uniform_(-0.1, 1.1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = to_uint8(frames)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert out.shape == (81, 480, 832, 3), out.shape
print((after - before) * 1024)  # ru_maxrss is in KiB on Linux
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB only on Linux")
@pytest.mark.slow  # a Python subprocess
def test_uint8_conversion_of_a_480p_video_needs_little_more_memory() -> None:
    input_bytes = 81 * 3 * 480 * 832 * 4  # 388 MB of float32 frames
    child = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert child.returncode == 0, child.stderr
    extra = int(child.stdout.split()[-1])
    # The uint8 result is a quarter of the input; the naive formula makes whole float copies.
    assert extra < 0.6 * input_bytes, (
        f"{extra / 1e6:.0f} MB over a {input_bytes / 1e6:.0f} MB input"
    )


def _naive_uint8(tensor: torch.Tensor) -> np.ndarray:
    scaled = tensor.float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return scaled.movedim(-3, -1).numpy()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("chunk_bytes", [3 * 6 * 10 * 4 * 2, 64 * 1024**2])
def test_uint8_conversion_matches_the_naive_formula(dtype: torch.dtype, chunk_bytes: int) -> None:
    generator = torch.Generator().manual_seed(0)
    video = (torch.rand(5, 3, 6, 10, generator=generator) * 1.6 - 0.3).to(dtype)
    video[0, 0, 0, :3] = torch.tensor([-2.0, 0.5, 3.0])
    expected = _naive_uint8(video)
    frames = to_uint8(video.clone(), chunk_bytes=chunk_bytes)
    assert frames.dtype == np.uint8 and frames.shape == (5, 6, 10, 3)
    assert np.array_equal(frames, expected)
    assert frames[0, 0, :3, 0].tolist() == [0, 128, 255]

    images = video[:2].clone()
    converted = to_uint8(images, chunk_bytes=chunk_bytes)
    assert converted.shape == (2, 6, 10, 3)
    assert np.array_equal(converted, expected[:2])


# -- encoding after the device is released ----------------------------------------------


async def test_encode_runs_after_the_device_slot_is_released(
    engine: DiffusersEngine,
    pipeline_dir: Callable[[str], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slot_held: dict[str, list[bool]] = {"infer": [], "encode": []}
    encode = DiffusersEngine._encode_video

    def watched_encode(frames: Any, job: GenerationJob, *rest: Any) -> Any:
        slot_held["encode"].append(engine._slots["cpu"].locked())
        return encode(frames, job, *rest)

    monkeypatch.setattr(DiffusersEngine, "_encode_video", staticmethod(watched_encode))
    settings = _settings(pipeline_dir("wan-t2v"), "WanPipeline")
    pipe = _warm(engine, settings)

    def watched_call(self: Any, *args: Any, **kwargs: Any) -> Any:
        slot_held["infer"].append(engine._slots["cpu"].locked())
        return original.__call__(self, *args, **kwargs)

    original = _swap_call(pipe, watched_call)
    try:
        result = await _generate(engine, settings, tmp_path)
    finally:
        pipe.__class__ = original
    assert slot_held == {"infer": [True], "encode": [False]}
    assert result.outputs[0].num_frames == 5


async def test_cancel_while_encoding_leaves_no_partial_video(
    engine: DiffusersEngine, pipeline_dir: Callable[[str], Path], tmp_path: Path
) -> None:
    settings = _settings(pipeline_dir("wan-t2v"), "WanPipeline")
    reported: list[float] = []

    def cancelled() -> bool:
        return bool(reported) and max(reported) > STEP_SHARE

    with pytest.raises(TaskCancelledError):
        await engine.generate(
            _request(settings, num_frames=17, duration=17 / 8),
            tmp_path,
            reported.append,
            cancelled,
        )
    assert STEP_SHARE < max(reported) < 1.0  # cancelled during the encode
    assert _listing(tmp_path) == []
    assert not engine._slots["cpu"].locked()


# -- one request at a time per pipeline -------------------------------------------------


async def test_two_jobs_on_one_device_take_turns_on_one_pipeline(
    pipeline_dir: Callable[[str], Path], tmp_path: Path, frames_seen: dict[str, np.ndarray]
) -> None:
    engine = DiffusersEngine(models_dir=tmp_path, max_pipelines=2, jobs_per_device=2)
    settings = _settings(pipeline_dir("wan-t2v"), "WanPipeline")
    pipe = _warm(engine, settings)
    guard = threading.Lock()
    inside = [0]
    most = [0]
    threads: set[str] = set()

    def probe(self: Any, *args: Any, **kwargs: Any) -> Any:
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            threads.add(threading.current_thread().name)
        try:
            time.sleep(0.2)  # room for the other job to come in, if it could
            return original.__call__(self, *args, **kwargs)
        finally:
            with guard:
                inside[0] -= 1

    original = _swap_call(pipe, probe)
    try:
        await asyncio.gather(
            *(
                _generate(engine, settings, _workdir(tmp_path, task), task_id=task)
                for task in ("a", "b")
            )
        )
        await _generate(engine, settings, _workdir(tmp_path, "alone"), task_id="alone")
    finally:
        pipe.__class__ = original
        engine.close()
    assert len(threads) == 2  # both jobs were on the device at once...
    assert most[0] == 1  # ...but took turns on the pipeline
    assert np.array_equal(frames_seen["a"], frames_seen["alone"])
    assert np.array_equal(frames_seen["b"], frames_seen["alone"])


# -- compile ----------------------------------------------------------------------------


def _compiled(pipe: Any) -> list[str]:
    return [
        type(module).__name__
        for denoiser in accel.denoisers(pipe)
        for module in denoiser.modules()
        if getattr(module, "_compiled_call_impl", None) is not None
    ]


async def test_compiled_route_with_cache_warms_up_at_load_and_serves(
    engine: DiffusersEngine,
    pipeline_dir: Callable[[str], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outcomes: list[str] = []
    warm_up = pipelines.warm_up

    def recorded(pipe: Any, settings: DiffusersSettings) -> str:
        outcomes.append(warm_up(pipe, settings))
        return outcomes[-1]

    monkeypatch.setattr(pipelines, "warm_up", recorded)
    settings = _settings(
        pipeline_dir("wan-t2v"),
        "WanPipeline",
        compile=True,
        cache={"threshold": 0.05},
        warmup=[{"width": 32, "height": 32, "num_frames": 5}],
    )
    graphs = counters["stats"]["unique_graphs"]
    pipe = await asyncio.to_thread(_warm, engine, settings)
    assert outcomes == ["warmup=1 shapes"]  # the warm-up ran at load, compiled, and passed
    assert _compiled(pipe) == ["WanTransformerBlock"] * 2
    loaded = counters["stats"]["unique_graphs"]
    assert loaded > graphs

    result = await _generate(engine, settings, tmp_path)
    assert result.outputs[0].num_frames == 5
    # A request at the warmed-up shape compiles nothing more.
    assert counters["stats"]["unique_graphs"] == loaded
    assert engine.cache.loads == 1


def test_failed_warm_up_serves_uncompiled(pipeline_dir: Callable[[str], Path]) -> None:
    settings = DiffusersSettings.model_validate(
        _settings(
            pipeline_dir("wan-t2v"),
            "WanPipeline",
            compile=True,
            warmup=[{"width": 32, "height": 32, "num_frames": 5}],
        )
    )
    pipe = _load(pipeline_dir("wan-t2v"), "WanPipeline")
    accel.compile_denoisers(pipe)  # lazy: nothing compiles until a call
    assert _compiled(pipe) == ["WanTransformerBlock"] * 2

    def broken(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("inductor could not compile this graph")

    _swap_call(pipe, broken)
    assert pipelines.warm_up(pipe, settings) == "compile=off (warm-up failed)"
    assert _compiled(pipe) == []


def test_warm_up_of_an_image_to_video_pipeline_gives_it_a_first_frame(
    pipeline_dir: Callable[[str], Path],
) -> None:
    settings = DiffusersSettings.model_validate(
        _settings(
            pipeline_dir("wan-i2v"),
            "WanImageToVideoPipeline",
            compile=True,
            warmup=[{"width": 16, "height": 16, "num_frames": 5}],
        )
    )
    pipe = _load(pipeline_dir("wan-i2v"), "WanImageToVideoPipeline")
    assert pipelines.warm_up(pipe, settings) == "warmup=1 shapes"


async def test_a_backend_that_cannot_run_here_is_a_settings_error_found_once(
    pipeline_dir: Callable[[str], Path], tmp_path: Path
) -> None:
    loads: list[str] = []

    def counting(settings: DiffusersSettings, weights_dir: Path) -> LoadedPipeline:
        loads.append(settings.pipeline)
        return pipelines.load_pipeline(settings, weights_dir)

    engine = DiffusersEngine(
        models_dir=tmp_path, cache=PipelineCache(max_pipelines=2, loader=counting)
    )
    # FlashAttention 2 needs the flash-attn package and a CUDA GPU; neither is here.
    settings = _settings(pipeline_dir("wan-t2v"), "WanPipeline", attention_backend="flash")
    try:
        for name in ("first", "second"):
            with pytest.raises(EngineError) as caught:
                await _generate(engine, settings, _workdir(tmp_path, name))
            assert caught.value.code == "invalid_settings"
            assert "'flash' cannot run here" in caught.value.message
    finally:
        engine.close()
    assert loads == ["WanPipeline"]  # the second request did not load the model again


async def test_a_size_the_wan_patching_cannot_make_is_refused_not_shrunk(
    engine: DiffusersEngine, pipeline_dir: Callable[[str], Path], tmp_path: Path
) -> None:
    # Wan 2.2 TI2V 5B makes multiples of 32 (VAE 16x, patch 2); WanPipeline would round
    # 48x48 down to 32x32 and hand back a smaller video than was asked for.
    settings = _settings(pipeline_dir("wan-ti2v-5b"), "WanPipeline")
    with pytest.raises(EngineError) as caught:
        await _generate(engine, settings, tmp_path, width=48, height=48)
    assert caught.value.code == "invalid_settings"
    assert "multiples of 32, not 48x48" in caught.value.message


async def test_shutdown_holds_the_device_until_the_thread_lets_go_through_two_cancels() -> None:
    stop = threading.Event()
    finished = threading.Event()

    def work() -> None:
        assert stop.wait(5)
        time.sleep(0.3)  # a step's worth of work after the stop request
        finished.set()

    task = asyncio.create_task(DiffusersEngine._in_thread(stop, None, work))
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.sleep(0.05)
    task.cancel()  # a second cancel while it waits for the thread
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished.is_set()


# -- torch off the event loop -----------------------------------------------------------

_PREPARE_SCRIPT = """
import asyncio, json, sys, threading
from pathlib import Path

from framegate.engines.diffusers.engine import DiffusersEngine

report = {"torch_at_import": "torch" in sys.modules}
from framegate.catalog.schemas import ModelRoute
from framegate.engines.registry import EngineRegistry

engine = DiffusersEngine(models_dir=Path(sys.argv[2]))
engine.check_route(ModelRoute.model_validate(json.loads(sys.argv[1])))
report["torch_after_check"] = "torch" in sys.modules
prepare = engine.prepare
threads = []

def watched():
    threads.append(threading.current_thread() is threading.main_thread())
    prepare()

engine.prepare = watched
asyncio.run(EngineRegistry([engine]).prepare())
report["torch_after_prepare"] = "torch" in sys.modules
report["devices"] = engine._devices
report["on_main_thread"] = threads
print(json.dumps(report))
"""


@pytest.mark.slow  # a Python subprocess
def test_torch_is_imported_by_prepare_on_a_worker_thread(tmp_path: Path) -> None:
    route = {
        "id": "tiny-wan",
        "kind": "video",
        "engine": "diffusers",
        "settings": _settings(tmp_path / "weights", "WanPipeline"),
        "capabilities": {"text_to_video": True, "size_multiple": 16, "frame_step": 4},
        "pricing": {"unit": "second", "credits": {"480p": 3}},
    }
    child = subprocess.run(
        [sys.executable, "-c", _PREPARE_SCRIPT, json.dumps(route), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout.splitlines()[-1])
    assert report == {
        "torch_at_import": False,
        "torch_after_check": False,
        "torch_after_prepare": True,
        "devices": {"cpu": True},
        "on_main_thread": [False],
    }
