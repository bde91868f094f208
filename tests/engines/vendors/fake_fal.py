"""A fake of fal.ai's queue API, after its public documentation.

* ``POST /{app}`` (``Authorization: Key <key>``, JSON input) -> 200 ``{"request_id",
  "response_url", "status_url", "cancel_url", "queue_position"}``; the URLs use the app id
  without its sub-path (``/{owner}/{alias}/requests/{id}``), as fal's do.
* ``GET /{owner}/{alias}/requests/{id}/status`` -> ``{"status": "IN_QUEUE",
  "queue_position", "response_url"}``, then ``{"status": "IN_PROGRESS", "logs",
  "response_url"}``, then ``{"status": "COMPLETED", "logs", "metrics", "response_url"}``
  (plus ``"error"``/``"error_type"`` when the app failed).
* ``GET /{owner}/{alias}/requests/{id}`` -> the app's output ``{"video": {"url",
  "content_type", "file_name", "file_size"}, "seed"}``; 400 while the job runs; the app's
  error once it failed: a request error ``{"detail": str, "error_type"}`` (500, header
  ``X-Fal-Error-Type``) or model errors ``{"detail": [{"loc", "msg", "type", "url",
  "input"}]}`` (422; type ``content_policy_violation`` for the safety checker).
* ``PUT /{owner}/{alias}/requests/{id}/cancel`` -> 202 ``{"status":
  "CANCELLATION_REQUESTED"}``, or 400 ``{"status": "ALREADY_COMPLETED"}``.
* A missing or wrong key -> 401 ``{"detail": ...}``; a throttled submission -> 429 with
  ``Retry-After: 0``.
* ``GET /files/{id}/output.mp4`` (no auth, like fal's CDN) -> the sample MP4.
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Literal, Self

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.engines.vendors.common import FakeVendor, RecordedRequest, sample_mp4

Outcome = Literal["succeed", "fail", "moderate", "throttle", "invalid"]

_STATUS_PATH = re.compile(r"^/(?P<root>.+)/requests/(?P<id>[^/]+)/status$")
_RESULT_PATH = re.compile(r"^/(?P<root>.+)/requests/(?P<id>[^/]+)$")
_CANCEL_PATH = re.compile(r"^/(?P<root>.+)/requests/(?P<id>[^/]+)/cancel$")
_FILE_PATH = re.compile(r"^/files/(?P<id>[^/]+)/output\.mp4$")
_NAMESPACES = ("workflows", "comfy")
MODERATION_MESSAGE = (
    "The content could not be processed because it contained material flagged by a content checker."
)
FAILURE_MESSAGE = "Video generation failed: the model produced no output."

_SAMPLE: bytes | None = None
_SAMPLE_LOCK = threading.Lock()


def _sample() -> bytes:
    global _SAMPLE
    with _SAMPLE_LOCK:
        if _SAMPLE is None:
            _SAMPLE = sample_mp4()
        return _SAMPLE


@dataclass
class FakeJob:
    id: str
    app: str
    root: str
    outcome: Outcome
    polls: int
    arguments: dict[str, Any]
    status_calls: int = 0
    cancelled: bool = False

    @property
    def completed(self) -> bool:
        return self.status_calls > self.polls


@dataclass
class _Script:
    outcome: Outcome = "succeed"
    polls: int = 2
    throttles_left: int = 0


def _root(app: str) -> str:
    parts = app.split("/")
    return "/".join(parts[: 3 if parts[0] in _NAMESPACES else 2])


class FakeFal(FakeVendor):
    """fal's queue API on 127.0.0.3; ``script`` decides how the next jobs go."""

    def __init__(self, api_key: str = "fake-key-id:fake-key-secret-0123456789") -> None:
        self.api_key = api_key
        self.jobs: dict[str, FakeJob] = {}
        self.submitted = 0
        self._script = _Script()
        super().__init__(
            [Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT", "DELETE"])]
        )

    # -- test API ---------------------------------------------------------------------------

    def script(self, outcome: Outcome, *, polls: int = 2, throttles: int = 3) -> None:
        """How the next submitted jobs behave: "succeed", "fail", "moderate", "invalid"
        (the app's 422 validation error) or "throttle" (the next ``throttles`` submissions
        get 429, then jobs succeed). ``polls``: status answers before COMPLETED."""
        with self._lock:
            if outcome == "throttle":
                self._script = _Script("succeed", polls, throttles)
            else:
                self._script = _Script(outcome, polls, 0)

    def reset(self) -> None:
        """Forget every request and job; jobs succeed after two polls again."""
        with self._lock:
            self.requests.clear()
            self.jobs.clear()
            self.submitted = 0
            self._script = _Script()

    def engine_kwargs(self) -> dict[str, Any]:
        return {"api_key": self.api_key, "base_url": self.url, "poll_interval": 0.05}

    def settings_overrides(self) -> dict[str, Any]:
        return {"fal_key": self.api_key, "fal_base_url": self.url}

    def posts(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST"]

    def start(self) -> Self:
        _sample()
        return super().start()

    # -- the API ----------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        recorded = await self._record(request)
        body = recorded.json
        path = recorded.path
        if request.method == "GET" and (match := _FILE_PATH.match(path)):
            if match["id"] not in self.jobs:
                return JSONResponse({"detail": "Not Found"}, status_code=404)
            return Response(_sample(), media_type="video/mp4")
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        if request.method == "POST":
            return self._submit(path.strip("/"), body)
        if request.method == "PUT" and (match := _CANCEL_PATH.match(path)):
            return self._cancel(match["root"], match["id"])
        if request.method == "GET" and (match := _STATUS_PATH.match(path)):
            return self._status(match["root"], match["id"])
        if request.method == "GET" and (match := _RESULT_PATH.match(path)):
            return self._result(match["root"], match["id"])
        return JSONResponse({"detail": "Not Found"}, status_code=404)

    def _authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("authorization")
        if header is None:
            return JSONResponse(
                {"detail": "Authentication is required to access this application."},
                status_code=401,
            )
        scheme, _, token = header.partition(" ")
        if scheme != "Key" or token != self.api_key:
            return JSONResponse({"detail": "No user found for Key ID and Secret"}, 401)
        return None

    def _urls(self, root: str, request_id: str) -> dict[str, str]:
        base = f"{self.url}/{root}/requests/{request_id}"
        return {
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }

    def _submit(self, app: str, body: Any) -> Response:
        if not isinstance(body, dict):
            return JSONResponse(
                {
                    "detail": [
                        {
                            "loc": ["body"],
                            "msg": "Input should be a valid dictionary",
                            "type": "dict_type",
                        }
                    ]
                },
                status_code=422,
            )
        with self._lock:
            script = self._script
            if script.throttles_left > 0:
                script.throttles_left -= 1
                return JSONResponse(
                    {"detail": "Too many requests: rate limit exceeded, try again later."},
                    status_code=429,
                    headers={"Retry-After": "0"},
                )
            request_id = str(uuid.uuid4())
            job = FakeJob(
                id=request_id,
                app=app,
                root=_root(app),
                outcome=script.outcome,
                polls=script.polls,
                arguments=body,
            )
            self.jobs[request_id] = job
            self.submitted += 1
        return JSONResponse(
            {"request_id": request_id, **self._urls(job.root, request_id), "queue_position": 0}
        )

    def _job(self, root: str, request_id: str) -> FakeJob | None:
        job = self.jobs.get(request_id)
        # fal serves a request under its app id without the sub-path only.
        return job if job is not None and job.root == root else None

    def _status(self, root: str, request_id: str) -> Response:
        job = self._job(root, request_id)
        if job is None:
            return JSONResponse({"detail": "Request not found"}, status_code=404)
        with self._lock:
            job.status_calls += 1
            calls = job.status_calls
        response_url = self._urls(job.root, job.id)["response_url"]
        if calls == 1 and job.polls > 0:
            return JSONResponse(
                {"status": "IN_QUEUE", "queue_position": 0, "response_url": response_url},
                status_code=202,
            )
        if calls <= job.polls:
            return JSONResponse(
                {"status": "IN_PROGRESS", "logs": None, "response_url": response_url},
                status_code=202,
            )
        completed: dict[str, Any] = {
            "status": "COMPLETED",
            "logs": None,
            "metrics": {"inference_time": 1.5},
            "response_url": response_url,
        }
        if job.outcome == "fail":
            completed.update(error=FAILURE_MESSAGE, error_type="runner_server_error")
        elif job.outcome in ("moderate", "invalid"):
            completed.update(error="Unprocessable Entity", error_type=None)
        return JSONResponse(completed)

    def _result(self, root: str, request_id: str) -> Response:
        job = self._job(root, request_id)
        if job is None:
            return JSONResponse({"detail": "Request not found"}, status_code=404)
        if not job.completed:
            return JSONResponse({"detail": "Request is still in progress"}, status_code=400)
        if job.outcome == "fail":
            return JSONResponse(
                {"detail": FAILURE_MESSAGE, "error_type": "runner_server_error"},
                status_code=500,
                headers={"X-Fal-Error-Type": "runner_server_error", "X-Fal-Retryable": "false"},
            )
        if job.outcome == "moderate":
            error = {
                "loc": ["body", "prompt"],
                "msg": MODERATION_MESSAGE,
                "type": "content_policy_violation",
                "url": "https://docs.fal.ai/errors#content_policy_violation",
                "input": job.arguments.get("prompt"),
            }
            return JSONResponse(
                {"detail": [error]}, status_code=422, headers={"X-Fal-Retryable": "false"}
            )
        if job.outcome == "invalid":
            error = {
                "loc": ["body", "duration"],
                "msg": "Input should be '5' or '10'",
                "type": "enum",
                "url": "https://docs.fal.ai/errors#enum",
                "input": job.arguments.get("duration"),
            }
            return JSONResponse({"detail": [error]}, status_code=422)
        video_url = f"{self.url}/files/{job.id}/output.mp4"
        return JSONResponse(
            {
                "video": {
                    "url": video_url,
                    "content_type": "video/mp4",
                    "file_name": "output.mp4",
                    "file_size": len(_sample()),
                },
                "seed": job.arguments.get("seed", 42),
            }
        )

    def _cancel(self, root: str, request_id: str) -> Response:
        job = self._job(root, request_id)
        if job is None:
            return JSONResponse({"detail": "Request not found"}, status_code=404)
        if job.completed:
            return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
        job.cancelled = True
        return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)
