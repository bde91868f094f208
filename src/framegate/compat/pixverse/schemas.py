"""PixVerse's request and response envelopes, sizes, statuses and ErrCodes."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

PREFIX = "/openapi/v2"
# PixVerse's clients send their idempotency key in this header (the idempotency middleware
# reads it as Idempotency-Key).
IDEMPOTENCY_HEADER = "Ai-trace-id"

Quality = Literal["360p", "540p", "720p", "1080p"]
AspectRatio = Literal["16:9", "4:3", "1:1", "3:4", "9:16"]
# The short side of each quality, and each aspect ratio's sides.
_SHORT_SIDES: dict[str, int] = {"360p": 360, "540p": 540, "720p": 720, "1080p": 1080}
_RATIO_SIDES: dict[str, tuple[int, int]] = {
    "16:9": (16, 9),
    "4:3": (4, 3),
    "1:1": (1, 1),
    "3:4": (3, 4),
    "9:16": (9, 16),
}


def pixverse_size(quality: str, aspect_ratio: str) -> str:
    """The "WxH" PixVerse renders for a quality and aspect ratio (540p 16:9 is 960x540)."""
    short = _SHORT_SIDES[quality]
    width, height = _RATIO_SIDES[aspect_ratio]
    if width >= height:
        return f"{short * width // height}x{short}"
    return f"{short}x{short * height // width}"


RATIOS: dict[str, float] = {"16:9": 16 / 9, "4:3": 4 / 3, "1:1": 1.0, "3:4": 3 / 4, "9:16": 9 / 16}
MAX_PROMPT = 2048
MAX_SEED = 2**31 - 1
# Tasks' and uploads' integer aliases are below 2**53.
MAX_ALIAS = 2**53

# Resp.status of a video.
VideoStatus = Literal[1, 5, 7, 8]
STATUS_SUCCEEDED: Final = 1
STATUS_GENERATING: Final = 5
STATUS_MODERATED: Final = 7
STATUS_FAILED: Final = 8
# Task error codes that PixVerse reports as a moderation failure (status 7): a vendor's
# safety filter refused the request.
MODERATION_CODES = frozenset({"moderation_blocked"})

# PixVerse's documented ErrCodes (Trouble Shooting > Error codes) that framegate answers.
ERR_OK = 0
ERR_EMPTY_PARAMETER = 400011
ERR_INVALID_KEY = 400012
ERR_INVALID_BINDING = 400013
ERR_INVALID_PARAMETER = 400017
ERR_PROMPT_TOO_LONG = 400018
ERR_INVALID_IMAGE_ID = 400032
ERR_NOT_FOUND = 500008
ERR_NO_PERMISSION = 500020
ERR_IMAGE_TOO_LARGE = 500030
ERR_IMAGE_UNREADABLE = 500031
ERR_IMAGE_FORMAT = 500032
ERR_CONCURRENCY = 500044
ERR_HIGH_LOAD = 500069
ERR_BALANCE = 500090
ERR_UNKNOWN = 99999

ERR_MESSAGES: dict[int, str] = {
    ERR_EMPTY_PARAMETER: "Empty parameter",
    ERR_INVALID_KEY: "Invalid API-KEY",
    ERR_INVALID_BINDING: "Invalid binding request: incorrect parameter type or value",
    ERR_INVALID_PARAMETER: "Invalid parameter",
    ERR_PROMPT_TOO_LONG: "Prompt/negative prompt length exceeds 2048 characters",
    ERR_INVALID_IMAGE_ID: "Invalid image ID",
    ERR_NOT_FOUND: "Requested data not found",
    ERR_NO_PERMISSION: "No permission for this operation",
    ERR_IMAGE_TOO_LARGE: "Image size exceeds the limit",
    ERR_IMAGE_UNREADABLE: "Failed to retrieve image information",
    ERR_IMAGE_FORMAT: "Invalid image format",
    ERR_CONCURRENCY: "Reached the limit for concurrent generations",
    ERR_HIGH_LOAD: "System is currently experiencing high load",
    ERR_BALANCE: "Insufficient balance",
    ERR_UNKNOWN: "Unknown error",
}


class GenerateFields(BaseModel):
    """What text- and image-to-video requests share. Strict: a wrong JSON type is
    ErrCode 400013, as on PixVerse."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT)
    model: str = Field(
        min_length=1,
        max_length=120,
        description="PixVerse model version (e.g. 'v5'), or any framegate model id or alias. "
        "A version that is not a catalog name resolves to the route 'pixverse-<version>'.",
        examples=["v5"],
    )
    duration: int = Field(
        description="Seconds: 5 or 8 on PixVerse's models; other models take what their "
        "catalog route offers.",
        examples=[5],
    )
    quality: Quality = Field(description="Output short side; with the aspect ratio, the size.")
    motion_mode: Literal["normal", "fast"] = Field(
        default="normal", description="Only 'normal' is supported."
    )
    negative_prompt: str | None = Field(default=None, max_length=MAX_PROMPT)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    water_mark: bool = Field(default=False, description="Only false: framegate adds none.")
    # Documented PixVerse features framegate does not offer: accepted only when empty.
    style: str | None = Field(default=None, description="Not supported: leave empty.")
    camera_movement: str | None = Field(default=None, description="Not supported.")
    template_id: int | None = Field(default=None, description="Not supported.")
    sound_effect_switch: bool = Field(default=False, description="Not supported.")
    sound_effect_content: str | None = Field(default=None, description="Not supported.")
    lip_sync_switch: bool = Field(default=False, description="Not supported.")


UNSUPPORTED_FIELDS = (
    "style",
    "camera_movement",
    "template_id",
    "sound_effect_switch",
    "sound_effect_content",
    "lip_sync_switch",
)


class PixVerseTextToVideoRequest(GenerateFields):
    """PixVerse's text-to-video request."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "aspect_ratio": "16:9",
                    "duration": 5,
                    "model": "v5",
                    "motion_mode": "normal",
                    "negative_prompt": "blurry",
                    "prompt": "A red fox running through fresh snow",
                    "quality": "540p",
                    "seed": 0,
                    "water_mark": False,
                }
            ]
        }
    )

    aspect_ratio: AspectRatio


class PixVerseImageToVideoRequest(GenerateFields):
    """PixVerse's image-to-video request: the first frame is an uploaded image."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "duration": 5,
                    "img_id": 4611686018427,
                    "model": "v5",
                    "motion_mode": "normal",
                    "prompt": "The fox turns its head towards the camera",
                    "quality": "540p",
                }
            ]
        }
    )

    img_id: int = Field(description="The img_id returned by POST /openapi/v2/image/upload.")


class _Envelope(BaseModel):
    ErrCode: int = Field(default=ERR_OK, description="0 on success.")
    ErrMsg: str = "success"


class PixVerseErrorEnvelope(_Envelope):
    """A refused request (also answered HTTP 200 for most ErrCodes, as PixVerse does)."""

    ErrCode: int = Field(examples=[ERR_INVALID_PARAMETER])
    ErrMsg: str
    Resp: None = None


class PixVerseVideoId(BaseModel):
    video_id: int = Field(description="Poll GET /openapi/v2/video/result/{video_id}.")


class PixVerseGenerateResponse(_Envelope):
    Resp: PixVerseVideoId


class PixVerseUploadedImage(BaseModel):
    img_id: int = Field(description="Pass as img_id to /openapi/v2/video/img/generate.")
    img_url: str = Field(description="A signed URL of the stored image.")


class PixVerseUploadResponse(_Envelope):
    Resp: PixVerseUploadedImage


class PixVerseVideoResult(BaseModel):
    id: int = Field(description="The video_id.")
    status: VideoStatus = Field(
        description="1 succeeded, 5 generating (queued or running), 7 refused by content "
        "moderation, 8 failed (or cancelled); credits are refunded on 7 and 8."
    )
    url: str = Field(description="The MP4 (a signed URL) once status is 1; '' before.")
    prompt: str
    negative_prompt: str
    seed: int
    outputWidth: int
    outputHeight: int
    resolution_ratio: int = Field(description="The short side, e.g. 540.")
    size: int = Field(description="The MP4's size in bytes once status is 1; 0 before.")
    style: str = ""
    create_time: str = Field(examples=["2026-01-01T12:00:00Z"])
    modify_time: str


class PixVerseResultResponse(_Envelope):
    Resp: PixVerseVideoResult


class PixVerseBalance(BaseModel):
    account_id: int = Field(description="A stable integer derived from the framegate account.")
    credit_monthly: int = Field(
        description="Always 0: framegate credits are granted, not refreshed monthly."
    )
    credit_package: int = Field(
        description="The account's available framegate credits (held credits excluded)."
    )


class PixVerseBalanceResponse(_Envelope):
    Resp: PixVerseBalance
