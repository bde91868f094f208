"""A fake of the Gemini API's Veo endpoints, from Google's public documentation.

* ``POST /v1beta/models/{model}:predictLongRunning`` (key in ``x-goog-api-key`` or ``?key=``)
  with ``{"instances": [{"prompt", "image"?, "lastFrame"?}], "parameters": {...}}``
  answers an operation ``{"name": "models/{model}/operations/{id}"}``.
* ``GET /v1beta/models/{model}/operations/{id}``: ``{"name"}`` while running (``done`` is
  omitted, as proto3 JSON omits false), then ``{"name", "done": true, "response":
  {"@type", "generateVideoResponse": {"generatedSamples": [{"video": {"uri"}}]}}}``, or
  ``{"name", "done": true, "error": {"code", "message"}}`` for a failed job, or a response
  with ``raiMediaFilteredCount`` / ``raiMediaFilteredReasons`` and no samples when the
  safety filters removed the video.
* ``GET /v1beta/files/{id}:download?alt=media`` (needs the key) serves the MP4, or, with
  ``redirect_downloads``, redirects to a signed URL on the fake that needs no key.
* Errors: ``{"error": {"code", "message", "status", "details"?}}``. A wrong key is Google's
  400 ``INVALID_ARGUMENT`` with an ``ErrorInfo`` reason ``API_KEY_INVALID``; a missing key
  a 403 ``PERMISSION_DENIED``; a throttled call a 429 ``RESOURCE_EXHAUSTED`` with a
  ``google.rpc.RetryInfo`` detail (``"retryDelay": "0s"``).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.engines.vendors.common import FakeVendor, RecordedRequest, sample_mp4

Outcome = Literal["succeed", "fail", "moderate", "throttle"]

API_KEY_INVALID_MESSAGE = "API key not valid. Please pass a valid API key."
FAILED_MESSAGE = "Video generation failed due to an internal error. Please try again later."
MODERATION_REASON = (
    "Unable to generate videos because the prompt could not be submitted. The prompt "
    "contains words that violate Gemini API's usage guidelines."
)
RESPONSE_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"

INSTANCE_FIELDS = {"prompt", "image", "lastFrame", "referenceImages", "video"}
PARAMETER_FIELDS = {
    "aspectRatio",
    "resolution",
    "durationSeconds",
    "negativePrompt",
    "personGeneration",
    "sampleCount",
    "numberOfVideos",
    "enhancePrompt",
}
IMAGE_MIME_TYPES = {"image/png", "image/jpeg", "image/webp"}


@dataclass
class _Operation:
    name: str
    model: str
    outcome: Outcome
    polls_left: int
    file_id: str
    polls: int = 0


@dataclass
class _Script:
    outcome: Outcome = "succeed"
    polls: int = 2
    throttles_left: int = 0
    operations: dict[str, _Operation] = field(default_factory=dict)


def google_error(
    code: int, status: str, message: str, details: list[Any] | None = None
) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=code)


def _invalid(message: str) -> Response:
    return google_error(400, "INVALID_ARGUMENT", message)


class FakeVeo(FakeVendor):
    """The Gemini API's Veo endpoints on loopback, with scripted job outcomes."""

    def __init__(self, *, api_key: str | None = None, redirect_downloads: bool = False) -> None:
        self.api_key = api_key or f"AIza-fake-{secrets.token_hex(8)}"
        self.redirect_downloads = redirect_downloads
        self.submitted = 0
        self.video = sample_mp4()
        self._script = _Script()
        self._signed: dict[str, str] = {}
        super().__init__(
            [
                Route("/v1beta/models/{target}", self._predict, methods=["POST"]),
                Route(
                    "/v1beta/models/{model}/operations/{op_id}", self._operation, methods=["GET"]
                ),
                Route("/v1beta/files/{target}", self._download, methods=["GET"]),
                Route("/signed/{token}", self._signed_download, methods=["GET"]),
            ]
        )

    # -- test API ------------------------------------------------------------------------

    def script(self, outcome: Outcome, *, polls: int = 2, throttles: int = 3) -> None:
        """How the next submitted jobs behave (until the next call)."""
        with self._lock:
            self._script.outcome = outcome
            self._script.polls = polls
            self._script.throttles_left = throttles if outcome == "throttle" else 0

    def engine_kwargs(self) -> dict[str, Any]:
        return {
            "api_key": self.api_key,
            "base_url": self.url,
            "timeout": 5.0,
            "poll_interval": 0.05,
        }

    def settings_overrides(self) -> dict[str, Any]:
        return {"veo_api_key": self.api_key, "veo_base_url": self.url}

    def requests_to(self, suffix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith(suffix)]

    # -- handlers ------------------------------------------------------------------------

    def _auth(self, recorded: RecordedRequest) -> Response | None:
        key = recorded.headers.get("x-goog-api-key") or recorded.query.get("key")
        if not key:
            return google_error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
            )
        if key != self.api_key:
            return google_error(
                400,
                "INVALID_ARGUMENT",
                API_KEY_INVALID_MESSAGE,
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    }
                ],
            )
        return None

    async def _predict(self, request: Request) -> Response:
        recorded = await self._record(request)
        denied = self._auth(recorded)
        if denied is not None:
            return denied
        model, _, method = request.path_params["target"].partition(":")
        if method != "predictLongRunning" or not model.startswith("veo-"):
            return google_error(404, "NOT_FOUND", f"models/{model} is not found for {method}.")
        with self._lock:
            if self._script.throttles_left > 0:
                self._script.throttles_left -= 1
                return google_error(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "You exceeded your current quota, please check your plan and billing details.",
                    [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0s"}],
                )
        problem = _check_body(model, recorded.json)
        if problem is not None:
            return _invalid(problem)
        with self._lock:
            outcome: Outcome = self._script.outcome
            if outcome == "throttle":
                outcome = "succeed"
            op_id = secrets.token_hex(6)
            name = f"models/{model}/operations/{op_id}"
            self._script.operations[op_id] = _Operation(
                name=name,
                model=model,
                outcome=outcome,
                polls_left=self._script.polls,
                file_id=secrets.token_hex(6),
            )
            self.submitted += 1
        return JSONResponse({"name": name})

    async def _operation(self, request: Request) -> Response:
        recorded = await self._record(request)
        denied = self._auth(recorded)
        if denied is not None:
            return denied
        with self._lock:
            operation = self._script.operations.get(request.path_params["op_id"])
            if operation is None or operation.model != request.path_params["model"]:
                return google_error(404, "NOT_FOUND", "Operation not found.")
            operation.polls += 1
            if operation.polls_left > 0:
                operation.polls_left -= 1
                return JSONResponse({"name": operation.name})
        done: dict[str, Any] = {"name": operation.name, "done": True}
        if operation.outcome == "fail":
            done["error"] = {"code": 13, "message": FAILED_MESSAGE}
        elif operation.outcome == "moderate":
            done["response"] = {
                "@type": RESPONSE_TYPE,
                "generateVideoResponse": {
                    "raiMediaFilteredCount": 1,
                    "raiMediaFilteredReasons": [MODERATION_REASON],
                },
            }
        else:
            uri = f"{self.url}/v1beta/files/{operation.file_id}:download?alt=media"
            done["response"] = {
                "@type": RESPONSE_TYPE,
                "generateVideoResponse": {"generatedSamples": [{"video": {"uri": uri}}]},
            }
        return JSONResponse(done)

    async def _download(self, request: Request) -> Response:
        recorded = await self._record(request)
        denied = self._auth(recorded)
        if denied is not None:
            return denied
        file_id, _, method = request.path_params["target"].partition(":")
        with self._lock:
            known = any(op.file_id == file_id for op in self._script.operations.values())
        if method != "download" or not known:
            return google_error(404, "NOT_FOUND", "File not found.")
        if recorded.query.get("alt") != "media":
            return JSONResponse({"file": {"name": f"files/{file_id}"}})
        if self.redirect_downloads:
            token = secrets.token_hex(8)
            with self._lock:
                self._signed[token] = file_id
            return RedirectResponse(f"{self.url}/signed/{token}", status_code=302)
        return Response(self.video, media_type="video/mp4")

    async def _signed_download(self, request: Request) -> Response:
        await self._record(request)
        with self._lock:
            known = request.path_params["token"] in self._signed
        if not known:
            return Response(status_code=403)
        return Response(self.video, media_type="video/mp4")


def _check_image(value: Any, field_name: str) -> str | None:
    if not isinstance(value, dict):
        return f"{field_name} must be an object."
    if "inlineData" in value:
        inline = value["inlineData"]
        data, mime = inline.get("data"), inline.get("mimeType")
    else:
        data, mime = value.get("bytesBase64Encoded"), value.get("mimeType")
    if not isinstance(data, str) or not data:
        return f"{field_name} has no image bytes."
    if mime not in IMAGE_MIME_TYPES:
        return f"{field_name}.mimeType must be one of {sorted(IMAGE_MIME_TYPES)}."
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return f"{field_name} is not valid base64."
    return None


def _check_body(model: str, body: Any) -> str | None:
    """The documented constraints of Veo 3 / 3.1 on the Gemini API; None when valid."""
    if not isinstance(body, dict) or not isinstance(body.get("instances"), list):
        return "Invalid JSON payload: 'instances' is required."
    if len(body["instances"]) != 1 or not isinstance(body["instances"][0], dict):
        return "Exactly one instance is supported."
    instance = body["instances"][0]
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        return "Invalid JSON payload: 'parameters' must be an object."
    unknown = sorted(set(instance) - INSTANCE_FIELDS)
    if unknown:
        return f"Invalid JSON payload received. Unknown name \"{unknown[0]}\" at 'instances[0]'."
    unsupported = sorted(set(parameters) - PARAMETER_FIELDS)
    if unsupported:
        return f"`{unsupported[0]}` isn't supported by this model."
    prompt = instance.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        return "prompt must be a string."
    if not prompt and "image" not in instance:
        return "A prompt is required for text-to-video."
    for name in ("image", "lastFrame"):
        if name in instance:
            problem = _check_image(instance[name], name)
            if problem is not None:
                return problem
    if "lastFrame" in instance:
        if "image" not in instance:
            return "lastFrame requires image (the first frame)."
        if not model.startswith("veo-3.1"):
            return "lastFrame isn't supported by this model."
    aspect = parameters.get("aspectRatio", "16:9")
    if aspect not in ("16:9", "9:16"):
        return "aspectRatio must be '16:9' or '9:16'."
    resolution = parameters.get("resolution", "720p")
    if resolution not in ("720p", "1080p"):
        return "resolution must be '720p' or '1080p'."
    duration = parameters.get("durationSeconds", 8)
    if isinstance(duration, str) and duration.isdigit():
        duration = int(duration)
    if duration not in (4, 6, 8):
        return "durationSeconds must be 4, 6 or 8."
    if resolution == "1080p" and duration != 8:
        return "1080p videos must be 8 seconds long."
    count = parameters.get("sampleCount", 1)
    if not isinstance(count, int) or not 1 <= count <= 4:
        return "sampleCount must be between 1 and 4."
    negative = parameters.get("negativePrompt")
    if negative is not None and not isinstance(negative, str):
        return "negativePrompt must be a string."
    person = parameters.get("personGeneration")
    if person is not None and person not in ("allow_all", "allow_adult", "dont_allow"):
        return "personGeneration must be allow_all, allow_adult or dont_allow."
    return None
