"""Waiting in tests for something to happen elsewhere (a worker, a server, a thread): poll a
check until it answers, with a deadline, instead of sleeping a guessed while."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

Description = str | Callable[[], str]


def _timed_out(timeout: float, what: Description) -> AssertionError:
    return AssertionError(
        f"timed out after {timeout}s waiting for {what() if callable(what) else what}"
    )


async def wait_until(
    check: Callable[[], T | Awaitable[T]],
    timeout: float = 20,
    what: Description = "the condition",
    *,
    interval: float = 0.05,
) -> T:
    """Call ``check`` every ``interval`` seconds until it returns something truthy, and
    return that; fail the test once ``timeout`` seconds have passed. ``what`` (or what it
    returns, when it is a function) names the awaited thing in the failure."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if loop.time() > deadline:
            raise _timed_out(timeout, what)
        await asyncio.sleep(interval)


def wait_until_sync(
    check: Callable[[], T],
    timeout: float = 20,
    what: Description = "the condition",
    *,
    interval: float = 0.05,
) -> T:
    """``wait_until`` for code outside an event loop (threads, processes)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise _timed_out(timeout, what)
        time.sleep(interval)
