"""PixVerse Platform API (``https://app-api.pixverse.ai``), called over REST with httpx.

Every call carries the operator's key in ``API-KEY`` and an ``Ai-trace-id`` UUID. PixVerse
answers a reused trace id with its earlier answer, so polls and uploads use a fresh one each
time, while the generation request derives its id from the task (and the vendor-visible
parameters): a submit retried after a timeout returns the job already started instead of
starting (and billing) a second one. Once PixVerse has answered a submit with an error, that
answer is what the id would keep returning, so the next try moves on to a new id.

Answers are ``{"ErrCode": int, "ErrMsg": str, "Resp": {...}}``, with HTTP 200 for most
errors: they are classified by ``ErrCode`` (PixVerse's documented table) first and by the
HTTP status second.

Flow: text-to-video ``POST /openapi/v2/video/text/generate``; image-to-video uploads the
first frame (``POST /openapi/v2/image/upload``, multipart ``image``) and posts its
``img_id`` to ``/openapi/v2/video/img/generate``; first+last frame uploads both and posts
``first_frame_img``/``last_frame_img`` to ``/openapi/v2/video/transition/generate``. The job
is polled with ``GET /openapi/v2/video/result/{video_id}`` (status 1 done, 5 generating,
7 blocked by moderation, 8 failed); the result URL is public (PixVerse's CDN).

Image-based generations take no aspect ratio (the clip follows the image), so the images are
centre-cropped to the requested size's aspect ratio before the upload.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import httpx
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from framegate.engines.base import GenerationRequest
from framegate.engines.vendors import base
from framegate.engines.vendors.kit import encode_image, fit_image, size_table
from framegate.exceptions import InvalidValue
from framegate.kit.http import retry_after_seconds

DEFAULT_BASE_URL = "https://app-api.pixverse.ai"

UPLOAD_PATH = "/openapi/v2/image/upload"
TEXT_PATH = "/openapi/v2/video/text/generate"
IMAGE_PATH = "/openapi/v2/video/img/generate"
TRANSITION_PATH = "/openapi/v2/video/transition/generate"
RESULT_PATH = "/openapi/v2/video/result/{video_id}"

# Output sizes: "WxH" -> (quality, aspect_ratio), as PixVerse renders them.
PIXVERSE_SIZES = size_table(
    ("360p", "540p", "720p", "1080p"), ("16:9", "4:3", "1:1", "3:4", "9:16")
)
DURATIONS = (5, 8)
# PixVerse renders at a fixed frame rate; framegate offers only that one.
PIXVERSE_FPS = 24
# The API's seed range is 0..2147483647; framegate's larger seeds are folded into it.
SEED_RANGE = 2**31
# Longest side PixVerse accepts for an uploaded image.
MAX_IMAGE_SIDE = 4000

STATUS_SUCCEEDED = 1
STATUS_GENERATING = 5
STATUS_MODERATED = 7
STATUS_FAILED = 8

# PixVerse's documented ErrCodes (Trouble Shooting > Error codes).
ERR_AUTH = {400012, 500020}  # invalid account (key) / no permission for the operation
ERR_INVALID = {
    400011,  # empty parameter
    400013,  # invalid binding request: wrong parameter type or value
    400017,  # invalid parameter
    400018,  # prompt / negative prompt over 2048 characters
    400019,
    400032,  # invalid image id
    500030,  # image over 20 MB or 4000x4000 px
    500031,  # failed to read the image
    500032,  # invalid image format
    500033,  # invalid image width or height
    500042,  # invalid image path
    500070,  # template not activated
    500071,  # effect does not support 720p/1080p
}
ERR_MODERATION = {500052, 500054, 500063}  # image / video / text refused by moderation
ERR_CONCURRENCY = 500044  # the plan's concurrent generations are all in use
ERR_UNAVAILABLE = {500041, 500069, 500100, 99999}  # upload failed, high load, database, unknown
ERR_BALANCE = 500090  # insufficient balance
ERR_GONE = {500008, 500064}  # data not found / content deleted

# PixVerse frees a concurrency slot when one of the running videos finishes (tens of
# seconds); it sends no Retry-After with ErrCode 500044, so this is the hint instead.
CONCURRENCY_RETRY_AFTER = 15.0

_TRACE_NAMESPACE = uuid.UUID("6f1c7a52-3c0e-4d55-9a38-2f3e0c1d7b90")
_MAX_TRACKED_TASKS = 10_000


class PixVerseSettings(BaseModel):
    """A PixVerse route's settings."""

    model_config = ConfigDict(extra="forbid")

    # PixVerse's model version ("v3.5", "v4", "v4.5", "v5", ...).
    model: str = Field(default="v5", min_length=1)
    # "fast" is documented for 5 s clips below 1080p only (and not on every model).
    motion_mode: Literal["normal", "fast"] = "normal"
    water_mark: bool = False


class PixVerseEngine(base.VendorEngine):
    name = "pixverse"
    key_setting = "FRAMEGATE_PIXVERSE_API_KEY"
    settings_model: ClassVar[type[BaseModel]] = PixVerseSettings
    default_poll_interval: ClassVar[float] = 5.0

    def __init__(self, *, base_url: str = DEFAULT_BASE_URL, **options: Any) -> None:
        super().__init__(base_url=base_url, **options)
        # Per task: how many submits PixVerse has answered with an error (see module doc).
        self._refused_submits: dict[str, int] = {}

    # -- catalog -------------------------------------------------------------------------

    def refuse(self, settings: Mapping[str, Any], shape: base.VendorShape) -> None:
        options: PixVerseSettings = self.route_settings(settings)
        base.refuse_size(shape, PIXVERSE_SIZES, "PixVerse")
        quality, _ = PIXVERSE_SIZES[shape.size]
        base.refuse_duration(shape, DURATIONS, "PixVerse")
        if quality == "1080p" and shape.duration != 5:
            raise InvalidValue(
                f"PixVerse makes 1080p clips of 5 seconds only; use duration 5, or a 720p "
                f"size or smaller (e.g. 1280x720) for {shape.duration} s.",
                param="duration",
            )
        base.refuse_fps(shape, PIXVERSE_FPS, "PixVerse (its fixed frame rate)")
        base.refuse_num_frames(shape, PIXVERSE_FPS, DURATIONS, "PixVerse")
        if options.motion_mode == "fast":
            if shape.duration != 5:
                raise InvalidValue(
                    "This PixVerse route uses the fast motion mode, which makes 5 second "
                    f"clips only; use duration 5 (got {shape.duration}).",
                    param="duration",
                )
            if quality == "1080p":
                raise InvalidValue(
                    "This PixVerse route uses the fast motion mode, which has no 1080p; "
                    "choose a 720p size or smaller (e.g. 1280x720).",
                    param="size",
                )
        if shape.has_last_image:
            if not shape.has_image:
                raise InvalidValue(
                    "last_image needs input_image as the first frame.", param="input_image"
                )
            if shape.has_negative_prompt:
                raise InvalidValue(
                    "PixVerse's first+last-frame generation takes no negative_prompt; drop "
                    "negative_prompt or last_image.",
                    param="negative_prompt",
                )

    # -- jobs ----------------------------------------------------------------------------

    async def submit(self, request: GenerationRequest) -> base.UpstreamJob:
        self.require_key()
        options: PixVerseSettings = self.route_settings(request.settings)
        quality, aspect_ratio = self.size_entry(PIXVERSE_SIZES, request)
        duration = round(request.duration)
        body: dict[str, Any] = {
            "duration": duration,
            "model": options.model,
            "motion_mode": options.motion_mode,
            "prompt": request.prompt,
            "quality": quality,
            "seed": request.seed % SEED_RANGE,
        }
        if request.input_image is None:
            mode, path = "text", TEXT_PATH
            body["aspect_ratio"] = aspect_ratio
        elif request.last_image is None:
            mode, path = "image", IMAGE_PATH
        else:
            mode, path = "transition", TRANSITION_PATH
        if mode != "transition":
            body["water_mark"] = options.water_mark
            if request.negative_prompt:
                body["negative_prompt"] = request.negative_prompt
        async with self.http() as client:
            if request.input_image is not None:
                first = await self._upload(client, request.input_image, request)
                if request.last_image is None:
                    body["img_id"] = first
                else:
                    body["first_frame_img"] = first
                    body["last_frame_img"] = await self._upload(client, request.last_image, request)
            trace_id = self._submit_trace_id(
                request.task_id, [mode, options.model, quality, aspect_ratio, duration]
            )
            response = await self._send(
                client, "POST", path, trace_id=trace_id, what="submit", json=body
            )
            try:
                resp = self._answer(response, "submit")
            except base.UpstreamError:
                if _err_code(base.json_body(response)) not in (None, 0):
                    # PixVerse answered this trace id; a retry needs a new one.
                    self._refused_submits[request.task_id] = (
                        self._refused_submits.get(request.task_id, 0) + 1
                    )
                raise
        video_id = resp.get("video_id")
        if isinstance(video_id, bool) or not isinstance(video_id, int | str) or video_id == "":
            raise base.UpstreamError(
                f"pixverse: submit answered without a video_id ({resp!r:.200})"
            )
        return base.UpstreamJob(id=str(video_id), data={"mode": mode})

    async def poll(self, job: base.UpstreamJob, request: GenerationRequest) -> base.UpstreamStatus:
        self.require_key()
        async with self.http() as client:
            response = await self._send(
                client,
                "GET",
                RESULT_PATH.format(video_id=job.id),
                trace_id=str(uuid.uuid4()),
                what="status",
            )
        resp = self._answer(response, "status")
        status = resp.get("status")
        if isinstance(status, str) and status.isdigit():
            status = int(status)
        if status == STATUS_SUCCEEDED:
            url = resp.get("url")
            if not isinstance(url, str) or not url:
                return base.UpstreamStatus(
                    state="failed",
                    error=base.UpstreamError(
                        f"pixverse: video {job.id} finished without a url", code=base.UPSTREAM_ERROR
                    ),
                )
            return base.UpstreamStatus(state="succeeded", progress=1.0, video_url=url)
        if status == STATUS_MODERATED:
            return base.UpstreamStatus(
                state="failed",
                error=base.UpstreamError(
                    f"pixverse: content moderation blocked video {job.id} (status 7); "
                    "change the prompt or the image",
                    code=base.MODERATION_BLOCKED,
                ),
            )
        if status == STATUS_FAILED:
            return base.UpstreamStatus(
                state="failed",
                error=base.UpstreamError(
                    f"pixverse: generation of video {job.id} failed (status 8)",
                    code=base.UPSTREAM_ERROR,
                ),
            )
        # 5 (generating) and anything undocumented: not finished yet.
        return base.UpstreamStatus(state="pending", poll_after=self.poll_interval)

    # -- helpers -------------------------------------------------------------------------

    def _submit_trace_id(self, task_id: str, parameters: list[Any]) -> str:
        if len(self._refused_submits) > _MAX_TRACKED_TASKS:
            self._refused_submits.clear()
        attempt = self._refused_submits.get(task_id, 0)
        seed = json.dumps([task_id, *parameters, attempt], separators=(",", ":"))
        return str(uuid.uuid5(_TRACE_NAMESPACE, seed))

    async def _upload(
        self, client: httpx.AsyncClient, image: Image.Image, request: GenerationRequest
    ) -> int | str:
        data = _frame_for_upload(image, request.width, request.height)
        response = await self._send(
            client,
            "POST",
            UPLOAD_PATH,
            trace_id=str(uuid.uuid4()),
            what="image upload",
            files={"image": ("frame.jpg", data, "image/jpeg")},
        )
        resp = self._answer(response, "image upload")
        img_id = resp.get("img_id")
        if isinstance(img_id, bool) or not isinstance(img_id, int | str) or img_id == "":
            raise base.UpstreamError(
                f"pixverse: image upload answered without an img_id ({resp!r:.200})"
            )
        return img_id

    async def _send(
        self,
        client: httpx.AsyncClient,
        method: str,
        path: str,
        *,
        trace_id: str,
        what: str,
        json: Any = None,
        files: Any = None,
    ) -> httpx.Response:
        headers = {"API-KEY": self.api_key or "", "Ai-trace-id": trace_id}
        try:
            return await client.request(method, path, headers=headers, json=json, files=files)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc, what) from exc

    def _answer(self, response: httpx.Response, what: str) -> dict[str, Any]:
        """The ``Resp`` of a successful answer; raise UpstreamError for any other."""
        body = base.json_body(response)
        code = _err_code(body)
        message = ""
        if isinstance(body, dict):
            message = str(body.get("ErrMsg", body.get("err_msg", "")) or "")
        status = response.status_code
        detail = self.scrub(
            f"pixverse: {what}: HTTP {status}"
            + (f", ErrCode {code}" if code is not None else "")
            + (f": {message[:300]}" if message else "")
        )
        if status in (401, 403):
            raise base.classify_status(status, detail, response.headers)
        if code is not None and code != 0:
            known = _classify_err_code(code, detail, response.headers)
            if known is not None:
                raise known
        if status >= 400:
            raise base.classify_status(status, detail, response.headers)
        if code is None or code != 0:
            kind = base.UPSTREAM_INVALID if code is not None and 400000 <= code < 500000 else None
            raise base.UpstreamError(detail, code=kind or base.UPSTREAM_ERROR, status_code=status)
        resp = body.get("Resp") if isinstance(body, dict) else None
        if not isinstance(resp, dict):
            raise base.UpstreamError(f"{detail}: the answer has no Resp object", status_code=status)
        return resp


def _err_code(body: Any) -> int | None:
    """The envelope's ErrCode (``err_code`` in the upload's HTTP 500 answers)."""
    if not isinstance(body, dict):
        return None
    value = body.get("ErrCode", body.get("err_code"))
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _classify_err_code(
    code: int, message: str, headers: Mapping[str, str]
) -> base.UpstreamError | None:
    if code in ERR_AUTH:
        return base.UpstreamError(message, code=base.UPSTREAM_AUTH)
    if code in ERR_INVALID:
        return base.UpstreamError(message, code=base.UPSTREAM_INVALID)
    if code in ERR_MODERATION:
        return base.UpstreamError(message, code=base.MODERATION_BLOCKED)
    if code == ERR_CONCURRENCY:
        hint = retry_after_seconds(headers.get("retry-after"))
        return base.rate_limited(message, CONCURRENCY_RETRY_AFTER if hint is None else hint)
    if code in ERR_UNAVAILABLE:
        return base.unavailable(message)
    if code == ERR_BALANCE:
        return base.UpstreamError(message, code=base.UPSTREAM_ERROR, status_code=402)
    if code in ERR_GONE:
        return base.UpstreamError(message, code=base.UPSTREAM_ERROR, status_code=404)
    return None


def _frame_for_upload(image: Image.Image, width: int, height: int) -> bytes:
    """``image`` centre-cropped to the aspect ratio of ``width x height`` (never smaller
    than that, never over PixVerse's 4000 px), as a JPEG."""
    rgb = image.convert("RGB")
    scale = min(rgb.width / width, rgb.height / height)
    target_w, target_h = max(1, round(width * scale)), max(1, round(height * scale))
    if target_w < width:
        target_w, target_h = width, height
    longest = max(target_w, target_h)
    if longest > MAX_IMAGE_SIDE:
        target_w = max(1, target_w * MAX_IMAGE_SIDE // longest)
        target_h = max(1, target_h * MAX_IMAGE_SIDE // longest)
    return encode_image(fit_image(rgb, target_w, target_h), "JPEG", quality=95)
