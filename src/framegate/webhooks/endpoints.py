"""Webhook endpoints of the calling account, their deliveries, and the task-webhook secret.

Every route here needs the ``keys:manage`` scope: a webhook secret is a credential, and
whoever can read or replace it can forge or silence the account's events.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from framegate.dependencies import ReadSessionDep, RuntimeDep, SessionDep, require_scope
from framegate.exceptions import error_responses
from framegate.keys.scopes import Scope
from framegate.keys.service import AuthContext
from framegate.kit.pagination import PageAfter, PageLimit
from framegate.kit.time import utcnow
from framegate.kit.views import from_row
from framegate.models import WebhookDelivery, WebhookEndpoint
from framegate.webhooks.schemas import (
    TaskWebhookSecret,
    WebhookDeliveryList,
    WebhookDeliveryObject,
    WebhookEndpointCreate,
    WebhookEndpointDeleted,
    WebhookEndpointList,
    WebhookEndpointObject,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
    WebhookSecretRotation,
    WebhookTestResult,
)
from framegate.webhooks.service import previous_secret_expiry

router = APIRouter(tags=["webhooks"], responses=error_responses(401, 403))

WebhookManager = Annotated[AuthContext, Depends(require_scope(Scope.keys_manage))]
WebhookId = Annotated[str, Path(max_length=40, description="The endpoint id, e.g. we_…")]


def _view(endpoint: WebhookEndpoint) -> WebhookEndpointObject:
    return from_row(
        WebhookEndpointObject,
        endpoint,
        previous_secret_expires_at=previous_secret_expiry(endpoint, utcnow()),
    )


def _with_secret(endpoint: WebhookEndpoint) -> WebhookEndpointWithSecret:
    return WebhookEndpointWithSecret(**_view(endpoint).model_dump(), secret=endpoint.secret)


def _delivery_view(delivery: WebhookDelivery) -> WebhookDeliveryObject:
    return from_row(WebhookDeliveryObject, delivery)


# The task-secret routes come before /v1/webhooks/{webhook_id} so that path cannot
# swallow them.


@router.get("/v1/webhooks/task-secret", summary="Get the task-webhook secret")
async def get_task_secret(
    runtime: RuntimeDep, session: SessionDep, auth: WebhookManager
) -> TaskWebhookSecret:
    """The secret that signs deliveries to a task's own webhook_url (created on first use)."""
    secret = await runtime.webhooks.task_secret(session, auth.account.id)
    return TaskWebhookSecret(secret=secret)


@router.post("/v1/webhooks/task-secret/rotate", summary="Rotate the task-webhook secret")
async def rotate_task_secret(
    runtime: RuntimeDep, session: SessionDep, auth: WebhookManager
) -> TaskWebhookSecret:
    """Replace the task-webhook secret; every later delivery attempt is signed with the new one."""
    secret = await runtime.webhooks.rotate_task_secret(session, auth.account.id)
    return TaskWebhookSecret(secret=secret)


@router.post(
    "/v1/webhooks",
    status_code=201,
    responses=error_responses(409, 422),
    summary="Register a webhook endpoint",
)
async def create_endpoint(
    body: WebhookEndpointCreate, runtime: RuntimeDep, session: SessionDep, auth: WebhookManager
) -> WebhookEndpointWithSecret:
    """Deliver task events to a URL, signed with Standard Webhooks; the secret is shown once.

    409 when the account already has as many endpoints as the server allows."""
    endpoint = await runtime.webhooks.create_endpoint(
        session, auth.account.id, url=body.url, description=body.description, events=body.events
    )
    return _with_secret(endpoint)


@router.get("/v1/webhooks", summary="List webhook endpoints")
async def list_endpoints(
    runtime: RuntimeDep, session: ReadSessionDep, auth: WebhookManager
) -> WebhookEndpointList:
    """The account's webhook endpoints (never their secrets)."""
    endpoints = await runtime.webhooks.list_endpoints(session, auth.account.id)
    return WebhookEndpointList(data=[_view(e) for e in endpoints])


@router.get(
    "/v1/webhooks/{webhook_id}",
    responses=error_responses(404),
    summary="Retrieve a webhook endpoint",
)
async def get_endpoint(
    webhook_id: WebhookId, runtime: RuntimeDep, session: ReadSessionDep, auth: WebhookManager
) -> WebhookEndpointObject:
    """One endpoint, with whether it is enabled and why not (never its secret)."""
    return _view(await runtime.webhooks.get_endpoint(session, auth.account.id, webhook_id))


@router.patch(
    "/v1/webhooks/{webhook_id}",
    responses=error_responses(404, 422),
    summary="Update a webhook endpoint",
)
async def update_endpoint(
    webhook_id: WebhookId,
    body: WebhookEndpointUpdate,
    runtime: RuntimeDep,
    session: SessionDep,
    auth: WebhookManager,
) -> WebhookEndpointObject:
    """Change the URL, description, events or enabled flag; fields left out stay as they are."""
    endpoint = await runtime.webhooks.update_endpoint(
        session,
        auth.account.id,
        webhook_id,
        url=body.url,
        description=body.description,
        events=body.events,
        enabled=body.enabled,
    )
    return _view(endpoint)


@router.delete(
    "/v1/webhooks/{webhook_id}", responses=error_responses(404), summary="Delete a webhook endpoint"
)
async def delete_endpoint(
    webhook_id: WebhookId, runtime: RuntimeDep, session: SessionDep, auth: WebhookManager
) -> WebhookEndpointDeleted:
    """Delete the endpoint and its delivery history; pending deliveries are not sent."""
    await runtime.webhooks.delete_endpoint(session, auth.account.id, webhook_id)
    return WebhookEndpointDeleted(id=webhook_id)


@router.post(
    "/v1/webhooks/{webhook_id}/rotate-secret",
    responses=error_responses(404, 422),
    summary="Rotate a webhook endpoint's secret",
)
async def rotate_endpoint_secret(
    webhook_id: WebhookId,
    runtime: RuntimeDep,
    session: SessionDep,
    auth: WebhookManager,
    body: WebhookSecretRotation | None = None,
) -> WebhookEndpointWithSecret:
    """A new signing secret, in force at once and shown only in this response; the old one
    also signs until its grace period ends (24 hours unless the body says otherwise)."""
    rotation = body or WebhookSecretRotation()
    endpoint = await runtime.webhooks.rotate_endpoint_secret(
        session, auth.account.id, webhook_id, grace_seconds=rotation.grace_period_seconds
    )
    return _with_secret(endpoint)


@router.post(
    "/v1/webhooks/{webhook_id}/test",
    responses=error_responses(404, 422),
    summary="Send a test event to a webhook endpoint",
)
async def send_test_event(
    webhook_id: WebhookId, runtime: RuntimeDep, session: SessionDep, auth: WebhookManager
) -> WebhookTestResult:
    """Send a signed webhook.test event now and answer with how the endpoint responded."""
    pending = await runtime.webhooks.start_test_event(session, auth.account.id, webhook_id)
    # Committed before the request goes out: no transaction waits on the receiver.
    await session.commit()
    delivery, outcome = await runtime.webhooks.send_test_event(session, pending)
    return WebhookTestResult(
        succeeded=outcome.succeeded,
        status_code=outcome.status_code,
        error=outcome.error,
        delivery=_delivery_view(delivery),
    )


@router.get(
    "/v1/webhooks/{webhook_id}/deliveries",
    responses=error_responses(404, 422),
    summary="List an endpoint's deliveries",
)
async def list_deliveries(
    webhook_id: WebhookId,
    runtime: RuntimeDep,
    session: ReadSessionDep,
    auth: WebhookManager,
    limit: PageLimit = 20,
    after: PageAfter = None,
) -> WebhookDeliveryList:
    """Events sent (or being retried) to this endpoint, newest first, with cursor pagination."""
    deliveries, has_more = await runtime.webhooks.list_deliveries(
        session, auth.account.id, webhook_id, limit=limit, after=after
    )
    return WebhookDeliveryList(
        data=[_delivery_view(d) for d in deliveries],
        has_more=has_more,
        next_cursor=deliveries[-1].id if has_more and deliveries else None,
    )
