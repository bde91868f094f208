"""fal.ai: any video app on fal's queue API, over its documented REST contract.

One engine serves every fal application; a route's settings name the app and say how
framegate's request fields map onto that app's inputs (apps differ: ``image_url`` or
``start_image_url``, ``duration`` as ``"5"``, ``num_frames`` + ``frames_per_second``...).

The queue (https://docs.fal.ai/model-endpoints/queue), all with ``Authorization: Key <key>``:

* ``POST {base}/{app}`` with the app's input as JSON -> ``{"request_id", "status_url",
  "response_url", "cancel_url", "queue_position"}``;
* ``GET {base}/{owner}/{alias}/requests/{id}/status`` -> ``{"status": "IN_QUEUE" |
  "IN_PROGRESS" | "COMPLETED", "queue_position", "logs", "metrics", "error", "error_type"}``
  (an app's sub-path, e.g. ``/v2.1/master/text-to-video``, is left out here);
* ``GET {base}/{owner}/{alias}/requests/{id}`` -> the app's output (``{"video": {"url"}}``),
  or the app's error with its HTTP status: ``{"detail": [{"loc", "msg", "type", ...}]}``
  (model errors, e.g. type ``content_policy_violation``) or ``{"detail": "...",
  "error_type": "..."}`` (request errors such as ``runner_server_error``);
* ``PUT {base}/{owner}/{alias}/requests/{id}/cancel``.

The official ``fal-client`` package is not used: it builds every queue URL as
``https://`` + a host read from the environment at import time (so it cannot be pointed at
the operator's base URL per engine, nor at plain http), and it retries 429s itself.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import httpx
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from framegate.engines.base import GenerationRequest
from framegate.engines.vendors import base
from framegate.engines.vendors.kit import InputNames, capped_data_uri
from framegate.kit.safe_fetch import USER_AGENT

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

_SIZE = re.compile(r"^(\d{2,5})x(\d{2,5})$")
_APP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9._-]+)+$")
# App ids under these namespaces have one more leading segment (workflows/owner/alias/...).
_NAMESPACES = ("workflows", "comfy")
# Model-error types that mean the vendor's safety checker refused the content.
_MODERATION_TYPES = frozenset({"content_policy_violation"})
_MAX_MESSAGE = 500
# Past this a PNG data URI is re-encoded as JPEG (characters of the URI).
_MAX_PNG_URI = 4 * 1024 * 1024


class FalInputs(InputNames):
    """The app's input names for framegate's request fields (``duration`` is written as
    FalSettings.duration_format)."""

    # fal route settings name the first frame's input ``image`` (e.g. "start_image_url").
    input_image: str | None = Field(default=None, validation_alias="image")


class FalSettings(BaseModel):
    """A fal route's settings: the app and how framegate's request maps onto its inputs."""

    model_config = ConfigDict(extra="forbid")

    # The fal application (endpoint id), e.g. "fal-ai/kling-video/v2.1/master/text-to-video".
    app: str
    inputs: FalInputs = Field(default_factory=FalInputs)
    # Output size "WxH" -> the inputs that select it, e.g. {"aspect_ratio": "16:9",
    # "resolution": "720p"}. None: the app has no size input (any size the route lists).
    sizes: dict[str, dict[str, Any]] | None = None
    # The whole seconds the app's duration input accepts (None: any the route allows).
    durations: list[int] | None = None
    # How the duration is written: "5" (string), 5 (integer) or "5s" (seconds).
    duration_format: Literal["string", "integer", "seconds"] = "string"
    # Inclusive bounds of the frame count the app makes (e.g. Wan 2.1: 81 to 100).
    frames: tuple[int, int] | None = None
    # The app's fixed output frame rate, when it has no fps input.
    fps: int | None = None
    # Constant inputs sent with every request (mapped request fields take precedence).
    arguments: dict[str, Any] = Field(default_factory=dict)

    @field_validator("app")
    @classmethod
    def _app_id(cls, value: str) -> str:
        parts = value.split("/")
        if not _APP.match(value) or any(part in (".", "..") for part in parts):
            raise ValueError(f"app must be a fal endpoint id like 'fal-ai/wan-i2v'; got {value!r}")
        if parts[0] in _NAMESPACES and len(parts) < 3:
            raise ValueError(f"app {value!r} needs <namespace>/<owner>/<alias>")
        return value

    @field_validator("sizes")
    @classmethod
    def _size_labels(cls, value: dict[str, dict[str, Any]] | None) -> Any:
        if value is not None:
            if not value:
                raise ValueError("sizes must list at least one size (or be left out)")
            bad = [label for label in value if not _SIZE.match(label)]
            if bad:
                raise ValueError(f"sizes keys must look like '1280x720'; got {bad}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FalSettings:
        if self.durations is not None and (
            not self.durations or min(self.durations) < 1 or self.inputs.duration is None
        ):
            raise ValueError("durations needs inputs.duration and positive whole seconds")
        if self.frames is not None and not 1 <= self.frames[0] <= self.frames[1]:
            raise ValueError("frames must be (low, high) with 1 <= low <= high")
        if self.fps is not None and self.inputs.fps is not None:
            raise ValueError("give either fps (fixed rate) or inputs.fps, not both")
        return self

    @property
    def root(self) -> str:
        """The app id without its sub-path: where fal's request status and results live."""
        parts = self.app.split("/")
        return "/".join(parts[: 3 if parts[0] in _NAMESPACES else 2])


class FalEngine(base.VendorEngine):
    name = "fal"
    key_setting = "FRAMEGATE_FAL_KEY"
    settings_model: ClassVar[type[BaseModel]] = FalSettings
    default_poll_interval = 5.0

    # -- catalog -------------------------------------------------------------------------

    def refuse(self, settings: Mapping[str, Any], shape: base.VendorShape) -> None:
        config: FalSettings = self.route_settings(settings)
        app = f"fal app {config.app!r}"
        base.refuse_size(shape, config.sizes, app)
        base.refuse_duration(shape, config.durations, app)
        base.refuse_fps(shape, config.fps, app)
        base.refuse_frame_range(shape, config.frames, app)
        config.inputs.refuse(shape, app)

    # -- jobs ----------------------------------------------------------------------------

    async def submit(self, request: GenerationRequest) -> base.UpstreamJob:
        config: FalSettings = self.route_settings(request.settings)
        arguments = self._arguments(config, request)
        response = await self._call("POST", f"/{config.app}", json=arguments)
        if response.status_code >= 400:
            raise self._request_error(response, "submitting the job")
        body = self._json(response, "submitting the job")
        request_id = body.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise base.UpstreamError("fal: the queue answered a submission without a request_id")
        return base.UpstreamJob(id=request_id, data={"app": config.app})

    async def poll(self, job: base.UpstreamJob, request: GenerationRequest) -> base.UpstreamStatus:
        path = self._request_path(job, request)
        response = await self._call("GET", f"{path}/status")
        if response.status_code >= 400:
            raise self._request_error(response, "checking the job's status")
        body = self._json(response, "checking the job's status")
        status = body.get("status")
        if status in ("IN_QUEUE", "IN_PROGRESS"):
            return base.UpstreamStatus(
                state="pending", progress=0.0 if status == "IN_QUEUE" else None
            )
        if status == "COMPLETED":
            return await self._result(path, body)
        if status in ("FAILED", "CANCELED", "CANCELLED"):
            message = _text(body.get("error")) or f"the job ended {str(status).lower()}"
            return _failed(base.UPSTREAM_ERROR, f"fal: {self.scrub(message)}")
        return _failed(base.UPSTREAM_ERROR, f"fal: unexpected job status {str(status)[:40]!r}")

    async def cancel(self, job: base.UpstreamJob, request: GenerationRequest) -> None:
        """Best effort: fal cancels a job that has not started (400 once it has finished)."""
        try:
            response = await self._call("PUT", f"{self._request_path(job, request)}/cancel")
        except base.UpstreamError as exc:
            log.info("fal: cancelling request %s failed: %s", job.id, exc.message)
            return
        if response.status_code >= 400:
            log.info("fal: cancelling request %s answered %s", job.id, response.status_code)

    # -- helpers -------------------------------------------------------------------------

    def _arguments(self, config: FalSettings, request: GenerationRequest) -> dict[str, Any]:
        inputs = config.inputs
        arguments: dict[str, Any] = dict(config.arguments)
        arguments[inputs.prompt] = request.prompt
        if config.sizes is not None:
            arguments.update(self.size_entry(config.sizes, request))
        seconds = max(1, round(request.duration))
        if inputs.duration is not None:
            arguments[inputs.duration] = _format_duration(seconds, config.duration_format)
        if inputs.num_frames is not None:
            arguments[inputs.num_frames] = request.num_frames
        if inputs.fps is not None:
            arguments[inputs.fps] = request.fps
        if inputs.seed is not None:
            arguments[inputs.seed] = request.seed
        for field, name, value in (
            ("input_image", inputs.input_image, request.input_image),
            ("last_image", inputs.last_image, request.last_image),
        ):
            if value is None:
                continue
            if name is None:
                raise base.UpstreamError(
                    f"fal: app {config.app!r} takes no {field}", code=base.UPSTREAM_INVALID
                )
            arguments[name] = _image_input(value)
        if request.negative_prompt:
            if inputs.negative_prompt is None:
                raise base.UpstreamError(
                    f"fal: app {config.app!r} takes no negative_prompt", code=base.UPSTREAM_INVALID
                )
            arguments[inputs.negative_prompt] = request.negative_prompt
        return arguments

    def _request_path(self, job: base.UpstreamJob, request: GenerationRequest) -> str:
        app = job.data.get("app") or request.settings.get("app")
        try:
            root = FalSettings(app=str(app)).root
        except ValueError as exc:
            raise base.UpstreamError(f"fal: the job names no valid app ({app!r})") from exc
        return f"/{root}/requests/{urllib.parse.quote(job.id, safe='')}"

    async def _result(self, path: str, status: Mapping[str, Any]) -> base.UpstreamStatus:
        response = await self._call("GET", path)
        if response.status_code < 400:
            output = self._json(response, "fetching the result")
            video = output.get("video")
            url = video.get("url") if isinstance(video, dict) else None
            if not isinstance(url, str) or not url:
                return _failed(base.UPSTREAM_ERROR, "fal: the app's output has no video.url")
            return base.UpstreamStatus(state="succeeded", progress=1.0, video_url=url)
        code = response.status_code
        if code in (401, 403, 429):
            raise self._request_error(response, "fetching the result")
        body = base.json_body(response)
        error_type = response.headers.get("x-fal-error-type") or _text(
            body.get("error_type") if isinstance(body, dict) else None
        )
        if body is None and status.get("error") is None and (code >= 500 or code == 408):
            # No stored answer from the app (a gateway hiccup): ask again later.
            raise base.unavailable(f"fal: fetching the result failed with HTTP {code}", code)
        detail = self._detail(response, body) or _text(status.get("error")) or f"HTTP {code}"
        if _types(body) & _MODERATION_TYPES or error_type in _MODERATION_TYPES:
            return _failed(base.MODERATION_BLOCKED, f"fal: the content was refused: {detail}", code)
        if code in (400, 422) and _types(body):
            return _failed(base.UPSTREAM_INVALID, f"fal: the app refused the input: {detail}", code)
        suffix = f" ({error_type})" if error_type else ""
        return _failed(base.UPSTREAM_ERROR, f"fal: the job failed{suffix}: {detail}", code)

    async def _call(self, method: str, path: str, json: Any = None) -> httpx.Response:
        headers = {
            "Authorization": f"Key {self.require_key()}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        try:
            async with self.http(headers=headers) as client:
                return await client.request(method, path, json=json)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc, f"{method} {path}") from exc

    def _request_error(self, response: httpx.Response, doing: str) -> base.UpstreamError:
        code = response.status_code
        body = base.json_body(response)
        detail = self._detail(response, body) or f"HTTP {code}"
        message = f"fal: {doing} failed with HTTP {code}: {detail}"
        if _types(body) & _MODERATION_TYPES:
            return base.UpstreamError(message, code=base.MODERATION_BLOCKED, status_code=code)
        return base.classify_status(code, message, response.headers)

    def _json(self, response: httpx.Response, doing: str) -> dict[str, Any]:
        body = base.json_body(response)
        if not isinstance(body, dict):
            raise base.UpstreamError(f"fal: {doing} answered something other than a JSON object")
        return body

    def _detail(self, response: httpx.Response, body: Any) -> str:
        """The error's human-readable part: ``detail`` as a string or its ``msg`` items."""
        text = ""
        detail = body.get("detail") if isinstance(body, dict) else None
        if isinstance(detail, str):
            text = detail
        elif isinstance(detail, list):
            parts = []
            for item in detail:
                if not isinstance(item, dict):
                    continue
                loc = item.get("loc")
                where = ".".join(str(p) for p in loc[1:]) if isinstance(loc, list) else ""
                msg = _text(item.get("msg")) or _text(item.get("type")) or ""
                parts.append(f"{where}: {msg}" if where else msg)
            text = "; ".join(p for p in parts if p)
        elif isinstance(detail, dict):
            text = _text(detail.get("message")) or _text(detail.get("error")) or ""
        elif body is None:
            text = response.text.strip()[:200] if response.text.strip() else ""
        return self.scrub(text)[:_MAX_MESSAGE]

    def scrub(self, text: str) -> str:
        """A fal key is ``<id>:<secret>``: either half, echoed alone, is masked too."""
        text = super().scrub(text)
        for part in (self.api_key or "").split(":"):
            if len(part) >= 8:
                text = text.replace(part, "***")
        return text


def _image_input(image: Image.Image) -> str:
    """A data URI (fal apps take one wherever they take an image URL): lossless PNG, or
    JPEG when the PNG would make a very large request body (large photos)."""
    return capped_data_uri(image, _MAX_PNG_URI)


def _format_duration(seconds: int, style: str) -> Any:
    if style == "integer":
        return seconds
    if style == "seconds":
        return f"{seconds}s"
    return str(seconds)


def _failed(code: str, message: str, status_code: int | None = None) -> base.UpstreamStatus:
    return base.UpstreamStatus(
        state="failed", error=base.UpstreamError(message, code=code, status_code=status_code)
    )


def _types(body: Any) -> set[str]:
    """The ``type`` of each model error in a ``{"detail": [...]}`` body."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, list):
        return set()
    return {str(item["type"]) for item in detail if isinstance(item, dict) and "type" in item}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# -- built-in routes ----------------------------------------------------------------------

_KLING_SIZES = {
    "1920x1080": {"aspect_ratio": "16:9"},
    "1080x1920": {"aspect_ratio": "9:16"},
    "1080x1080": {"aspect_ratio": "1:1"},
}
_WAN_SIZES = {
    "1280x720": {"resolution": "720p", "aspect_ratio": "16:9"},
    "720x1280": {"resolution": "720p", "aspect_ratio": "9:16"},
    "832x480": {"resolution": "480p", "aspect_ratio": "16:9"},
    "480x832": {"resolution": "480p", "aspect_ratio": "9:16"},
}
_WAN_INPUTS = {
    "negative_prompt": "negative_prompt",
    "seed": "seed",
    "num_frames": "num_frames",
    "fps": "frames_per_second",
}
# Wan 2.1 on fal: 81 to 100 frames at 5 to 24 fps (4k+1 counts: 81, 85, ..., 97).
_WAN_CAPABILITIES = {
    "min_duration": 4,
    "max_duration": 6,
    "default_duration": 5,
    "min_fps": 5,
    "max_fps": 24,
    "default_fps": 16,
    "frame_step": 4,
    "max_frames": 100,
    "sizes": list(_WAN_SIZES),
    "default_size": "1280x720",
    "size_multiple": 16,
}
