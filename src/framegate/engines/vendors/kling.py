"""Kling AI (Kuaishou) video generation over its REST API.

Kling has no official Python SDK, so this talks to the documented REST API with httpx:

* auth: every request carries ``Authorization: Bearer <JWT>``; the JWT is signed HS256 with
  the operator's *secret key*, claims ``{"iss": <access key>, "exp": now + 1800,
  "nbf": now - 5}``. The token is cached until shortly before it expires;
* ``POST /v1/videos/text2video`` (``model_name, prompt, negative_prompt, cfg_scale, mode,
  aspect_ratio, duration``) and ``POST /v1/videos/image2video`` (the same
  without ``aspect_ratio``, plus ``image`` and the optional last frame ``image_tail``, as
  bare base64 without a ``data:`` prefix) answer ``{"code": 0, "message", "request_id",
  "data": {"task_id", "task_status": "submitted", ...}}``;
* ``GET /v1/videos/{text2video|image2video}/{task_id}`` reports ``data.task_status``
  (``submitted`` -> ``processing`` -> ``succeed`` | ``failed``, with ``task_status_msg``)
  and on success ``data.task_result.videos[0].url`` (a public CDN URL, fetched with the
  default ``download``);
* errors carry a service ``code`` in the same envelope: 1000-1004 authentication (401),
  1100-1103 account (arrears, resource pack used up, no access), 1200-1203 invalid
  parameters, 1300/1301 platform/content-security policy, 1302/1303 rate and concurrency
  limits (429), 1304 IP allowlist, 5000-5002 server errors.

Image-to-video has no ``aspect_ratio``: the clip takes the first frame's shape, so the
input image (and the last frame) are centre-cropped and resized to the requested size
before they are sent. Kling takes no seed and makes 5 or 10 s clips at 24 fps.
"""

from __future__ import annotations

import asyncio
import math
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import jwt
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from framegate.engines.base import GenerationRequest
from framegate.engines.vendors import base
from framegate.engines.vendors.kit import as_base64, encode_image, fit_image
from framegate.exceptions import InvalidValue
from framegate.kit.http import retry_after_seconds

DEFAULT_BASE_URL = "https://api-singapore.klingai.com"

# The JWT's lifetime (Kling's documented example) and how long before expiry a new one is
# signed, so a token never expires in flight.
TOKEN_LIFETIME_SECONDS = 1800
TOKEN_REFRESH_MARGIN_SECONDS = 300
# ``nbf`` a little in the past: tolerates clock skew between this host and Kling's.
TOKEN_NOT_BEFORE_SKEW_SECONDS = 5

KlingModel = Literal["kling-v2-master", "kling-v2-1", "kling-v2-1-master"]
KlingMode = Literal["std", "pro"]

DURATIONS: tuple[int, ...] = (5, 10)
FPS = 24
# Kling's documented limits on the input images.
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_PROMPT_CHARS = 2500

# Output sizes by resolution tier: "WxH" -> Kling's aspect_ratio.
SIZES: dict[str, dict[str, str]] = {
    "720p": {"1280x720": "16:9", "720x1280": "9:16", "720x720": "1:1"},
    "1080p": {"1920x1080": "16:9", "1080x1920": "9:16", "1080x1080": "1:1"},
}
ASPECT_RATIOS: dict[str, float] = {"16:9": 16 / 9, "9:16": 9 / 16, "1:1": 1.0}
# std makes 720p, pro 1080p (models with a fixed output ignore mode).
MODE_TIERS: dict[str, str] = {"std": "720p", "pro": "1080p"}

# Failure messages of a finished task that mean Kling's content review refused it.
MODERATION_HINTS = (
    "risk control",
    "content security",
    "security policy",
    "sensitive",
    "moderation",
    "violat",
    "inappropriate",
)


@dataclass(frozen=True, slots=True)
class ModelSupport:
    """What one Kling model can do (Kling's capability map)."""

    text_to_video: bool
    image_to_video: bool
    # The modes in which image2video takes ``image_tail`` (the last frame).
    tail_modes: frozenset[str]
    # The output tier when the model ignores ``mode`` (the "master" models).
    fixed_tier: str | None = None


MODELS: dict[str, ModelSupport] = {
    # Kling 2.0 Master: text- and image-to-video, 720p, no end frame.
    "kling-v2-master": ModelSupport(True, True, frozenset(), fixed_tier="720p"),
    # Kling 2.1: image-to-video only; std 720p, pro 1080p; end frame in pro mode only.
    "kling-v2-1": ModelSupport(False, True, frozenset({"pro"})),
    # Kling 2.1 Master: text- and image-to-video, 1080p, no end frame.
    "kling-v2-1-master": ModelSupport(True, True, frozenset(), fixed_tier="1080p"),
}


class KlingSettings(BaseModel):
    """A Kling route's ``settings``."""

    model_config = ConfigDict(extra="forbid")

    model_name: KlingModel = "kling-v2-master"
    # std: 720p, cheaper; pro: 1080p (ignored by the master models).
    mode: KlingMode = "std"
    # Prompt adherence 0..1; left out unless set (Kling's 2.x models ignore it).
    cfg_scale: float | None = Field(default=None, ge=0, le=1)


def output_tier(settings: KlingSettings) -> str:
    support = MODELS[settings.model_name]
    return support.fixed_tier or MODE_TIERS[settings.mode]


def output_sizes(settings: KlingSettings) -> dict[str, str]:
    """The sizes this model/mode makes, "WxH" -> aspect ratio."""
    return SIZES[output_tier(settings)]


def aspect_ratio_for(width: int, height: int) -> str:
    """Kling's aspect ratio for a size (the closest of 16:9, 9:16 and 1:1)."""
    for sizes in SIZES.values():
        label = sizes.get(f"{width}x{height}")
        if label is not None:
            return label
    wanted = width / height
    return min(ASPECT_RATIOS, key=lambda name: abs(math.log(ASPECT_RATIOS[name] / wanted)))


def fitted_base64(image: Image.Image, width: int, height: int) -> str:
    """The image centre-cropped and resized to width x height, as bare base64 JPEG (Kling
    wants no ``data:`` prefix; JPEG keeps a 1080p frame far under its 10 MB cap)."""
    return as_base64(encode_image(fit_image(image, width, height), "JPEG", quality=95))


class KlingEngine(base.VendorEngine):
    """Kling AI's video models (text-to-video, image-to-video, first+last frame)."""

    name = "kling"
    settings_model = KlingSettings
    default_poll_interval = 10.0

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        access_key: str | None = None,
        secret_key: str | None = None,
        **options: Any,
    ) -> None:
        # Kling's credentials are a pair: api_key, when given, is the access key.
        access = access_key or api_key
        super().__init__(api_key=access, base_url=base_url, **options)
        self.access_key = access
        self.secret_key = secret_key
        self._token: str | None = None
        self._token_expires = 0.0

    # -- catalog -------------------------------------------------------------------------

    def is_available(self, settings: Mapping[str, Any]) -> bool:
        return bool(self.access_key and self.secret_key)

    def check_route(self, route: Any) -> None:
        """Refuse a route whose capabilities promise what its Kling model cannot make."""
        super().check_route(route)
        settings = KlingSettings.model_validate(route.settings)
        support = MODELS[settings.model_name]
        caps = route.capabilities
        problems = []
        if caps.text_to_video and not support.text_to_video:
            problems.append(f"{settings.model_name} does not do text-to-video")
        if caps.image_to_video and not support.image_to_video:
            problems.append(f"{settings.model_name} does not do image-to-video")
        if caps.first_last_frame and settings.mode not in support.tail_modes:
            problems.append(f"{settings.model_name} in {settings.mode} mode takes no last frame")
        offered = output_sizes(settings)
        listed = caps.sizes or []
        if not listed or any(size not in offered for size in listed):
            problems.append(f"capabilities.sizes must be among {', '.join(offered)}")
        if caps.min_duration < min(DURATIONS) or caps.max_duration > max(DURATIONS):
            problems.append("durations must be within 5..10 s (Kling makes 5 or 10)")
        if caps.min_fps != FPS or caps.max_fps != FPS:
            problems.append(f"fps must be exactly {FPS}")
        if problems:
            raise ValueError("; ".join(problems))

    def refuse(self, settings: Mapping[str, Any], shape: base.VendorShape) -> None:
        config: KlingSettings = self.route_settings(settings)
        support = MODELS[config.model_name]
        model = config.model_name
        kling = f"Kling {model}"
        base.refuse_inputs(shape, "Kling", seed=False)
        base.refuse_duration(shape, DURATIONS, kling)
        base.refuse_num_frames(shape, FPS, DURATIONS, kling, param="duration")
        base.refuse_fps(shape, FPS, kling)
        base.refuse_size(shape, output_sizes(config), f"{kling} ({config.mode})")
        base.refuse_inputs(
            shape,
            kling,
            text_to_video=support.text_to_video,
            input_image=support.image_to_video,
        )
        if shape.has_last_image and config.mode not in support.tail_modes:
            where = (
                f"only in {'/'.join(sorted(support.tail_modes))} mode"
                if support.tail_modes
                else "not at all"
            )
            raise InvalidValue(
                f"last_image is not supported by Kling {model} in {config.mode} mode "
                f"(it takes a last frame {where}); drop last_image.",
                param="last_image",
            )

    # -- jobs ----------------------------------------------------------------------------

    async def submit(self, request: GenerationRequest) -> base.UpstreamJob:
        config: KlingSettings = self.route_settings(request.settings)
        seconds = round(request.duration) if request.duration else min(DURATIONS)
        body: dict[str, Any] = {"model_name": config.model_name, "mode": config.mode}
        if request.prompt:
            body["prompt"] = request.prompt
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        if config.cfg_scale is not None:
            body["cfg_scale"] = config.cfg_scale
        if request.input_image is not None or request.last_image is not None:
            endpoint = "image2video"
            if request.input_image is not None:
                body["image"] = await asyncio.to_thread(
                    fitted_base64, request.input_image, request.width, request.height
                )
            if request.last_image is not None:
                body["image_tail"] = await asyncio.to_thread(
                    fitted_base64, request.last_image, request.width, request.height
                )
        else:
            endpoint = "text2video"
            body["aspect_ratio"] = aspect_ratio_for(request.width, request.height)
        body["duration"] = str(seconds)
        # No external_task_id: Kling requires it unique per account, and the same framegate
        # task may be submitted again (a retry after a lost answer, a fallback route on
        # Kling), which would then be refused.
        data = await self._call("POST", f"/v1/videos/{endpoint}", body)
        task_id = data.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise base.UpstreamError(f"kling: {endpoint} answered without a task_id")
        return base.UpstreamJob(id=task_id, data={"endpoint": endpoint})

    async def poll(self, job: base.UpstreamJob, request: GenerationRequest) -> base.UpstreamStatus:
        endpoint = job.data.get("endpoint", "text2video")
        if endpoint not in ("text2video", "image2video"):
            raise base.UpstreamError(f"kling: unknown job endpoint {endpoint!r}")
        path = f"/v1/videos/{endpoint}/{urllib.parse.quote(job.id, safe='')}"
        data = await self._call("GET", path)
        status = data.get("task_status")
        if status == "succeed":
            url = _first_video_url(data)
            if url is None:
                return base.UpstreamStatus(
                    state="failed",
                    error=base.UpstreamError("kling: the task succeeded but returned no video"),
                )
            return base.UpstreamStatus(state="succeeded", progress=1.0, video_url=url)
        if status == "failed":
            reason = self.scrub(str(data.get("task_status_msg") or "no reason given"))
            lowered = reason.lower()
            if any(hint in lowered for hint in MODERATION_HINTS):
                error = base.UpstreamError(
                    f"kling: the content was refused by Kling's safety review: {reason}",
                    code=base.MODERATION_BLOCKED,
                )
            else:
                error = base.UpstreamError(
                    f"kling: the task failed: {reason}", code=base.UPSTREAM_ERROR
                )
            return base.UpstreamStatus(state="failed", error=error)
        # "submitted", "processing" (and anything newer): not finished. Kling reports no
        # progress fraction.
        return base.UpstreamStatus(state="pending")

    # -- REST plumbing ---------------------------------------------------------------------

    def _authorization(self) -> str:
        if not self.access_key or not self.secret_key:
            raise base.UpstreamError(
                "kling: no access key and secret key are configured "
                "(FRAMEGATE_KLING_ACCESS_KEY, FRAMEGATE_KLING_SECRET_KEY)",
                code=base.UPSTREAM_AUTH,
            )
        now = time.time()
        if self._token is None or now >= self._token_expires - TOKEN_REFRESH_MARGIN_SECONDS:
            issued = int(now)
            expires = issued + TOKEN_LIFETIME_SECONDS
            claims = {
                "iss": self.access_key,
                "exp": expires,
                "nbf": issued - TOKEN_NOT_BEFORE_SKEW_SECONDS,
            }
            self._token = jwt.encode(
                claims, self.secret_key, algorithm="HS256", headers={"typ": "JWT"}
            )
            self._token_expires = float(expires)
        return f"Bearer {self._token}"

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """One API call; the envelope's ``data`` on success, UpstreamError otherwise."""
        headers = {"Authorization": self._authorization(), "Accept": "application/json"}
        what = f"{method} {path.split('?')[0]}"
        try:
            async with self.http() as client:
                response = await client.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc, what) from exc
        payload = base.json_body(response)
        if not isinstance(payload, dict):
            if response.status_code == 200:
                raise base.UpstreamError(f"kling: {what} answered something that is not JSON")
            raise base.classify_status(
                response.status_code,
                f"kling: {what} answered HTTP {response.status_code}",
                response.headers,
            )
        code = payload.get("code")
        if response.status_code == 200 and code == 0:
            data = payload.get("data")
            if not isinstance(data, dict):
                raise base.UpstreamError(f"kling: {what} answered without data")
            return data
        raise self._error(what, response, code, payload.get("message"))

    def _error(
        self, what: str, response: httpx.Response, code: Any, message: Any
    ) -> base.UpstreamError:
        status = response.status_code
        text = self.scrub(str(message or "no message"))
        detail = f"kling: {what} was refused: {text} (code {code}, HTTP {status})"
        if not isinstance(code, int):
            return base.classify_status(status, detail, response.headers)
        if 1000 <= code <= 1004 or code == 1304:
            # Authentication failed / IP allowlist: the operator's keys or setup.
            return base.UpstreamError(detail, code=base.UPSTREAM_AUTH, status_code=status)
        if 1100 <= code <= 1103:
            # Account trouble (arrears, resource pack used up, no access to the model):
            # served with HTTP 429, but waiting does not help.
            return base.UpstreamError(detail, code=base.UPSTREAM_AUTH, status_code=status)
        if code == 1301:
            return base.UpstreamError(detail, code=base.MODERATION_BLOCKED, status_code=status)
        if code in (1302, 1303):
            return base.rate_limited(
                detail, retry_after_seconds(response.headers.get("retry-after"))
            )
        if 1200 <= code <= 1203 or code == 1300:
            return base.UpstreamError(detail, code=base.UPSTREAM_INVALID, status_code=status)
        if 5000 <= code <= 5002:
            if code == 5002:
                return base.UpstreamError(
                    detail, code=base.UPSTREAM_TIMEOUT, retriable=True, status_code=status
                )
            return base.unavailable(detail, status)
        return base.classify_status(status, detail, response.headers)

    def scrub(self, text: str) -> str:
        """Vendor text with the operator's credentials (should they ever be echoed) removed."""
        for secret in (self.secret_key, self.access_key, self._token):
            if secret:
                text = text.replace(secret, "***")
        return text[:1000]


def _first_video_url(data: Mapping[str, Any]) -> str | None:
    result = data.get("task_result")
    videos = result.get("videos") if isinstance(result, dict) else None
    if not isinstance(videos, list):
        return None
    for video in videos:
        if isinstance(video, dict) and isinstance(video.get("url"), str) and video["url"]:
            return str(video["url"])
    return None
