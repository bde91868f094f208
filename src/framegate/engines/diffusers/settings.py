"""Per-route settings of the diffusers engine, validated when the catalog loads.

This module imports neither torch nor diffusers: the catalog, the API and ``framegate
models`` use it on machines without a GPU stack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Family = Literal["wan", "ltx", "cogvideox", "image"]


@dataclass(frozen=True, slots=True)
class FamilyRule:
    """Geometry a model family's VAE and patching need."""

    size_multiple: int
    # Frame counts are ``k * frame_step + 1`` (the VAE compresses time by this factor).
    frame_step: int
    default_fps: int


FAMILY_RULES: dict[str, FamilyRule] = {
    "wan": FamilyRule(size_multiple=16, frame_step=4, default_fps=16),
    "ltx": FamilyRule(size_multiple=32, frame_step=8, default_fps=24),
    "cogvideox": FamilyRule(size_multiple=16, frame_step=8, default_fps=8),
    "image": FamilyRule(size_multiple=8, frame_step=1, default_fps=0),
}

Dtype = Literal["bfloat16", "float16", "float32"]

# Components a family keeps in another dtype than the route's, as the upstream model cards
# load them: Wan's VAE (and Wan 2.1 I2V's CLIP image encoder) in float32 beside a bfloat16
# transformer. A route's ``component_dtypes`` overrides these per component.
FAMILY_COMPONENT_DTYPES: dict[str, dict[str, Dtype]] = {
    "wan": {"vae": "float32", "image_encoder": "float32"},
}

# Hub repo ids ("Wan-AI/Wan2.1-T2V-1.3B-Diffusers"); anything else is a local path.
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_PIPELINE_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*Pipeline$")


class CacheSettings(BaseModel):
    """A diffusers cache hook: reuses transformer work between similar steps."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["first_block"] = "first_block"
    threshold: float = Field(default=0.05, gt=0, le=1)


class EncodeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    crf: int = Field(default=19, ge=0, le=51)
    preset: str = "veryfast"


class WarmupShape(BaseModel):
    """One request geometry a compiled route runs at load time, so that no user request
    waits for compilation at that shape."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(ge=8, le=8192)
    height: int = Field(ge=8, le=8192)
    num_frames: int = Field(default=1, ge=1, le=2049)


class DiffusersSettings(BaseModel):
    """``settings:`` of a catalog route whose ``engine`` is ``diffusers``."""

    model_config = ConfigDict(extra="forbid")

    family: Family
    pipeline: str = Field(
        description="The diffusers pipeline class, e.g. WanPipeline, LTXImageToVideoPipeline."
    )
    image_pipeline: str | None = Field(
        default=None,
        description="A second pipeline class for requests with an input image, built from "
        "the loaded pipeline's components (e.g. WanImageToVideoPipeline for Wan 2.2 TI2V).",
    )
    weights: str = Field(
        description="A local directory saved with save_pretrained, or a hub repo id that "
        "`framegate models pull` downloads into FRAMEGATE_MODELS_DIR."
    )
    revision: str | None = None
    # Files `framegate models pull` fetches (glob patterns); all when not set. Repos that
    # also hold other checkpoints (LTX-Video) need it.
    allow_patterns: list[str] | None = None
    # Sampling defaults.
    steps: int = Field(default=50, ge=1, le=1000)
    guidance_scale: float = Field(default=5.0, ge=0)
    # Wan 2.2 A14B's second (low-noise) expert.
    guidance_scale_2: float | None = Field(default=None, ge=0)
    flow_shift: float | None = Field(default=None, gt=0)
    max_sequence_length: int | None = Field(default=None, ge=1)
    # Extra keyword arguments for the pipeline call (e.g. LTX's decode_timestep).
    call_args: dict[str, Any] = Field(default_factory=dict)
    # Placement and memory.
    dtype: Dtype = "bfloat16"
    component_dtypes: dict[str, Dtype] | None = Field(
        default=None,
        description="Per-component dtypes over `dtype` (e.g. {vae: float32}); unset: the "
        "family's defaults (Wan keeps its VAE and image encoder in float32); {}: all in dtype.",
    )
    device: str = Field(
        default="cuda",
        description="cpu, mps, cuda or cuda:N; 'cuda' means cuda:0, so routes naming either "
        "share one device's slots, pipelines and memory budget.",
    )
    offload: Literal["none", "model", "sequential"] = "none"
    vae_tiling: bool = False
    # GPU memory the warm pipeline is counted as using (GiB); measured after loading
    # when not set.
    memory_gb: float | None = Field(default=None, gt=0)
    # GPU memory a request needs beyond the weights (activations, the VAE decode), in GiB;
    # unset: measured after each geometry's first run, estimated before that.
    reserve_gb: float | None = Field(default=None, ge=0)
    # Optional accelerations.
    compile: bool = False
    compile_mode: str | None = None
    attention_backend: str | None = Field(
        default=None,
        description="A diffusers attention backend (e.g. _native_cudnn, flash, _flash_3, "
        "sage) or 'auto' for the fastest one installed.",
    )
    cache: CacheSettings | None = None
    # Geometries a compiled route runs once at load (a couple of steps each).
    warmup: list[WarmupShape] = Field(default_factory=list, max_length=16)
    encode: EncodeSettings = Field(default_factory=EncodeSettings)

    @field_validator("pipeline", "image_pipeline")
    @classmethod
    def _pipeline_name(cls, value: str | None) -> str | None:
        if value is not None and not _PIPELINE_NAME.match(value):
            raise ValueError(
                f"pipeline must name a diffusers pipeline class such as 'WanPipeline'; "
                f"got {value!r}"
            )
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not re.match(r"^(cpu|cuda(:\d+)?|mps)$", value):
            raise ValueError(f"device must be 'cuda', 'cuda:N', 'cpu' or 'mps'; got {value!r}")
        return normalise_device(value)

    @model_validator(mode="after")
    def _call_args_are_not_request_fields(self) -> DiffusersSettings:
        reserved = {"prompt", "height", "width", "num_frames", "generator", "image"}
        clash = sorted(reserved & set(self.call_args))
        if clash:
            raise ValueError(f"call_args cannot set {', '.join(clash)}: requests decide them")
        return self

    def dtype_map(self) -> dict[str, str]:
        """Component name -> dtype name; "default" for every other component."""
        overrides = (
            FAMILY_COMPONENT_DTYPES.get(self.family, {})
            if self.component_dtypes is None
            else self.component_dtypes
        )
        return {**overrides, "default": self.dtype}

    @property
    def device_type(self) -> str:
        return self.device.split(":")[0]

    @property
    def rule(self) -> FamilyRule:
        return FAMILY_RULES[self.family]

    @property
    def is_repo_id(self) -> bool:
        return bool(_REPO_ID.match(self.weights)) and not Path(self.weights).exists()

    def weights_dir(self, models_dir: Path) -> Path:
        """Where the weights are (or will be, once pulled)."""
        if self.is_repo_id:
            return models_dir / self.weights
        return Path(self.weights).expanduser()

    def cache_key(self) -> str:
        """Routes whose loading settings match share one warm pipeline."""
        loading = self.model_dump(
            include={
                "pipeline",
                "weights",
                "revision",
                "flow_shift",
                "device",
                "offload",
                "vae_tiling",
                "compile",
                "compile_mode",
                "attention_backend",
                "cache",
            }
        )
        loading["dtypes"] = sorted(self.dtype_map().items())
        return repr(sorted(loading.items()))


def normalise_device(device: str) -> str:
    """``cuda`` -> ``cuda:0`` (what torch means by it in a process that never changed its
    current device), so one GPU is one key for slots, pipelines and budgets."""
    return "cuda:0" if device == "cuda" else device


def has_weights(directory: Path) -> bool:
    """A diffusers pipeline directory (``save_pretrained`` or a hub snapshot)."""
    return (directory / "model_index.json").is_file()
