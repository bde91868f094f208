"""Luma Dream Machine (Ray 2) through the official ``lumaai`` SDK.

The API (``{base}`` = ``FRAMEGATE_LUMA_BASE_URL``, by default
``https://api.lumalabs.ai/dream-machine/v1``; ``Authorization: Bearer <key>``):

* ``POST {base}/generations/video`` with ``{"model", "prompt", "resolution": "540p|720p|1080p",
  "aspect_ratio": "16:9|9:16|1:1|4:3|3:4|21:9|9:21", "duration": "5s|9s", "loop",
  "keyframes": {"frame0": {"type": "image", "url"}, "frame1": {...}}}`` answers ``201`` with a
  Generation (``id``, ``state``...);
* ``GET {base}/generations/{id}``: ``state`` goes ``queued`` -> ``dreaming`` -> ``completed``
  (``assets.video`` is the MP4's URL) or ``failed`` (``failure_reason``, moderation
  included: "Advanced prompt moderation failed", "Frame moderation failed"...);
* ``DELETE {base}/generations/{id}``;
* errors are ``{"detail": "..."}`` with the HTTP status.

Luma takes keyframe images only by URL, so image-to-video needs the signed public URLs of
the stored inputs (``FRAMEGATE_PUBLIC_URL``). Luma has no negative prompt and no seed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import lumaai
from lumaai import AsyncLumaAI
from lumaai.types import Generation
from lumaai.types.generation_create_params import Keyframes
from pydantic import BaseModel, ConfigDict

from framegate.engines.base import GenerationRequest
from framegate.engines.vendors import base
from framegate.engines.vendors.kit import size_table
from framegate.exceptions import InvalidValue

logger = logging.getLogger(__name__)

LumaModel = Literal["ray-2", "ray-flash-2"]
LumaResolution = Literal["540p", "720p", "1080p"]
LumaAspectRatio = Literal["16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21"]

RESOLUTIONS: tuple[LumaResolution, ...] = ("540p", "720p", "1080p")
ASPECT_RATIOS: tuple[LumaAspectRatio, ...] = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21")
DURATIONS: dict[int, str] = {5: "5s", 9: "9s"}
FPS = 24
# "WxH" -> (resolution, aspect_ratio): every size Luma renders.
SIZES = size_table(RESOLUTIONS, ASPECT_RATIOS)

# failure_reason / error detail words that mean Luma's safety filters refused the request.
_MODERATION_WORDS = ("moderation", "content policy", "blacklisted", "unsafe", "nsfw")


class LumaSettings(BaseModel):
    """A Luma route's settings."""

    model_config = ConfigDict(extra="forbid")

    # Luma's model name.
    model: LumaModel = "ray-2"
    # Ask for a seamlessly looping clip (Luma refuses it with an end frame).
    loop: bool = False


def _is_moderation(text: str | None) -> bool:
    lowered = (text or "").lower()
    return any(word in lowered for word in _MODERATION_WORDS)


def _detail(body: object) -> str:
    """The human part of Luma's ``{"detail": ...}`` error body, shortened."""
    detail: object = body
    if isinstance(body, Mapping):
        detail = body.get("detail", body)
    text = detail if isinstance(detail, str) else repr(detail)
    text = " ".join(text.split())
    return text[:500] + ("..." if len(text) > 500 else "")


class LumaEngine(base.VendorEngine):
    """Luma Dream Machine: text-to-video, first frame and/or last frame by URL."""

    name = "luma"
    key_setting = "FRAMEGATE_LUMA_API_KEY"
    settings_model: ClassVar[type[BaseModel]] = LumaSettings
    default_poll_interval: ClassVar[float] = 5.0

    # -- catalog -------------------------------------------------------------------------

    def refuse(self, settings: Mapping[str, Any], shape: base.VendorShape) -> None:
        options: LumaSettings = self.route_settings(settings)
        base.refuse_size(shape, SIZES, "Luma")
        base.refuse_duration(shape, DURATIONS, "Luma")
        base.refuse_fps(shape, FPS, f"Luma (it renders at {FPS} fps)")
        base.refuse_num_frames(shape, FPS, list(DURATIONS), "Luma")
        base.refuse_inputs(shape, "Luma", negative_prompt=False, seed=False)
        if shape.has_last_image and options.loop:
            raise InvalidValue(
                "this Luma route makes looping clips, which cannot have a last frame; "
                "remove last_image or use a route without loop.",
                param="last_image",
            )

    # -- jobs ----------------------------------------------------------------------------

    def _client(self) -> AsyncLumaAI:
        return AsyncLumaAI(
            auth_token=self.require_key(),
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=0,
        )

    def _error(self, exc: lumaai.LumaAIError, action: str) -> base.UpstreamError:
        """An SDK exception as an UpstreamError (never carrying the key); a refused
        request whose detail speaks of moderation is ``moderation_blocked``."""
        error = self.sdk_error(exc, action, lumaai, _detail)
        if error.status_code in (400, 422) and _is_moderation(error.message):
            return base.UpstreamError(
                error.message, code=base.MODERATION_BLOCKED, status_code=error.status_code
            )
        return error

    def _keyframes(self, request: GenerationRequest) -> Keyframes | None:
        first = self._image_url(request.input_image, request.input_image_url, "input_image")
        last = self._image_url(request.last_image, request.last_image_url, "last_image")
        keyframes: Keyframes = {}
        if first is not None:
            keyframes["frame0"] = {"type": "image", "url": first}
        if last is not None:
            keyframes["frame1"] = {"type": "image", "url": last}
        return keyframes or None

    @staticmethod
    def _image_url(image: object, url: str | None, field: str) -> str | None:
        if url:
            return url
        if image is not None:
            raise base.UpstreamError(
                f"luma: Luma takes {field} only by URL and this installation has no public "
                "URL for stored images; the operator must set FRAMEGATE_PUBLIC_URL.",
                code=base.UPSTREAM_INVALID,
            )
        return None

    async def submit(self, request: GenerationRequest) -> base.UpstreamJob:
        options: LumaSettings = self.route_settings(request.settings)
        resolution, aspect_ratio = self.size_entry(SIZES, request)
        duration = DURATIONS.get(round(request.duration))
        if duration is None or abs(request.duration - round(request.duration)) > 1e-6:
            raise base.UpstreamError(
                f"luma: duration {request.duration:g} s is not 5 or 9 s.",
                code=base.UPSTREAM_INVALID,
            )
        keyframes = self._keyframes(request)
        extra: dict[str, Any] = {}
        if keyframes is not None:
            extra["keyframes"] = keyframes
        if request.prompt:
            extra["prompt"] = request.prompt
        try:
            async with self._client() as client:
                generation = await client.generations.create(
                    model=options.model,
                    resolution=resolution,
                    aspect_ratio=aspect_ratio,
                    duration=duration,
                    loop=options.loop,
                    **extra,
                )
        except lumaai.LumaAIError as exc:
            raise self._error(exc, "creating the generation") from exc
        if not generation.id:
            raise base.UpstreamError("luma: the API answered a generation without an id.")
        return base.UpstreamJob(id=generation.id, data={"model": options.model})

    async def poll(self, job: base.UpstreamJob, request: GenerationRequest) -> base.UpstreamStatus:
        try:
            async with self._client() as client:
                generation = await client.generations.get(job.id)
        except lumaai.LumaAIError as exc:
            raise self._error(exc, f"reading generation {job.id}") from exc
        return self._status(generation, job.id)

    def _status(self, generation: Generation, job_id: str) -> base.UpstreamStatus:
        state = generation.state
        if state in ("queued", "dreaming"):
            return base.UpstreamStatus(state="pending")
        if state == "completed":
            video = generation.assets.video if generation.assets else None
            if not video:
                return base.UpstreamStatus(
                    state="failed",
                    error=base.UpstreamError(
                        f"luma: generation {job_id} completed without a video.",
                        code=base.UPSTREAM_ERROR,
                    ),
                )
            return base.UpstreamStatus(state="succeeded", progress=1.0, video_url=video)
        if state == "failed":
            reason = self.scrub(generation.failure_reason or "no reason given")
            code = base.MODERATION_BLOCKED if _is_moderation(reason) else base.UPSTREAM_ERROR
            return base.UpstreamStatus(
                state="failed",
                error=base.UpstreamError(f"luma: generation {job_id} failed: {reason}", code=code),
            )
        if state is None:
            raise base.UpstreamError(f"luma: generation {job_id} was answered without a state.")
        # A state this SDK does not know yet: keep polling until the task's deadline.
        logger.warning("luma: generation %s has unknown state %r", job_id, state)
        return base.UpstreamStatus(state="pending")

    async def cancel(self, job: base.UpstreamJob, request: GenerationRequest) -> None:
        """Luma has no cancel; deleting the generation is the closest (best effort)."""
        try:
            async with self._client() as client:
                await client.generations.delete(job.id)
        except (lumaai.LumaAIError, base.UpstreamError) as exc:
            logger.info("luma: deleting generation %s failed: %s", job.id, self.scrub(str(exc)))
