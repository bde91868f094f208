"""Sends due webhook deliveries, with retries and backoff.

Delivery is at least once: a delivery is claimed (attempts + 1, and its next attempt pushed
past the send timeout) in one short transaction, sent outside any transaction, and its
outcome recorded in another. Both writes are compare-and-sets on (status, attempts), so two
processes never send the same attempt, and a process that dies mid-send leaves a delivery
that is simply tried again once its claim lapses. Receivers deduplicate on ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from framegate.db import transaction
from framegate.kit.safe_fetch import FetchPolicy
from framegate.kit.time import utcnow
from framegate.webhooks.repository import webhook_repository
from framegate.webhooks.sender import (
    CLAIM_MARGIN_SECONDS,
    Outcome,
    final_values,
    send_event,
    sent_values,
)
from framegate.webhooks.service import TEST_EVENT, ensure_task_secret, signing_secrets

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 8
# How many due deliveries run_once claims per round trip.
_BATCH = 100


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One claimed attempt of a delivery; ``number`` is 1 for the first send."""

    delivery_id: str
    account_id: str
    endpoint_id: str | None
    url: str
    payload: dict[str, Any]
    number: int


class WebhookDeliveryJob:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        read_sessionmaker: async_sessionmaker[AsyncSession],
        fetch_policy: FetchPolicy,
        retry_schedule: list[float],
        timeout_seconds: float,
        poll_seconds: float,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._read_sessionmaker = read_sessionmaker
        self._fetch_policy = fetch_policy
        self._retry_schedule = retry_schedule
        self._timeout = timeout_seconds
        self._poll_seconds = poll_seconds
        self._concurrency = concurrency
        self._loop_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._loop(), name="webhook-deliveries")

    async def stop(self) -> None:
        """Stop polling; sends in flight are abandoned and retried once their claim lapses."""
        if self._loop_task is None:
            return
        self._loop_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._loop_task
        self._loop_task = None

    async def run_once(self) -> int:
        """Send every delivery due now, once each (at most ``concurrency`` at a time).

        Returns how many requests were made. Retries that fall due meanwhile wait for the
        next call."""
        cutoff = utcnow()
        semaphore = asyncio.Semaphore(self._concurrency)

        async def bounded(attempt: _Attempt) -> bool:
            async with semaphore:
                return await self._deliver(attempt)

        sent = 0
        while True:
            batch = await self._claim(cutoff, _BATCH)
            results = await asyncio.gather(*(bounded(attempt) for attempt in batch))
            sent += sum(results)
            if len(batch) < _BATCH:
                return sent

    async def _loop(self) -> None:
        inflight: set[asyncio.Task[bool]] = set()
        try:
            while True:
                free = self._concurrency - len(inflight)
                batch: list[_Attempt] = []
                if free > 0:
                    try:
                        batch = await self._claim(utcnow(), free)
                    except Exception:
                        log.exception("claiming webhook deliveries failed")
                for attempt in batch:
                    task = asyncio.create_task(self._deliver(attempt))
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
                # Wake on the poll interval, or as soon as a slot frees up.
                if inflight:
                    await asyncio.wait(
                        set(inflight),
                        timeout=self._poll_seconds,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                else:
                    await asyncio.sleep(self._poll_seconds)
        finally:
            for task in inflight:
                task.cancel()
            await asyncio.gather(*inflight, return_exceptions=True)

    async def _claim(self, due_before: datetime, limit: int) -> list[_Attempt]:
        # Looked for first in a read-only session: on SQLite an idle poll then never takes
        # the database's write lock.
        async with self._read_sessionmaker() as session:
            if not await webhook_repository.any_due(session, due_before):
                return []
        now = utcnow()
        lease_end = now + timedelta(seconds=self._timeout + CLAIM_MARGIN_SECONDS)
        claimed: list[_Attempt] = []
        async with transaction(self._sessionmaker) as session:
            for row in await webhook_repository.due_deliveries(session, due_before, limit):
                if row.attempts >= len(self._retry_schedule) or row.event_type == TEST_EVENT:
                    # Its last attempt (a test event only ever has one) was claimed by a
                    # process that died before recording the outcome: none is left to make.
                    values = final_values(
                        "failed", now, error="no outcome recorded for last attempt"
                    )
                    await webhook_repository.update_delivery(
                        session, row.id, attempts=row.attempts, values=values
                    )
                    continue
                values = {"attempts": row.attempts + 1, "next_attempt_at": lease_end}
                if await webhook_repository.update_delivery(
                    session, row.id, attempts=row.attempts, values={**values, "updated_at": now}
                ):
                    claimed.append(
                        _Attempt(
                            delivery_id=row.id,
                            account_id=row.account_id,
                            endpoint_id=row.endpoint_id,
                            url=row.url,
                            payload=dict(row.payload),
                            number=row.attempts + 1,
                        )
                    )
        return claimed

    async def _deliver(self, attempt: _Attempt) -> bool:
        """Make one attempt and record its outcome; True when a request was made."""
        try:
            target = await self._target(attempt)
            if isinstance(target, str):
                await self._record(attempt, Outcome(error=target, skipped=True))
                return False
            url, secrets = target
            outcome = await send_event(
                url,
                secrets,
                attempt.delivery_id,
                attempt.payload,
                fetch_policy=self._fetch_policy,
                timeout=self._timeout,
            )
            await self._record(attempt, outcome)
        except Exception:
            # The claim lapses and the delivery is tried again then.
            log.exception("webhook delivery %s: attempt failed unexpectedly", attempt.delivery_id)
            return False
        log.info(
            "webhook delivery %s attempt %d: %s",
            attempt.delivery_id,
            attempt.number,
            outcome.status_code if outcome.status_code is not None else outcome.error,
        )
        return True

    async def _target(self, attempt: _Attempt) -> tuple[str, tuple[str, ...]] | str:
        """(url, signing secrets) to send to, or why the delivery must not be sent."""
        if attempt.endpoint_id is None:
            # A task's own webhook_url, signed with the account's task-webhook secret.
            async with self._read_sessionmaker() as session:
                secret = await webhook_repository.task_secret(session, attempt.account_id)
            if secret is None:
                async with transaction(self._sessionmaker) as session:
                    secret = await ensure_task_secret(session, attempt.account_id)
            return attempt.url, (secret,)
        async with self._read_sessionmaker() as session:
            endpoint = await webhook_repository.endpoint_by_id(session, attempt.endpoint_id)
        if endpoint is None:
            return "The endpoint was deleted."
        if not endpoint.enabled:
            return "The endpoint is disabled."
        # The endpoint's current URL and secrets: a URL fixed after a failure gets the
        # retries, and a retry after a rotation is signed with the new secret.
        return endpoint.url, signing_secrets(endpoint, utcnow())

    def _outcome_values(self, attempt: _Attempt, outcome: Outcome, now: datetime) -> dict[str, Any]:
        if outcome.skipped:
            # Nothing was sent, so the claim does not count as an attempt.
            values = final_values("failed", now, error=outcome.error)
            return {**values, "attempts": attempt.number - 1}
        values = sent_values(outcome)
        if outcome.succeeded:
            return {**values, **final_values("succeeded", now)}
        if outcome.gone or attempt.number >= len(self._retry_schedule):
            return {**values, **final_values("failed", now, error=outcome.error)}
        delay = max(self._retry_schedule[attempt.number], outcome.retry_after or 0.0)
        return {**values, "next_attempt_at": now + timedelta(seconds=delay), "updated_at": now}

    async def _record(self, attempt: _Attempt, outcome: Outcome) -> None:
        now = utcnow()
        values = self._outcome_values(attempt, outcome, now)
        async with transaction(self._sessionmaker) as session:
            await webhook_repository.update_delivery(
                session, attempt.delivery_id, attempts=attempt.number, values=values
            )
            if outcome.gone and attempt.endpoint_id is not None:
                # 410 Gone is the receiver saying it wants no more events: stop sending.
                reason = (
                    f"The endpoint answered HTTP 410 Gone at {now:%Y-%m-%d %H:%M:%S} UTC. "
                    f"Re-enable it with PATCH /v1/webhooks/{attempt.endpoint_id} and "
                    "enabled=true."
                )
                await webhook_repository.disable_endpoint(session, attempt.endpoint_id, reason, now)
                await webhook_repository.fail_pending_for_endpoint(
                    session, attempt.endpoint_id, "The endpoint was disabled (HTTP 410 Gone).", now
                )
