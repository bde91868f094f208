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

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

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
from framegate.exceptions import FramegateError
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
    "rate_limited",
    "unavailable",
]


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


def classify_status(status_code: int, message: str, headers: Mapping[str, str]) -> UpstreamError:
    """The usual mapping of an HTTP error status to an UpstreamError."""
    if status_code == 429:
        return rate_limited(message, retry_after_seconds(headers.get("retry-after")))
    if status_code >= 500 or status_code == 408:
        return unavailable(message, status_code)
    if status_code in (401, 403):
        return UpstreamError(message, code=UPSTREAM_AUTH, status_code=status_code)
    return UpstreamError(message, code=UPSTREAM_INVALID, status_code=status_code)


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


class VendorEngine(ABC):
    """Base of the vendor engines. Subclasses set ``name`` and ``settings_model`` and
    implement ``submit``, ``poll`` (and ``refuse`` for what they cannot do)."""

    name: str
    # The pydantic model of a route's ``settings`` (e.g. the vendor's model name).
    settings_model: ClassVar[type[BaseModel]]
    # Seconds between polls when the vendor gives no hint.
    default_poll_interval: ClassVar[float] = 5.0

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
