from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from framegate.credits.schemas import MAX_CREDITS


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    credits: StrictInt = Field(default=0, ge=0, le=MAX_CREDITS)
    plan: str = Field(default="default", max_length=40)


class CreditGrant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credits: StrictInt = Field(gt=0, le=MAX_CREDITS)
    description: str = Field(default="", max_length=300)


class AccountObject(BaseModel):
    id: str
    object: Literal["account"] = "account"
    name: str
    plan: str
    credit_balance: int
    created_at: int


class CreatedAccountObject(AccountObject):
    api_key: str = Field(description="The account's first key (all scopes but admin). Shown once.")
    api_key_id: str


class AccountList(BaseModel):
    object: Literal["list"] = "list"
    data: list[AccountObject]


class AccountUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    plan: str | None = Field(default=None, min_length=1, max_length=40)
    is_active: StrictBool | None = None


class PlanBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_concurrent_videos: StrictInt = Field(ge=1, le=10_000)
    max_concurrent_images: StrictInt = Field(ge=1, le=10_000)
    requests_per_minute: StrictInt = Field(ge=1, le=1_000_000)


class PlanObject(BaseModel):
    # Not bounded like PlanBody: the default plan comes from settings, which may go higher.
    name: str
    object: Literal["plan"] = "plan"
    max_concurrent_videos: int
    max_concurrent_images: int
    requests_per_minute: int


class PlanList(BaseModel):
    object: Literal["list"] = "list"
    data: list[PlanObject]
    default: PlanObject = Field(description="What accounts whose plan has no row get.")
