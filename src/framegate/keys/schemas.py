from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from framegate.credits.schemas import MAX_CREDITS
from framegate.kit.views import OptionalUnixTime, UnixTime


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=200)
    scopes: list[str] | None = Field(
        default=None, description="Defaults to every scope but admin (and never more than yours)."
    )
    spend_cap: StrictInt | None = Field(default=None, ge=0, le=MAX_CREDITS)


class KeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: StrictInt = Field(
        default=0, ge=0, le=7 * 24 * 3600, description="How long the old secret keeps working."
    )


class KeyObject(BaseModel):
    id: str
    object: Literal["api_key"] = "api_key"
    name: str
    display: str = Field(description="A hint of the secret: prefix and last characters.")
    scopes: list[str]
    spend_cap: int | None
    created_at: UnixTime
    last_used_at: OptionalUnixTime
    revoked_at: OptionalUnixTime


class KeyWithSecret(KeyObject):
    secret: str = Field(description="The key itself. Shown once; store it now.")


class KeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KeyObject]
