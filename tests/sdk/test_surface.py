"""The sync and async clients expose the same resources and methods, and share one retry
policy."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
from framegate_client import AsyncFramegate, Framegate, RateLimitError
from framegate_client._retries import MAX_RETRY_DELAY, parse_retry_after, retry_delay


def public(obj: object) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in dir(obj) if not name.startswith("_")}


def resources(client: Framegate | AsyncFramegate) -> dict[str, object]:
    """The client's resources: public attributes that are neither methods nor settings."""
    return {
        name: value
        for name, value in public(client).items()
        if not callable(value) and not isinstance(value, str | int | float | bool)
    }


def comparable(method: Any) -> tuple[inspect.Signature, bool]:
    """The signature with AsyncIterator read as Iterator, and whether it is a coroutine."""
    signature = inspect.signature(method)
    returns = signature.return_annotation
    if getattr(returns, "__origin__", None) is AsyncIterator:
        returns = Iterator[returns.__args__[0]]  # type: ignore[name-defined]
    return signature.replace(return_annotation=returns), inspect.iscoroutinefunction(method)


def test_both_clients_have_the_same_resources_and_signatures() -> None:
    sync, not_sync = Framegate(api_key="fg_live_x"), AsyncFramegate(api_key="fg_live_x")
    sync_resources, async_resources = resources(sync), resources(not_sync)
    assert set(sync_resources) == set(async_resources)
    assert {"videos", "images", "tasks", "models", "estimates", "credits", "keys"} <= set(
        sync_resources
    )
    for name, resource in sync_resources.items():
        sync_methods = public(resource)
        async_methods = public(async_resources[name])
        assert set(sync_methods) == set(async_methods), name
        for method_name, method in sync_methods.items():
            other = async_methods[method_name]
            where = f"{name}.{method_name}"
            sync_signature, sync_is_coroutine = comparable(method)
            async_signature, async_is_coroutine = comparable(other)
            assert sync_signature == async_signature, where
            assert method.__doc__ == other.__doc__, where
            assert not sync_is_coroutine, where
            # Every async method is awaited, except iterators and local helpers.
            iterates = isinstance(async_signature.return_annotation, type(Iterator[int]))
            assert async_is_coroutine or iterates or name == "webhooks", where
    assert inspect.signature(Framegate.__init__).parameters.keys() == (
        inspect.signature(AsyncFramegate.__init__).parameters.keys()
    )


def test_retry_after_takes_seconds_or_an_http_date() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    at = now.timestamp()
    assert parse_retry_after("7", at) == 7
    assert parse_retry_after(" 1.5 ", at) == 1.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), at) == 30
    assert parse_retry_after(format_datetime(now - timedelta(hours=1), usegmt=True), at) == 0
    assert parse_retry_after("-5", at) == 0
    assert parse_retry_after("99999", at) == MAX_RETRY_DELAY
    for junk in (None, "", "soon", "nan", "Mon, 99 Foo 2030 00:00:00 GMT"):
        assert parse_retry_after(junk, at) is None, junk
    assert 30 <= retry_delay(0, "30") <= 30.25
    assert 0.375 <= retry_delay(0, None) <= 0.625


def test_rate_limit_error_reads_an_http_date() -> None:
    later = datetime.now(UTC) + timedelta(seconds=120)
    response = httpx.Response(429, headers={"Retry-After": format_datetime(later, usegmt=True)})
    error = RateLimitError("slow down", response=response, status_code=429)
    assert error.retry_after is not None and 100 < error.retry_after <= 120
