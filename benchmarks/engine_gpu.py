"""Time Wan2.1-T2V-1.3B text-to-video on one GPU: stock diffusers against the engine's settings.

    python benchmarks/engine_gpu.py [--runs 2] [--compile-mode max-autotune] [--json out.json]
    python benchmarks/engine_gpu.py --tiny --device cpu      # smoke test, no GPU needed

What is measured: a WanPipeline built from a real-size Wan2.1-T2V-1.3B transformer
(WanTransformer3DModel, 30 blocks, width 1536, 12 heads) and a real-size Wan 2.1 VAE
(AutoencoderKLWan defaults) with random weights created on the GPU (nothing is downloaded
or loaded; the speed does not depend on the values), the UniPC flow-matching scheduler that
Wan 2.1 ships with (flow_shift 3.0), and random T5-shaped text embeddings (1, 512, 4096) passed
as prompt_embeds / negative_prompt_embeds, so no text encoder runs. One clip is 832x480,
81 frames, 50 steps, CFG 5.0: 100 transformer forwards over 32,760 tokens each, then one
VAE decode. Parameters are cast the way from_pretrained(torch_dtype=bfloat16) casts them
(the modules Wan keeps in float32 stay in float32).

Configurations, in this order on the same pipeline:
  stock      diffusers defaults: bfloat16 on cuda, default attention (PyTorch SDPA, "native"),
             no compilation.
  framegate  the same math with the engine's accelerations, applied by the very function the
             engine calls (framegate.engines.diffusers.accel.apply_accelerations) with
             attention_backend="auto" (the fastest usable backend; which one it picked is
             printed) and compile=True (regional torch.compile of the repeated blocks).
Each configuration gets one warm-up clip first (--warmup-steps steps plus the VAE decode; for
framegate that is where compilation happens, so its time is reported apart), then --runs timed
clips. Per configuration the script prints seconds per clip (median), the denoising loop's
seconds and seconds per step (wall clock from the call to the start of the VAE decode), the
time inside transformer forwards (CUDA events around each call), the VAE decode seconds,
the peak allocated GPU memory over the timed clips, the achieved TFLOP/s (transformer FLOPs
per clip over the denoising seconds) with its share of the GPU's dense bfloat16 peak, and the
speedup over stock. A markdown table for docs/performance.md closes the output.

Running it: the machine needs torch, diffusers and transformers (WanPipeline's module imports
transformers), nothing else: of framegate the script imports only
framegate.engines.diffusers.accel, which needs no PyAV, pydantic or Pillow of its own, and it
puts <repo>/src on sys.path itself when framegate is not installed, so
`python benchmarks/engine_gpu.py` runs from a bare checkout. At full size one H100 takes
several minutes in all (two configurations, each a warm-up and --runs clips of about a minute
or more, plus compilation); --runs 1 shortens it. --compile-mode, --attention-backend,
--no-compile and --cache-threshold vary the framegate configuration, --configs runs one.

Each configuration is measured and reported on its own: when one fails (a compile error, an
out-of-memory error), its error and the end of its traceback are printed, the figures of the
others are still printed (and written with --json), and the script exits with status 1 at
the end.

Goals (full size, 50 steps, on an H100/H200): framegate at least 1.6x faster than stock per
clip, and at most 60 s per clip. They are reported as met / not met; nothing is asserted.

Batching the two CFG branches into one transformer call (batch 2) is not pursued:
WanPipeline calls the conditional and unconditional branches one after the other inside its
own loop, so batching them would mean copying the pipeline's loop, and at 32,760 tokens per
sample a single branch already saturates the GPU's matrix units, so there is little to gain.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import statistics
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import diffusers
import torch
from diffusers import (
    AutoencoderKLWan,
    UniPCMultistepScheduler,
    WanPipeline,
    WanTransformer3DModel,
)

# A bare checkout: framegate from this repository's src/ (only accel is imported, which needs
# nothing beyond torch and diffusers).
if importlib.util.find_spec("framegate") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from framegate.engines.diffusers.accel import apply_accelerations, usable_backends

# Wan2.1-T2V-1.3B (Wan-AI/Wan2.1-T2V-1.3B-Diffusers, transformer/config.json).
WAN_1_3B: dict[str, Any] = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 12,
    "attention_head_dim": 128,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 4096,
    "freq_dim": 256,
    "ffn_dim": 8960,
    "num_layers": 30,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "rope_max_seq_len": 1024,
}
# The Wan 2.1 VAE is AutoencoderKLWan's default configuration (base_dim 96, z_dim 16,
# dim_mult [1, 2, 4, 4], 2 res blocks, temporal downsampling [False, True, True]).
WAN_VAE: dict[str, Any] = {}
TINY_TRANSFORMER: dict[str, Any] = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 2,
    "attention_head_dim": 12,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 32,
    "freq_dim": 256,
    "ffn_dim": 32,
    "num_layers": 2,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "rope_max_seq_len": 32,
}
TINY_VAE: dict[str, Any] = {
    "base_dim": 3,
    "z_dim": 16,
    "dim_mult": [1, 1, 1, 1],
    "num_res_blocks": 1,
    "temperal_downsample": [False, True, True],
}


@dataclass(frozen=True)
class Geometry:
    width: int
    height: int
    frames: int
    steps: int
    text_tokens: int


FULL = Geometry(width=832, height=480, frames=81, steps=50, text_tokens=512)
TINY = Geometry(width=32, height=32, frames=9, steps=2, text_tokens=16)

# The figure the goals were set with: FLOPs of one Wan2.1-1.3B transformer forward at
# 832x480x81 (see transformer_flops for the formula; it gives the same number).
GIVEN_FLOPS_PER_FORWARD = 2.83e14
GOAL_SPEEDUP = 1.6
GOAL_SECONDS_PER_CLIP = 60.0

# Dense (no sparsity) bfloat16 tensor-core peaks in TFLOP/s from NVIDIA's datasheets, matched
# against the device name in this order (first match wins, so the specific names come before
# "H200" and "H100"). The NVL (PCIe) boards run at a lower clock than the SXM ones.
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H200 NVL", 835.0),
    ("GH200", 989.0),  # Grace Hopper: the H100 SXM die
    ("H200", 989.0),  # SXM ("NVIDIA H200")
    ("H100", 989.0),  # SXM5 ("NVIDIA H100 80GB HBM3")
    ("B200", 2250.0),
    ("A100", 312.0),
    ("L40S", 362.0),
)


def transformer_flops(config: dict[str, Any], tokens: int, text_tokens: int) -> float:
    """Matrix-multiply FLOPs of one transformer forward (2 FLOPs per multiply-add).

    Per block, with L video tokens, T text tokens, width d and feed-forward width f:
      self-attention Q, K, V, O projections   4 * 2*L*d*d
      self-attention QK^T and AV              2 * 2*L*L*d
      cross-attention Q, O projections        2 * 2*L*d*d
      cross-attention K, V of the text        2 * 2*T*d*d
      cross-attention QK^T and AV             2 * 2*L*T*d
      feed-forward up and down                2 * 2*L*d*f
    Wan2.1-1.3B at 832x480x81: L = 21*30*52 = 32,760 (VAE 4x8x8, patch 1x2x2), T = 512,
    d = 1536, f = 8960: 0.62 + 6.59 + 0.31 + 0.005 + 0.10 + 1.80 = 9.43e12 per block,
    x 30 blocks = 2.83e14; the patch embedding, output head and text embedder add 0.01 %.
    Norms, RoPE, modulation and softmax are elementwise and left out.
    """
    d = config["num_attention_heads"] * config["attention_head_dim"]
    f = config["ffn_dim"]
    big_l, t = tokens, text_tokens
    per_block = (
        4 * 2 * big_l * d * d
        + 2 * 2 * big_l * big_l * d
        + 2 * 2 * big_l * d * d
        + 2 * 2 * t * d * d
        + 2 * 2 * big_l * t * d
        + 2 * 2 * big_l * d * f
    )
    patch = math.prod(config["patch_size"])
    outside = (
        2 * big_l * patch * config["in_channels"] * d  # patch embedding
        + 2 * big_l * d * patch * config["out_channels"]  # output projection
        + 2 * t * (config["text_dim"] * d + d * d)  # text embedder (two linears)
    )
    return float(config["num_layers"] * per_block + outside)


def video_tokens(config: dict[str, Any], geometry: Geometry, temporal: int, spatial: int) -> int:
    """Tokens per sample the transformer sees after the VAE and the patch embedding."""
    pt, ph, pw = config["patch_size"]
    latent_frames = (geometry.frames - 1) // temporal + 1
    return (
        (latent_frames // pt)
        * (geometry.height // spatial // ph)
        * (geometry.width // spatial // pw)
    )


def peak_tflops(device_name: str, override: float | None) -> float | None:
    if override is not None:
        return override
    for key, value in PEAK_BF16_TFLOPS:
        if key.lower() in device_name.lower():
            return value
    return None


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cast_like_from_pretrained(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """Cast parameters and saved buffers to ``dtype`` except the modules the class keeps in
    float32, as ModelMixin.from_pretrained(torch_dtype=...) leaves them; non-persistent buffers
    (Wan's RoPE tables) keep the dtype they were built in, also as from_pretrained does."""
    keep = getattr(model, "_keep_in_fp32_modules", None) or []
    for name, tensor in model.state_dict(keep_vars=True).items():
        if not tensor.is_floating_point():
            continue
        target = torch.float32 if any(m in name.split(".") for m in keep) else dtype
        tensor.data = tensor.data.to(target)


def build_pipeline(
    transformer_config: dict[str, Any],
    vae_config: dict[str, Any],
    device: torch.device,
    dtype: torch.dtype,
    seed: int,
) -> WanPipeline:
    """A WanPipeline with random weights, built directly on ``device``."""
    torch.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed(seed)
    with torch.device(device):
        transformer = WanTransformer3DModel(**transformer_config)
        vae = AutoencoderKLWan(**vae_config)
    for model in (transformer, vae):
        cast_like_from_pretrained(model, dtype)
        model.eval()
    # Wan 2.1's scheduler: UniPC on flow-matching sigmas, shift 3.0 for 480p.
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
    )
    # The tokenizer and text encoder are only used to turn a prompt into embeddings; with
    # prompt_embeds and negative_prompt_embeds passed they are never touched.
    pipe = WanPipeline(
        tokenizer=None, text_encoder=None, transformer=transformer, vae=vae, scheduler=scheduler
    )
    pipe.set_progress_bar_config(disable=True)  # as the engine does
    return pipe


class ForwardTimer:
    """Times every call of a module: CUDA events on a GPU (no synchronisation inside the
    loop), the wall clock on the CPU, where the work is synchronous anyway."""

    def __init__(self, module: torch.nn.Module, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.spans: list[tuple[Any, Any]] = []
        self._start: Any = None
        self._handles = [
            module.register_forward_pre_hook(self._before),
            module.register_forward_hook(self._after),
        ]

    def _mark(self) -> Any:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def _before(self, module: torch.nn.Module, args: Any) -> None:
        self._start = self._mark()

    def _after(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        self.spans.append((self._start, self._mark()))

    def reset(self) -> None:
        self.spans.clear()

    def seconds(self) -> float:
        """Total seconds inside the module since the last reset (after a synchronize)."""
        if self.cuda:
            return sum(start.elapsed_time(end) for start, end in self.spans) / 1000.0
        return sum(end - start for start, end in self.spans)

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


@contextmanager
def decode_clock(pipe: WanPipeline, device: torch.device) -> Iterator[list[float]]:
    """Wrap pipe.vae.decode; yields a list that gets the decode's start and end times."""
    marks: list[float] = []
    decode = pipe.vae.decode

    def timed_decode(*args: Any, **kwargs: Any) -> Any:
        synchronize(device)
        marks.append(time.perf_counter())
        result = decode(*args, **kwargs)
        synchronize(device)
        marks.append(time.perf_counter())
        return result

    pipe.vae.decode = timed_decode
    try:
        yield marks
    finally:
        del pipe.vae.decode  # back to the class's method


@dataclass
class Clip:
    seconds: float
    denoise_seconds: float
    transformer_seconds: float
    decode_seconds: float
    forwards: int
    finite: bool


@dataclass
class Inputs:
    prompt_embeds: torch.Tensor
    negative_prompt_embeds: torch.Tensor
    geometry: Geometry
    guidance_scale: float
    seed: int
    output_type: str


def run_clip(
    pipe: WanPipeline, inputs: Inputs, steps: int, timer: ForwardTimer, device: torch.device
) -> Clip:
    geometry = inputs.geometry
    generator = torch.Generator(device=device).manual_seed(inputs.seed)
    timer.reset()
    with decode_clock(pipe, device) as marks:
        synchronize(device)
        start = time.perf_counter()
        video = pipe(
            prompt_embeds=inputs.prompt_embeds,
            negative_prompt_embeds=inputs.negative_prompt_embeds,
            height=geometry.height,
            width=geometry.width,
            num_frames=geometry.frames,
            num_inference_steps=steps,
            guidance_scale=inputs.guidance_scale,
            generator=generator,
            output_type=inputs.output_type,
            return_dict=False,
        )[0]
        synchronize(device)
        end = time.perf_counter()
    finite = bool(torch.isfinite(torch.as_tensor(video)).all())
    return Clip(
        seconds=end - start,
        denoise_seconds=marks[0] - start,
        transformer_seconds=timer.seconds(),
        decode_seconds=marks[1] - marks[0],
        forwards=len(timer.spans),
        finite=finite,
    )


@dataclass
class Result:
    name: str
    applied: list[str]
    warmup_seconds: float
    clips: list[Clip] = field(default_factory=list)
    peak_memory_gib: float | None = None

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(clip, attribute) for clip in self.clips)


def run_config(
    name: str,
    pipe: WanPipeline,
    inputs: Inputs,
    args: argparse.Namespace,
    device: torch.device,
) -> Result:
    applied: list[str] = []
    if name == "framegate":
        applied = apply_accelerations(
            pipe,
            device_type=device.type,
            attention_backend=args.attention_backend,
            compile=args.compile,
            compile_mode=args.compile_mode,
            cache_threshold=args.cache_threshold,
        )
    print(f"\n[{name}] {', '.join(applied) or 'diffusers defaults'}", flush=True)
    timer = ForwardTimer(pipe.transformer, device)
    try:
        if device.type == "cuda":
            torch.cuda.empty_cache()
        synchronize(device)
        start = time.perf_counter()
        warmup = run_clip(pipe, inputs, args.warmup_steps, timer, device)
        result = Result(name, applied, time.perf_counter() - start)
        print(
            f"  warm-up ({args.warmup_steps} steps + decode"
            f"{', compiles' if args.compile and name == 'framegate' else ''}):"
            f" {result.warmup_seconds:.2f} s",
            flush=True,
        )
        if not warmup.finite:
            print("  warning: the warm-up clip has non-finite values", flush=True)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for attempt in range(args.runs):
            clip = run_clip(pipe, inputs, inputs.geometry.steps, timer, device)
            result.clips.append(clip)
            print(
                f"  run {attempt + 1}: {clip.seconds:.2f} s (denoise {clip.denoise_seconds:.2f} s,"
                f" {clip.forwards} forwards {clip.transformer_seconds:.2f} s,"
                f" VAE decode {clip.decode_seconds:.2f} s)"
                f"{'' if clip.finite else '  [non-finite output]'}",
                flush=True,
            )
        if device.type == "cuda":
            result.peak_memory_gib = torch.cuda.max_memory_allocated(device) / 2**30
    finally:
        timer.close()
    return result


@dataclass
class Failure:
    """A configuration that could not be measured: its error and the end of its traceback."""

    name: str
    error: str
    traceback: str


def run_configs(
    configs: list[str],
    pipe: WanPipeline,
    inputs: Inputs,
    args: argparse.Namespace,
    device: torch.device,
) -> tuple[list[Result], list[Failure]]:
    """Each configuration on its own: a failure is recorded and the next one still runs."""
    results: list[Result] = []
    failures: list[Failure] = []
    for name in configs:
        try:
            results.append(run_config(name, pipe, inputs, args, device))
            continue
        except Exception as exc:
            # Only text is kept: the traceback's frames hold the tensors of the failed run.
            failure = Failure(
                name,
                f"{type(exc).__name__}: {exc}".strip(),
                "".join(traceback.format_exception(exc, limit=-8)),
            )
        failures.append(failure)
        print(f"\n[{name}] FAILED: {_first_lines(failure.error, 5)}", flush=True)
        print(_last_lines(failure.traceback, 40), flush=True)
        # The failed run's tensors are garbage now; give their memory back to the next one.
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return results, failures


def _first_lines(text: str, count: int) -> str:
    lines = text.splitlines()
    return "\n".join(lines[:count]) + (
        f"\n  [... {len(lines) - count} more lines]" if len(lines) > count else ""
    )


def _last_lines(text: str, count: int) -> str:
    lines = text.splitlines()
    head = (
        [f"  [... {len(lines) - count} lines of traceback left out]"] if len(lines) > count else []
    )
    return "\n".join(head + lines[-count:])


def figures(
    result: Result,
    flops_per_forward: float,
    peak: float | None,
    steps: int,
    baseline: float | None,
) -> dict[str, Any]:
    denoise = result.median("denoise_seconds")
    forwards = result.clips[0].forwards
    tflops = flops_per_forward * forwards / denoise / 1e12
    clip = result.median("seconds")
    return {
        "configuration": result.name,
        "applied": result.applied,
        "seconds_per_clip": clip,
        "seconds_per_clip_runs": [c.seconds for c in result.clips],
        "denoise_seconds": denoise,
        "denoise_seconds_per_step": denoise / steps,
        "transformer_seconds_per_forward": result.median("transformer_seconds") / forwards,
        "transformer_forwards": forwards,
        "vae_decode_seconds": result.median("decode_seconds"),
        "warmup_seconds": result.warmup_seconds,
        "peak_memory_gib": result.peak_memory_gib,
        "tflops": tflops,
        "percent_of_peak": 100.0 * tflops / peak if peak else None,
        "speedup": baseline / clip if baseline is not None else None,
        "finite": all(c.finite for c in result.clips),
    }


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def print_tables(rows: list[dict[str, Any]], tiny_tflops: bool) -> None:
    header = (
        "Configuration",
        "s / clip",
        "denoise s",
        "s / step",
        "s / forward",
        "VAE decode s",
        "warm-up s",
        "peak GiB",
        "TFLOP/s",
        "% of peak",
        "speedup",
    )
    cells = [
        (
            row["configuration"],
            fmt(row["seconds_per_clip"], ".2f"),
            fmt(row["denoise_seconds"], ".2f"),
            fmt(row["denoise_seconds_per_step"], ".3f"),
            fmt(row["transformer_seconds_per_forward"], ".4f"),
            fmt(row["vae_decode_seconds"], ".2f"),
            fmt(row["warmup_seconds"], ".1f"),
            fmt(row["peak_memory_gib"], ".1f"),
            fmt(row["tflops"], ".3g" if tiny_tflops else ".0f"),
            fmt(row["percent_of_peak"], ".1f"),
            "n/a" if row["speedup"] is None else f"{row['speedup']:.2f}x",
        )
        for row in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    print()
    print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    for cell in cells:
        print("  ".join(c.rjust(w) for c, w in zip(cell, widths, strict=True)))
    print("\nMarkdown (docs/performance.md):\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    for cell in cells:
        print("| " + " | ".join(cell) + " |")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=2, help="timed clips per configuration")
    parser.add_argument(
        "--warmup-steps", type=int, default=2, help="steps of the warm-up clip (compiles)"
    )
    parser.add_argument("--steps", type=int, help="denoising steps (default 50; tiny: 2)")
    parser.add_argument("--frames", type=int, help="frames (default 81; tiny: 9)")
    parser.add_argument("--width", type=int, help="width (default 832; tiny: 32)")
    parser.add_argument("--height", type=int, help="height (default 480; tiny: 32)")
    parser.add_argument("--guidance-scale", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output-type", choices=("np", "pt"), default="np")
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument(
        "--dtype",
        choices=("bfloat16", "float16", "float32"),
        help="default: bfloat16 on a GPU, float32 on the CPU",
    )
    parser.add_argument(
        "--configs",
        default="stock,framegate",
        help="comma-separated, in order; stock must come first (compilation is not undone)",
    )
    parser.add_argument(
        "--attention-backend",
        default="auto",
        help="framegate's attention backend (auto: the engine's fastest usable one)",
    )
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch.compile in the framegate configuration (default: on for cuda, off on cpu)",
    )
    parser.add_argument(
        "--compile-mode", help="torch.compile mode (e.g. max-autotune-no-cudagraphs)"
    )
    parser.add_argument(
        "--cache-threshold",
        type=float,
        help="first-block cache threshold in the framegate configuration (default: off; it "
        "skips transformer work between similar steps, so the output changes)",
    )
    parser.add_argument(
        "--peak-tflops", type=float, help="the GPU's dense bf16 peak, if not looked up by name"
    )
    parser.add_argument("--tiny", action="store_true", help="tiny random model (smoke test)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit(
            "engine_gpu.py: no CUDA GPU is visible. This benchmark is meant for a GPU; for a "
            "smoke test on this machine run it with --tiny --device cpu."
        )
    if device.type not in ("cuda", "cpu"):
        sys.exit(f"engine_gpu.py: unsupported device {args.device!r} (cuda, cuda:N or cpu)")
    if args.runs < 1 or args.warmup_steps < 1:
        sys.exit("engine_gpu.py: --runs and --warmup-steps must be at least 1")
    if args.compile is None:
        args.compile = device.type == "cuda"
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    if configs not in (["stock"], ["framegate"], ["stock", "framegate"]):
        sys.exit(
            f"engine_gpu.py: --configs {args.configs!r}: use stock, framegate or stock,framegate"
            " (stock first: compilation is not undone)"
        )
    dtype_name = args.dtype or ("bfloat16" if device.type == "cuda" else "float32")
    dtype = getattr(torch, dtype_name)

    base = TINY if args.tiny else FULL
    geometry = Geometry(
        width=args.width or base.width,
        height=args.height or base.height,
        frames=args.frames or base.frames,
        steps=args.steps or base.steps,
        text_tokens=base.text_tokens,
    )
    transformer_config = TINY_TRANSFORMER if args.tiny else WAN_1_3B
    vae_config = TINY_VAE if args.tiny else WAN_VAE

    if device.type == "cuda":
        device_name = torch.cuda.get_device_name(device)
        peak = peak_tflops(device_name, args.peak_tflops)
    else:
        device_name = "CPU"
        peak = args.peak_tflops
    print(
        f"torch {torch.__version__} (CUDA {torch.version.cuda}), diffusers {diffusers.__version__}"
    )
    print(f"device: {device_name}, {dtype_name}; dense bf16 peak: {fmt(peak, '.0f')} TFLOP/s")
    if device.type == "cuda":
        print(f"attention backends usable here, fastest first: {usable_backends('cuda')}")
    model_name = "tiny random Wan" if args.tiny else "Wan2.1-T2V-1.3B (random weights)"
    print(
        f"{model_name}: {geometry.width}x{geometry.height}, {geometry.frames} frames,"
        f" {geometry.steps} steps, CFG {args.guidance_scale}, {args.runs} timed runs"
    )

    start = time.perf_counter()
    pipe = build_pipeline(transformer_config, vae_config, device, dtype, args.seed)
    synchronize(device)
    parameters = sum(p.numel() for p in pipe.transformer.parameters())
    print(
        f"built the pipeline in {time.perf_counter() - start:.1f} s"
        f" (transformer: {parameters:,} parameters)"
    )

    tokens = video_tokens(
        transformer_config,
        geometry,
        pipe.vae_scale_factor_temporal,
        pipe.vae_scale_factor_spatial,
    )
    flops = transformer_flops(transformer_config, tokens, geometry.text_tokens)
    print(
        f"FLOPs per transformer forward: {flops:.4g} by formula"
        f" ({tokens} video tokens, {geometry.text_tokens} text tokens)"
    )
    if not args.tiny and geometry == FULL:
        print(
            f"  given figure {GIVEN_FLOPS_PER_FORWARD:.3g}"
            f" (formula/given = {flops / GIVEN_FLOPS_PER_FORWARD:.4f})"
        )

    generator = torch.Generator(device=device).manual_seed(args.seed)
    embed_shape = (1, geometry.text_tokens, transformer_config["text_dim"])
    inputs = Inputs(
        prompt_embeds=torch.randn(embed_shape, generator=generator, device=device, dtype=dtype),
        negative_prompt_embeds=torch.randn(
            embed_shape, generator=generator, device=device, dtype=dtype
        ),
        geometry=geometry,
        guidance_scale=args.guidance_scale,
        seed=args.seed,
        output_type=args.output_type,
    )

    results, failures = run_configs(configs, pipe, inputs, args, device)
    # The speedup is over stock, when stock ran.
    stock_runs = [r for r in results if r.name == "stock"]
    baseline = stock_runs[0].median("seconds") if stock_runs else None
    rows = [figures(r, flops, peak, geometry.steps, baseline) for r in results]
    if rows:
        print_tables(rows, tiny_tflops=args.tiny or device.type == "cpu")

    by_name = {row["configuration"]: row for row in rows}
    print()
    for failure in failures:
        print(f"not measured: {failure.name} failed ({_first_lines(failure.error, 1)})")
    if {"stock", "framegate"} <= by_name.keys():
        stock, fast = by_name["stock"], by_name["framegate"]
        print(
            f"framegate vs stock: {fast['speedup']:.2f}x per clip,"
            f" {stock['denoise_seconds'] / fast['denoise_seconds']:.2f}x in the denoising loop"
        )
    if args.tiny or geometry != FULL:
        print("goals (full size only): not evaluated for this geometry")
    elif "framegate" in by_name:
        row = by_name["framegate"]
        if "stock" in by_name:
            met = "met" if row["speedup"] >= GOAL_SPEEDUP else "not met"
            print(f"goal framegate >= {GOAL_SPEEDUP}x stock: {row['speedup']:.2f}x ({met})")
        met = "met" if row["seconds_per_clip"] <= GOAL_SECONDS_PER_CLIP else "not met"
        print(
            f"goal <= {GOAL_SECONDS_PER_CLIP:.0f} s per clip:"
            f" {row['seconds_per_clip']:.1f} s ({met})"
        )
    if not all(row["finite"] for row in rows):
        print("warning: some clips have non-finite values (random weights; timings still hold)")

    if args.json:
        report = {
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "diffusers": diffusers.__version__,
            "device": device_name,
            "dtype": dtype_name,
            "peak_tflops": peak,
            "model": model_name,
            "geometry": asdict(geometry),
            "guidance_scale": args.guidance_scale,
            "compile": args.compile,
            "compile_mode": args.compile_mode,
            "flops_per_forward": flops,
            "video_tokens": tokens,
            "configurations": rows,
            "failures": [asdict(failure) for failure in failures],
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    if failures:
        print(f"{len(failures)} of {len(configs)} configurations failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
