from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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
    created_at: int
    updated_at: int | None


class WebhookEndpointWithSecret(WebhookEndpointObject):
    secret: str = Field(
        description="The signing secret (whsec_…, Standard Webhooks). Shown once; store it now."
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
    next_attempt_at: int | None = Field(description="When a pending delivery is tried next.")
    delivered_at: int | None
    created_at: int
    updated_at: int | None


class WebhookDeliveryList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WebhookDeliveryObject]
    has_more: bool
    next_cursor: str | None = Field(
        default=None, description="Pass as 'after' to get the next page."
    )


class TaskWebhookSecret(BaseModel):
    object: Literal["task_webhook_secret"] = "task_webhook_secret"
    secret: str = Field(
        description="Signs deliveries to tasks' own webhook_url (whsec_…, Standard Webhooks)."
    )
