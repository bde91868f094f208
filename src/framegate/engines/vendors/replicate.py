"""Replicate through the official ``replicate`` Python SDK.

Replicate hosts many video models behind one predictions API; a route names the model and
says which of the model's inputs receive framegate's fields. The API (``{base}`` =
``FRAMEGATE_REPLICATE_BASE_URL``, by default ``https://api.replicate.com``, without ``/v1``:
the SDK adds it; ``Authorization: Bearer <token>``):

* ``POST {base}/v1/models/{owner}/{name}/predictions`` with ``{"input": {...}}`` (official
  models), or ``POST {base}/v1/predictions`` with ``{"version": "<64 hex>", "input": {...}}``,
  answers ``201`` with a prediction: ``{"id", "model", "version", "status", "input",
  "output", "error", "logs", "metrics", "urls": {"get", "cancel"}, "created_at", ...}``;
* ``GET {base}/v1/predictions/{id}``: ``status`` goes ``starting`` -> ``processing`` ->
  ``succeeded`` (``output`` is the video's URL, or a list of URLs) | ``failed`` (``error``;
  the safety filter's refusal reads "The input or output was flagged as sensitive...
  (E005)") | ``canceled``;
* ``POST {base}/v1/predictions/{id}/cancel``;
* errors are RFC 7807 problem details (``{"title", "detail", "status"}``); a throttled
  request gets ``429`` with ``{"detail": "Request was throttled. ..."}`` and ``Retry-After``.

Input images go as data URIs (Replicate accepts them for files under about 1 MB): the
image is first cropped to the requested frame (as the local engines do), since the
models make a video of the first frame's shape.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, TypeVar

import httpx
import replicate
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator
from replicate.exceptions import ReplicateError
from replicate.prediction import Prediction

from framegate.engines.base import GenerationRequest
from framegate.engines.vendors import base
from framegate.engines.vendors.kit import InputNames, capped_data_uri, data_uri_chars, fit_image
from framegate.kit.http import retry_after_seconds

T = TypeVar("T")

# Replicate recommends data URIs only for files under 1 MB.
MAX_DATA_URI = data_uri_chars(1_000_000)
_SIZE_RE = re.compile(r"^(\d+)x(\d+)$")
_MODEL_RE = r"^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*$"
_VERSION_RE = r"^([a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*:)?[0-9a-f]{64}$"
# Replicate's safety refusals: E005 ("The input or output was flagged as sensitive"),
# and the NSFW / safety-checker wording several hosted models use.
_MODERATION_RE = re.compile(
    r"\bE005\b|flagged as sensitive|sensitive content|\bnsfw\b|safety (?:checker|filter|system)"
    r"|content (?:policy|moderation)|moderation",
    re.IGNORECASE,
)
# "Request was throttled. Expected available in 1 second." / "... resets in ~30s."
_THROTTLE_RE = re.compile(r"(?:available in|resets in)\s*~?\s*(\d+(?:\.\d+)?)\s*s", re.I)


class ReplicateInputs(InputNames):
    """Which of the model's inputs receive framegate's request fields."""

    # Pixel sizes, for models that take them (otherwise see ReplicateSettings.sizes).
    width: str | None = None
    height: str | None = None


class ReplicateSettings(BaseModel):
    """A Replicate route's ``settings``."""

    model_config = ConfigDict(extra="forbid")

    # An official model, "owner/name" (POST /v1/models/{owner}/{name}/predictions) ...
    model: str | None = Field(default=None, pattern=_MODEL_RE)
    # ... or a model version: "<64 hex>" or "owner/name:<64 hex>" (POST /v1/predictions).
    version: str | None = Field(default=None, pattern=_VERSION_RE)
    inputs: ReplicateInputs = Field(default_factory=ReplicateInputs)
    # The output sizes the model makes, "WxH", each with the inputs that select it, e.g.
    # {"832x480": {"aspect_ratio": "16:9"}}; None when the model takes width/height.
    sizes: dict[str, dict[str, Any]] | None = None
    # The durations (s) the model accepts, when only some are; None: the capabilities' range.
    durations: list[int] | None = None
    # The model's bounds on the frame count [min, max] (e.g. Wan 2.1: 81..100).
    frame_range: tuple[int, int] | None = None
    # Inputs sent with every request (e.g. {"prompt_optimizer": false}).
    fixed_inputs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> ReplicateSettings:
        if (self.model is None) == (self.version is None):
            raise ValueError("give exactly one of model ('owner/name') or version")
        mapped = [name for name in self.inputs.model_dump().values() if name is not None]
        if len(mapped) != len(set(mapped)):
            raise ValueError(f"inputs maps two fields to the same model input: {mapped}")
        selected = {key for values in (self.sizes or {}).values() for key in values}
        for key in (*selected, *self.fixed_inputs):
            if key in mapped:
                raise ValueError(
                    f"model input {key!r} is mapped in inputs and set by sizes/fixed_inputs"
                )
        for label in self.sizes or {}:
            if _SIZE_RE.match(label) is None:
                raise ValueError(f"sizes keys must look like '1280x720'; got {label!r}")
        if self.sizes is not None and (self.inputs.width or self.inputs.height):
            raise ValueError("give either sizes or inputs.width/height, not both")
        if self.frame_range is not None and not 1 <= self.frame_range[0] <= self.frame_range[1]:
            raise ValueError(f"frame_range must be [min, max]; got {list(self.frame_range)}")
        return self

    @property
    def ref(self) -> str:
        return self.model or self.version or ""

    @property
    def version_id(self) -> str | None:
        return None if self.version is None else self.version.rsplit(":", 1)[-1]


class ReplicateEngine(base.VendorEngine):
    name = "replicate"
    key_setting = "FRAMEGATE_REPLICATE_API_TOKEN"
    settings_model = ReplicateSettings
    # Video models take minutes; Replicate gives no polling hint.
    default_poll_interval: ClassVar[float] = 5.0

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # The SDK's paths start with /v1: accept a base URL written with it too.
        if self.base_url.endswith("/v1"):
            self.base_url = self.base_url[: -len("/v1")]

    # -- catalog -------------------------------------------------------------------------

    def check_route(self, route: Any) -> None:
        super().check_route(route)
        config = ReplicateSettings.model_validate(route.settings)
        caps = route.capabilities
        if caps.image_to_video and config.inputs.input_image is None:
            raise ValueError("capabilities.image_to_video needs settings.inputs.input_image")
        if caps.first_last_frame and config.inputs.last_image is None:
            raise ValueError("capabilities.first_last_frame needs settings.inputs.last_image")
        if config.sizes is not None:
            offered = caps.sizes or []
            missing = [size for size in offered if size not in config.sizes]
            if caps.sizes is None or missing:
                raise ValueError(
                    "capabilities.sizes must list only sizes present in settings.sizes "
                    f"({', '.join(config.sizes)}); not covered: {missing or 'any size'}"
                )

    def refuse(self, settings: Mapping[str, Any], shape: base.VendorShape) -> None:
        config: ReplicateSettings = self.route_settings(settings)
        model = f"Replicate model {config.ref}"
        config.inputs.refuse(shape, model)
        base.refuse_size(shape, config.sizes, model)
        base.refuse_duration(shape, config.durations, model)
        base.refuse_frame_range(shape, config.frame_range, model)

    # -- jobs ----------------------------------------------------------------------------

    async def submit(self, request: GenerationRequest) -> base.UpstreamJob:
        config: ReplicateSettings = self.route_settings(request.settings)
        body = self.build_input(config, request)

        async def create(client: replicate.Client) -> Prediction:
            if config.version_id is not None:
                return await client.predictions.async_create(version=config.version_id, input=body)
            return await client.predictions.async_create(model=config.ref, input=body)

        prediction = await self._call(create, "creating the prediction")
        if not prediction.id:
            raise base.UpstreamError("replicate: the prediction was created without an id")
        return base.UpstreamJob(id=prediction.id, data={"model": config.ref})

    async def poll(self, job: base.UpstreamJob, request: GenerationRequest) -> base.UpstreamStatus:
        async def get(client: replicate.Client) -> Prediction:
            return await client.predictions.async_get(job.id)

        prediction = await self._call(get, f"polling prediction {job.id}")
        status = prediction.status
        if status == "succeeded":
            url = _output_url(prediction.output)
            if url is None:
                return base.UpstreamStatus(
                    state="failed",
                    error=base.UpstreamError(
                        f"replicate: prediction {job.id} succeeded without a video URL"
                    ),
                )
            return base.UpstreamStatus(state="succeeded", progress=1.0, video_url=url)
        if status == "failed":
            message = self.scrub(prediction.error or "the prediction failed")
            code = (
                base.MODERATION_BLOCKED if _MODERATION_RE.search(message) else base.UPSTREAM_ERROR
            )
            return base.UpstreamStatus(
                state="failed",
                error=base.UpstreamError(
                    f"replicate: prediction {job.id} failed: {message}", code=code
                ),
            )
        if status == "canceled":
            return base.UpstreamStatus(
                state="failed",
                error=base.UpstreamError(f"replicate: prediction {job.id} was canceled"),
            )
        progress = prediction.progress
        return base.UpstreamStatus(
            state="pending", progress=None if progress is None else progress.percentage
        )

    async def cancel(self, job: base.UpstreamJob, request: GenerationRequest) -> None:
        async def cancel(client: replicate.Client) -> Prediction:
            return await client.predictions.async_cancel(job.id)

        await self._call(cancel, f"canceling prediction {job.id}")

    # -- request mapping -----------------------------------------------------------------

    def build_input(self, config: ReplicateSettings, request: GenerationRequest) -> dict[str, Any]:
        """The prediction's ``input``: the fixed inputs, then framegate's fields under the
        model's input names."""
        inputs = config.inputs
        body: dict[str, Any] = dict(config.fixed_inputs)
        body[inputs.prompt] = request.prompt
        if config.sizes is not None:
            body.update(self.size_entry(config.sizes, request))
        fields: list[tuple[str | None, Any]] = [
            (inputs.width, request.width),
            (inputs.height, request.height),
            (inputs.seed, request.seed),
            (inputs.duration, max(1, round(request.duration))),
            (inputs.fps, request.fps),
            (inputs.num_frames, request.num_frames),
            (inputs.negative_prompt, request.negative_prompt or None),
        ]
        for name, value in fields:
            if name is not None and value is not None:
                body[name] = value
        if inputs.input_image is not None and request.input_image is not None:
            body[inputs.input_image] = _frame_uri(request.input_image, request)
        if inputs.last_image is not None and request.last_image is not None:
            body[inputs.last_image] = _frame_uri(request.last_image, request)
        return body

    # -- transport -----------------------------------------------------------------------

    async def _call(self, operation: Callable[[replicate.Client], Awaitable[T]], what: str) -> T:
        """Run one SDK call against the configured base URL, mapping its failures."""
        api_token = self.require_key()
        last: dict[str, httpx.Headers] = {}

        async def remember(response: httpx.Response) -> None:
            last["headers"] = response.headers

        # The SDK wraps its own transport in a layer that sleeps through 429/503/504 on
        # GETs (up to 10 attempts, honouring Retry-After); framegate retries upstream calls
        # itself, so a plain transport is mounted for every URL and a poll stays one request.
        transport = httpx.AsyncHTTPTransport()
        client = replicate.Client(
            api_token=api_token,
            base_url=self.base_url,
            timeout=httpx.Timeout(self.timeout),
            mounts={"all://": transport},
            event_hooks={"response": [remember]},
        )
        try:
            return await operation(client)
        except ReplicateError as exc:
            raise self._api_error(exc, last.get("headers"), what) from None
        except httpx.HTTPError as exc:
            raise self.transport_error(exc, what) from exc
        except (ValueError, TypeError) as exc:
            # A body that is not JSON, or not a prediction.
            raise base.UpstreamError(
                f"replicate: {what}: unexpected answer: {self.scrub(str(exc))[:300]}"
            ) from exc
        finally:
            await transport.aclose()

    def _api_error(
        self, exc: ReplicateError, headers: httpx.Headers | None, what: str
    ) -> base.UpstreamError:
        status = exc.status or 502
        summary = "; ".join(part for part in (exc.title, exc.detail) if part) or "no detail"
        message = f"replicate: {what}: HTTP {status}: {self.scrub(summary)}"
        if status == 429:
            return base.rate_limited(message, throttle_delay(exc.detail or "", headers or {}))
        return base.classify_status(status, message, headers or httpx.Headers())


def throttle_delay(detail: str, headers: Mapping[str, str]) -> float | None:
    """Seconds to wait after a 429: Retry-After, else the delay the message states."""
    delay = retry_after_seconds(headers.get("retry-after"))
    if delay is not None:
        return delay
    match = _THROTTLE_RE.search(detail)
    return None if match is None else float(match[1])


def _output_url(output: Any) -> str | None:
    """The video URL in a prediction's output: a URL, a list of URLs, or an object."""
    if isinstance(output, str):
        return output if output.startswith(("https://", "http://")) else None
    if isinstance(output, list):
        candidates: list[Any] = output
    elif isinstance(output, dict):
        candidates = [output.get(key) for key in ("video", "output", "url")]
        candidates += list(output.values())
    else:
        return None
    for item in candidates:
        url = _output_url(item)
        if url is not None:
            return url
    return None


def _frame_uri(image: Image.Image, request: GenerationRequest) -> str:
    """The image cropped to the requested frame, as a PNG data URI (a JPEG one when the PNG
    is over Replicate's 1 MB recommendation)."""
    frame = image.convert("RGB")
    if request.width > 0 and request.height > 0 and frame.size != (request.width, request.height):
        frame = fit_image(frame, request.width, request.height)
    return capped_data_uri(frame, MAX_DATA_URI, jpeg_qualities=(95, 80))
