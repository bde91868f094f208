"""Runway (https://docs.dev.runwayml.com) through the official ``runwayml`` SDK.

A generation is one task: ``POST /v1/text_to_video`` or ``POST /v1/image_to_video``
answers ``{"id": ...}``; ``GET /v1/tasks/{id}`` then reports ``PENDING``/``THROTTLED``/
``RUNNING`` (with ``progress`` in 0..1) until ``SUCCEEDED`` (``output``: a list of result
URLs, signed and public) or ``FAILED`` (``failure`` and ``failureCode``; ``SAFETY.*`` codes
are content moderation) or ``CANCELLED``; ``DELETE /v1/tasks/{id}`` cancels. Requests carry
``Authorization: Bearer <key>`` and ``X-Runway-Version``.

Sizes are Runway's ``ratio`` values (``"1280:720"`` is framegate's ``1280x720``), clips are
whole seconds at 24 fps, and images go inline as data URIs (at most 5 MB each).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import runwayml
from PIL import Image
from pydantic import BaseModel, ConfigDict, model_validator

from framegate.engines.base import GenerationRequest
from framegate.engines.vendors import base
from framegate.engines.vendors.kit import capped_data_uri
from framegate.exceptions import InvalidValue

logger = logging.getLogger(__name__)

RUNWAY_VERSION = "2024-11-06"
# Runway's clips are always 24 fps.
RUNWAY_FPS = 24
# promptText: 1..1000 UTF-16 code units.
MAX_PROMPT_UNITS = 1000
# A data URI must be under 5 MB (1024 * 1024 * 5 bytes), header included.
MAX_DATA_URI = 5 * 1024 * 1024

_GEN4_RATIOS = ("1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672")
_VEO_RATIOS = ("1280:720", "720:1280", "1080:1920", "1920:1080")

RunwayModel = Literal["gen4_turbo", "gen4.5", "veo3.1", "veo3.1_fast"]


@dataclass(frozen=True, slots=True)
class _ModelSpec:
    """What one Runway model accepts (from the API reference / the SDK's parameter types)."""

    text_ratios: tuple[str, ...]  # empty: image-to-video only
    image_ratios: tuple[str, ...]
    durations: tuple[int, ...]
    last_frame: bool = False
    negative_prompt: bool = False
    audio: bool = False
    content_moderation: bool = False


# Runway's two Veo models accept the same parameters.
_VEO_SPEC = _ModelSpec(
    text_ratios=_VEO_RATIOS,
    image_ratios=_VEO_RATIOS,
    durations=(4, 6, 8),
    last_frame=True,
    negative_prompt=True,
    audio=True,
)

MODELS: dict[str, _ModelSpec] = {
    "gen4_turbo": _ModelSpec(
        text_ratios=(), image_ratios=_GEN4_RATIOS, durations=(5, 10), content_moderation=True
    ),
    "gen4.5": _ModelSpec(
        text_ratios=("1280:720", "720:1280"),
        image_ratios=_GEN4_RATIOS,
        durations=tuple(range(2, 11)),
        content_moderation=True,
    ),
    "veo3.1": _VEO_SPEC,
    "veo3.1_fast": _VEO_SPEC,
}


class RunwaySettings(BaseModel):
    """A Runway route's ``settings``."""

    model_config = ConfigDict(extra="forbid")

    # Runway's model name.
    model: RunwayModel
    # Veo models only: generate an audio track (Runway prices it higher).
    audio: bool = False
    # Gen-4 models only: contentModeration.publicFigureThreshold ("low" is less strict about
    # recognisable public figures); omitted when None (Runway's default, "auto").
    public_figure_threshold: Literal["auto", "low"] | None = None

    @model_validator(mode="after")
    def _fits_model(self) -> RunwaySettings:
        spec = MODELS[self.model]
        if self.audio and not spec.audio:
            raise ValueError(f"audio is not available for Runway model {self.model!r}")
        if self.public_figure_threshold is not None and not spec.content_moderation:
            raise ValueError(
                f"public_figure_threshold is not available for Runway model {self.model!r}"
            )
        return self


def _prompt_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _image_uri(image: Image.Image) -> str:
    """The image as a data URI under Runway's 5 MB limit: PNG, else JPEG, else smaller."""
    return capped_data_uri(image, MAX_DATA_URI - 1, shrink=True)


class RunwayEngine(base.VendorEngine):
    name = "runway"
    key_setting = "FRAMEGATE_RUNWAY_API_KEY"
    settings_model = RunwaySettings
    # Runway asks clients not to poll a task more often than every 5 seconds.
    default_poll_interval = 5.0

    def __init__(self, *, runway_version: str = RUNWAY_VERSION, **options: Any) -> None:
        super().__init__(**options)
        self.runway_version = runway_version

    # -- catalog -------------------------------------------------------------------------

    def refuse(self, settings: Mapping[str, Any], shape: base.VendorShape) -> None:
        config: RunwaySettings = self.route_settings(settings)
        spec = MODELS[config.model]
        runway = f"Runway {config.model}"
        base.refuse_inputs(
            shape,
            runway,
            text_to_video=bool(spec.text_ratios),
            last_image=spec.last_frame,
            negative_prompt=spec.negative_prompt,
        )
        if shape.has_last_image and not shape.has_image:
            raise InvalidValue(
                f"{runway} needs input_image as the first frame to use last_image.",
                param="input_image",
            )
        ratios = spec.image_ratios if shape.has_image else spec.text_ratios
        mode = "image-to-video" if shape.has_image else "text-to-video"
        sizes = [ratio.replace(":", "x") for ratio in ratios]
        base.refuse_size(shape, sizes, f"{runway} for {mode}")
        base.refuse_fps(shape, RUNWAY_FPS, runway)
        base.refuse_duration(shape, spec.durations, runway)
        base.refuse_num_frames(shape, RUNWAY_FPS, spec.durations, runway)

    # -- jobs ----------------------------------------------------------------------------

    def _client(self) -> runwayml.AsyncRunwayML:
        return runwayml.AsyncRunwayML(
            api_key=self.require_key(),
            base_url=self.base_url,
            runway_version=self.runway_version,
            timeout=self.timeout,
            # framegate's scheduler owns retries (and honours Retry-After).
            max_retries=0,
        )

    def _arguments(self, request: GenerationRequest, config: RunwaySettings) -> dict[str, Any]:
        spec = MODELS[config.model]
        prompt = request.prompt.strip()
        if _prompt_units(prompt) > MAX_PROMPT_UNITS:
            raise base.UpstreamError(
                f"runway: the prompt is {_prompt_units(prompt)} UTF-16 code units long; "
                f"Runway accepts at most {MAX_PROMPT_UNITS}.",
                code=base.UPSTREAM_INVALID,
            )
        arguments: dict[str, Any] = {
            "model": config.model,
            "ratio": f"{request.width}:{request.height}",
            "duration": round(request.duration),
            "seed": request.seed,
        }
        if prompt:
            arguments["prompt_text"] = prompt
        if request.negative_prompt and spec.negative_prompt:
            arguments["negative_prompt"] = request.negative_prompt
        if spec.audio:
            arguments["audio"] = config.audio
        if config.public_figure_threshold is not None:
            arguments["content_moderation"] = {
                "public_figure_threshold": config.public_figure_threshold
            }
        if request.input_image is not None:
            first = _image_uri(request.input_image)
            if request.last_image is not None:
                arguments["prompt_image"] = [
                    {"uri": first, "position": "first"},
                    {"uri": _image_uri(request.last_image), "position": "last"},
                ]
            else:
                arguments["prompt_image"] = first
        return arguments

    async def submit(self, request: GenerationRequest) -> base.UpstreamJob:
        config: RunwaySettings = self.route_settings(request.settings)
        arguments = self._arguments(request, config)
        image = "prompt_image" in arguments
        try:
            async with self._client() as client:
                if image:
                    created = await client.image_to_video.create(**arguments)
                else:
                    created = await client.text_to_video.create(**arguments)
        except runwayml.RunwayMLError as exc:
            raise self.sdk_error(exc, "starting the task", runwayml, _describe) from exc
        task_id = getattr(created, "id", None)
        if not isinstance(task_id, str) or not task_id:
            raise base.UpstreamError("runway: the task was accepted without an id")
        mode = "image_to_video" if image else "text_to_video"
        return base.UpstreamJob(id=task_id, data={"model": config.model, "endpoint": mode})

    async def poll(self, job: base.UpstreamJob, request: GenerationRequest) -> base.UpstreamStatus:
        try:
            async with self._client() as client:
                task = await client.tasks.retrieve(job.id)
        except runwayml.RunwayMLError as exc:
            raise self.sdk_error(exc, "checking the task", runwayml, _describe) from exc
        # The API's own field names (the SDK's typed union is lenient about its variants).
        data = task.to_dict(mode="json")
        status = data.get("status")
        if status in ("PENDING", "THROTTLED"):
            return base.UpstreamStatus(state="pending")
        if status == "RUNNING":
            progress = data.get("progress")
            fraction = (
                min(1.0, max(0.0, float(progress))) if isinstance(progress, int | float) else None
            )
            return base.UpstreamStatus(state="pending", progress=fraction)
        if status == "SUCCEEDED":
            output = data.get("output")
            if isinstance(output, list) and output and isinstance(output[0], str):
                return base.UpstreamStatus(state="succeeded", progress=1.0, video_url=output[0])
            return base.UpstreamStatus(
                state="failed",
                error=base.UpstreamError(f"runway: task {job.id} succeeded without an output URL"),
            )
        if status == "FAILED":
            return base.UpstreamStatus(state="failed", error=self._task_failure(job.id, data))
        if status == "CANCELLED":
            return base.UpstreamStatus(
                state="failed",
                error=base.UpstreamError(
                    f"runway: task {job.id} was cancelled or deleted upstream"
                ),
            )
        return base.UpstreamStatus(
            state="failed",
            error=base.UpstreamError(f"runway: task {job.id} has an unknown status {status!r}"),
        )

    async def cancel(self, job: base.UpstreamJob, request: GenerationRequest) -> None:
        """``DELETE /v1/tasks/{id}``: cancels a pending or running task (best effort)."""
        try:
            async with self._client() as client:
                await client.tasks.delete(job.id)
        except (runwayml.RunwayMLError, base.UpstreamError) as exc:
            logger.warning("runway: cancelling task %s failed: %s", job.id, self.scrub(str(exc)))

    # -- errors --------------------------------------------------------------------------

    def _task_failure(self, task_id: str, data: Mapping[str, Any]) -> base.UpstreamError:
        failure = str(data.get("failure") or "the task failed")
        code = data.get("failureCode")
        detail = f"{failure} ({code})" if code else failure
        message = self.scrub(f"runway: task {task_id} failed: {detail}")
        # SAFETY.INPUT.* / SAFETY.OUTPUT.* and INPUT_PREPROCESSING.SAFETY.*: moderation.
        if isinstance(code, str) and (
            code.startswith("SAFETY") or code.startswith("INPUT_PREPROCESSING.SAFETY")
        ):
            return base.UpstreamError(message, code=base.MODERATION_BLOCKED)
        return base.UpstreamError(message, code=base.UPSTREAM_ERROR)


def _describe(body: object) -> str:
    """Runway's error envelope: ``{"error": "...", "issues": [{"message", "path"}...]}``."""
    if isinstance(body, Mapping):
        text = str(body.get("error") or "no error message")
        issues = body.get("issues")
        if isinstance(issues, list):
            details = []
            for issue in issues[:5]:
                if isinstance(issue, Mapping):
                    path = ".".join(str(p) for p in issue.get("path") or [])
                    note = str(issue.get("message") or "")
                    details.append(f"{path}: {note}" if path else note)
            if details:
                text = f"{text} ({'; '.join(details)})"
        return text[:500]
    if isinstance(body, str) and body:
        return body[:500]
    return "no error message"
