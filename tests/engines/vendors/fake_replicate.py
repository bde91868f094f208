"""A fake of Replicate's HTTP API, from its public documentation, served on loopback.

What it implements (https://replicate.com/docs/reference/http):

* ``Authorization: Bearer <token>`` (the older ``Token <token>`` scheme too); without it
  ``401 {"title": "Unauthenticated", "detail": "You did not pass an authentication token",
  "status": 401}``, with another token "... a valid authentication token";
* ``POST /v1/models/{owner}/{name}/predictions`` with ``{"input": {...}}`` (official models)
  and ``POST /v1/predictions`` with ``{"version": "<64 hex>" | "owner/name:<64 hex>" |
  "owner/name", "input": {...}}``: ``201`` with the prediction object ``{"id", "model",
  "version", "input", "logs", "output", "data_removed", "error", "status", "created_at",
  "started_at", "completed_at", "urls": {"get", "cancel", "stream", "web"}, "metrics"}``;
  an unknown model is ``404``; inputs that break the model's schema are ``422 {"title":
  "Input validation failed", "detail", "status", "invalid_fields": [...]}`` (for the models
  in ``MODEL_SCHEMAS``, whose inputs are taken from their Replicate API pages; this fake is
  stricter than Replicate in refusing inputs those schemas do not list);
* ``GET /v1/predictions/{id}``: ``starting`` -> ``processing`` (tqdm-style progress in
  ``logs``) -> ``succeeded`` with ``output`` the video's URL (served by the fake, like
  replicate.delivery, without auth) | ``failed`` with ``error``; moderation failures read
  "The input or output was flagged as sensitive. Please try again with different inputs.
  (E005)";
* ``POST /v1/predictions/{id}/cancel``: the prediction, now ``canceled``;
* throttling: ``429 {"detail": "Request was throttled. Expected available in 0 seconds.",
  "status": 429}`` with ``Retry-After: 0``.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.engines.vendors.common import FakeVendor, RecordedRequest, sample_mp4

Outcome = Literal["succeed", "fail", "moderate", "throttle"]

FAIL_MESSAGE = "An unexpected error occurred. (E1000)"
MODERATION_MESSAGE = (
    "The input or output was flagged as sensitive. Please try again with different inputs. (E005)"
)
_VERSION_RE = re.compile(r"^(?:([a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*):)?([0-9a-f]{64})$")
_MODEL_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class InputSpec:
    """One input of a model's schema."""

    type: Literal["string", "integer", "number", "boolean", "uri"]
    required: bool = False
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None


# The inputs of the models the built-in routes use (from their Replicate API pages).
MODEL_SCHEMAS: dict[str, dict[str, InputSpec]] = {
    "wavespeedai/wan-2.1-t2v-480p": {
        "prompt": InputSpec("string", required=True),
        "seed": InputSpec("integer"),
        "aspect_ratio": InputSpec("string", choices=("16:9", "9:16")),
        "fast_mode": InputSpec("string", choices=("Off", "Balanced", "Fast")),
        "num_frames": InputSpec("integer", minimum=81, maximum=100),
        "frames_per_second": InputSpec("integer", minimum=5, maximum=24),
        "sample_steps": InputSpec("integer", minimum=1, maximum=40),
        "sample_shift": InputSpec("number", minimum=1, maximum=10),
        "sample_guide_scale": InputSpec("number", minimum=0, maximum=10),
        "lora_weights": InputSpec("string"),
        "lora_scale": InputSpec("number"),
    },
    "minimax/video-01": {
        "prompt": InputSpec("string", required=True),
        "prompt_optimizer": InputSpec("boolean"),
        "first_frame_image": InputSpec("uri"),
        "subject_reference": InputSpec("uri"),
    },
}


@dataclass
class _Prediction:
    id: str
    model: str
    version: str
    input: dict[str, Any]
    outcome: Outcome
    polls: int
    created_at: str
    status: str = "starting"
    seen: int = 0
    output: Any = None
    error: str | None = None
    logs: str = ""
    started_at: str | None = None
    completed_at: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"title": title, "detail": detail, "status": status, **extra}, status)


class FakeReplicate(FakeVendor):
    """Replicate's predictions API on 127.0.0.3 (see the module docstring)."""

    def __init__(self, api_key: str = "r8_fake_replicate_token_0123456789") -> None:
        self.api_key = api_key
        self.submitted = 0
        self.predictions: dict[str, _Prediction] = {}
        self._outcome: Outcome = "succeed"
        self._polls = 2
        self._throttles_left = 0
        self._poll_errors: list[int] = []
        self._video = sample_mp4()
        super().__init__(
            [
                Route(
                    "/v1/models/{owner}/{name}/predictions", self._create_official, methods=["POST"]
                ),
                Route("/v1/predictions", self._create_version, methods=["POST"]),
                Route("/v1/predictions/{id}", self._get, methods=["GET"]),
                Route("/v1/predictions/{id}/cancel", self._cancel, methods=["POST"]),
                Route("/delivery/{id}/output.mp4", self._video_file, methods=["GET"]),
                Route("/{path:path}", self._not_found, methods=["GET", "POST", "PUT", "DELETE"]),
            ]
        )

    # -- the test's controls -------------------------------------------------------------

    def script(self, outcome: Outcome, *, polls: int = 2, throttles: int = 3) -> None:
        """How the next submitted predictions behave: ``polls`` polls pending, then success,
        failure or a moderation failure; "throttle": the next ``throttles`` submissions get
        429, then predictions succeed."""
        with self._lock:
            self._polls = polls
            if outcome == "throttle":
                self._throttles_left = throttles
                self._outcome = "succeed"
            else:
                self._throttles_left = 0
                self._outcome = outcome

    def script_poll_errors(self, *statuses: int) -> None:
        """The next GETs of a prediction answer these HTTP statuses (one each)."""
        with self._lock:
            self._poll_errors.extend(statuses)

    def engine_kwargs(self) -> dict[str, Any]:
        return {"api_key": self.api_key, "base_url": self.url, "poll_interval": 0.05}

    def settings_overrides(self) -> dict[str, Any]:
        return {"replicate_api_token": self.api_key, "replicate_base_url": self.url}

    def requests_to(self, method: str, path_prefix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    # -- plumbing ------------------------------------------------------------------------

    def _auth_problem(self, recorded: RecordedRequest) -> Response | None:
        header = recorded.headers.get("authorization")
        if not header:
            return _problem(401, "Unauthenticated", "You did not pass an authentication token")
        scheme, _, token = header.partition(" ")
        if scheme not in ("Bearer", "Token") or token.strip() != self.api_key:
            return _problem(401, "Unauthenticated", "You did not pass a valid authentication token")
        return None

    def _prediction_json(self, p: _Prediction) -> dict[str, Any]:
        base = f"{self.url}/v1/predictions/{p.id}"
        return {
            "id": p.id,
            "model": p.model,
            "version": p.version,
            "input": p.input,
            "logs": p.logs,
            "output": p.output,
            "data_removed": False,
            "error": p.error,
            "status": p.status,
            "created_at": p.created_at,
            "started_at": p.started_at,
            "completed_at": p.completed_at,
            "urls": {
                "cancel": f"{base}/cancel",
                "get": base,
                "stream": f"{self.url}/v1/streams/{p.id}",
                "web": f"https://replicate.com/p/{p.id}",
            },
            "metrics": p.metrics,
        }

    # -- endpoints -----------------------------------------------------------------------

    async def _create_official(self, request: Request) -> Response:
        recorded = await self._record(request)
        model = f"{request.path_params['owner']}/{request.path_params['name']}"
        return self._create(recorded, model, None)

    async def _create_version(self, request: Request) -> Response:
        recorded = await self._record(request)
        problem = self._auth_problem(recorded)
        if problem is not None:
            return problem
        body = recorded.json if isinstance(recorded.json, dict) else {}
        version = body.get("version")
        if not isinstance(version, str) or not version:
            return _problem(
                422,
                "Input validation failed",
                "- version: version is required\n",
                invalid_fields=[
                    {"type": "required", "field": "version", "description": "version is required"}
                ],
            )
        match = _VERSION_RE.match(version)
        if match is not None:
            return self._create(recorded, match[1] or "someone/custom-model", match[2])
        if _MODEL_RE.match(version):
            return self._create(recorded, version, None)
        return _problem(
            422,
            "Invalid version or not permitted",
            "The specified version does not exist (or perhaps you don't have permission to "
            "use it?)",
        )

    def _create(self, recorded: RecordedRequest, model: str, version: str | None) -> Response:
        problem = self._auth_problem(recorded)
        if problem is not None:
            return problem
        with self._lock:
            if self._throttles_left > 0:
                self._throttles_left -= 1
                return JSONResponse(
                    {
                        "detail": "Request was throttled. Expected available in 0 seconds.",
                        "status": 429,
                    },
                    429,
                    headers={"Retry-After": "0"},
                )
        if version is None and model not in MODEL_SCHEMAS:
            return _problem(404, "Not found", "The requested resource could not be found.")
        body = recorded.json
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return _problem(
                422,
                "Input validation failed",
                "- input: input is required\n",
                invalid_fields=[
                    {"type": "required", "field": "input", "description": "input is required"}
                ],
            )
        inputs: dict[str, Any] = body["input"]
        invalid = _validate(MODEL_SCHEMAS.get(model), inputs)
        if invalid:
            detail = "".join(f"- {item['field']}: {item['description']}\n" for item in invalid)
            return _problem(422, "Input validation failed", detail, invalid_fields=invalid)
        with self._lock:
            prediction = _Prediction(
                id=secrets.token_hex(13)[:26],
                model=model,
                version=version or f"dp-{secrets.token_hex(16)}",
                input=inputs,
                outcome=self._outcome,
                polls=self._polls,
                created_at=_now(),
            )
            self.predictions[prediction.id] = prediction
            self.submitted += 1
            return JSONResponse(self._prediction_json(prediction), 201)

    async def _get(self, request: Request) -> Response:
        recorded = await self._record(request)
        problem = self._auth_problem(recorded)
        if problem is not None:
            return problem
        with self._lock:
            if self._poll_errors:
                status = self._poll_errors.pop(0)
                return _problem(status, "Service unavailable", "Please try again later.")
            prediction = self.predictions.get(request.path_params["id"])
            if prediction is None:
                return _problem(404, "Not found", "The requested resource could not be found.")
            self._advance(prediction)
            return JSONResponse(self._prediction_json(prediction))

    async def _cancel(self, request: Request) -> Response:
        recorded = await self._record(request)
        problem = self._auth_problem(recorded)
        if problem is not None:
            return problem
        with self._lock:
            prediction = self.predictions.get(request.path_params["id"])
            if prediction is None:
                return _problem(404, "Not found", "The requested resource could not be found.")
            if prediction.status not in ("succeeded", "failed", "canceled"):
                prediction.status = "canceled"
                prediction.completed_at = _now()
            return JSONResponse(self._prediction_json(prediction))

    async def _video_file(self, request: Request) -> Response:
        await self._record(request)
        if request.path_params["id"] not in self.predictions:
            return Response(status_code=404)
        return Response(self._video, media_type="video/mp4")

    async def _not_found(self, request: Request) -> Response:
        await self._record(request)
        return _problem(404, "Not found", "The requested resource could not be found.")

    def _advance(self, p: _Prediction) -> None:
        """One poll: pending for ``polls`` polls, then the scripted end."""
        if p.status in ("succeeded", "failed", "canceled"):
            return
        p.seen += 1
        if p.seen <= p.polls:
            if p.seen == 1:
                p.status = "starting"
                p.logs = ""
            else:
                p.status = "processing"
                p.started_at = p.started_at or _now()
                done = 30 * (p.seen - 1) // p.polls
                bar = "#" * (done // 3)
                p.logs = f"{100 * done // 30:3d}%|{bar:<10}| {done}/30 [00:01<00:01, 9.9it/s]\n"
            return
        p.started_at = p.started_at or _now()
        p.completed_at = _now()
        p.metrics = {"predict_time": 1.25, "total_time": 1.5}
        if p.outcome == "succeed":
            p.status = "succeeded"
            p.output = f"{self.url}/delivery/{p.id}/output.mp4"
        elif p.outcome == "moderate":
            p.status = "failed"
            p.error = MODERATION_MESSAGE
        else:
            p.status = "failed"
            p.error = FAIL_MESSAGE
            p.logs += "Traceback (most recent call last):\nRuntimeError: generation failed\n"


def _validate(schema: dict[str, InputSpec] | None, inputs: dict[str, Any]) -> list[dict[str, str]]:
    """The schema's complaints about ``inputs`` (none for a model without a schema here)."""
    if schema is None:
        return []
    problems: list[dict[str, str]] = []
    for name, spec in schema.items():
        if spec.required and name not in inputs:
            problems.append(
                {"type": "required", "field": f"input.{name}", "description": f"{name} is required"}
            )
    for name, value in inputs.items():
        spec_or_none = schema.get(name)
        if spec_or_none is None:
            problems.append(
                {
                    "type": "additional_property",
                    "field": f"input.{name}",
                    "description": f"Additional property {name} is not allowed",
                }
            )
            continue
        complaint = _check(spec_or_none, name, value)
        if complaint is not None:
            problems.append({"type": "invalid", "field": f"input.{name}", "description": complaint})
    return problems


def _check(spec: InputSpec, name: str, value: Any) -> str | None:
    kinds: dict[str, tuple[type, ...]] = {
        "string": (str,),
        "uri": (str,),
        "integer": (int,),
        "number": (int, float),
        "boolean": (bool,),
    }
    if not isinstance(value, kinds[spec.type]) or (
        spec.type in ("integer", "number") and isinstance(value, bool)
    ):
        return f"Invalid type. Expected: {spec.type}, given: {type(value).__name__}"
    if spec.type == "uri" and not str(value).startswith(("https://", "http://", "data:")):
        return f"{name} must be a URI (an HTTP URL or a data URI)"
    if spec.choices is not None and value not in spec.choices:
        options = ", ".join(f'"{choice}"' for choice in spec.choices)
        return f"{name} must be one of the following: {options}"
    if spec.minimum is not None and value < spec.minimum:
        return f"Must be greater than or equal to {spec.minimum:g}"
    if spec.maximum is not None and value > spec.maximum:
        return f"Must be less than or equal to {spec.maximum:g}"
    return None
