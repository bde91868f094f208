from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from framegate.kit.views import OptionalUnixTime, UnixTime


class UploadKind(StrEnum):
    image = "image"
    video = "video"


class UploadPurpose(StrEnum):
    """What the client means the file for; when given, the decoded kind must match."""

    input_image = "input_image"
    input_video = "input_video"


class UploadObject(BaseModel):
    id: str = Field(description="Use it as input_image (image uploads): upl_…")
    object: Literal["upload"] = "upload"
    kind: UploadKind = Field(description="Decided by decoding the file, never by its name.")
    content_type: str = Field(examples=["image/png", "video/mp4"])
    bytes: int
    width: int | None
    height: int | None
    filename: str = Field(description="The name the client sent, for display only.")
    created_at: UnixTime
    expires_at: OptionalUnixTime = Field(description="After this the upload can no longer be used.")
    url: str | None = Field(
        description="A signed, expiring download URL; null once the upload has expired."
    )
