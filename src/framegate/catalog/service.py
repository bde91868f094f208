"""The model catalog: built-in routes plus the operator's file, sizing and pricing."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import yaml
from pydantic import ValidationError

from framegate.catalog.builtins import BUILTIN_ROUTES
from framegate.catalog.health import RouteHealth
from framegate.catalog.schemas import (
    RESOLUTION_TIERS,
    TIER_SHORT_SIDE,
    CatalogFile,
    Estimate,
    ModelObject,
    ModelRoute,
    ResolutionTier,
)
from framegate.engines.registry import EngineRegistry
from framegate.engines.vendors.base import VendorShape
from framegate.exceptions import InvalidValue, ServiceUnavailable
from framegate.kit.views import from_row

_SIZE_RE = re.compile(r"^(\d{2,5})[x*](\d{2,5})$")
_ASPECT_RE = re.compile(r"^(\d{1,2}):(\d{1,2})$")


@dataclass(frozen=True, slots=True)
class OutputPlan:
    """A request resolved against its route: exact output geometry, price and time."""

    route: ModelRoute
    width: int
    height: int
    tier: ResolutionTier
    credits: int
    estimated_seconds: int
    duration: int | None = None
    fps: int | None = None
    num_frames: int | None = None
    n: int = 1

    def as_estimate(self) -> Estimate:
        return from_row(
            Estimate,
            self,
            model=self.route.id,
            kind=self.route.kind,
            resolution_tier=self.tier,
            n=self.n if self.route.kind == "image" else None,
            pricing=self.route.pricing,
        )


class VideoShape(Protocol):
    """The request fields that decide a video's geometry and price."""

    @property
    def duration(self) -> int | None: ...
    @property
    def size(self) -> str | None: ...
    @property
    def resolution(self) -> str | None: ...
    @property
    def aspect_ratio(self) -> str | None: ...
    @property
    def fps(self) -> int | None: ...
    @property
    def num_frames(self) -> int | None: ...
    @property
    def input_image(self) -> str | None: ...
    @property
    def last_image(self) -> str | None: ...


class CatalogError(Exception):
    """The catalog file is unreadable or invalid."""


def load_routes(path: Path | None) -> list[ModelRoute]:
    """Built-ins, then the file's routes replacing built-ins of the same id."""
    routes = {route.id: route for route in BUILTIN_ROUTES}
    if path is not None:
        try:
            raw = yaml.safe_load(path.read_text()) or {}
            parsed = CatalogFile.model_validate(raw)
        except (OSError, yaml.YAMLError, ValidationError) as exc:
            raise CatalogError(f"catalog file {path}: {exc}") from exc
        for route in parsed.routes:
            routes[route.id] = route
    return [route for route in routes.values() if route.enabled]


class Catalog:
    def __init__(
        self,
        routes: list[ModelRoute],
        engines: EngineRegistry,
        health: RouteHealth | None = None,
    ) -> None:
        by_id = {route.id: route for route in routes}
        for route in routes:
            try:
                engines.check_route(route)
            except ValueError as exc:
                raise CatalogError(f"route {route.id!r}: {exc}") from exc
            for fallback in route.fallbacks:
                other = by_id.get(fallback)
                if other is None or other.kind != route.kind or fallback == route.id:
                    raise CatalogError(
                        f"route {route.id!r}: fallback {fallback!r} is not another enabled "
                        f"{route.kind} route of the catalog"
                    )
        self._routes = by_id
        self.health = health or RouteHealth()
        self._by_name: dict[str, ModelRoute] = {}
        for route in routes:
            for name in (route.id, *route.aliases):
                self._by_name[name.lower()] = route
        self._engines = engines
        self._served: Callable[[], AbstractSet[str]] | None = None

    def serve_from(self, served: Callable[[], AbstractSet[str]]) -> None:
        """An API node in distributed mode: its routes take tasks whatever its own engines
        (the workers run them; a task waits queued until one serves its route), and a
        route is listed as available while ``served()``, the route ids some live worker
        serves, names it."""
        self._served = served

    def routes(self) -> list[ModelRoute]:
        return list(self._routes.values())

    def get(self, name: str) -> ModelRoute | None:
        return self._by_name.get(name.lower())

    def is_available(self, route: ModelRoute) -> bool:
        """Whether the route takes tasks."""
        if self._served is not None:
            return True
        return self._engines.is_available(route.engine, route.settings)

    def is_served(self, route: ModelRoute) -> bool:
        """Whether something runs the route's tasks now (listed as `available`)."""
        if self._served is not None:
            return route.id in self._served()
        return self.is_available(route)

    def to_object(self, route: ModelRoute) -> ModelObject:
        return ModelObject(
            id=route.id,
            name=route.name or route.id,
            description=route.description,
            kind=route.kind,
            aliases=route.aliases,
            engine=route.engine,
            available=self.is_served(route),
            capabilities=route.capabilities,
            pricing=route.pricing,
            fallbacks=route.fallbacks,
            health=self.health.describe(route.id),
        )

    def serving_candidates(self, route: ModelRoute) -> list[ModelRoute]:
        """The route, then its fallbacks, that are available here (in order)."""
        candidates = [route, *(self._routes[f] for f in route.fallbacks if f in self._routes)]
        return [r for r in candidates if self.is_available(r)]

    def check_healthy(self, route: ModelRoute) -> None:
        """503 when the route's breaker is open and no fallback can take the task."""
        for candidate in self.serving_candidates(route):
            if self.health.would_allow(candidate.id):
                return
        retry_after = self.health.retry_after(route.id) or 1
        raise ServiceUnavailable(
            f"Model {route.id!r} is failing upstream and has no healthy fallback; "
            f"retry in {retry_after} s.",
            code="model_unhealthy",
            headers={"Retry-After": str(retry_after)},
        )

    def require(self, name: str, *, kind: str, param: str = "model") -> ModelRoute:
        """The available route of this kind called ``name``, or a 422 that lists the options."""
        route = self.get(name)
        options = sorted(
            r.id for r in self._routes.values() if r.kind == kind and self.is_available(r)
        )
        if route is None:
            raise InvalidValue(
                f"Unknown model {name!r}. Available {kind} models: {', '.join(options)}.",
                param=param,
                code="model_not_found",
            )
        if route.kind != kind:
            raise InvalidValue(
                f"Model {route.id!r} generates {route.kind}s, not {kind}s. "
                f"Available {kind} models: {', '.join(options)}.",
                param=param,
                code="model_kind_mismatch",
            )
        if not self.is_available(route):
            raise InvalidValue(
                f"Model {route.id!r} is not available on this installation "
                "(its weights or vendor key are not configured).",
                param=param,
                code="model_unavailable",
            )
        return route

    def plan_video(self, route: ModelRoute, request: VideoShape) -> OutputPlan:
        caps = route.capabilities
        duration, fps = request.duration, request.fps
        has_image = request.input_image is not None
        if has_image and not caps.image_to_video:
            raise InvalidValue(
                f"Model {route.id!r} does not support image-to-video; drop input_image or "
                "choose a model whose capabilities include image_to_video.",
                param="input_image",
                code="unsupported_capability",
            )
        if not has_image and not caps.text_to_video:
            raise InvalidValue(
                f"Model {route.id!r} needs input_image (it is image-to-video only).",
                param="input_image",
                code="input_image_required",
            )
        if request.last_image is None and caps.last_image_required and has_image:
            raise InvalidValue(
                f"Model {route.id!r} animates between two frames: give last_image too.",
                param="last_image",
                code="last_image_required",
            )
        if request.last_image is not None:
            if not caps.first_last_frame:
                raise InvalidValue(
                    f"Model {route.id!r} does not support a last frame; drop last_image or "
                    "choose a model whose capabilities include first_last_frame.",
                    param="last_image",
                    code="unsupported_capability",
                )
            if not has_image:
                raise InvalidValue(
                    "last_image needs input_image as the first frame.",
                    param="input_image",
                    code="input_image_required",
                )
        rate = caps.default_fps if fps is None else fps
        if not caps.min_fps <= rate <= caps.max_fps:
            raise InvalidValue(
                f"fps must be between {caps.min_fps} and {caps.max_fps} for {route.id!r}; "
                f"got {rate}.",
                param="fps",
            )
        seconds, frames = _clip_length(route, duration, request.num_frames, rate)
        width, height = self._resolve_size(
            route, request.size, request.resolution, request.aspect_ratio
        )
        tier = tier_for(width, height)
        units = seconds if route.pricing.unit == "second" else 1
        credits = price_for(route, tier) * units
        estimated = route.speed.base_seconds + (
            frames * width * height / 1e6 * route.speed.seconds_per_megapixel_frame
        )
        self._engines.refuse(
            route,
            VendorShape(
                width=width,
                height=height,
                duration=seconds,
                fps=rate,
                num_frames=frames,
                has_image=has_image,
                has_last_image=request.last_image is not None,
                has_negative_prompt=bool(getattr(request, "negative_prompt", None)),
                has_seed=getattr(request, "seed", None) is not None,
                prompt_length=len(getattr(request, "prompt", None) or ""),
            ),
        )
        return OutputPlan(
            route=route,
            width=width,
            height=height,
            tier=tier,
            credits=credits,
            estimated_seconds=max(1, math.ceil(estimated)),
            duration=seconds,
            fps=rate,
            num_frames=frames,
        )

    def plan_image(self, route: ModelRoute, *, size: str | None, n: int | None) -> OutputPlan:
        caps = route.capabilities
        count = 1 if n is None else n
        if not 1 <= count <= caps.max_images:
            raise InvalidValue(
                f"n must be between 1 and {caps.max_images} for {route.id!r}; got {count}.",
                param="n",
            )
        width, height = self._resolve_size(route, size, None, None)
        tier = tier_for(width, height)
        estimated = route.speed.base_seconds + (
            count * width * height / 1e6 * route.speed.seconds_per_megapixel_frame
        )
        return OutputPlan(
            route=route,
            width=width,
            height=height,
            tier=tier,
            credits=price_for(route, tier) * count,
            estimated_seconds=max(1, math.ceil(estimated)),
            n=count,
        )

    def _resolve_size(
        self,
        route: ModelRoute,
        size: str | None,
        resolution: str | None,
        aspect_ratio: str | None,
    ) -> tuple[int, int]:
        caps = route.capabilities
        if size is not None and (resolution is not None or aspect_ratio is not None):
            raise InvalidValue(
                "Give either size (e.g. '1280x720') or resolution + aspect_ratio, not both.",
                param="size",
            )
        param = "size"
        if size is not None:
            match = _SIZE_RE.match(size.strip().lower())
            if match is None:
                raise InvalidValue(
                    f"size must look like '1280x720' (width x height); got {size!r}.",
                    param="size",
                )
            width, height = int(match[1]), int(match[2])
        elif resolution is not None or aspect_ratio is not None:
            param = "resolution"
            width, height = _from_resolution(
                resolution or "720p", aspect_ratio or "16:9", caps.size_multiple
            )
            if caps.sizes is not None:
                width, height = _closest_listed(route, width, height, resolution or "720p")
        else:
            width, height = _parse_size(caps.default_size)
        self._check_size(route, width, height, param)
        return width, height

    @staticmethod
    def _check_size(route: ModelRoute, width: int, height: int, param: str) -> None:
        caps = route.capabilities
        label = f"{width}x{height}"
        if caps.sizes is not None:
            if label not in caps.sizes:
                raise InvalidValue(
                    f"{param} {label} is not offered by {route.id!r}; "
                    f"choose one of: {', '.join(caps.sizes)}.",
                    param=param,
                )
            return
        problems = []
        if width % caps.size_multiple or height % caps.size_multiple:
            problems.append(f"width and height must be multiples of {caps.size_multiple}")
        if min(width, height) < caps.min_side or max(width, height) > caps.max_side:
            problems.append(f"each side must be between {caps.min_side} and {caps.max_side}")
        if width * height > caps.max_pixels:
            problems.append(f"at most {caps.max_pixels} pixels")
        if problems:
            raise InvalidValue(
                f"{param} {label} is not valid for {route.id!r}: {'; '.join(problems)}.",
                param=param,
            )


def _clip_length(
    route: ModelRoute, duration: int | None, num_frames: int | None, rate: int
) -> tuple[int, int]:
    """Billable whole seconds and the exact frame count, from duration or num_frames."""
    caps = route.capabilities
    step = caps.frame_step
    if num_frames is not None:
        if duration is not None:
            raise InvalidValue("Give either duration or num_frames, not both.", param="num_frames")
        frames = num_frames
        if step > 1 and (frames - 1) % step:
            below = (frames - 1) // step * step + 1
            raise InvalidValue(
                f"num_frames must be {step}k+1 for {route.id!r} (e.g. {below} or "
                f"{below + step}); got {frames}.",
                param="num_frames",
            )
        # A k*step+1 clip spans (frames - 1) frame intervals.
        span = (frames - 1) if step > 1 else frames
        seconds = max(1, math.ceil(span / rate - 1e-9))
        param = "num_frames"
    else:
        seconds = caps.default_duration if duration is None else duration
        frames = seconds * rate
        if step > 1:
            # Round up to the next count the model can make (Wan: 5 s at 16 fps -> 81).
            frames = math.ceil((frames - 1) / step) * step + 1
        param = "duration"
    if caps.max_frames is not None and frames > caps.max_frames:
        raise InvalidValue(
            f"{route.id!r} makes at most {caps.max_frames} frames per clip; this request "
            f"needs {frames} ({seconds} s at {rate} fps). Shorten it or lower fps.",
            param=param,
        )
    if not caps.min_duration <= seconds <= caps.max_duration:
        got = f"{frames} frames at {rate} fps is {seconds} s" if num_frames else f"got {seconds}"
        raise InvalidValue(
            f"duration must be between {caps.min_duration} and {caps.max_duration} "
            f"seconds for {route.id!r}; {got}.",
            param=param,
        )
    return seconds, frames


def _closest_listed(route: ModelRoute, width: int, height: int, tier: str) -> tuple[int, int]:
    """The route's listed size of this tier whose aspect ratio is closest to the request's."""
    wanted = width / height
    options = []
    for label in route.capabilities.sizes or []:
        w, h = _parse_size(label)
        if tier_for(w, h) == tier:
            # Closest aspect ratio first; then the size whose short side is the tier's.
            aspect = round(abs(math.log((w / h) / wanted)), 6)
            options.append((aspect, abs(min(w, h) - TIER_SHORT_SIDE[tier]), w, h))
    if not options:
        raise InvalidValue(
            f"{route.id!r} offers no {tier} size; choose one of: "
            f"{', '.join(route.capabilities.sizes or [])}.",
            param="resolution",
        )
    _, _, w, h = min(options)
    return w, h


def _parse_size(value: str) -> tuple[int, int]:
    match = _SIZE_RE.match(value)
    if match is None:
        raise CatalogError(f"invalid default size {value!r}")
    return int(match[1]), int(match[2])


def _from_resolution(resolution: str, aspect_ratio: str, multiple: int) -> tuple[int, int]:
    if resolution not in TIER_SHORT_SIDE:
        raise InvalidValue(
            f"resolution must be one of {', '.join(RESOLUTION_TIERS)}; got {resolution!r}.",
            param="resolution",
        )
    match = _ASPECT_RE.match(aspect_ratio.strip())
    if match is None or int(match[1]) == 0 or int(match[2]) == 0:
        raise InvalidValue(
            f"aspect_ratio must look like '16:9'; got {aspect_ratio!r}.", param="aspect_ratio"
        )
    a, b = int(match[1]), int(match[2])
    # Within the tier: round the short side down to the size multiple (LTX 720p: 704).
    short = TIER_SHORT_SIDE[resolution] // multiple * multiple
    long = round(short * max(a, b) / min(a, b) / multiple) * multiple
    return (long, short) if a >= b else (short, long)


def tier_for(width: int, height: int) -> ResolutionTier:
    short = min(width, height)
    for tier in RESOLUTION_TIERS:
        if short <= TIER_SHORT_SIDE[tier]:
            return tier
    return RESOLUTION_TIERS[-1]


def price_for(route: ModelRoute, tier: ResolutionTier) -> int:
    """The tier's price, or the next higher tier's when the route does not list it."""
    prices = route.pricing.credits
    for candidate in RESOLUTION_TIERS[RESOLUTION_TIERS.index(tier) :]:
        if candidate in prices:
            return prices[candidate]
    return max(prices.values())
