"""Webhook endpoints and the task-event outbox (Standard Webhooks)."""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from framegate.exceptions import Conflict, NotFound
from framegate.kit.ids import new_id
from framegate.kit.pagination import one_page
from framegate.kit.safe_fetch import FetchPolicy, validate_url
from framegate.kit.time import as_utc, to_unix, utcnow
from framegate.kit.validation import validate_choices
from framegate.models import Task, TaskStatus, WebhookDelivery, WebhookEndpoint
from framegate.webhooks.repository import webhook_repository
from framegate.webhooks.sender import (
    CLAIM_MARGIN_SECONDS,
    URL_REMEDY,
    Outcome,
    final_values,
    send_event,
    sent_values,
)

FINAL_EVENTS = {
    TaskStatus.completed: "task.completed",
    TaskStatus.failed: "task.failed",
    TaskStatus.cancelled: "task.cancelled",
}
PROGRESS_EVENT = "task.progress"
# Sent only on request, by POST /v1/webhooks/{id}/test; never subscribed to.
TEST_EVENT = "webhook.test"
# Events an endpoint gets when it names none: every final state, not progress.
DEFAULT_EVENTS = tuple(FINAL_EVENTS.values())
ALL_EVENTS = (*DEFAULT_EVENTS, PROGRESS_EVENT)
SECRET_PREFIX = "whsec_"
# Standard Webhooks asks for 24 to 64 random bytes.
_SECRET_BYTES = 32
# How long a rotated-out endpoint secret keeps signing beside the new one, unless the
# rotation says otherwise, and the longest grace a rotation may ask for.
DEFAULT_ROTATION_GRACE_SECONDS = 24 * 3600
MAX_ROTATION_GRACE_SECONDS = 3 * 24 * 3600


class WebhookEndpointLimitReached(Conflict):
    code = "webhook_endpoint_limit_reached"


def generate_webhook_secret() -> str:
    """``whsec_`` + base64 of random bytes: the form the standardwebhooks libraries read."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


def validate_events(events: list[str] | None) -> list[str]:
    """The subscribed events in a stable order; None means the defaults."""
    if events is None:
        return list(DEFAULT_EVENTS)
    validate_choices(
        events,
        allowed=ALL_EVENTS,
        noun="event",
        param="events",
        empty_message="Name at least one event, or leave events out to get every final state.",
    )
    return [event for event in ALL_EVENTS if event in events]


async def ensure_task_secret(session: AsyncSession, account_id: str) -> str:
    """The account's task-webhook secret, created on first use."""
    secret = await webhook_repository.task_secret(session, account_id)
    if secret is None:
        await webhook_repository.set_task_secret(
            session, account_id, generate_webhook_secret(), only_if_missing=True
        )
        secret = await webhook_repository.task_secret(session, account_id)
    if secret is None:
        raise NotFound("No such account.", param="account_id")
    return secret


def task_event_payload(event_type: str, task: Task) -> dict[str, Any]:
    """The body of a task event. It carries no output URLs (they are signed and expire):
    receivers fetch GET /v1/tasks/{id} for those."""
    error = {"code": task.error_code, "message": task.error_message} if task.error_code else None
    return {
        "type": event_type,
        "timestamp": utcnow().isoformat(),
        "data": {
            "id": task.id,
            "object": "task",
            "type": task.type,
            "status": task.status,
            "model": task.model,
            "progress": task.progress,
            "created_at": to_unix(task.created_at),
            "completed_at": to_unix(task.completed_at),
            "credits_used": task.credits_used,
            "credits_refunded": task.credits_refunded,
            "error": error,
            "metadata": task.task_metadata or {},
        },
    }


def webhook_test_payload(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """The body of a webhook.test event: it names the endpoint and nothing else."""
    return {
        "type": TEST_EVENT,
        "timestamp": utcnow().isoformat(),
        "data": {"object": "webhook_endpoint", "id": endpoint.id},
    }


def subscribed(endpoint: WebhookEndpoint, event_type: str) -> bool:
    events = endpoint.events or list(DEFAULT_EVENTS)
    return event_type in events


def previous_secret_expiry(endpoint: WebhookEndpoint, now: datetime) -> datetime | None:
    """When the secret the last rotation replaced stops signing; None once it has."""
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret is None or expires is None or as_utc(expires) <= now:
        return None
    return as_utc(expires)


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> tuple[str, ...]:
    """The secrets a delivery to ``endpoint`` is signed with: the current one, and during a
    rotation's grace period also the one it replaced."""
    if endpoint.previous_secret is not None and previous_secret_expiry(endpoint, now):
        return (endpoint.secret, endpoint.previous_secret)
    return (endpoint.secret,)


@dataclass(frozen=True, slots=True)
class PendingTestEvent:
    """A webhook.test delivery recorded as claimed, to be sent once that is committed."""

    delivery: WebhookDelivery
    secrets: tuple[str, ...]


class WebhookService:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        read_sessionmaker: async_sessionmaker[AsyncSession],
        fetch_policy: FetchPolicy,
        progress_interval_seconds: float,
        timeout_seconds: float,
        max_endpoints: int,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._read_sessionmaker = read_sessionmaker
        self._fetch_policy = fetch_policy
        self._progress_interval = progress_interval_seconds
        self._timeout = timeout_seconds
        self._max_endpoints = max_endpoints
        # task id → when its last progress event was queued (monotonic seconds).
        self._last_progress: dict[str, float] = {}

    async def task_finished(self, session: AsyncSession, task: Task) -> None:
        """Outbox rows for task.completed / task.failed / task.cancelled."""
        self._last_progress.pop(task.id, None)
        event_type = FINAL_EVENTS.get(TaskStatus(task.status))
        if event_type is None:
            return
        await self._enqueue(session, task, event_type, include_task_url=True)

    async def task_progressed(self, session: AsyncSession, task: Task, progress: int) -> None:
        """A throttled task.progress outbox row for endpoints that subscribed to it."""
        now = time.monotonic()
        if now - self._last_progress.get(task.id, -1e9) < self._progress_interval:
            return
        self._last_progress[task.id] = now
        task.progress = progress
        await self._enqueue(session, task, PROGRESS_EVENT, include_task_url=False)

    async def _enqueue(
        self, session: AsyncSession, task: Task, event_type: str, *, include_task_url: bool
    ) -> None:
        payload = task_event_payload(event_type, task)
        now = utcnow()
        targets: list[tuple[str | None, str]] = []
        if include_task_url and task.webhook_url:
            targets.append((None, task.webhook_url))
        for endpoint in await webhook_repository.enabled_endpoints(session, task.account_id):
            if subscribed(endpoint, event_type):
                targets.append((endpoint.id, endpoint.url))
        for endpoint_id, url in targets:
            await webhook_repository.add_delivery(
                session,
                WebhookDelivery(
                    id=new_id("msg"),
                    account_id=task.account_id,
                    endpoint_id=endpoint_id,
                    url=url,
                    task_id=task.id,
                    event_type=event_type,
                    payload=payload,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                ),
            )

    # Endpoints of an account (the /v1/webhooks routes)

    async def _check_url(self, url: str) -> None:
        await validate_url(url, self._fetch_policy, param="url", remedy=URL_REMEDY)

    async def create_endpoint(
        self,
        session: AsyncSession,
        account_id: str,
        *,
        url: str,
        description: str = "",
        events: list[str] | None = None,
    ) -> WebhookEndpoint:
        """A new endpoint; its ``secret`` is shown to the caller this once."""
        subscribed_events = validate_events(events)
        await self._check_url(url)
        # Counted under a lock on the account, so two creations racing cannot both take
        # the last place; taken after the URL check, which may wait on DNS.
        count = await webhook_repository.count_endpoints_locked(session, account_id)
        if count >= self._max_endpoints:
            raise WebhookEndpointLimitReached(
                f"This account already has {count} webhook endpoints; the limit is "
                f"{self._max_endpoints} (FRAMEGATE_WEBHOOK_MAX_ENDPOINTS on the server). "
                "Delete one you no longer use with DELETE /v1/webhooks/{id}, or subscribe an "
                "existing endpoint to more events with PATCH /v1/webhooks/{id}."
            )
        endpoint = WebhookEndpoint(
            id=new_id("we"),
            account_id=account_id,
            url=url,
            description=description,
            secret=generate_webhook_secret(),
            events=subscribed_events,
            enabled=True,
        )
        await webhook_repository.add_endpoint(session, endpoint)
        return endpoint

    async def list_endpoints(self, session: AsyncSession, account_id: str) -> list[WebhookEndpoint]:
        return await webhook_repository.list_endpoints(session, account_id)

    async def get_endpoint(
        self, session: AsyncSession, account_id: str, endpoint_id: str
    ) -> WebhookEndpoint:
        endpoint = await webhook_repository.get_endpoint(session, account_id, endpoint_id)
        if endpoint is None:
            raise NotFound(
                f"No webhook endpoint {endpoint_id!r} in this account.", param="webhook_id"
            )
        return endpoint

    async def update_endpoint(
        self,
        session: AsyncSession,
        account_id: str,
        endpoint_id: str,
        *,
        url: str | None = None,
        description: str | None = None,
        events: list[str] | None = None,
        enabled: bool | None = None,
    ) -> WebhookEndpoint:
        """Change what is given; everything left as None stays as it is."""
        endpoint = await self.get_endpoint(session, account_id, endpoint_id)
        if events is not None:
            endpoint.events = validate_events(events)
        if url is not None:
            await self._check_url(url)
            endpoint.url = url
        if description is not None:
            endpoint.description = description
        if enabled is not None and enabled != endpoint.enabled:
            endpoint.enabled = enabled
            endpoint.disabled_reason = None if enabled else "Disabled through the API."
        endpoint.updated_at = utcnow()
        await session.flush()
        return endpoint

    async def delete_endpoint(
        self, session: AsyncSession, account_id: str, endpoint_id: str
    ) -> None:
        endpoint = await self.get_endpoint(session, account_id, endpoint_id)
        await webhook_repository.delete_endpoint(session, endpoint.id)

    async def rotate_endpoint_secret(
        self,
        session: AsyncSession,
        account_id: str,
        endpoint_id: str,
        *,
        grace_seconds: int = DEFAULT_ROTATION_GRACE_SECONDS,
    ) -> WebhookEndpoint:
        """A new secret, in force at once: every later attempt is signed with it, and for
        ``grace_seconds`` also with the secret it replaces (0: that one stops at once).

        Only the secret replaced now keeps a grace: rotating again during a grace ends the
        grace of the secret before."""
        endpoint = await self.get_endpoint(session, account_id, endpoint_id)
        now = utcnow()
        if grace_seconds > 0:
            endpoint.previous_secret = endpoint.secret
            endpoint.previous_secret_expires_at = now + timedelta(seconds=grace_seconds)
        else:
            endpoint.previous_secret = None
            endpoint.previous_secret_expires_at = None
        endpoint.secret = generate_webhook_secret()
        endpoint.updated_at = now
        await session.flush()
        return endpoint

    async def start_test_event(
        self, session: AsyncSession, account_id: str, endpoint_id: str
    ) -> PendingTestEvent:
        """Record a webhook.test delivery to the endpoint as claimed for its one attempt.

        The caller commits before :meth:`send_test_event`, so no transaction stays open
        while the receiver answers. A disabled endpoint can be tested too: that is how one
        checks a fixed receiver before enabling it again."""
        endpoint = await self.get_endpoint(session, account_id, endpoint_id)
        now = utcnow()
        delivery = WebhookDelivery(
            id=new_id("msg"),
            account_id=account_id,
            endpoint_id=endpoint.id,
            url=endpoint.url,
            task_id=None,
            event_type=TEST_EVENT,
            payload=webhook_test_payload(endpoint),
            status="pending",
            attempts=1,
            # The delivery job leaves it alone while it is sent (as for any claimed one).
            next_attempt_at=now + timedelta(seconds=self._timeout + CLAIM_MARGIN_SECONDS),
            created_at=now,
        )
        await webhook_repository.add_delivery(session, delivery)
        # Detached: the outcome is recorded by a compare-and-set, not by flushing this.
        session.expunge(delivery)
        return PendingTestEvent(delivery=delivery, secrets=signing_secrets(endpoint, now))

    async def send_test_event(
        self, session: AsyncSession, pending: PendingTestEvent
    ) -> tuple[WebhookDelivery, Outcome]:
        """Send the test event once and record how it went; it is never retried, and its
        outcome changes nothing else (a 410 answer does not disable the endpoint)."""
        delivery = pending.delivery
        outcome = await send_event(
            delivery.url,
            pending.secrets,
            delivery.id,
            delivery.payload,
            fetch_policy=self._fetch_policy,
            timeout=self._timeout,
        )
        now = utcnow()
        status = "succeeded" if outcome.succeeded else "failed"
        values = {**sent_values(outcome), **final_values(status, now, error=outcome.error)}
        await webhook_repository.update_delivery(
            session, delivery.id, attempts=delivery.attempts, values=values
        )
        for name, value in values.items():
            setattr(delivery, name, value)
        return delivery, outcome

    async def list_deliveries(
        self,
        session: AsyncSession,
        account_id: str,
        endpoint_id: str,
        *,
        limit: int,
        after: str | None,
    ) -> tuple[list[WebhookDelivery], bool]:
        endpoint = await self.get_endpoint(session, account_id, endpoint_id)
        rows = await webhook_repository.list_deliveries(
            session, endpoint.id, limit=limit + 1, after=after
        )
        return one_page(rows, limit)

    # The account's task-webhook secret

    async def task_secret(self, session: AsyncSession, account_id: str) -> str:
        return await ensure_task_secret(session, account_id)

    async def rotate_task_secret(self, session: AsyncSession, account_id: str) -> str:
        secret = generate_webhook_secret()
        await webhook_repository.set_task_secret(session, account_id, secret, only_if_missing=False)
        return secret
