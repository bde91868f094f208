from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from framegate.credits.schemas import MAX_CREDITS
from framegate.kit.views import UnixTime

PLAN_NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
# Surrounding white space is dropped; a name of white space only is refused.
AccountName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# The names PUT /v1/admin/plans/{name} can create: an account on any other would keep the
# default limits for ever.
PlanName = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=PLAN_NAME_PATTERN)]


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: AccountName
    credits: StrictInt = Field(default=0, ge=0, le=MAX_CREDITS)
    plan: PlanName = "default"


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
    is_active: bool = Field(
        description="False once disabled: its keys are refused (401 account_disabled)."
    )
    created_at: UnixTime


class CreatedAccountObject(AccountObject):
    api_key: str = Field(description="The account's first key (all scopes but admin). Shown once.")
    api_key_id: str


class AccountList(BaseModel):
    object: Literal["list"] = "list"
    data: list[AccountObject]


class AccountUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: AccountName | None = None
    plan: PlanName | None = None
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
