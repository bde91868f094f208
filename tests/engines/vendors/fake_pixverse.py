"""A fake of the PixVerse Platform API, written from PixVerse's public documentation
(docs.platform.pixverse.ai: "How does the API work?", the Text-to-Video / Image-to-Video /
Transition / Upload Image / Get Video Generation Status references, "Error codes" and
"Common errors and Solutions").

What it reproduces:

- ``API-KEY`` and ``Ai-trace-id`` headers on every call. A wrong key gets HTTP 401 with the
  envelope ``{"ErrCode": 400012, "ErrMsg": "Invalid API-KEY", "Resp": null}`` (the docs
  name the message; 400012 "Invalid account" is the table's code for it).
- A reused ``Ai-trace-id`` returns the earlier answer, whatever the request ("If you use
  the same ai-trace-id multiple times, you won't get a new video generated"; polls that
  reuse one never see the job progress).
- Every answer is ``{"ErrCode", "ErrMsg", "Resp"}``, HTTP 200 for business errors: 400013
  wrong type, 400017 invalid parameter, 400018 prompt too long, 400032 unknown img_id,
  500044 concurrency limit, 500063 moderation, 500069 high load, 500090 balance.
- ``POST /openapi/v2/image/upload`` (multipart ``image``; png/jpeg/webp, at most
  4000x4000) -> ``{img_id, img_url}``.
- ``POST /openapi/v2/video/text/generate`` (aspect_ratio, duration, model, prompt, quality
  required), ``/openapi/v2/video/img/generate`` (img_id instead of aspect_ratio),
  ``/openapi/v2/video/transition/generate`` (first_frame_img, last_frame_img) ->
  ``{video_id}`` (an integer).
- ``GET /openapi/v2/video/result/{video_id}`` -> ``{id, status, url, outputWidth,
  outputHeight, seed, ...}``: status 5 while generating, then 1 (with the url), 7
  (moderation) or 8 (failed); an unknown id answers 500008.
- The result url is served by the fake (the sample MP4), without credentials, as
  PixVerse's CDN serves it.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from typing import Any

from PIL import Image
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.engines.vendors.common import FakeVendor, RecordedRequest, sample_mp4

Outcome = str
OUTCOMES = {
    # Documented behaviours the engine must handle.
    "succeed",  # status 5 for `polls` polls, then 1 with a url
    "fail",  # status 5 for `polls` polls, then 8
    "moderate",  # status 5 for `polls` polls, then 7 (the video was filtered)
    "throttle",  # the next `throttles` submissions: ErrCode 500044, then "succeed"
    "moderate_submit",  # the submission is refused: ErrCode 500063 (text moderation)
    "no_balance",  # the submission is refused: ErrCode 500090
    "overloaded",  # the submission is refused: ErrCode 500069 (high load)
    # Not PixVerse's own answers but what a proxy or load balancer in front may send.
    "http_429",  # the next `throttles` submissions: HTTP 429, Retry-After: 0
    "http_503",  # the next `throttles` submissions: HTTP 503 with an HTML page
}

QUALITY_SHORT_SIDE = {"360p": 360, "540p": 540, "720p": 720, "1080p": 1080}
ASPECT_RATIOS = {"16:9": (16, 9), "4:3": (4, 3), "1:1": (1, 1), "3:4": (3, 4), "9:16": (9, 16)}
MODELS = {"v3.5", "v4", "v4.5", "v5", "v5.5", "v5.6", "v6"}
MOTION_MODES = {"normal", "fast"}
MAX_PROMPT = 2048
MAX_SEED = 2_147_483_647
MAX_IMAGE_SIDE = 4000

GENERATE_PATHS = {
    "/openapi/v2/video/text/generate": "text",
    "/openapi/v2/video/img/generate": "image",
    "/openapi/v2/video/transition/generate": "transition",
}


class _Refusal(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Video:
    id: int
    outcome: Outcome
    polls_left: int
    body: dict[str, Any]
    width: int
    height: int
    seed: int


@dataclass
class _Answer:
    status: int
    body: Any
    headers: dict[str, str]


def envelope(code: int, message: str, resp: Any = None) -> dict[str, Any]:
    return {"ErrCode": code, "ErrMsg": message, "Resp": resp}


class FakePixVerse(FakeVendor):
    """The PixVerse Platform API on loopback. Use as a context manager."""

    def __init__(self, api_key: str = "pv-sk-fake-0123456789abcdef") -> None:
        self.api_key = api_key
        self.submitted = 0
        self.videos: dict[int, _Video] = {}
        self.images: dict[int, dict[str, Any]] = {}
        self._answers: dict[str, _Answer] = {}
        self._video_ids = itertools.count(372_915_000_001)
        self._image_ids = itertools.count(81_500_001)
        self._mp4 = sample_mp4()
        super().__init__(
            [
                Route("/openapi/v2/image/upload", self._upload, methods=["POST"]),
                *(Route(path, self._generate, methods=["POST"]) for path in GENERATE_PATHS),
                Route("/openapi/v2/video/result/{video_id}", self._result, methods=["GET"]),
                Route("/media/video/{name}", self._media, methods=["GET"]),
            ]
        )
        self.script("succeed")

    # -- test controls ---------------------------------------------------------------------

    def script(self, outcome: Outcome, *, polls: int = 2, throttles: int = 3) -> None:
        """How the next submitted jobs behave (until the next call)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; one of {sorted(OUTCOMES)}")
        with self._lock:
            self._outcome = outcome
            self._polls = polls
            self._throttles_left = throttles

    def engine_kwargs(self) -> dict[str, Any]:
        return {"api_key": self.api_key, "base_url": self.url, "poll_interval": 0.05}

    def settings_overrides(self) -> dict[str, Any]:
        return {"pixverse_api_key": self.api_key, "pixverse_base_url": self.url}

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.submitted = 0
            self.videos.clear()
            self.images.clear()
        self.script("succeed")

    def requests_to(self, path_prefix: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    # -- request plumbing ------------------------------------------------------------------

    def _gate(self, entry: RecordedRequest) -> Response | str:
        """The auth / trace-id checks every endpoint makes; the trace id when they pass."""
        headers = entry.headers
        if headers.get("api-key") != self.api_key:
            return JSONResponse(envelope(400012, "Invalid API-KEY"), status_code=401)
        trace_id = headers.get("ai-trace-id", "")
        if not trace_id:
            return JSONResponse(envelope(400011, "Empty parameter: Ai-trace-id"))
        with self._lock:
            earlier = self._answers.get(trace_id)
        if earlier is not None:
            return JSONResponse(earlier.body, earlier.status, headers=earlier.headers)
        return trace_id

    def _answer(
        self,
        trace_id: str,
        body: Any,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Response:
        with self._lock:
            self._answers[trace_id] = _Answer(status, body, headers or {})
        return JSONResponse(body, status, headers=headers)

    # -- endpoints -------------------------------------------------------------------------

    async def _upload(self, request: Request) -> Response:
        entry = await self._record(request)
        gate = self._gate(entry)
        if isinstance(gate, Response):
            return gate
        form = entry.form or {}
        image = form.get("image")
        if not isinstance(image, dict):
            if "image_url" in form:
                # Documented, but outside what this fake serves.
                return self._answer(gate, envelope(400017, "image_url is not served by the fake"))
            return self._answer(gate, envelope(400011, "Empty parameter: image"))
        try:
            with Image.open(io.BytesIO(image["data"])) as decoded:
                fmt = (decoded.format or "").lower()
                width, height = decoded.size
        except Exception:
            return self._answer(gate, envelope(500031, "Failed to retrieve image information"))
        if fmt not in {"png", "jpeg", "webp"}:
            return self._answer(gate, envelope(500032, "Invalid image format"))
        if max(width, height) > MAX_IMAGE_SIDE or len(image["data"]) > 20 * 1024 * 1024:
            return self._answer(gate, envelope(500030, "Image size cannot exceed 20M 4000px"))
        img_id = next(self._image_ids)
        with self._lock:
            self.images[img_id] = {"width": width, "height": height, "format": fmt}
        img_url = f"{self.url}/media/image/{img_id}.{fmt}"
        return self._answer(gate, envelope(0, "success", {"img_id": img_id, "img_url": img_url}))

    async def _generate(self, request: Request) -> Response:
        entry = await self._record(request)
        gate = self._gate(entry)
        if isinstance(gate, Response):
            return gate
        mode = GENERATE_PATHS[entry.path]
        body = entry.json
        try:
            if not isinstance(body, dict):
                raise _Refusal(400013, "Invalid binding request: body is not a JSON object")
            width, height = self._validate(mode, body)
        except _Refusal as refusal:
            return self._answer(gate, envelope(refusal.code, refusal.message))
        with self._lock:
            outcome = self._outcome
            polls = self._polls
            throttled = outcome in {"throttle", "http_429", "http_503"} and self._throttles_left
            if throttled:
                self._throttles_left -= 1
        if throttled and outcome == "http_429":
            # A proxy's answer: PixVerse never saw it, so the trace id stays unused.
            return JSONResponse({"message": "Too Many Requests"}, 429, headers={"Retry-After": "0"})
        if throttled and outcome == "http_503":
            return Response("<html>503 Service Unavailable</html>", 503, media_type="text/html")
        if throttled:
            return self._answer(
                gate, envelope(500044, "Reached the limit for concurrent generations.")
            )
        refusals = {
            "moderate_submit": (
                500063,
                "Text moderation failed: The text you entered contains sensitive "
                "information. Please re-enter.",
            ),
            "no_balance": (500090, "Insufficient balance. Unable to generate video."),
            "overloaded": (500069, "System is currently experiencing high load."),
        }
        if outcome in refusals:
            code, message = refusals[outcome]
            return self._answer(gate, envelope(code, message))
        terminal = "succeed" if outcome.startswith(("throttle", "http_")) else outcome
        seed = int(body.get("seed", 0) or 0)
        video_id = next(self._video_ids)
        with self._lock:
            self.videos[video_id] = _Video(
                video_id, terminal, polls, dict(body), width, height, seed
            )
            self.submitted += 1
        return self._answer(gate, envelope(0, "success", {"video_id": video_id}))

    def _validate(self, mode: str, body: dict[str, Any]) -> tuple[int, int]:
        """Check a generation body as PixVerse documents it; the output size."""
        required = ["duration", "model", "prompt", "quality"]
        required += {
            "text": ["aspect_ratio"],
            "image": ["img_id"],
            "transition": ["first_frame_img", "last_frame_img"],
        }[mode]
        missing = [name for name in required if name not in body]
        if missing:
            raise _Refusal(400011, f"Empty parameter: {', '.join(missing)}")
        types: dict[str, type | tuple[type, ...]] = {
            "duration": int,
            "model": str,
            "prompt": str,
            "quality": str,
            "aspect_ratio": str,
            "negative_prompt": str,
            "motion_mode": str,
            "seed": int,
            "img_id": int,
            "first_frame_img": int,
            "last_frame_img": int,
            "water_mark": bool,
        }
        for name, expected in types.items():
            value = body.get(name)
            bad_bool = expected is int and isinstance(value, bool)
            if name in body and (not isinstance(value, expected) or bad_bool):
                raise _Refusal(400013, f"Invalid binding request: {name} has the wrong type")
        if mode != "text" and "aspect_ratio" in body:
            # Image-based generations follow the image's aspect ratio.
            raise _Refusal(400017, "Invalid parameter: aspect_ratio")
        if mode == "transition" and "negative_prompt" in body:
            raise _Refusal(400017, "Invalid parameter: negative_prompt")
        if body["model"] not in MODELS:
            raise _Refusal(400017, "Invalid parameter: model")
        quality = body["quality"]
        if quality not in QUALITY_SHORT_SIDE:
            raise _Refusal(400017, "Invalid parameter: quality")
        if body["duration"] not in (5, 8) or (quality == "1080p" and body["duration"] != 5):
            raise _Refusal(400017, "Invalid parameter: duration")
        motion = body.get("motion_mode", "normal")
        if motion not in MOTION_MODES or (
            motion == "fast" and (body["duration"] != 5 or quality == "1080p")
        ):
            raise _Refusal(400017, "Invalid parameter: motion_mode")
        if not 0 <= body.get("seed", 0) <= MAX_SEED:
            raise _Refusal(400017, "Invalid parameter: seed")
        if len(body["prompt"]) > MAX_PROMPT or len(body.get("negative_prompt", "")) > MAX_PROMPT:
            raise _Refusal(400018, "Prompt/negative prompt length exceeds 2048 characters")
        if mode == "text":
            ratio = body["aspect_ratio"]
            if ratio not in ASPECT_RATIOS:
                raise _Refusal(400017, "Invalid parameter: aspect_ratio")
        else:
            key = "img_id" if mode == "image" else "first_frame_img"
            image_ids = [body[key]] + ([body["last_frame_img"]] if mode == "transition" else [])
            with self._lock:
                known = [self.images.get(i) for i in image_ids]
            if any(image is None for image in known):
                raise _Refusal(400032, "Invalid image ID")
            first = known[0]
            assert first is not None
            ratio = _closest_ratio(first["width"], first["height"])
        return _output_size(quality, ratio)

    async def _result(self, request: Request) -> Response:
        entry = await self._record(request)
        gate = self._gate(entry)
        if isinstance(gate, Response):
            return gate
        raw_id = request.path_params["video_id"]
        with self._lock:
            video = self.videos.get(int(raw_id)) if raw_id.isdigit() else None
            if video is not None:
                if video.polls_left > 0:
                    video.polls_left -= 1
                    status = 5
                else:
                    status = {"succeed": 1, "fail": 8, "moderate": 7}[video.outcome]
        if video is None:
            return self._answer(gate, envelope(500008, "Requested data not found"))
        url = f"{self.url}/media/video/{video.id}.mp4" if status == 1 else ""
        resp = {
            "create_time": "2025-09-01T10:00:00Z",
            "id": video.id,
            "modify_time": "2025-09-01T10:00:40Z",
            "negative_prompt": video.body.get("negative_prompt", ""),
            "outputHeight": video.height,
            "outputWidth": video.width,
            "prompt": video.body["prompt"],
            "resolution_ratio": min(video.width, video.height),
            "seed": video.seed,
            "size": len(self._mp4) if status == 1 else 0,
            "status": status,
            "style": "",
            "url": url,
        }
        return self._answer(gate, envelope(0, "Success", resp))

    async def _media(self, request: Request) -> Response:
        await self._record(request)
        name = request.path_params["name"]
        stem = name.removesuffix(".mp4")
        with self._lock:
            video = self.videos.get(int(stem)) if stem.isdigit() else None
        if video is None or video.outcome != "succeed" or not name.endswith(".mp4"):
            return Response("Not Found", 404, media_type="text/plain")
        return Response(self._mp4, 200, media_type="video/mp4")


def _closest_ratio(width: int, height: int) -> str:
    wanted = width / height
    return min(ASPECT_RATIOS, key=lambda r: abs(ASPECT_RATIOS[r][0] / ASPECT_RATIOS[r][1] - wanted))


def _output_size(quality: str, ratio: str) -> tuple[int, int]:
    short = QUALITY_SHORT_SIDE[quality]
    a, b = ASPECT_RATIOS[ratio]
    long = short * max(a, b) // min(a, b)
    return (long, short) if a >= b else (short, long)
