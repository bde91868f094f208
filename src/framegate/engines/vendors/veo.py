"""Google Veo through the Gemini API (``generativelanguage.googleapis.com``).

The wire protocol is the Gemini API's long-running ``predictLongRunning`` method:

* submit: ``POST {base}/v1beta/models/{model}:predictLongRunning`` with the key in the
  ``x-goog-api-key`` header and ``{"instances": [{"prompt", "image"?, "lastFrame"?}],
  "parameters": {"aspectRatio", "resolution", "durationSeconds", "sampleCount",
  "negativePrompt"?, "personGeneration"?}}``; images are ``{"bytesBase64Encoded",
  "mimeType"}``. The answer is an operation, ``{"name": "models/.../operations/ID"}``.
* poll: ``GET {base}/v1beta/{operation name}``: ``done`` is absent (false) while the job
  runs; a finished one has either ``error`` (a ``google.rpc.Status``) or
  ``response.generateVideoResponse`` with ``generatedSamples[].video.uri`` - or, when the
  safety filters removed the video, ``raiMediaFilteredCount`` / ``raiMediaFilteredReasons``.
* result: the video URI is a Files API download link that needs the key, so ``download``
  asks the operator-configured host for ``/v1beta/files/{id}:download?alt=media`` itself
  (the key never goes to a host taken from a response) and follows a redirect, if any,
  without the key and under the SSRF rules.

Errors use Google's envelope ``{"error": {"code", "message", "status", "details"}}``; a
429 (``RESOURCE_EXHAUSTED``) carries its back-off as a ``google.rpc.RetryInfo`` detail
(``"retryDelay": "30s"``). A wrong key is a 400 whose ``ErrorInfo`` reason is
``API_KEY_INVALID``; a missing one a 403.

The request shapes are those the official ``google-genai`` SDK sends in Gemini API mode
(``_GenerateVideosParameters_to_mldev`` in its 2.x releases). The SDK itself is not used: its
3.x releases (3.4.0 checked) raise ValueError for ``generate_videos`` unless the client is in
Vertex AI mode, and the REST calls are three plain requests. The Gemini API takes no ``seed``,
``fps`` or ``generateAudio`` for Veo (the SDK refuses them in that mode), so a request with a
seed is refused, and clips are always 24 fps with audio.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from framegate.engines.base import GenerationRequest
from framegate.engines.vendors import base
from framegate.engines.vendors.kit import as_base64, encode_image, size_table
from framegate.exceptions import InvalidValue, PayloadTooLarge
from framegate.kit.http import retry_after_seconds
from framegate.kit.safe_fetch import FetchPolicy, save_capped

API_VERSION = "v1beta"

# Output sizes Veo 3 makes on the Gemini API: "WxH" -> (resolution, aspectRatio).
VEO_SIZES = size_table(("720p", "1080p"), ("16:9", "9:16"))
VEO_DURATIONS: tuple[int, ...] = (4, 6, 8)
# 1080p clips are 8 seconds only.
VEO_1080P_DURATIONS: tuple[int, ...] = (8,)
VEO_FPS = 24

_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED"})
# Words of the safety refusals (prompt or image rejected by the RAI filters).
_MODERATION_HINTS = ("usage guidelines", "responsible ai", "safety filter", "rai filter")
# An operation name as the API returns it ("models/veo-3.0-generate-001/operations/abc").
_OPERATION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
# The file id of a Files API URI ("https://.../v1beta/files/abc123:download?alt=media").
_FILE_ID = re.compile(r"/files/([a-z0-9][a-z0-9-]*)")


class VeoSettings(BaseModel):
    """A Veo route's settings."""

    model_config = ConfigDict(extra="forbid")

    # The Gemini API model id, e.g. "veo-3.0-generate-001".
    model: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{0,99}$")
    # Whether the model takes a last frame (Veo 3.1 does; Veo 3 does not).
    last_frame: bool = False
    # Sent as ``personGeneration`` when set (the API's default otherwise).
    person_generation: Literal["allow_all", "allow_adult", "dont_allow"] | None = None


def _capabilities(*, last_frame: bool = False) -> dict[str, Any]:
    return {
        "text_to_video": True,
        "image_to_video": True,
        "first_last_frame": last_frame,
        "min_duration": min(VEO_DURATIONS),
        "max_duration": max(VEO_DURATIONS),
        "default_duration": 8,
        "min_fps": VEO_FPS,
        "max_fps": VEO_FPS,
        "default_fps": VEO_FPS,
        "sizes": list(VEO_SIZES),
        "default_size": "1280x720",
        "size_multiple": 8,
        "min_side": 720,
        "max_side": 1920,
        "max_pixels": 1920 * 1080,
    }


class VeoEngine(base.VendorEngine):
    """Veo on the Gemini API (REST, ``x-goog-api-key``)."""

    name = "veo"
    key_setting = "FRAMEGATE_VEO_API_KEY"
    settings_model = VeoSettings
    default_poll_interval = 10.0

    # -- catalog -------------------------------------------------------------------------

    def check_route(self, route: Any) -> None:
        """Also refuse capabilities Veo cannot honour (sizes, fps, durations, last frame)."""
        super().check_route(route)
        config: VeoSettings = self.route_settings(route.settings)
        caps = route.capabilities
        unknown = [size for size in caps.sizes or [] if size not in VEO_SIZES]
        if caps.sizes is None or unknown:
            raise ValueError(
                f"capabilities.sizes must list Veo sizes only ({', '.join(VEO_SIZES)})"
            )
        if (caps.min_fps, caps.max_fps, caps.default_fps) != (VEO_FPS,) * 3:
            raise ValueError(f"capabilities: Veo makes {VEO_FPS} fps only")
        if caps.default_duration not in VEO_DURATIONS:
            raise ValueError("capabilities.default_duration must be 4, 6 or 8")
        if caps.first_last_frame and not config.last_frame:
            raise ValueError(
                f"capabilities.first_last_frame needs settings.last_frame ({config.model})"
            )

    def refuse(self, settings: Mapping[str, Any], shape: base.VendorShape) -> None:
        config: VeoSettings = self.route_settings(settings)
        veo = f"Veo ({config.model})"
        base.refuse_size(shape, VEO_SIZES, veo)
        resolution, _ = VEO_SIZES[shape.size]
        base.refuse_duration(shape, VEO_DURATIONS, veo)
        if resolution == "1080p" and shape.duration not in VEO_1080P_DURATIONS:
            raise InvalidValue(
                f"Veo makes 1080p clips of 8 seconds only; got {shape.duration} s at "
                f"{shape.size}. Use duration 8, or a 720p size (1280x720 or 720x1280) for 4 "
                "or 6 seconds.",
                param="duration",
            )
        base.refuse_fps(shape, VEO_FPS, veo)
        base.refuse_num_frames(shape, VEO_FPS, VEO_DURATIONS, veo)
        if shape.has_last_image and not shape.has_image:
            raise InvalidValue(
                "last_image needs input_image as the first frame; give input_image too.",
                param="last_image",
            )
        # The Gemini API takes no seed for Veo.
        base.refuse_inputs(shape, veo, last_image=config.last_frame, seed=False)

    # -- jobs ----------------------------------------------------------------------------

    async def submit(self, request: GenerationRequest) -> base.UpstreamJob:
        config: VeoSettings = self.route_settings(request.settings)
        body = self.request_body(request, config)
        response = await self._call(
            "POST", f"/{API_VERSION}/models/{config.model}:predictLongRunning", json=body
        )
        operation = self._json(response)
        name = operation.get("name")
        if not isinstance(name, str) or not _OPERATION_NAME.match(name) or ".." in name:
            raise base.UpstreamError(f"{self.name}: the submit answer has no operation name")
        return base.UpstreamJob(id=name, data={"operation": name, "model": config.model})

    def request_body(self, request: GenerationRequest, config: VeoSettings) -> dict[str, Any]:
        """The ``predictLongRunning`` body for a request (one instance, one sample)."""
        resolution, aspect_ratio = self.size_entry(VEO_SIZES, request)
        instance: dict[str, Any] = {}
        if request.prompt:
            instance["prompt"] = request.prompt
        if request.input_image is not None:
            instance["image"] = _image(request.input_image)
        if request.last_image is not None:
            instance["lastFrame"] = _image(request.last_image)
        parameters: dict[str, Any] = {
            "aspectRatio": aspect_ratio,
            "resolution": resolution,
            "durationSeconds": round(request.duration),
            "sampleCount": 1,
        }
        if request.negative_prompt:
            parameters["negativePrompt"] = request.negative_prompt
        if config.person_generation is not None:
            parameters["personGeneration"] = config.person_generation
        return {"instances": [instance], "parameters": parameters}

    async def poll(self, job: base.UpstreamJob, request: GenerationRequest) -> base.UpstreamStatus:
        name = str(job.data.get("operation") or job.id)
        if not _OPERATION_NAME.match(name) or ".." in name:
            raise base.UpstreamError(f"{self.name}: invalid operation name {name!r}")
        operation = self._json(await self._call("GET", f"/{API_VERSION}/{name}"))
        if not operation.get("done"):
            return base.UpstreamStatus(state="pending", progress=_progress(operation))
        error = operation.get("error")
        if isinstance(error, Mapping):
            message = self.scrub(str(error.get("message") or "the job failed"))
            code = base.MODERATION_BLOCKED if _is_moderation(message) else base.UPSTREAM_ERROR
            return base.UpstreamStatus(
                state="failed",
                error=base.UpstreamError(f"{self.name}: {message}", code=code),
            )
        result = _dig(operation, "response", "generateVideoResponse")
        samples = result.get("generatedSamples") or []
        for sample in samples if isinstance(samples, list) else []:
            uri = _dig(sample, "video").get("uri")
            if isinstance(uri, str) and uri:
                return base.UpstreamStatus(state="succeeded", progress=1.0, video_url=uri)
        reasons = result.get("raiMediaFilteredReasons") or []
        if result.get("raiMediaFilteredCount") or reasons:
            detail = "; ".join(str(r) for r in reasons) if isinstance(reasons, list) else ""
            message = f"{self.name}: the safety filters blocked the video"
            if detail:
                message += f": {self.scrub(detail)}"
            return base.UpstreamStatus(
                state="failed", error=base.UpstreamError(message, code=base.MODERATION_BLOCKED)
            )
        return base.UpstreamStatus(
            state="failed",
            error=base.UpstreamError(f"{self.name}: the finished operation holds no video"),
        )

    async def download(self, url: str, destination: Path, policy: FetchPolicy) -> None:
        """The URI is a Files API link that needs the key: ask the configured API host for
        that file (never the URI's own host), then follow a redirect without the key."""
        try:
            match = _FILE_ID.search(httpx.URL(url).path)
        except httpx.InvalidURL:
            match = None
        if match is None:
            raise base.UpstreamError(f"{self.name}: the result URI is not a Gemini API file")
        path = f"/{API_VERSION}/files/{match[1]}:download"
        location: str | None = None
        try:
            async with self.http(headers=self._headers(), follow_redirects=False) as client:
                request = client.build_request("GET", path, params={"alt": "media"})
                response = await client.send(request, stream=True)
                try:
                    if response.status_code in (301, 302, 303, 307, 308):
                        target = response.headers.get("location")
                        if not target:
                            raise base.UpstreamError(
                                f"{self.name}: a download redirect without Location"
                            )
                        location = str(response.url.join(target))
                    elif response.status_code >= 400:
                        await response.aread()
                        raise self._error(response)
                    else:
                        await _save_capped(response, destination, policy.max_bytes, self.name)
                finally:
                    await response.aclose()
        except httpx.HTTPError as exc:
            raise self.transport_error(exc, "downloading the result") from None
        if location is not None:
            # A signed storage URL: fetched under the SSRF rules, without the key.
            await super().download(location, destination, policy)

    # -- HTTP ----------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self.require_key()}

    async def _call(
        self, method: str, path: str, *, json: dict[str, Any] | None = None
    ) -> httpx.Response:
        headers = self._headers()
        try:
            async with self.http(headers=headers) as client:
                response = await client.request(method, path, json=json)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc, f"{method} {path}") from None
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        data = base.json_body(response)
        if not isinstance(data, dict):
            raise base.UpstreamError(
                f"{self.name}: the API answered HTTP {response.status_code} without a JSON object"
            )
        return data

    def _error(self, response: httpx.Response) -> base.UpstreamError:
        """Google's error envelope to an UpstreamError."""
        status_code = response.status_code
        body = base.json_body(response)
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            error = {}
        status = str(error.get("status") or "")
        text = str(error.get("message") or response.reason_phrase or "error")
        message = self.scrub(
            f"{self.name}: HTTP {status_code}{' ' + status if status else ''}: {text}"
        )
        details = error.get("details")
        details = [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []
        if status_code == 429:
            retry_after = retry_after_seconds(response.headers.get("retry-after"))
            if retry_after is None:
                retry_after = _retry_delay(details)
            return base.rate_limited(message, retry_after)
        reasons = {str(d.get("reason")) for d in details if d.get("@type") == _ERROR_INFO}
        if status_code == 400 and reasons & _AUTH_REASONS:
            return base.UpstreamError(message, code=base.UPSTREAM_AUTH, status_code=status_code)
        if status_code == 400 and _is_moderation(text):
            return base.UpstreamError(
                message, code=base.MODERATION_BLOCKED, status_code=status_code
            )
        return base.classify_status(status_code, message, response.headers)


# -- helpers -----------------------------------------------------------------------------


def _image(image: Any) -> dict[str, str]:
    return {
        "bytesBase64Encoded": as_base64(encode_image(image, "PNG")),
        "mimeType": "image/png",
    }


def _dig(value: Any, *keys: str) -> dict[str, Any]:
    """``value[k1][k2]...`` when every step is a dict, else an empty dict."""
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, dict) else {}


def _progress(operation: dict[str, Any]) -> float | None:
    percent = _dig(operation, "metadata").get("progressPercent")
    if isinstance(percent, int | float) and not isinstance(percent, bool):
        return max(0.0, min(1.0, float(percent) / 100))
    return None


def _is_moderation(message: str) -> bool:
    lowered = message.lower()
    return any(hint in lowered for hint in _MODERATION_HINTS)


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    """``google.rpc.RetryInfo.retryDelay`` (a JSON Duration such as "30s") in seconds."""
    for detail in details:
        if detail.get("@type") != _RETRY_INFO:
            continue
        delay = detail.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                return None
    return None


async def _save_capped(
    response: httpx.Response, destination: Path, max_bytes: int, name: str
) -> None:
    """The body streamed to ``destination``, decompressed: unlike a URL from outside, the
    configured API host is trusted to send a compressed one."""
    too_large = base.UpstreamError(f"{name}: the result is larger than {max_bytes} bytes")
    declared = response.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > max_bytes:
        raise too_large
    try:
        await save_capped(response.aiter_bytes(), destination, max_bytes=max_bytes, param="result")
    except PayloadTooLarge:
        raise too_large from None
