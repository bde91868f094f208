"""Catalog route definitions (config file and built-ins) and the API's model objects."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from framegate.catalog.health import RouteHealthObject

ResolutionTier = Literal["480p", "720p", "1080p"]
RESOLUTION_TIERS: tuple[ResolutionTier, ...] = ("480p", "720p", "1080p")
TIER_SHORT_SIDE: dict[str, int] = {"480p": 480, "720p": 720, "1080p": 1080}


class Pricing(BaseModel):
    """Credits per unit, by resolution tier (the output's short side)."""

    model_config = ConfigDict(extra="forbid")

    unit: Literal["second", "clip", "image"]
    credits: dict[ResolutionTier, int] = Field(min_length=1)

    @model_validator(mode="after")
    def _non_negative(self) -> Pricing:
        if any(v < 0 for v in self.credits.values()):
            raise ValueError("pricing credits must be >= 0")
        return self


class Capabilities(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text_to_video: bool = False
    image_to_video: bool = False
    text_to_image: bool = False
    first_last_frame: bool = False
    # First+last-frame models that cannot make a clip from the first frame alone.
    last_image_required: bool = False
    min_duration: int = 1
    max_duration: int = 10
    default_duration: int = 5
    min_fps: int = 8
    max_fps: int = 30
    default_fps: int = 24
    # Frame counts the model can make: any (1), or k * frame_step + 1 (Wan 4, LTX 8).
    frame_step: int = Field(default=1, ge=1)
    max_frames: int | None = Field(default=None, ge=1)
    # Output sizes: an explicit list, or any size within the bounds below.
    sizes: list[str] | None = None
    min_side: int = 64
    max_side: int = 1920
    max_pixels: int = 1920 * 1080
    size_multiple: int = 2
    default_size: str = "1280x720"
    max_images: int = 4


class Speed(BaseModel):
    """Feeds ``estimated_seconds``: base + per megapixel of output frames."""

    model_config = ConfigDict(extra="forbid")

    base_seconds: float = 1.0
    seconds_per_megapixel_frame: float = 0.02


class ModelRoute(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._:/-]{0,119}$")
    aliases: list[str] = Field(default_factory=list)
    name: str = ""
    description: str = ""
    kind: Literal["video", "image"]
    engine: str
    settings: dict[str, Any] = Field(default_factory=dict)
    capabilities: Capabilities = Field(default_factory=Capabilities)
    pricing: Pricing
    speed: Speed = Field(default_factory=Speed)
    fallbacks: list[str] = Field(default_factory=list)
    # Seconds from submission before an unfinished task fails with `timeout`
    # (default: FRAMEGATE_TASK_DEADLINE_SECONDS).
    deadline_seconds: float | None = Field(default=None, gt=0)
    enabled: bool = True


class CatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    routes: list[ModelRoute] = Field(default_factory=list)


class ModelObject(BaseModel):
    """A route as the API shows it."""

    id: str
    object: Literal["model"] = "model"
    name: str
    description: str
    kind: Literal["video", "image"]
    aliases: list[str]
    engine: str
    available: bool
    capabilities: Capabilities
    pricing: Pricing
    fallbacks: list[str] = Field(
        default_factory=list, description="Routes that take over when this one fails upstream."
    )
    health: RouteHealthObject = Field(
        description="The route's circuit breaker: open after repeated upstream failures."
    )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]


class Estimate(BaseModel):
    object: Literal["estimate"] = "estimate"
    model: str
    kind: Literal["video", "image"]
    credits: int
    estimated_seconds: int
    width: int
    height: int
    resolution_tier: ResolutionTier
    duration: int | None = None
    fps: int | None = None
    num_frames: int | None = None
    n: int | None = None
    pricing: Pricing
