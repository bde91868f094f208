"""A fake of Runway's API (https://docs.dev.runwayml.com/api), written from its public
documentation, served on loopback.

- Every request needs ``Authorization: Bearer <key>`` (else 401) and ``X-Runway-Version:
  2024-11-06`` (else 400). Errors are JSON with an ``error`` member (a human-readable
  explanation; validation failures add ``issues``).
- ``POST /v1/text_to_video`` and ``POST /v1/image_to_video`` (camelCase JSON bodies:
  ``model``, ``promptText``, ``promptImage``, ``ratio``, ``duration``, ``seed``, ...) answer
  ``{"id": <uuid>, "estimatedCost": {"credits": n}}``, or 429 once the (scripted) daily
  generation limit is hit.
- ``GET /v1/tasks/{id}`` answers the task: ``{"id", "status", "createdAt", ...}`` with status
  ``PENDING``/``THROTTLED``/``RUNNING`` (``progress`` 0..1) and then ``SUCCEEDED`` (``output``:
  a list of URLs), ``FAILED`` (``failure``, ``failureCode``; ``SAFETY.*`` for moderation)
  or ``CANCELLED``. ``DELETE /v1/tasks/{id}`` cancels (204).
- Output URLs point at this fake (``/outputs/<id>.mp4?_jwt=...``) and serve ``sample_mp4()``.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.engines.vendors.common import FakeVendor, RecordedRequest, sample_mp4

Outcome = Literal["succeed", "fail", "moderate", "throttle"]

VERSION = "2024-11-06"

GEN4_RATIOS = {"1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672"}
VEO_RATIOS = {"1280:720", "720:1280", "1080:1920", "1920:1080"}
# Per model: ratios for text_to_video (None: not offered), image_to_video, durations, and
# whether promptImage may carry a "last" frame.
MODELS: dict[str, dict[str, Any]] = {
    "gen4_turbo": {
        "text": None,
        "image": GEN4_RATIOS,
        "durations": {5, 10},
        "last": False,
    },
    "gen4.5": {
        "text": {"1280:720", "720:1280"},
        "image": GEN4_RATIOS,
        "durations": set(range(2, 11)),
        "last": False,
    },
    "veo3.1": {"text": VEO_RATIOS, "image": VEO_RATIOS, "durations": {4, 6, 8}, "last": True},
    "veo3.1_fast": {
        "text": VEO_RATIOS,
        "image": VEO_RATIOS,
        "durations": {4, 6, 8},
        "last": True,
    },
}

FAILURE = (
    "An unexpected error occurred while generating the output. Retrying may succeed.",
    "INTERNAL.BAD_OUTPUT.CODE01",
)
MODERATION = (
    "The prompt text did not pass content moderation.",
    "SAFETY.INPUT.TEXT",
)


@dataclass
class _Task:
    id: str
    outcome: Outcome
    polls: int
    created_at: str
    # The first answer's status: PENDING, or THROTTLED (over the concurrency limit).
    queued: str = "PENDING"
    seen: int = 0
    cancelled: bool = False
    request: dict[str, Any] = field(default_factory=dict)


class FakeRunway(FakeVendor):
    """Runway's task API on 127.0.0.3. ``script`` sets how the next submissions behave."""

    def __init__(self, api_key: str = "key_" + "0123456789abcdef" * 8) -> None:
        self.api_key = api_key
        self.tasks: dict[str, _Task] = {}
        self.submitted = 0
        self._outcome: Outcome = "succeed"
        self._polls = 2
        self._throttles_left = 0
        self._queued = "PENDING"
        self._video = sample_mp4()
        super().__init__(
            [
                Route("/v1/text_to_video", self._text_to_video, methods=["POST"]),
                Route("/v1/image_to_video", self._image_to_video, methods=["POST"]),
                Route("/v1/tasks/{task_id}", self._task, methods=["GET", "DELETE"]),
                Route("/outputs/{name}", self._output, methods=["GET"]),
            ]
        )

    # -- test-facing ---------------------------------------------------------------------

    def script(self, outcome: Outcome, *, polls: int = 2, throttles: int = 3) -> None:
        """How the next submitted jobs behave: ``polls`` PENDING/RUNNING answers, then
        success, failure or moderation; "throttle": the next ``throttles`` submissions are
        refused with 429, then jobs succeed (queued as THROTTLED at first, as over the
        concurrency limit)."""
        with self._lock:
            self._polls = polls
            if outcome == "throttle":
                self._outcome = "succeed"
                self._throttles_left = throttles
                self._queued = "THROTTLED"
            else:
                self._outcome = outcome
                self._throttles_left = 0
                self._queued = "PENDING"

    def engine_kwargs(self) -> dict[str, Any]:
        return {"api_key": self.api_key, "base_url": self.url, "poll_interval": 0.05}

    def settings_overrides(self) -> dict[str, Any]:
        return {"runway_api_key": self.api_key, "runway_base_url": self.url}

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if r.path == path and (method is None or r.method == method.upper())
        ]

    # -- the API -------------------------------------------------------------------------

    def _refuse_caller(self, recorded: RecordedRequest) -> Response | None:
        if recorded.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "Invalid API key. Check that your key is correct and active.")
        if recorded.headers.get("x-runway-version") != VERSION:
            return _error(
                400,
                "The X-Runway-Version header is missing or invalid. "
                f"Set it to a supported version, e.g. {VERSION}.",
            )
        return None

    async def _text_to_video(self, request: Request) -> Response:
        return await self._create(request, image=False)

    async def _image_to_video(self, request: Request) -> Response:
        return await self._create(request, image=True)

    async def _create(self, request: Request, *, image: bool) -> Response:
        recorded = await self._record(request)
        refused = self._refuse_caller(recorded)
        if refused is not None:
            return refused
        body = recorded.json
        if not isinstance(body, dict):
            return _error(400, "The request body must be a JSON object.")
        issues = _validate(body, image=image)
        if issues:
            return JSONResponse(
                {"error": "Validation of body failed", "issues": issues}, status_code=400
            )
        with self._lock:
            if self._throttles_left > 0:
                self._throttles_left -= 1
                return _error(
                    429,
                    "You have exceeded the daily generation limit of your usage tier.",
                    headers={"Retry-After": "0"},
                )
            task = _Task(
                id=str(uuid.uuid4()),
                outcome=self._outcome,
                polls=self._polls,
                queued=self._queued,
                created_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                request=body,
            )
            self.tasks[task.id] = task
            self.submitted += 1
        credits = 5 * int(body.get("duration") or 5)
        return JSONResponse({"id": task.id, "estimatedCost": {"credits": credits}})

    async def _task(self, request: Request) -> Response:
        recorded = await self._record(request)
        refused = self._refuse_caller(recorded)
        if refused is not None:
            return refused
        task_id = request.path_params["task_id"]
        with self._lock:
            task = self.tasks.get(task_id)
            if task is None:
                return _error(404, "Task not found.")
            if request.method == "DELETE":
                task.cancelled = True
                return Response(status_code=204)
            task.seen += 1
            return JSONResponse(self._task_json(task))

    def _task_json(self, task: _Task) -> dict[str, Any]:
        base: dict[str, Any] = {"id": task.id, "createdAt": task.created_at}
        if task.cancelled:
            return {**base, "status": "CANCELLED", "cost": {"credits": 0}}
        if task.seen <= task.polls:
            estimated = {"estimatedCost": {"credits": 25}}
            if task.seen == 1:
                return {**base, **estimated, "status": task.queued}
            progress = round((task.seen - 1) / task.polls, 2)
            return {**base, **estimated, "status": "RUNNING", "progress": progress}
        if task.outcome == "succeed":
            token = base64.urlsafe_b64encode(task.id.encode()).decode().rstrip("=")
            return {
                **base,
                "status": "SUCCEEDED",
                "cost": {"credits": 25},
                "output": [f"{self.url}/outputs/{task.id}.mp4?_jwt={token}"],
            }
        failure, code = MODERATION if task.outcome == "moderate" else FAILURE
        return {
            **base,
            "status": "FAILED",
            "cost": {"credits": 0},
            "failure": failure,
            "failureCode": code,
        }

    async def _output(self, request: Request) -> Response:
        await self._record(request)
        name = request.path_params["name"]
        if not name.endswith(".mp4") or name[: -len(".mp4")] not in self.tasks:
            return Response(status_code=404)
        return Response(self._video, media_type="video/mp4")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _issue(path: str, message: str) -> dict[str, Any]:
    return {"code": "invalid", "path": [path], "message": message}


def _validate(body: dict[str, Any], *, image: bool) -> list[dict[str, Any]]:
    """The documented constraints the engine relies on (a subset of Runway's validation)."""
    model = body.get("model")
    spec = MODELS.get(model) if isinstance(model, str) else None
    if spec is None:
        return [_issue("model", f"Invalid model {model!r} for this endpoint.")]
    issues = []
    ratios = spec["image"] if image else spec["text"]
    if ratios is None:
        return [_issue("model", f"{model} does not support text_to_video.")]
    if body.get("ratio") not in ratios:
        issues.append(_issue("ratio", f"Invalid ratio; expected one of {sorted(ratios)}."))
    duration = body.get("duration")
    if duration is not None and duration not in spec["durations"]:
        issues.append(_issue("duration", f"Invalid duration for {model}."))
    text = body.get("promptText")
    if text is not None and (
        not isinstance(text, str) or not text or len(text.encode("utf-16-le")) // 2 > 1000
    ):
        issues.append(_issue("promptText", "Must be 1 to 1000 characters."))
    if text is None and (not image or model == "gen4.5"):
        issues.append(_issue("promptText", "Required."))
    seed = body.get("seed")
    if seed is not None and not (isinstance(seed, int) and 0 <= seed <= 4294967295):
        issues.append(_issue("seed", "Must be an integer from 0 to 4294967295."))
    if image:
        issues.extend(_validate_images(body.get("promptImage"), last_allowed=spec["last"]))
    elif "promptImage" in body:
        issues.append(_issue("promptImage", "Unrecognized key."))
    if "negativePrompt" in body and not model.startswith("veo"):
        issues.append(_issue("negativePrompt", "Unrecognized key."))
    return issues


def _validate_images(value: Any, *, last_allowed: bool) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [] if _valid_uri(value) else [_issue("promptImage", "Invalid data URI.")]
    if not isinstance(value, list) or not value:
        return [_issue("promptImage", "Required.")]
    positions = []
    for item in value:
        if not isinstance(item, dict) or not _valid_uri(item.get("uri")):
            return [_issue("promptImage", "Invalid data URI.")]
        positions.append(item.get("position"))
    allowed = [["first"], ["first", "last"]] if last_allowed else [["first"]]
    if positions not in allowed:
        return [_issue("promptImage", f"Invalid positions {positions}.")]
    return []


def _valid_uri(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if value.startswith("https://"):
        return True
    prefix, _, data = value.partition(",")
    if prefix not in ("data:image/png;base64", "data:image/jpeg;base64", "data:image/webp;base64"):
        return False
    if len(value) >= 5 * 1024 * 1024:
        return False
    try:
        base64.b64decode(data, validate=True)
    except ValueError:
        return False
    return True
