from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from framegate.kit.views import OptionalUnixTime, UnixTime
from framegate.webhooks.service import (
    DEFAULT_ROTATION_GRACE_SECONDS,
    MAX_ROTATION_GRACE_SECONDS,
)

EVENTS_DESCRIPTION = (
    "Events to deliver: task.completed, task.failed, task.cancelled, task.progress. "
    "Omitted: every final state (task.completed, task.failed, task.cancelled)."
)


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, description="Where events are POSTed: a public http(s) URL.")
    description: str = Field(default="", max_length=300)
    events: list[str] | None = Field(default=None, description=EVENTS_DESCRIPTION)


class WebhookEndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2000)
    description: str | None = Field(default=None, max_length=300)
    events: list[str] | None = Field(default=None, description=EVENTS_DESCRIPTION)
    enabled: bool | None = Field(
        default=None,
        description="false pauses deliveries; true re-enables an endpoint that was disabled "
        "(by you, or after it answered 410 Gone).",
    )


class WebhookEndpointObject(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    description: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why the endpoint stopped receiving events, when it is disabled."
    )
    previous_secret_expires_at: OptionalUnixTime = Field(
        description="While the secret replaced by the last rotation still signs deliveries "
        "beside the current one: when it stops (unix seconds). null otherwise."
    )
    created_at: UnixTime
    updated_at: OptionalUnixTime


class WebhookEndpointWithSecret(WebhookEndpointObject):
    secret: str = Field(
        description="The signing secret (whsec_…, Standard Webhooks). Shown once; store it now."
    )


class WebhookSecretRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_period_seconds: int = Field(
        default=DEFAULT_ROTATION_GRACE_SECONDS,
        ge=0,
        le=MAX_ROTATION_GRACE_SECONDS,
        strict=True,
        description="How long the replaced secret keeps signing deliveries beside the new "
        "one (both signatures in webhook-signature), so receivers can switch without "
        f"rejecting events. 0 ends it at once; at most {MAX_ROTATION_GRACE_SECONDS} (3 days).",
    )


class WebhookEndpointList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WebhookEndpointObject]


class WebhookEndpointDeleted(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    deleted: Literal[True] = True


class WebhookDeliveryObject(BaseModel):
    id: str = Field(description="Also the webhook-id header, the same on every attempt.")
    object: Literal["webhook_delivery"] = "webhook_delivery"
    endpoint_id: str | None
    task_id: str | None
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: int = Field(description="Attempts made so far.")
    last_status_code: int | None = Field(description="HTTP status of the last attempt.")
    last_error: str | None = Field(description="Why the last attempt failed.")
    next_attempt_at: OptionalUnixTime = Field(description="When a pending delivery is tried next.")
    delivered_at: OptionalUnixTime
    created_at: UnixTime
    updated_at: OptionalUnixTime


class WebhookDeliveryList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WebhookDeliveryObject]
    has_more: bool
    next_cursor: str | None = Field(
        default=None, description="Pass as 'after' to get the next page."
    )


class WebhookTestResult(BaseModel):
    object: Literal["webhook_test"] = "webhook_test"
    succeeded: bool = Field(description="Whether the endpoint answered with a 2xx status.")
    status_code: int | None = Field(
        description="The endpoint's HTTP status; null when it gave none (the URL was "
        "refused, the connection failed, or no answer came in time)."
    )
    error: str | None = Field(description="Why the test failed, when it did.")
    delivery: WebhookDeliveryObject = Field(
        description="The test's delivery record, also listed among the endpoint's deliveries."
    )


class TaskWebhookSecret(BaseModel):
    object: Literal["task_webhook_secret"] = "task_webhook_secret"
    secret: str = Field(
        description="Signs deliveries to tasks' own webhook_url (whsec_…, Standard Webhooks)."
    )
