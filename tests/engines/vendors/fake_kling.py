"""A fake of Kling AI's REST API, written from Kling's public API reference.

What it implements (as documented):

* auth: ``Authorization: Bearer <JWT>``, HS256 signed with the secret key, claims
  ``iss`` (the access key), ``exp``, ``nbf``. Failures answer HTTP 401 with service codes
  1001 (no Authorization), 1002 (invalid: bad signature, malformed, unknown issuer),
  1003 (not yet valid) and 1004 (expired);
* ``POST /v1/videos/text2video`` and ``POST /v1/videos/image2video`` create a task and
  answer ``{"code": 0, "message": "SUCCEED", "request_id", "data": {"task_id",
  "task_status": "submitted", "task_info": {"external_task_id"}, "created_at",
  "updated_at"}}`` (times in ms);
* ``GET /v1/videos/{text2video|image2video}/{task_id}`` answers the same envelope with
  ``task_status`` ``submitted`` -> ``processing`` -> ``succeed`` (``task_result.videos[]``
  ``{id, url, duration}``) or ``failed`` (``task_status_msg``);
* errors use the same envelope with a non-zero ``code``: 1201 invalid parameters (400),
  1203 no such task (404), 1301 content security (400), 1302 too many requests (429),
  5000 server error (500).

It is strict on purpose: unknown fields, a ``data:`` prefix on an image, a numeric
``duration`` or a model/feature outside Kling's capability map are refused with 1201, so
drift in the engine shows up as a failing test.
"""

from __future__ import annotations

import base64
import binascii
import io
import itertools
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
from PIL import Image
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.engines.vendors.common import FakeVendor, RecordedRequest, sample_mp4

Outcome = Literal["succeed", "fail", "moderate", "moderate_prompt", "throttle"]

MODELS = {
    "kling-v1",
    "kling-v1-5",
    "kling-v1-6",
    "kling-v2-master",
    "kling-v2-1",
    "kling-v2-1-master",
}
# Kling's capability map for the models above.
TEXT_TO_VIDEO = {"kling-v1", "kling-v1-6", "kling-v2-master", "kling-v2-1-master"}
IMAGE_TAIL = {("kling-v1", "std"), ("kling-v1", "pro"), ("kling-v1-5", "pro")}
IMAGE_TAIL |= {("kling-v1-6", "pro"), ("kling-v2-1", "pro")}

TEXT2VIDEO_FIELDS = {
    "model_name",
    "prompt",
    "negative_prompt",
    "cfg_scale",
    "mode",
    "camera_control",
    "aspect_ratio",
    "duration",
    "callback_url",
    "external_task_id",
}
IMAGE2VIDEO_FIELDS = {
    "model_name",
    "image",
    "image_tail",
    "prompt",
    "negative_prompt",
    "cfg_scale",
    "mode",
    "static_mask",
    "dynamic_masks",
    "camera_control",
    "duration",
    "callback_url",
    "external_task_id",
}

FAILURE_MESSAGE = "Video generation failed, please try again later"
MODERATION_MESSAGE = "Failure to pass the risk control system"


@dataclass
class FakeTask:
    id: str
    endpoint: str
    outcome: Outcome
    polls: int
    body: dict[str, Any]
    external_task_id: str | None
    created_at: int
    seen: int = 0
    status: str = "submitted"
    extra: dict[str, Any] = field(default_factory=dict)


class ParameterError(Exception):
    pass


class FakeKling(FakeVendor):
    """Kling's API on loopback. ``api_key`` is the access key, ``secret_key`` the key the
    JWTs must be signed with."""

    def __init__(self) -> None:
        # Kling's keys are 32-character strings.
        self.api_key = "AKfakeKling0000000000000000000001"
        self.secret_key = "SKfakeKlingSecret000000000000001"
        self.tasks: dict[str, FakeTask] = {}
        self.submitted = 0
        self._outcome: Outcome = "succeed"
        self._polls = 2
        self._throttles_left = 0
        self._ids = itertools.count(1)
        self._video = sample_mp4()
        super().__init__(
            [
                Route("/v1/videos/{endpoint}", self._create, methods=["POST"]),
                Route("/v1/videos/{endpoint}/{task_id}", self._query, methods=["GET"]),
                Route("/media/{name}", self._media, methods=["GET"]),
            ]
        )

    # -- control -------------------------------------------------------------------------

    def script(self, outcome: Outcome, *, polls: int = 2, throttles: int = 3) -> None:
        """How the next submitted jobs behave (until scripted again)."""
        with self._lock:
            self._outcome = "succeed" if outcome == "throttle" else outcome
            self._polls = polls
            self._throttles_left = throttles if outcome == "throttle" else 0

    def engine_kwargs(self) -> dict[str, Any]:
        return {
            "api_key": None,
            "access_key": self.api_key,
            "secret_key": self.secret_key,
            "base_url": self.url,
            "poll_interval": 0.05,
        }

    def settings_overrides(self) -> dict[str, Any]:
        return {
            "kling_access_key": self.api_key,
            "kling_secret_key": self.secret_key,
            "kling_base_url": self.url,
        }

    def api_requests(self) -> list[RecordedRequest]:
        """The recorded requests to the API (not the result downloads)."""
        return [r for r in self.requests if r.path.startswith("/v1/")]

    # -- the API -------------------------------------------------------------------------

    @staticmethod
    def _envelope(
        data: Any, *, code: int = 0, message: str = "SUCCEED", status: int = 200
    ) -> JSONResponse:
        body = {"code": code, "message": message, "request_id": str(uuid.uuid4())}
        if data is not None:
            body["data"] = data
        return JSONResponse(body, status_code=status)

    def _error(
        self, status: int, code: int, message: str, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        response = self._envelope(None, code=code, message=message, status=status)
        response.headers.update(headers or {})
        return response

    def _authenticate(self, record: RecordedRequest) -> JSONResponse | None:
        header = record.headers.get("authorization", "")
        if not header:
            return self._error(401, 1001, "Authorization is empty")
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer" or not token:
            return self._error(401, 1002, "Authorization is invalid")
        try:
            head = jwt.get_unverified_header(token)
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            return self._error(401, 1002, "Authorization is invalid")
        if head.get("alg") != "HS256" or head.get("typ") != "JWT" or issuer != self.api_key:
            return self._error(401, 1002, "Authorization is invalid")
        try:
            jwt.decode(
                token,
                self.secret_key,
                algorithms=["HS256"],
                issuer=self.api_key,
                options={"require": ["iss", "exp", "nbf"]},
            )
        except jwt.ExpiredSignatureError:
            return self._error(401, 1004, "Authorization has expired")
        except jwt.ImmatureSignatureError:
            return self._error(401, 1003, "Authorization is not yet valid")
        except jwt.PyJWTError:
            return self._error(401, 1002, "Authorization is invalid")
        return None

    async def _create(self, request: Request) -> Response:
        record = await self._record(request)
        refused = self._authenticate(record)
        if refused is not None:
            return refused
        endpoint = request.path_params["endpoint"]
        if endpoint not in ("text2video", "image2video"):
            return self._error(404, 1202, "The requested method is invalid")
        body = record.json
        if not isinstance(body, dict):
            return self._error(400, 1200, "Invalid request parameters: body must be JSON")
        with self._lock:
            if self._throttles_left > 0:
                self._throttles_left -= 1
                return self._error(
                    429, 1302, "API request too fast, please slow down", {"Retry-After": "0"}
                )
            outcome, polls = self._outcome, self._polls
        try:
            self._validate(endpoint, body)
        except ParameterError as exc:
            return self._error(400, 1201, f"Invalid request parameters: {exc}")
        if outcome == "moderate_prompt":
            return self._error(400, 1301, "Trigger the content security policy")
        now = int(time.time() * 1000)
        external = body.get("external_task_id")
        with self._lock:
            if external is not None and any(
                t.external_task_id == external for t in self.tasks.values()
            ):
                return self._error(400, 1201, "external_task_id already exists")
            task = FakeTask(
                id=f"{800000000000 + next(self._ids)}",
                endpoint=endpoint,
                outcome=outcome,
                polls=polls,
                body=body,
                external_task_id=external,
                created_at=now,
            )
            self.tasks[task.id] = task
            self.submitted += 1
        return self._envelope(self._task_data(task, now))

    def _validate(self, endpoint: str, body: dict[str, Any]) -> None:
        allowed = TEXT2VIDEO_FIELDS if endpoint == "text2video" else IMAGE2VIDEO_FIELDS
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise ParameterError(f"unknown field(s) {', '.join(unknown)}")
        model = body.get("model_name", "kling-v1")
        mode = body.get("mode", "std")
        if model not in MODELS:
            raise ParameterError(f"model_name {model!r} is not supported")
        if mode not in ("std", "pro"):
            raise ParameterError("mode must be std or pro")
        duration = body.get("duration", "5")
        if not isinstance(duration, str) or duration not in ("5", "10"):
            raise ParameterError("duration must be the string '5' or '10'")
        for name in ("prompt", "negative_prompt"):
            value = body.get(name)
            if value is not None and (not isinstance(value, str) or len(value) > 2500):
                raise ParameterError(f"{name} must be a string of at most 2500 characters")
        cfg = body.get("cfg_scale")
        if cfg is not None and (not isinstance(cfg, int | float) or not 0 <= cfg <= 1):
            raise ParameterError("cfg_scale must be within [0, 1]")
        if endpoint == "text2video":
            if not body.get("prompt"):
                raise ParameterError("prompt is required")
            if model not in TEXT_TO_VIDEO:
                raise ParameterError(f"{model} does not support text to video")
            if body.get("aspect_ratio", "16:9") not in ("16:9", "9:16", "1:1"):
                raise ParameterError("aspect_ratio must be one of 16:9, 9:16, 1:1")
            return
        image, tail = body.get("image"), body.get("image_tail")
        if not image and not tail:
            raise ParameterError("at least one of image and image_tail is required")
        if tail and (model, mode) not in IMAGE_TAIL:
            raise ParameterError(f"image_tail is not supported by {model} in {mode} mode")
        for name, value in (("image", image), ("image_tail", tail)):
            if value:
                self._check_image(name, value)

    @staticmethod
    def _check_image(name: str, value: Any) -> None:
        if not isinstance(value, str):
            raise ParameterError(f"{name} must be a string")
        if value.startswith(("http://", "https://")):
            return
        if value.startswith("data:"):
            raise ParameterError(f"{name}: base64 must not carry a data: prefix")
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ParameterError(f"{name} is neither a URL nor base64") from exc
        if len(raw) > 10 * 1024 * 1024:
            raise ParameterError(f"{name} exceeds 10MB")
        try:
            with Image.open(io.BytesIO(raw)) as decoded:
                fmt, (w, h) = decoded.format, decoded.size
        except OSError as exc:
            raise ParameterError(f"{name} is not an image") from exc
        if fmt not in ("JPEG", "PNG"):
            raise ParameterError(f"{name} must be jpg, jpeg or png")
        if min(w, h) < 300:
            raise ParameterError(f"{name} must be at least 300px on each side")
        if not 1 / 2.5 <= w / h <= 2.5:
            raise ParameterError(f"{name} aspect ratio must be within 1:2.5 ~ 2.5:1")

    async def _query(self, request: Request) -> Response:
        record = await self._record(request)
        refused = self._authenticate(record)
        if refused is not None:
            return refused
        endpoint = request.path_params["endpoint"]
        task_id = request.path_params["task_id"]
        now = int(time.time() * 1000)
        with self._lock:
            task = self.tasks.get(task_id)
            if task is None or task.endpoint != endpoint:
                return self._error(404, 1203, "The requested resource does not exist")
            task.seen += 1
            if task.seen <= task.polls:
                task.status = "submitted" if task.seen == 1 else "processing"
            elif task.outcome == "succeed":
                task.status = "succeed"
            else:
                task.status = "failed"
            data = self._task_data(task, now)
        return self._envelope(data)

    def _task_data(self, task: FakeTask, now: int) -> dict[str, Any]:
        data: dict[str, Any] = {
            "task_id": task.id,
            "task_status": task.status,
            "task_info": {"external_task_id": task.external_task_id}
            if task.external_task_id
            else {},
            "created_at": task.created_at,
            "updated_at": now,
        }
        if task.status == "failed":
            data["task_status_msg"] = (
                MODERATION_MESSAGE if task.outcome == "moderate" else FAILURE_MESSAGE
            )
        if task.status == "succeed":
            data["task_status_msg"] = ""
            data["task_result"] = {
                "videos": [
                    {
                        "id": f"video-{task.id}",
                        "url": f"{self.url}/media/{task.id}.mp4",
                        "duration": str(task.body.get("duration", "5")),
                    }
                ]
            }
        return data

    async def _media(self, request: Request) -> Response:
        await self._record(request)
        name = request.path_params["name"]
        if not name.endswith(".mp4") or name.removesuffix(".mp4") not in self.tasks:
            return Response(status_code=404)
        return Response(self._video, media_type="video/mp4")
