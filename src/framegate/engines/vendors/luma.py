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
from framegate.exceptions import InvalidValue

logger = logging.getLogger(__name__)

LumaModel = Literal["ray-2", "ray-flash-2"]
LumaResolution = Literal["540p", "720p", "1080p"]
LumaAspectRatio = Literal["16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21"]

RESOLUTIONS: dict[LumaResolution, int] = {"540p": 540, "720p": 720, "1080p": 1080}
ASPECT_RATIOS: tuple[LumaAspectRatio, ...] = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21")
DURATIONS: dict[int, str] = {5: "5s", 9: "9s"}
FPS = 24

# failure_reason / error detail words that mean Luma's safety filters refused the request.
_MODERATION_WORDS = ("moderation", "content policy", "blacklisted", "unsafe", "nsfw")


def _size_for(resolution: LumaResolution, aspect_ratio: LumaAspectRatio) -> tuple[int, int]:
    """The frame size of a Luma resolution (the short side) and aspect ratio."""
    a, b = (int(part) for part in aspect_ratio.split(":"))
    short = RESOLUTIONS[resolution]
    long = short * max(a, b) // min(a, b)
    return (long, short) if a >= b else (short, long)


# "WxH" -> (resolution, aspect_ratio): every size Luma renders.
SIZES: dict[str, tuple[LumaResolution, LumaAspectRatio]] = {
    "{}x{}".format(*_size_for(resolution, ratio)): (resolution, ratio)
    for resolution in RESOLUTIONS
    for ratio in ASPECT_RATIOS
}


def _sizes_of(*resolutions: LumaResolution) -> list[str]:
    return [label for label, (res, _) in SIZES.items() if res in resolutions]


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
    settings_model: ClassVar[type[BaseModel]] = LumaSettings
    default_poll_interval: ClassVar[float] = 5.0

    # -- catalog -------------------------------------------------------------------------

    def refuse(self, settings: Mapping[str, Any], shape: base.VendorShape) -> None:
        options: LumaSettings = self.route_settings(settings)
        label = f"{shape.width}x{shape.height}"
        if label not in SIZES:
            raise InvalidValue(
                f"size {label} is not a size Luma renders; choose one of: "
                f"{', '.join(SIZES)} (540p, 720p or 1080p at 16:9, 9:16, 1:1, 4:3, 3:4, "
                "21:9 or 9:21).",
                param="size",
            )
        if shape.duration not in DURATIONS:
            raise InvalidValue(
                f"duration must be 5 or 9 seconds for Luma; got {shape.duration}.",
                param="duration",
            )
        if shape.fps != FPS:
            raise InvalidValue(
                f"fps must be {FPS} for Luma (it renders at {FPS} fps); got {shape.fps}.",
                param="fps",
            )
        if shape.num_frames != shape.duration * FPS:
            raise InvalidValue(
                f"Luma renders whole 5 s or 9 s clips ({5 * FPS} or {9 * FPS} frames at "
                f"{FPS} fps); got num_frames={shape.num_frames}. Give duration 5 or 9 instead.",
                param="num_frames",
            )
        if shape.has_negative_prompt:
            raise InvalidValue(
                "Luma has no negative prompt; remove negative_prompt (describe what you want "
                "in the prompt instead).",
                param="negative_prompt",
            )
        if shape.has_seed:
            raise InvalidValue(
                "Luma does not take a seed; remove seed.",
                param="seed",
            )
        if shape.has_last_image and options.loop:
            raise InvalidValue(
                "this Luma route makes looping clips, which cannot have a last frame; "
                "remove last_image or use a route without loop.",
                param="last_image",
            )

    # -- jobs ----------------------------------------------------------------------------

    def _client(self) -> AsyncLumaAI:
        if not self.api_key:
            raise base.UpstreamError(
                "luma: no API key is configured (set FRAMEGATE_LUMA_API_KEY).",
                code=base.UPSTREAM_AUTH,
            )
        return AsyncLumaAI(
            auth_token=self.api_key,
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=0,
        )

    def _scrub(self, text: str) -> str:
        if self.api_key:
            text = text.replace(self.api_key, "***")
        return text

    def _error(self, exc: lumaai.LumaAIError, action: str) -> base.UpstreamError:
        """An SDK exception as an UpstreamError (never carrying the key)."""
        if isinstance(exc, lumaai.APITimeoutError):
            return base.UpstreamError(
                f"luma: {action} timed out.", code=base.UPSTREAM_TIMEOUT, retriable=True
            )
        if isinstance(exc, lumaai.APIConnectionError):
            return base.unavailable(f"luma: {action} failed: could not connect to the Luma API.")
        if isinstance(exc, lumaai.APIStatusError):
            detail = self._scrub(_detail(exc.body))
            message = f"luma: {action} failed: HTTP {exc.status_code}: {detail}"
            if exc.status_code in (400, 422) and _is_moderation(detail):
                return base.UpstreamError(
                    message, code=base.MODERATION_BLOCKED, status_code=exc.status_code
                )
            return base.classify_status(exc.status_code, message, exc.response.headers)
        return base.UpstreamError(f"luma: {action} failed: {self._scrub(str(exc))}")

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
        label = f"{request.width}x{request.height}"
        if label not in SIZES:
            raise base.UpstreamError(
                f"luma: size {label} is not one Luma renders.", code=base.UPSTREAM_INVALID
            )
        resolution, aspect_ratio = SIZES[label]
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
            reason = self._scrub(generation.failure_reason or "no reason given")
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
            logger.info("luma: deleting generation %s failed: %s", job.id, self._scrub(str(exc)))


_DESCRIPTION = (
    "Luma Dream Machine Ray 2 (upstream API): text-to-video, image-to-video and "
    "first+last-frame clips of 5 or 9 seconds at 24 fps. Images are sent by URL "
    "(needs FRAMEGATE_PUBLIC_URL); no negative prompt or seed."
)
