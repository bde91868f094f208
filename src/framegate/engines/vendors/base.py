"""Upstream vendor engines: submit a job, poll it, download the result.

A vendor engine never holds a worker slot while the vendor works: the worker calls
``submit`` once, stores the returned :class:`UpstreamJob` on the task and parks it; later
claims call ``poll`` (one short request each) until the job has succeeded or failed; then
``download`` fetches the video into a scratch directory and the worker stores it in
framegate's storage (vendor URLs expire). Engines never touch the database.

Failures are :class:`UpstreamError`s with framegate codes. ``retriable`` ones (the vendor's
429 and 5xx, timeouts, connection errors) are tried again later, honouring ``retry_after``;
the others fail the task (with a full refund) or, before any output exists, move it to the
route's next fallback.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from framegate.engines.base import (
    MODERATION_BLOCKED,
    UPSTREAM_AUTH,
    UPSTREAM_ERROR,
    UPSTREAM_INVALID,
    UPSTREAM_RATE_LIMITED,
    UPSTREAM_TIMEOUT,
    UPSTREAM_UNAVAILABLE,
    EngineError,
    GenerationRequest,
    UpstreamError,
    UpstreamJob,
    UpstreamStatus,
)
from framegate.exceptions import FramegateError, InvalidValue
from framegate.kit.http import retry_after_seconds, tls_context
from framegate.kit.safe_fetch import FetchPolicy, fetch_to_file

# The contract types, for the vendor modules.
__all__ = [
    "MODERATION_BLOCKED",
    "UPSTREAM_AUTH",
    "UPSTREAM_ERROR",
    "UPSTREAM_INVALID",
    "UPSTREAM_RATE_LIMITED",
    "UPSTREAM_TIMEOUT",
    "UPSTREAM_UNAVAILABLE",
    "UpstreamError",
    "UpstreamJob",
    "UpstreamStatus",
    "VendorEngine",
    "VendorShape",
    "classify_status",
    "json_body",
    "rate_limited",
    "timed_out",
    "unavailable",
]

T = TypeVar("T")


def rate_limited(message: str, retry_after: float | None = None) -> UpstreamError:
    return UpstreamError(
        message,
        code=UPSTREAM_RATE_LIMITED,
        retriable=True,
        retry_after=retry_after,
        status_code=429,
    )


def unavailable(message: str, status_code: int | None = None) -> UpstreamError:
    return UpstreamError(
        message, code=UPSTREAM_UNAVAILABLE, retriable=True, status_code=status_code
    )


def timed_out(message: str) -> UpstreamError:
    return UpstreamError(message, code=UPSTREAM_TIMEOUT, retriable=True)


def classify_status(status_code: int, message: str, headers: Mapping[str, str]) -> UpstreamError:
    """The usual mapping of an HTTP error status to an UpstreamError."""
    if status_code == 429:
        return rate_limited(message, retry_after_seconds(headers.get("retry-after")))
    if status_code >= 500 or status_code == 408:
        return unavailable(message, status_code)
    if status_code in (401, 403):
        return UpstreamError(message, code=UPSTREAM_AUTH, status_code=status_code)
    return UpstreamError(message, code=UPSTREAM_INVALID, status_code=status_code)


def json_body(response: httpx.Response) -> Any:
    """The response's JSON, or None when it has none."""
    try:
        return response.json()
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class VendorShape:
    """The request fields a vendor may refuse before credits are held."""

    width: int
    height: int
    duration: int
    fps: int
    num_frames: int
    has_image: bool
    has_last_image: bool
    has_negative_prompt: bool
    has_seed: bool
    # Characters of the prompt (vendors with a shorter limit than framegate's 4000).
    prompt_length: int = 0

    @property
    def size(self) -> str:
        """``"WxH"``, as the vendors' size tables are keyed."""
        return f"{self.width}x{self.height}"


# -- refusals ------------------------------------------------------------------------------
# The rules several vendors share, each worded once; ``vendor`` names what refuses (e.g.
# "Luma", "Runway gen4_turbo", "fal app 'fal-ai/wan-i2v'"). A limit of None (a route's
# settings that leave it open) refuses nothing.


def spoken(values: Sequence[int]) -> str:
    """Whole numbers as a sentence says them: "5", "5 or 9", "4, 6 or 8"; a run of more
    than two consecutive ones as "2 to 10"."""
    items = [str(value) for value in values]
    if len(values) > 2 and list(values) == list(range(values[0], values[-1] + 1)):
        return f"{values[0]} to {values[-1]}"
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def refuse_size(shape: VendorShape, sizes: Collection[str] | None, vendor: str) -> None:
    if sizes is not None and shape.size not in sizes:
        raise InvalidValue(
            f"size {shape.size} is not made by {vendor}; choose one of: {', '.join(sizes)}.",
            param="size",
        )


def refuse_duration(shape: VendorShape, durations: Collection[int] | None, vendor: str) -> None:
    if durations is not None and shape.duration not in durations:
        raise InvalidValue(
            f"duration must be {spoken(sorted(durations))} seconds for {vendor}; "
            f"got {shape.duration}.",
            param="duration",
        )


def refuse_fps(shape: VendorShape, fps: int | None, vendor: str) -> None:
    """Refuse any frame rate but the vendor's fixed one."""
    if fps is not None and shape.fps != fps:
        raise InvalidValue(f"fps must be {fps} for {vendor}; got {shape.fps}.", param="fps")


def refuse_num_frames(
    shape: VendorShape,
    fps: int,
    durations: Sequence[int],
    vendor: str,
    *,
    param: str = "num_frames",
) -> None:
    """Refuse a frame count other than the (accepted) duration's at the vendor's fixed
    ``fps``: the vendor makes whole ``durations`` only."""
    if shape.num_frames != shape.duration * fps:
        frames = spoken([seconds * fps for seconds in durations])
        raise InvalidValue(
            f"{vendor} makes {frames} frames ({spoken(durations)} s at {fps} fps); got "
            f"num_frames {shape.num_frames}. Give duration instead.",
            param=param,
        )


def refuse_frame_range(shape: VendorShape, frames: tuple[int, int] | None, vendor: str) -> None:
    """Refuse a frame count outside the model's inclusive bounds, saying which durations
    fit them at the requested frame rate."""
    if frames is None:
        return
    low, high = frames
    if not low <= shape.num_frames <= high:
        rate = max(1, shape.fps)
        shortest = max(1, math.ceil((low - 1) / rate))
        longest = max(shortest, high // rate)
        span = f"{shortest}" if shortest == longest else f"{shortest} to {longest}"
        raise InvalidValue(
            f"{vendor} makes {low} to {high} frames; this request needs {shape.num_frames} "
            f"({shape.duration} s at {shape.fps} fps). At {shape.fps} fps choose a duration "
            f"of about {span} s, or change fps.",
            param="duration",
        )


def refuse_inputs(
    shape: VendorShape,
    vendor: str,
    *,
    text_to_video: bool = True,
    input_image: bool = True,
    last_image: bool = True,
    negative_prompt: bool = True,
    seed: bool = True,
) -> None:
    """Refuse the request fields the vendor does not take: each flag says whether it takes
    that field (``text_to_video``: a request without input_image)."""
    if not text_to_video and not shape.has_image:
        raise InvalidValue(
            f"{vendor} is image-to-video only; give input_image (the first frame).",
            param="input_image",
        )
    if not input_image and shape.has_image:
        raise InvalidValue(
            f"{vendor} is text-to-video only; drop input_image or choose an image-to-video model.",
            param="input_image",
        )
    if not last_image and shape.has_last_image:
        raise InvalidValue(
            f"{vendor} takes no last frame; drop last_image or choose a model whose "
            "capabilities include first_last_frame.",
            param="last_image",
        )
    if not negative_prompt and shape.has_negative_prompt:
        raise InvalidValue(
            f"{vendor} takes no negative prompt; drop negative_prompt (describe what you want "
            "in the prompt instead).",
            param="negative_prompt",
        )
    if not seed and shape.has_seed:
        raise InvalidValue(
            f"{vendor} takes no seed (its output is not reproducible); drop seed.", param="seed"
        )


class VendorEngine(ABC):
    """Base of the vendor engines. Subclasses set ``name`` and ``settings_model`` and
    implement ``submit``, ``poll`` (and ``refuse`` for what they cannot do)."""

    name: str
    # The pydantic model of a route's ``settings`` (e.g. the vendor's model name).
    settings_model: ClassVar[type[BaseModel]]
    # Seconds between polls when the vendor gives no hint.
    default_poll_interval: ClassVar[float] = 5.0
    # The operator's setting that holds the API key (named when it is missing).
    key_setting: ClassVar[str] = ""

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str,
        timeout: float = 30.0,
        poll_interval: float | None = None,
    ) -> None:
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.poll_interval = poll_interval or self.default_poll_interval

    # -- catalog -------------------------------------------------------------------------

    def is_available(self, settings: Mapping[str, Any]) -> bool:
        return bool(self.api_key)

    def route_settings(self, settings: Mapping[str, Any]) -> Any:
        try:
            return self.settings_model.model_validate(dict(settings))
        except ValidationError as exc:
            raise EngineError(
                f"invalid {self.name} settings: {exc}", code="invalid_settings"
            ) from exc

    def check_route(self, route: Any) -> None:
        """Refuse a route whose settings this vendor cannot use (raises ValueError)."""
        try:
            self.settings_model.model_validate(route.settings)
        except ValidationError as exc:
            raise ValueError(f"settings: {exc}") from exc

    def refuse(self, settings: Mapping[str, Any], shape: VendorShape) -> None:  # noqa: B027
        """Raise framegate.exceptions.InvalidValue (naming the field) for a request the
        vendor cannot serve; called before credits are held. Default: accept."""

    # -- jobs ----------------------------------------------------------------------------

    @abstractmethod
    async def submit(self, request: GenerationRequest) -> UpstreamJob:
        """Start the job upstream; raise UpstreamError."""

    @abstractmethod
    async def poll(self, job: UpstreamJob, request: GenerationRequest) -> UpstreamStatus:
        """One status request; raise UpstreamError for transport/HTTP errors."""

    async def cancel(self, job: UpstreamJob, request: GenerationRequest) -> None:  # noqa: B027
        """Best effort: stop the job upstream when the task is cancelled."""

    async def download(self, url: str, destination: Path, policy: FetchPolicy) -> None:
        """Fetch the finished video from the URL the vendor gave. The URL comes from
        outside, so it is fetched under the same rules as input images (public addresses
        only, pinned, capped by ``policy.max_bytes``), streamed to ``destination`` rather
        than held in memory. Override when the URL needs the vendor's credentials (then it
        is on the operator-configured API host)."""
        try:
            await fetch_to_file(url, destination, policy, param="result", accept="video/*")
        except FramegateError as exc:
            raise UpstreamError(
                f"{self.name}: downloading the result failed: {exc.message}"
            ) from exc

    # -- helpers for subclasses ------------------------------------------------------------

    def http(self, **kwargs: Any) -> httpx.AsyncClient:
        """An httpx client for this vendor's REST API (the operator-configured host)."""
        options: dict[str, Any] = {
            "timeout": self.timeout,
            "base_url": self.base_url,
            "verify": tls_context(),
        }
        options.update(kwargs)
        return httpx.AsyncClient(**options)

    def require_key(self) -> str:
        """The API key; an ``upstream_auth`` UpstreamError when the operator set none."""
        if not self.api_key:
            where = f" ({self.key_setting})" if self.key_setting else ""
            raise UpstreamError(f"{self.name}: no API key is configured{where}", code=UPSTREAM_AUTH)
        return self.api_key

    def scrub(self, text: str) -> str:
        """Vendor text with the operator's key (should it ever be echoed) masked."""
        return text.replace(self.api_key, "***") if self.api_key else text

    def size_entry(self, table: Mapping[str, T], request: GenerationRequest) -> T:
        """The entry of a size table (keyed ``"WxH"``) for the request's size."""
        label = f"{request.width}x{request.height}"
        if label not in table:
            raise UpstreamError(
                f"{self.name}: size {label} is not one this model makes", code=UPSTREAM_INVALID
            )
        return table[label]

    def transport_error(self, exc: httpx.HTTPError, what: str) -> UpstreamError:
        """A request that got no HTTP answer (timed out, or no connection): retriable."""
        kind = type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return timed_out(f"{self.name}: {what}: no answer within {self.timeout:g} s ({kind})")
        return unavailable(
            self.scrub(f"{self.name}: {what}: could not reach the API ({kind}: {exc})")
        )

    def sdk_error(
        self, exc: Exception, what: str, sdk: ModuleType, describe: Callable[[object], str]
    ) -> UpstreamError:
        """An exception of a Stainless-generated vendor SDK (``lumaai``, ``runwayml``: each
        package has the same exception classes) as an UpstreamError; ``describe`` reads the
        vendor's error body."""
        if isinstance(exc, sdk.APITimeoutError):
            return timed_out(f"{self.name}: {what}: no answer within {self.timeout:g} s")
        if isinstance(exc, sdk.APIConnectionError):
            return unavailable(f"{self.name}: {what}: could not reach the API")
        if isinstance(exc, sdk.APIStatusError):
            status = exc.status_code
            message = f"{self.name}: {what} failed: HTTP {status}: {describe(exc.body)}"
            return classify_status(status, self.scrub(message), exc.response.headers)
        return UpstreamError(self.scrub(f"{self.name}: {what} failed: {exc}"))
