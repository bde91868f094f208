"""Another framegate installation as an upstream: installations federate through the
framegate-client SDK (the same native API every framegate serves)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from framegate_client import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AsyncFramegate,
    RateLimitError,
)
from pydantic import BaseModel, ConfigDict, Field

from framegate.engines.base import GenerationRequest
from framegate.engines.vendors import base
from framegate.engines.vendors.kit import image_data_uri
from framegate.exceptions import InvalidValue, PayloadTooLarge
from framegate.kit.safe_fetch import FetchPolicy, save_capped

# Codes of the upstream installation's failed tasks that mean the content was refused.
_MODERATION_CODES = {base.MODERATION_BLOCKED, "content_policy_violation"}


class FramegateRouteSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, description="The model (route id) on the upstream.")


class FramegateEngine(base.VendorEngine):
    """``engine: framegate`` routes send tasks to FRAMEGATE_UPSTREAM_FRAMEGATE_URL."""

    name = "framegate"
    settings_model = FramegateRouteSettings
    default_poll_interval = 2.0

    def is_available(self, settings: Mapping[str, Any]) -> bool:
        return bool(self.api_key and self.base_url)

    def refuse(self, settings: Mapping[str, Any], shape: base.VendorShape) -> None:
        if shape.has_last_image:
            raise InvalidValue(
                "last_image is not forwarded to an upstream framegate installation; drop it "
                "or choose a local model with first_last_frame.",
                param="last_image",
            )

    def _client(self) -> AsyncFramegate:
        # framegate's own scheduler retries: the SDK's retries are off.
        return AsyncFramegate(
            api_key=self.api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0
        )

    async def submit(self, request: GenerationRequest) -> base.UpstreamJob:
        options = self.route_settings(request.settings)
        image = image_data_uri(request.input_image) if request.input_image is not None else None
        async with self._client() as client:
            try:
                task = await client.videos.create(
                    options.model,
                    request.prompt,
                    duration=round(request.duration) or None,
                    size=f"{request.width}x{request.height}",
                    fps=request.fps or None,
                    input_image=image,
                    negative_prompt=request.negative_prompt,
                    seed=request.seed,
                    # A resubmission after a lost answer finds the same upstream task.
                    idempotency_key=f"{request.task_id}:submit",
                )
            except APIError as exc:
                raise _mapped(exc) from None
            except APITimeoutError as exc:
                raise base.UpstreamError(
                    "framegate upstream: submission timed out",
                    code=base.UPSTREAM_TIMEOUT,
                    retriable=True,
                ) from exc
            except APIConnectionError as exc:
                raise base.unavailable(f"framegate upstream: {exc}") from exc
        return base.UpstreamJob(task.id)

    async def poll(self, job: base.UpstreamJob, request: GenerationRequest) -> base.UpstreamStatus:
        async with self._client() as client:
            try:
                task = await client.tasks.retrieve(job.id)
            except APIError as exc:
                raise _mapped(exc) from None
            except APIConnectionError as exc:
                raise base.unavailable(f"framegate upstream: {exc}") from exc
        if task.status in ("queued", "processing"):
            return base.UpstreamStatus("pending", progress=task.progress / 100)
        if task.status == "completed" and task.result and task.result.data:
            return base.UpstreamStatus("succeeded", progress=1.0, video_url=task.result.data[0].url)
        code = task.error.code if task.error else "upstream_error"
        message = task.error.message if task.error else f"upstream task {task.status}"
        mapped = base.MODERATION_BLOCKED if code in _MODERATION_CODES else "upstream_error"
        return base.UpstreamStatus(
            "failed", error=base.UpstreamError(f"framegate upstream: {message}", code=mapped)
        )

    async def cancel(self, job: base.UpstreamJob, request: GenerationRequest) -> None:
        async with self._client() as client:
            with contextlib.suppress(APIError, APIConnectionError):
                await client.tasks.cancel(job.id)

    async def download(self, url: str, destination: Path, policy: FetchPolicy) -> None:
        # Output URLs on the configured installation are trusted like its API; anything
        # else is fetched under the public-address rules.
        if httpx.URL(url).host != httpx.URL(self.base_url).host:
            await super().download(url, destination, policy)
            return
        try:
            async with self.http() as http, http.stream("GET", url) as response:
                if response.status_code >= 400:
                    raise base.classify_status(
                        response.status_code,
                        f"framegate upstream: download failed with HTTP {response.status_code}",
                        response.headers,
                    )
                try:
                    await save_capped(
                        response.aiter_bytes(),
                        destination,
                        max_bytes=policy.max_bytes,
                        param="result",
                    )
                except PayloadTooLarge:
                    raise base.UpstreamError(
                        "framegate upstream: the result is too large"
                    ) from None
        except httpx.HTTPError as exc:
            raise base.unavailable(f"framegate upstream: download failed: {exc}") from exc


def _mapped(exc: APIError) -> base.UpstreamError:
    if isinstance(exc, RateLimitError):
        error = base.classify_status(
            429, f"framegate upstream: {exc.message}", exc.response.headers
        )
        return error
    return base.classify_status(
        exc.status_code, f"framegate upstream: {exc.message}", exc.response.headers
    )
