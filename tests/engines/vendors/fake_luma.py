"""A fake of Luma's Dream Machine API, written from Luma's public documentation.

What it serves (under ``/dream-machine/v1``, like api.lumalabs.ai; every call needs
``Authorization: Bearer <key>``, else ``401 {"detail": "Invalid API key provided"}``):

* ``POST /generations/video`` (and the older ``POST /generations``): a JSON generation request
  (``model``, ``prompt``, ``resolution``, ``aspect_ratio``, ``duration``, ``loop``,
  ``keyframes.frame0/frame1`` = ``{"type": "image", "url"}`` or
  ``{"type": "generation", "id"}``), checked as the docs list (prompt 3..5000 characters unless
  an image keyframe is given, no loop with an end frame...); ``400 {"detail"}`` when refused,
  ``201`` with a Generation object (``state: "queued"``) when accepted;
* ``GET /generations/{id}``: ``queued``, then ``dreaming``, then ``completed`` with
  ``assets.video`` (an MP4 this fake serves, without auth, like Luma's CDN) or ``failed`` with a
  ``failure_reason``; ``404 {"detail"}`` for an unknown id;
* ``DELETE /generations/{id}``: ``204``;
* ``429 {"detail"}`` with ``Retry-After: 0`` while throttling.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.engines.vendors.common import FakeVendor, RecordedRequest, sample_mp4

Outcome = Literal["succeed", "fail", "moderate", "throttle", "unavailable"]

PREFIX = "/dream-machine/v1"
MODELS = ("ray-2", "ray-flash-2")
RESOLUTIONS = ("540p", "720p", "1080p", "4k")
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21")
DURATIONS = ("5s", "9s")

# failure_reason values from Luma's "Errors" page.
FAILURE_REASON = "Prompt processing failed"
PROMPT_MODERATION_REASON = "Advanced prompt moderation failed"
FRAME_MODERATION_REASON = "Frame moderation failed"


@dataclass
class _Job:
    id: str
    outcome: Outcome
    polls: int
    model: str
    request: dict[str, Any]
    created_at: str
    seen: int = 0
    deleted: bool = False


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class FakeLuma(FakeVendor):
    """The Dream Machine API on loopback. ``script`` picks how the next submissions go."""

    def __init__(self, api_key: str = "luma-fake-key-0123456789") -> None:
        self.api_key = api_key
        self.submitted = 0
        self.jobs: dict[str, _Job] = {}
        self._outcome: Outcome = "succeed"
        self._polls = 2
        self._throttles = 0
        self._video = sample_mp4()
        super().__init__(
            [
                Route(f"{PREFIX}/generations/video", self._create, methods=["POST"]),
                Route(f"{PREFIX}/generations", self._create, methods=["POST"]),
                Route(f"{PREFIX}/generations/{{id}}", self._get, methods=["GET"]),
                Route(f"{PREFIX}/generations/{{id}}", self._delete, methods=["DELETE"]),
                Route("/cdn/{name}", self._asset, methods=["GET"]),
            ]
        )

    # -- the test's side -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL the engine is configured with (like api.lumalabs.ai/dream-machine/v1);
        ``root``, the fake's origin, serves the "CDN" with the results."""
        return f"{self.root}{PREFIX}"

    def script(self, outcome: Outcome, *, polls: int = 2, throttles: int = 3) -> None:
        """How the next submitted jobs behave: "succeed", "fail", "moderate" (``polls`` polls
        pending first), "throttle" (the next ``throttles`` submissions get a 429, then
        "succeed") or "unavailable" (submissions get a 503 until scripted otherwise)."""
        with self._lock:
            self._polls = polls
            if outcome == "throttle":
                self._outcome = "succeed"
                self._throttles = throttles
            else:
                self._outcome = outcome
                self._throttles = 0

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.jobs.clear()
            self.submitted = 0
            self._outcome = "succeed"
            self._polls = 2
            self._throttles = 0

    def api_requests(self) -> list[RecordedRequest]:
        """The recorded calls to the API (not the result downloads)."""
        return [r for r in self.requests if r.path.startswith(PREFIX)]

    def engine_kwargs(self) -> dict[str, Any]:
        return {
            "api_key": self.api_key,
            "base_url": self.url,
            "timeout": 10.0,
            "poll_interval": 0.05,
        }

    def settings_overrides(self) -> dict[str, Any]:
        return {"luma_api_key": self.api_key, "luma_base_url": self.url}

    # -- the API ---------------------------------------------------------------------------

    def _authorized(self, recorded: RecordedRequest) -> bool:
        return recorded.headers.get("authorization") == f"Bearer {self.api_key}"

    def _generation(self, job: _Job) -> dict[str, Any]:
        state: str
        failure_reason: str | None = None
        assets: dict[str, Any] | None = None
        if job.seen == 0:
            state = "queued"
        elif job.seen <= job.polls:
            state = "queued" if job.seen == 1 else "dreaming"
        elif job.outcome == "succeed":
            state = "completed"
            assets = {
                "video": f"{self.root}/cdn/{job.id}.mp4",
                "image": None,
                "progress_video": None,
            }
        else:
            state = "failed"
            if job.outcome == "moderate":
                keyframes = job.request.get("keyframes") or {}
                failure_reason = FRAME_MODERATION_REASON if keyframes else PROMPT_MODERATION_REASON
            else:
                failure_reason = FAILURE_REASON
        return {
            "id": job.id,
            "generation_type": "video",
            "state": state,
            "failure_reason": failure_reason,
            "created_at": job.created_at,
            "assets": assets,
            "model": job.model,
            "request": {"generation_type": "video", **job.request},
        }

    @staticmethod
    def _check(body: Any) -> str | None:
        """The documented refusals of a video generation request (None: accepted)."""
        if not isinstance(body, dict):
            return "Invalid request body"
        if body.get("model") not in MODELS:
            return f"Invalid model: {body.get('model')!r}; expected one of {', '.join(MODELS)}"
        if body.get("generation_type", "video") != "video":
            return "Unknown request type"
        if "resolution" in body and body["resolution"] not in RESOLUTIONS:
            return f"Invalid resolution: {body['resolution']!r}"
        if "aspect_ratio" in body and body["aspect_ratio"] not in ASPECT_RATIOS:
            return f"Invalid aspect ratio: {body['aspect_ratio']!r}"
        if "duration" in body and body["duration"] not in DURATIONS:
            return f"Invalid duration: {body['duration']!r}"
        keyframes = body.get("keyframes")
        has_image = False
        frames: dict[str, Any] = {}
        if keyframes is not None:
            if not isinstance(keyframes, dict):
                return "Invalid keyframes"
            frames = {k: v for k, v in keyframes.items() if v is not None}
            if not frames:
                return "No keyframes provided"
            for key, frame in frames.items():
                if key not in ("frame0", "frame1") or not isinstance(frame, dict):
                    return "Invalid keyframes"
                if frame.get("type") == "image":
                    url = frame.get("url")
                    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                        return "Invalid keyframe image url"
                    has_image = True
                elif frame.get("type") != "generation" or not frame.get("id"):
                    return "Invalid keyframes"
        prompt = body.get("prompt")
        if prompt is None:
            if not has_image:
                return "Prompt is required"
        elif not isinstance(prompt, str) or len(prompt) < 3:
            return "Prompt is too short, minimum length is 3 characters"
        elif len(prompt) > 5000:
            return "Prompt is too long, maximum length is 5000 characters"
        if body.get("loop"):
            if "frame0" in frames and "frame1" in frames:
                return "Loop is not supported for keyframes"
            if "frame1" in frames:
                return "Loop is not supported for end frame"
        return None

    async def _create(self, request: Request) -> Response:
        recorded = await self._record(request)
        if not self._authorized(recorded):
            return _error(401, "Invalid API key provided")
        with self._lock:
            if self._throttles > 0:
                self._throttles -= 1
                return _error(
                    429,
                    "Too many requests, please slow down",
                    headers={"Retry-After": "0"},
                )
            if self._outcome == "unavailable":
                return _error(503, "Service temporarily unavailable")
        problem = self._check(recorded.json)
        if problem is not None:
            return _error(400, problem)
        with self._lock:
            job = _Job(
                id=str(uuid.uuid4()),
                outcome=self._outcome,
                polls=self._polls,
                model=recorded.json["model"],
                request=dict(recorded.json),
                created_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            )
            self.jobs[job.id] = job
            self.submitted += 1
            payload = self._generation(job)
        return JSONResponse(payload, status_code=201)

    async def _get(self, request: Request) -> Response:
        recorded = await self._record(request)
        if not self._authorized(recorded):
            return _error(401, "Invalid API key provided")
        with self._lock:
            job = self.jobs.get(request.path_params["id"])
            if job is None or job.deleted:
                return _error(404, "Generation not found")
            job.seen += 1
            payload = self._generation(job)
        return JSONResponse(payload)

    async def _delete(self, request: Request) -> Response:
        recorded = await self._record(request)
        if not self._authorized(recorded):
            return _error(401, "Invalid API key provided")
        with self._lock:
            job = self.jobs.get(request.path_params["id"])
            if job is None or job.deleted:
                return _error(404, "Generation not found")
            job.deleted = True
        return Response(status_code=204)

    async def _asset(self, request: Request) -> Response:
        await self._record(request)
        name = request.path_params["name"]
        with self._lock:
            job = self.jobs.get(name.removesuffix(".mp4"))
        if job is None or not name.endswith(".mp4") or job.outcome != "succeed":
            return Response("Not Found", status_code=404, media_type="text/plain")
        return Response(self._video, media_type="video/mp4")
