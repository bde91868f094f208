"""One GPU check of framegate's diffusers engine with real-size models, offline, in minutes.

    python benchmarks/gpu_check.py                          # an H100: about 3-4 minutes
    python benchmarks/gpu_check.py --device cpu --tiny      # smoke test anywhere (~15 s)
    python benchmarks/gpu_check.py --only 6,7 --keep /tmp/fg-models --json check.json

Nothing is downloaded. The script builds random-weight pipelines in the real layouts, directly
on the device in bfloat16, saves each with save_pretrained into a temporary directory (with a
word-level tokenizer built here) and drives them through the engine the workers run
(framegate.engines.diffusers.engine.DiffusersEngine, one engine for the whole run, so
pipelines stay warm between cases as in a worker):

  wan2.1  Wan 2.1 T2V 1.3B: the real transformer (30 blocks, width 1536) and the real
          Wan 2.1 VAE; UniPC flow-matching scheduler, shift 3.0.
  ti2v    Wan 2.2 TI2V 5B: the real transformer (30 blocks, width 3072, 48 channels) and the
          real Wan 2.2 VAE (z_dim 48, 16x in space); loads as WanPipeline and, for requests
          with an image, WanImageToVideoPipeline over the same components.
  ltx     LTX-Video 2B: the real transformer (28 blocks, width 2048) and the LTX-Video 0.9.1
          VAE (timestep-conditioned decoder); LTXPipeline and LTXImageToVideoPipeline.

The text encoders are shrunk: UMT5 (Wan) and T5 (LTX) with their real width (d_model 4096,
64 heads, d_ff 10240, so the transformers' text_dim matches) but 1 layer instead of 24 and a
word vocabulary of 128 entries. --tiny builds tiny configurations of the same layouts. On a
GPU the weights are bfloat16, on the CPU float32; routes use the engine's defaults otherwise
(attention_backend auto, the family's component dtypes: Wan's VAE in float32).

Cases (each isolated: a failure is reported and the next case still runs):
  1 load          load from the directory + first request (Wan 2.1, 832x480, 33 frames,
                  8 steps, CFG 5)
  2 warm          a second request: no new load (engine.cache.loads unchanged) and faster
  3 progress      progress rises monotonically to 1.0
  4 cancel        cancelled() turns true once progress passes 30 %: TaskCancelledError within
                  a step or two (route with the first-block cache on, 20 steps)
  5 after-cancel  a request of another shape (480x832) on that cached route succeeds
  6 ti2v          Wan 2.2 TI2V image-to-video (1280x704, 33 frames), then text-to-video on the
                  same route: one load, component dtypes unchanged (transformer bfloat16, VAE
                  float32 for Wan)
  7 ltx           LTX-Video text- and image-to-video (704x480, 41 frames)
  8 oom           an oversized request (2560x1440, 121 frames) fails with an EngineError
                  coded gpu_out_of_memory (refused up front or after a real OOM), not a
                  crash, and a normal request on the same route succeeds right after. The
                  route uses the math attention backend, which materialises the attention
                  matrix, so the first attention runs out of memory within a second instead
                  of after minutes of flash attention. On the CPU, which has no device memory
                  to exhaust, the limit is simulated: the Wan transformer raises
                  torch.OutOfMemoryError above 10^6 latent values.

Per case: passed or failed, seconds (the engine's requests and the checks; the model builds
are timed apart), peak GPU memory (the largest torch.cuda.max_memory_allocated read after each
of the case's requests: the engine resets that counter at each request's start; "-" on the
CPU) and a note. Videos are decoded with PyAV when it is importable, to check the frame count
and size. A case still running after --case-timeout seconds (300) fails. Exit status 0 only
when every selected case passed.

Time on one H100 80 GB (an estimate, not yet measured): building and saving the three models
(about 20 GB of bfloat16 weights) 1 minute; 5 loads from the page cache 30 s; 8 denoising steps
at 832x480x33 about 3 s per request plus a few seconds of float32 VAE decode and H.264 encode;
in all about 3-4 minutes, well inside 8. --steps changes the steps (the cancel case uses at
least 20), --compile adds torch.compile with a warm-up shape to the Wan 2.1 route (a minute
more).

Needs torch, diffusers, transformers (with tokenizers), Pillow, pydantic and PyAV, plus ftfy
for Wan image-to-video (diffusers 0.42 calls it unguarded there) and accelerate (without it
from_pretrained first initialises every weight on the CPU); when any is missing the script
names them all before doing anything. framegate itself comes from this repository's src/
when it is not installed. On this 2-core CPU, --device cpu --tiny runs all eight cases in
about 5 s after 10 s of imports; the real-size models also pass cases 1-8 on it at tiny
geometry (bfloat16, 2 steps), which is how their layouts were checked without a GPU.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import itertools
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# No hub access on a GPU box: fail fast instead of waiting on timeouts.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# A bare checkout: framegate from this repository's src/.
if importlib.util.find_spec("framegate") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

try:
    import diffusers
    import torch
    import transformers
    from diffusers import (
        AutoencoderKLLTXVideo,
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
        UniPCMultistepScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )
    from PIL import Image
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.normalizers import Lowercase
    from tokenizers.pre_tokenizers import Whitespace
    from tokenizers.processors import TemplateProcessing
    from transformers import (
        PreTrainedTokenizerFast,
        T5Config,
        T5EncoderModel,
        UMT5Config,
        UMT5EncoderModel,
    )

    from framegate.engines.base import EngineError, GenerationRequest, TaskCancelledError
    from framegate.engines.diffusers.engine import DiffusersEngine
    from framegate.engines.diffusers.settings import DiffusersSettings
except ModuleNotFoundError as exc:
    # Name everything a bare GPU box lacks at once (module: wheel), not one failed import
    # per try: device time is short.
    wheels = {
        "torch": "torch",
        "diffusers": "diffusers",
        "transformers": "transformers",
        "tokenizers": "tokenizers",
        "safetensors": "safetensors",
        "PIL": "pillow",
        "pydantic": "pydantic",
        "av": "av",
    }
    missing = [wheel for name, wheel in wheels.items() if importlib.util.find_spec(name) is None]
    if exc.name and exc.name.partition(".")[0] not in wheels:  # a dependency of one of them
        missing.append(exc.name)
    sys.exit(f"gpu_check.py: not installed here: {', '.join(missing)}")

try:
    import av
except ImportError:  # the videos are then checked by the engine's own figures only
    av = None

GIB = 1024**3
PROMPT = "a red fox runs through the snow in the forest at night"
OOM_CODES = ("gpu_out_of_memory",)
# CPU only: the simulated device limit of case 8, in latent values per transformer call.
SIMULATED_LIMIT = 1_000_000

# --- models ---------------------------------------------------------------------------------

_SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")  # at T5's ids: pad 0, eos 1, unk 2
_WORDS = (*PROMPT.split(), "cat", "dog", "bird", "sky", "sea", "city", "walks", "day")
_VOCAB = {token: i for i, token in enumerate(dict.fromkeys((*_SPECIAL_TOKENS, *_WORDS)))}
VOCAB_SIZE = 128

# Wan2.1-T2V-1.3B and Wan2.2-TI2V-5B (transformer/config.json of the -Diffusers repos).
WAN_COMMON: dict[str, Any] = {
    "patch_size": (1, 2, 2),
    "freq_dim": 256,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
}
WAN21 = {**WAN_COMMON, "num_attention_heads": 12, "attention_head_dim": 128, "ffn_dim": 8960}
WAN21 |= {"in_channels": 16, "out_channels": 16, "text_dim": 4096, "num_layers": 30}
TI2V = {**WAN_COMMON, "num_attention_heads": 24, "attention_head_dim": 128, "ffn_dim": 14336}
TI2V |= {"in_channels": 48, "out_channels": 48, "text_dim": 4096, "num_layers": 30}
TINY_WAN = {**WAN_COMMON, "num_attention_heads": 2, "attention_head_dim": 12, "ffn_dim": 32}
TINY_WAN |= {"text_dim": 32, "num_layers": 2}
# The Wan 2.2 VAE (Wan-AI/Wan2.2-TI2V-5B-Diffusers vae/config.json; neutral latent statistics,
# which only matter for trained weights). The Wan 2.1 VAE is AutoencoderKLWan's default.
TI2V_VAE: dict[str, Any] = {
    "base_dim": 160,
    "decoder_base_dim": 256,
    "z_dim": 48,
    "in_channels": 12,
    "out_channels": 12,
    "patch_size": 2,
    "is_residual": True,
    "scale_factor_spatial": 16,
    "scale_factor_temporal": 4,
    "latents_mean": [0.0] * 48,
    "latents_std": [1.0] * 48,
}
TINY_WAN_VAE: dict[str, Any] = {"base_dim": 3, "dim_mult": [1, 1, 1, 1], "num_res_blocks": 1}
TINY_TI2V_VAE = {**TI2V_VAE, **TINY_WAN_VAE, "decoder_base_dim": None}
# LTX-Video 0.9.1's VAE (diffusers' scripts/convert_ltx_to_diffusers.py); the transformer is
# LTXVideoTransformer3DModel's default, the 2B model.
LTX_VAE: dict[str, Any] = {
    "decoder_block_out_channels": (256, 512, 1024),
    "decoder_layers_per_block": (5, 6, 7, 8),
    "decoder_spatio_temporal_scaling": (True, True, True),
    "decoder_inject_noise": (True, True, True, False),
    "upsample_residual": (True, True, True),
    "upsample_factor": (2, 2, 2),
    "timestep_conditioning": True,
}
TINY_LTX: dict[str, Any] = {
    "in_channels": 8,
    "out_channels": 8,
    "num_attention_heads": 4,
    "attention_head_dim": 8,
    "cross_attention_dim": 32,
    "num_layers": 1,
    "caption_channels": 32,
}
# Compresses 4x in space and time (the real one: 32x and 8x).
TINY_LTX_VAE: dict[str, Any] = {
    "latent_channels": 8,
    "block_out_channels": (8, 8, 8, 8),
    "decoder_block_out_channels": (8, 8, 8, 8),
    "layers_per_block": (1, 1, 1, 1, 1),
    "decoder_layers_per_block": (1, 1, 1, 1, 1),
    "spatio_temporal_scaling": (True, True, False, False),
    "decoder_spatio_temporal_scaling": (True, True, False, False),
    "decoder_inject_noise": (False, False, False, False, False),
    "upsample_residual": (False, False, False, False),
    "upsample_factor": (1, 1, 1, 1),
    "timestep_conditioning": True,
    "patch_size": 1,
}


def tokenizer(max_length: int) -> PreTrainedTokenizerFast:
    """A lowercase word-level tokenizer ending sequences with ``</s>`` as T5's does."""
    model = Tokenizer(WordLevel(vocab=dict(_VOCAB), unk_token="<unk>"))
    model.normalizer = Lowercase()
    model.pre_tokenizer = Whitespace()
    model.post_processor = TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", _VOCAB["</s>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=model,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=max_length,
        padding_side="right",
    )


def text_encoder(config_class: type[T5Config], tiny: bool) -> Any:
    """UMT5-XXL / T5-XXL at their real width with one layer (tiny: 32 wide, two layers)."""
    size = (
        {"d_model": 32, "d_kv": 8, "d_ff": 37, "num_layers": 2, "num_heads": 4}
        if tiny
        else {"d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 1, "num_heads": 64}
    )
    config = config_class(
        vocab_size=VOCAB_SIZE,
        feed_forward_proj="gated-gelu",
        pad_token_id=_VOCAB["<pad>"],
        eos_token_id=_VOCAB["</s>"],
        **size,
    )
    model_class = UMT5EncoderModel if config_class is UMT5Config else T5EncoderModel
    return model_class(config).eval()


def build_wan21(tiny: bool) -> Any:
    return WanPipeline(
        tokenizer=tokenizer(512),
        text_encoder=text_encoder(UMT5Config, tiny),
        vae=AutoencoderKLWan(**(TINY_WAN_VAE if tiny else {})),
        transformer=WanTransformer3DModel(**(TINY_WAN if tiny else WAN21)),
        scheduler=UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
        ),
    )


def build_ti2v(tiny: bool) -> Any:
    channels = {"in_channels": 48, "out_channels": 48}
    return WanPipeline(
        tokenizer=tokenizer(512),
        text_encoder=text_encoder(UMT5Config, tiny),
        vae=AutoencoderKLWan(**(TINY_TI2V_VAE if tiny else TI2V_VAE)),
        transformer=WanTransformer3DModel(**({**TINY_WAN, **channels} if tiny else TI2V)),
        scheduler=UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0
        ),
        expand_timesteps=True,
    )


def build_ltx(tiny: bool) -> Any:
    vae = {**LTX_VAE, **TINY_LTX_VAE} if tiny else LTX_VAE
    return LTXPipeline(
        # LTX-Video's scheduler config (resolution-dependent shift).
        scheduler=FlowMatchEulerDiscreteScheduler(
            use_dynamic_shifting=True,
            base_shift=0.95,
            max_shift=2.05,
            base_image_seq_len=1024,
            max_image_seq_len=4096,
            shift_terminal=0.1,
        ),
        vae=AutoencoderKLLTXVideo(**vae),
        text_encoder=text_encoder(T5Config, tiny),
        tokenizer=tokenizer(128),
        transformer=LTXVideoTransformer3DModel(**(TINY_LTX if tiny else {})),
    )


MODELS: dict[str, tuple[str, Callable[[bool], Any]]] = {
    "wan2.1": ("Wan 2.1 T2V 1.3B", build_wan21),
    "ti2v": ("Wan 2.2 TI2V 5B", build_ti2v),
    "ltx": ("LTX-Video 2B (0.9.1 VAE)", build_ltx),
}


@contextmanager
def building_on(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """Modules created inside get their weights on ``device`` in ``dtype`` straight away."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


# --- the run --------------------------------------------------------------------------------


class CheckFailed(Exception):
    """A case's check did not hold; the message is the table's note."""


@dataclass
class CaseResult:
    case: str
    passed: bool
    seconds: float
    peak_gib: float | None
    note: str
    traceback: str | None = None


@dataclass
class Run:
    """What the cases share: the engine, the saved models, the geometry and figures so far."""

    args: argparse.Namespace
    engine: DiffusersEngine
    root: Path
    models_root: Path
    device: torch.device
    dtype: torch.dtype
    models: dict[str, Path] = field(default_factory=dict)
    builds: dict[str, dict[str, Any]] = field(default_factory=dict)
    first_request_seconds: float | None = None
    case_peak: int = 0
    requests: int = 0

    @property
    def tiny(self) -> bool:
        return bool(self.args.tiny)

    @property
    def steps(self) -> int:
        return int(self.args.steps or (2 if self.tiny else 8))

    def model(self, name: str) -> Path:
        """The saved pipeline directory of ``name``, built on first use."""
        if name not in self.models:
            self.models[name] = self._build(name)
        return self.models[name]

    def _build(self, name: str) -> Path:
        title, build = MODELS[name]
        directory = self.models_root / f"{name}-{'tiny' if self.tiny else 'full'}"
        if (directory / "model_index.json").is_file():
            print(f"  {title}: reusing {directory}", flush=True)
            self.builds[name] = {"directory": str(directory), "reused": True}
            return directory
        start = time.perf_counter()
        torch.manual_seed(0)
        with building_on(self.device, self.dtype):
            pipe = build(self.tiny)
        synchronize(self.device)
        built = time.perf_counter() - start
        parameters = {
            component: sum(p.numel() for p in module.parameters())
            for component, module in pipe.components.items()
            if isinstance(module, torch.nn.Module)
        }
        pipe.save_pretrained(directory)
        del pipe
        release(self.device)
        saved = time.perf_counter() - start - built
        sizes = ", ".join(f"{k} {count(v)}" for k, v in parameters.items())
        print(f"  {title}: built in {built:.1f} s, saved in {saved:.1f} s ({sizes})", flush=True)
        self.builds[name] = {
            "directory": str(directory),
            "build_seconds": built,
            "save_seconds": saved,
            "parameters": parameters,
        }
        return directory

    def route(self, model: str, family: str, pipeline: str, **settings: Any) -> dict[str, Any]:
        """Route settings as a catalog would hold them; fields this engine version does not
        know (the newer ones) are left out."""
        values = {
            "family": family,
            "pipeline": pipeline,
            "weights": str(self.model(model)),
            "steps": self.steps,
            "guidance_scale": 5.0,
            "dtype": "bfloat16" if self.dtype == torch.bfloat16 else "float32",
            "device": self.args.device,
            "attention_backend": "auto",
            **settings,
        }
        return {k: v for k, v in values.items() if k in DiffusersSettings.model_fields}

    async def generate(
        self,
        settings: dict[str, Any],
        size: tuple[int, int],
        frames: int,
        *,
        fps: int = 16,
        image: Image.Image | None = None,
        progress: Callable[[float], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> tuple[Any, float]:
        """One request through the engine; returns its result and seconds."""
        self.requests += 1
        workdir = self.root / "outputs" / f"request-{self.requests}"
        workdir.mkdir(parents=True, exist_ok=True)
        request = GenerationRequest(
            task_id=f"gpu-check-{self.requests}",
            kind="video",
            prompt=PROMPT,
            width=size[0],
            height=size[1],
            seed=self.requests,
            duration=frames / fps,
            fps=fps,
            num_frames=frames,
            input_image=image,
            settings=settings,
        )
        start = time.perf_counter()
        try:
            result = await self.engine.generate(
                request, workdir, progress or (lambda _: None), cancelled or (lambda: False)
            )
        finally:
            if self.device.type == "cuda":
                self.case_peak = max(self.case_peak, torch.cuda.max_memory_allocated(self.device))
        return result, time.perf_counter() - start

    def size(self, full: tuple[int, int], tiny: tuple[int, int]) -> tuple[int, int]:
        return tiny if self.tiny else full

    def frames(self, full: int) -> int:
        return 9 if self.tiny else full


def count(parameters: int) -> str:
    return f"{parameters / 1e6:,.0f}M" if parameters >= 1e6 else f"{parameters / 1e3:,.0f}k"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def check_video(result: Any, size: tuple[int, int], frames: int) -> str:
    """The output is an MP4 of the asked size and frame count (decoded when PyAV is here)."""
    output = result.outputs[0]
    if not output.path.is_file() or output.path.stat().st_size == 0:
        raise CheckFailed(f"no video at {output.path}")
    described = (output.width, output.height, output.num_frames)
    if described != (*size, frames):
        raise CheckFailed(f"output is {described}, asked {(*size, frames)}")
    if av is None:
        return f"{frames}f {size[0]}x{size[1]}"
    with av.open(str(output.path)) as container:
        decoded = [(f.width, f.height) for f in container.decode(video=0)]
    if len(decoded) != frames or set(decoded) != {size}:
        raise CheckFailed(f"decoded {len(decoded)} frames of {set(decoded)}, asked {frames}")
    return f"{frames}f {size[0]}x{size[1]} decoded"


def input_picture(size: tuple[int, int]) -> Image.Image:
    """A smooth RGB picture for image-to-video (any content does with random weights)."""
    gradient = Image.linear_gradient("L").resize(size)
    return Image.merge(
        "RGB", (gradient, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT), gradient.rotate(180))
    )


def component_dtypes(
    engine: DiffusersEngine, settings: dict[str, Any]
) -> dict[str, set[str]] | None:
    """Dtype of each component of the warm pipeline and the variants built over it (None
    where this engine's cache has no ``get`` to look)."""
    get = getattr(engine.cache, "get", None)
    if get is None:
        return None
    parsed = DiffusersSettings.model_validate(settings)
    loaded = get(parsed, parsed.weights_dir(engine.models_dir))
    dtypes: dict[str, set[str]] = {}
    for pipe in [loaded.pipe, *(v.pipe for v in getattr(loaded, "variants", {}).values())]:
        for name, module in pipe.components.items():
            if isinstance(module, torch.nn.Module):
                dtypes.setdefault(name, set()).add(str(module.dtype).removeprefix("torch."))
    return dtypes


@contextmanager
def simulated_device_limit(device: torch.device) -> Iterator[None]:
    """On the CPU, the Wan transformer raises torch.OutOfMemoryError, as a GPU would, for
    inputs above SIMULATED_LIMIT latent values; on a GPU nothing changes."""
    if device.type == "cuda":
        yield
        return
    original = WanTransformer3DModel.forward

    def forward(self: Any, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if hidden_states.numel() > SIMULATED_LIMIT:
            raise torch.OutOfMemoryError(
                f"simulated: {hidden_states.numel():,} latent values over {SIMULATED_LIMIT:,}"
            )
        return original(self, hidden_states, *args, **kwargs)

    WanTransformer3DModel.forward = forward  # type: ignore[method-assign]
    try:
        yield
    finally:
        WanTransformer3DModel.forward = original  # type: ignore[method-assign]


# --- cases ----------------------------------------------------------------------------------


def wan_route(run: Run, **settings: Any) -> dict[str, Any]:
    return run.route("wan2.1", "wan", "WanPipeline", **settings)


def main_wan_route(run: Run) -> dict[str, Any]:
    """Cases 1-3's route: with --compile, compiled and warmed up at their geometry."""
    if not run.args.compile:
        return wan_route(run)
    size, frames = run.size((832, 480), (32, 32)), run.frames(33)
    shape = {"width": size[0], "height": size[1], "num_frames": frames}
    return wan_route(run, compile=True, warmup=[shape])


def cached_wan_route(run: Run, **settings: Any) -> dict[str, Any]:
    return wan_route(run, cache={"threshold": 0.05}, **settings)


async def case_load(run: Run) -> str:
    size, frames = run.size((832, 480), (32, 32)), run.frames(33)
    loads = run.engine.cache.loads
    result, seconds = await run.generate(main_wan_route(run), size, frames)
    run.first_request_seconds = seconds
    note = check_video(result, size, frames)
    if run.engine.cache.loads - loads != 1:
        raise CheckFailed(f"{run.engine.cache.loads - loads} loads, expected 1")
    return f"load + request {seconds:.1f} s; {note}"


async def case_warm(run: Run) -> str:
    size, frames = run.size((832, 480), (32, 32)), run.frames(33)
    route = main_wan_route(run)
    primed = ""
    if run.first_request_seconds is None:  # case 1 did not run: load it here
        _, run.first_request_seconds = await run.generate(route, size, frames)
        primed = " (loaded here first)"
    loads = run.engine.cache.loads
    result, seconds = await run.generate(route, size, frames)
    note = check_video(result, size, frames)
    if run.engine.cache.loads != loads:
        raise CheckFailed(f"the warm request loaded again ({run.engine.cache.loads - loads})")
    compared = f"{seconds:.2f} s vs {run.first_request_seconds:.2f} s with the load{primed}"
    if run.tiny:
        # Tiny models load in a tenth of a second, less than the noise of a busy CPU.
        return f"{compared} (not compared: tiny models); no new load; {note}"
    if seconds >= run.first_request_seconds:
        raise CheckFailed(f"not faster: {compared}")
    return f"{compared}; no new load; {note}"


async def case_progress(run: Run) -> str:
    size, frames = run.size((832, 480), (32, 32)), run.frames(33)
    values: list[float] = []
    result, _ = await run.generate(main_wan_route(run), size, frames, progress=values.append)
    check_video(result, size, frames)
    if not values:
        raise CheckFailed("no progress reported")
    falls = [(a, b) for a, b in itertools.pairwise(values) if b < a]
    if falls or not all(0.0 <= v <= 1.0 for v in values) or values[-1] != 1.0:
        raise CheckFailed(f"progress {[round(v, 3) for v in values]}")
    if len(set(values)) < run.steps:
        raise CheckFailed(f"{len(set(values))} distinct values for {run.steps} steps")
    return f"{len(values)} updates, {len(set(values))} distinct, monotonic to 1.0"


class CancelAfter:
    """cancelled() turns true once progress passes ``threshold``; counts what came after."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.values: list[float] = []
        self.flipped_at: int | None = None

    def progress(self, value: float) -> None:
        self.values.append(value)

    def cancelled(self) -> bool:
        if self.flipped_at is None and self.values and self.values[-1] > self.threshold:
            self.flipped_at = len(self.values)
        return self.flipped_at is not None


async def case_cancel(run: Run) -> str:
    size, frames = run.size((832, 480), (32, 32)), run.frames(33)
    steps = max(20, run.steps)
    watch = CancelAfter(0.3)
    start = time.perf_counter()
    try:
        await run.generate(
            cached_wan_route(run, steps=steps),
            size,
            frames,
            progress=watch.progress,
            cancelled=watch.cancelled,
        )
    except TaskCancelledError:
        pass
    else:
        raise CheckFailed(f"the request ran to the end (progress {watch.values[-3:]})")
    seconds = time.perf_counter() - start
    if watch.flipped_at is None:
        raise CheckFailed("cancelled before progress passed 30 %")
    after = len(watch.values) - watch.flipped_at
    if after > 2:
        raise CheckFailed(f"{after} progress updates after the cancel")
    at = watch.values[watch.flipped_at - 1]
    return f"cancelled at {at:.0%} of {steps} steps, {after} update(s) later, {seconds:.1f} s"


async def case_after_cancel(run: Run) -> str:
    size, frames = run.size((480, 832), (48, 32)), run.frames(33)
    loads = run.engine.cache.loads
    result, seconds = await run.generate(cached_wan_route(run), size, frames)
    note = check_video(result, size, frames)
    return f"{seconds:.1f} s, {run.engine.cache.loads - loads} load(s), cache on; {note}"


async def case_ti2v(run: Run) -> str:
    size, frames = run.size((1280, 704), (64, 32)), run.frames(33)
    route = run.route(
        "ti2v",
        "wan",
        "WanPipeline",
        image_pipeline="WanImageToVideoPipeline",
        flow_shift=5.0,
    )
    loads = run.engine.cache.loads
    result, i2v = await run.generate(route, size, frames, fps=24, image=input_picture(size))
    note = check_video(result, size, frames)
    before = component_dtypes(run.engine, route)
    result, t2v = await run.generate(route, size, frames, fps=24)
    check_video(result, size, frames)
    after = component_dtypes(run.engine, route)
    if run.engine.cache.loads - loads != 1:
        raise CheckFailed(f"{run.engine.cache.loads - loads} loads for one route, expected 1")
    figures = f"i2v {i2v:.1f} s, t2v {t2v:.1f} s, 1 load; {note}"
    if before is None or after is None:
        return f"{figures}; dtype check skipped (engine.cache has no get)"
    if before != after:
        raise CheckFailed(f"component dtypes changed: {before} -> {after}")
    expected = {"transformer": route["dtype"], "vae": route["dtype"]}
    if "component_dtypes" in DiffusersSettings.model_fields:  # Wan keeps its VAE in float32
        expected["vae"] = "float32"
    wrong = {k: after.get(k) for k, v in expected.items() if after.get(k) != {v}}
    if wrong:
        raise CheckFailed(f"dtypes {wrong}, expected {expected}")
    return f"{figures}; transformer {expected['transformer']}, vae {expected['vae']}"


async def case_ltx(run: Run) -> str:
    size, frames = run.size((704, 480), (64, 32)), run.frames(41)
    route = run.route(
        "ltx",
        "ltx",
        "LTXPipeline",
        image_pipeline="LTXImageToVideoPipeline",
        guidance_scale=3.0,
        call_args={"decode_timestep": 0.03, "decode_noise_scale": 0.025},
    )
    result, t2v = await run.generate(route, size, frames, fps=24)
    note = check_video(result, size, frames)
    result, i2v = await run.generate(route, size, frames, fps=24, image=input_picture(size))
    check_video(result, size, frames)
    return f"t2v {t2v:.1f} s, i2v {i2v:.1f} s; {note}"


async def case_oom(run: Run) -> str:
    route = wan_route(run, attention_backend="_native_math")
    start = time.perf_counter()
    code = None
    with simulated_device_limit(run.device):
        try:
            await run.generate({**route, "steps": 2}, (2560, 1440), 121)
        except EngineError as exc:
            code = exc.code
    refused = time.perf_counter() - start
    if code is None:
        raise CheckFailed("the oversized request (2560x1440, 121 frames) succeeded")
    if code not in OOM_CODES:
        raise CheckFailed(f"EngineError {code!r}, expected one of {', '.join(OOM_CODES)}")
    size, frames = run.size((832, 480), (32, 32)), run.frames(17)
    result, seconds = await run.generate(route, size, frames)
    note = check_video(result, size, frames)
    simulated = " (simulated limit)" if run.device.type != "cuda" else ""
    return f"oversized: {code}{simulated} in {refused:.1f} s; next {seconds:.1f} s, {note}"


@dataclass(frozen=True)
class Case:
    number: int
    name: str
    models: tuple[str, ...]
    run: Callable[[Run], Awaitable[str]]

    @property
    def label(self) -> str:
        return f"{self.number} {self.name}"


CASES = (
    Case(1, "load", ("wan2.1",), case_load),
    Case(2, "warm", ("wan2.1",), case_warm),
    Case(3, "progress", ("wan2.1",), case_progress),
    Case(4, "cancel", ("wan2.1",), case_cancel),
    Case(5, "after-cancel", ("wan2.1",), case_after_cancel),
    Case(6, "ti2v", ("ti2v",), case_ti2v),
    Case(7, "ltx", ("ltx",), case_ltx),
    Case(8, "oom", ("wan2.1",), case_oom),
)


async def run_case(run: Run, case: Case) -> CaseResult:
    """One case, isolated: whatever it raises becomes its failed row."""
    release(run.device)
    print(f"\n[{case.label}]", flush=True)
    try:
        for model in case.models:
            run.model(model)
    except Exception as exc:
        return failed_case(case, 0.0, None, f"building {case.models}: {exc!r}", exc)
    if run.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(run.device)
    run.case_peak = 0
    start = time.perf_counter()
    try:
        async with asyncio.timeout(run.args.case_timeout):
            note = await case.run(run)
        passed = True
    except CheckFailed as exc:
        note, passed = str(exc), False
    except TimeoutError:
        note, passed = f"timed out after {run.args.case_timeout:g} s", False
    except Exception as exc:
        peak = run.case_peak / GIB if run.device.type == "cuda" else None
        return failed_case(case, time.perf_counter() - start, peak, repr(exc), exc)
    seconds = time.perf_counter() - start
    peak = run.case_peak / GIB if run.device.type == "cuda" else None
    print(f"  {'passed' if passed else 'FAILED'}: {note}", flush=True)
    return CaseResult(case.label, passed, seconds, peak, note)


def failed_case(
    case: Case, seconds: float, peak: float | None, note: str, exc: BaseException
) -> CaseResult:
    trace = "".join(traceback.format_exception(exc, limit=-12))
    print(f"  FAILED: {note}\n{trace}", flush=True)
    return CaseResult(case.label, False, seconds, peak, note[:300], trace)


# --- main -----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--tiny", action="store_true", help="tiny models of the same layouts")
    parser.add_argument("--steps", type=int, help="denoising steps (default 8; tiny: 2)")
    parser.add_argument("--only", help="comma-separated cases, by number or name (e.g. 1,2,ltx)")
    parser.add_argument("--keep", type=Path, help="save the models (and videos) here, keep them")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the Wan 2.1 route (cases 1-3)"
    )
    parser.add_argument(
        "--case-timeout", type=float, default=300.0, help="seconds before a case is failed"
    )
    return parser.parse_args()


def selected_cases(only: str | None) -> list[Case]:
    if not only:
        return list(CASES)
    wanted = {item.strip() for item in only.split(",") if item.strip()}
    chosen = [c for c in CASES if str(c.number) in wanted or c.name in wanted]
    unknown = wanted - {str(c.number) for c in chosen} - {c.name for c in chosen}
    if unknown:
        sys.exit(
            f"gpu_check.py: unknown case(s) {sorted(unknown)}; cases: "
            + ", ".join(c.label for c in CASES)
        )
    return chosen


def machine(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "av": getattr(av, "__version__", None),
        "ftfy": importlib.util.find_spec("ftfy") is not None,
        "accelerate": importlib.util.find_spec("accelerate") is not None,
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info["device"] = f"{properties.name}, {properties.total_memory / GIB:.0f} GiB"
    else:
        info["device"] = f"CPU ({os.cpu_count()} cores)"
    return info


def print_table(results: list[CaseResult]) -> None:
    rows = [
        (
            r.case,
            "passed" if r.passed else "FAILED",
            f"{r.seconds:.1f}",
            "-" if r.peak_gib is None else f"{r.peak_gib:.1f}",
            r.note,
        )
        for r in results
    ]
    header = ("case", "result", "seconds", "peak GiB", "note")
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    print()
    for row in (header, tuple("-" * w for w in widths), *rows):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


async def check(
    args: argparse.Namespace, root: Path, models_root: Path
) -> tuple[list[CaseResult], dict[str, Any]]:
    """Every selected case through one engine; returns the results and the model builds."""
    device = torch.device(args.device)
    engine = DiffusersEngine(
        models_dir=models_root, max_pipelines=2, memory_budget_bytes=None, jobs_per_device=1
    )
    run = Run(
        args=args,
        engine=engine,
        root=root,
        models_root=models_root,
        device=device,
        dtype=torch.bfloat16 if device.type == "cuda" else torch.float32,
    )
    try:
        results = [await run_case(run, case) for case in selected_cases(args.only)]
    finally:
        engine.close()
    return results, run.builds


def main() -> int:
    args = parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check.py: no CUDA GPU is visible; for a smoke test use --device cpu --tiny")
    if device.type not in ("cuda", "cpu"):
        sys.exit(f"gpu_check.py: unsupported device {args.device!r} (cuda, cuda:N or cpu)")
    selected_cases(args.only)  # refuse unknown cases before building anything
    info = machine(device)
    print(", ".join(f"{k} {v}" for k, v in info.items()))
    size = "tiny" if args.tiny else "real-size"
    print(
        f"models: {size} random weights; text encoders shrunk (1 layer, 128 words, width "
        f"{32 if args.tiny else 4096})"
    )
    for module, why in (
        ("ftfy", "Wan image-to-video (case 6) fails"),
        ("accelerate", "loading initialises every weight on the CPU first"),
    ):
        if not info[module]:
            print(f"warning: {module} is not installed: {why}")
    # No progress bars from save_pretrained and from_pretrained in the output.
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    root = args.keep or Path(tempfile.mkdtemp(prefix="framegate-gpu-check-"))
    root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        results, builds = asyncio.run(check(args, root, root / "models"))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    total = time.perf_counter() - start
    print_table(results)
    passed = sum(r.passed for r in results)
    print(f"\n{passed} of {len(results)} cases passed in {total:.0f} s on {info['device']}")
    if args.json:
        report = {
            "machine": info,
            "tiny": args.tiny,
            "steps": args.steps,
            "seconds": total,
            "models": builds,
            "cases": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
