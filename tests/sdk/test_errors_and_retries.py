"""Typed errors for each status, and retries that honour Retry-After, against a live server.

Each test runs once with ``Framegate`` and once with ``AsyncFramegate`` (see ``connect``).
"""

from __future__ import annotations

import httpx
import pytest
from framegate_client import (
    APIConnectionError,
    AuthenticationError,
    ConflictError,
    InsufficientCreditsError,
    NotFoundError,
    PermissionDeniedError,
    UnprocessableEntityError,
)

from tests.processes import cli_json
from tests.sdk.conftest import Connect, Live

SMALL = {"duration": 1, "fps": 8, "size": "160x120"}


def test_typed_errors_carry_status_code_and_request_id(live: Live, connect: Connect) -> None:
    _, key = live.account()
    _, other_key = live.account()
    _, poor_key = live.account(credits=0)
    sdk = connect(api_key=key, base_url=live.url, max_retries=0)

    with pytest.raises(AuthenticationError) as bad_key:
        connect(api_key="fg_live_nope", base_url=live.url).tasks.list()
    assert bad_key.value.status_code == 401 and bad_key.value.request_id

    read_only = sdk.keys.create(name="ro", scopes=["tasks:read"])
    assert read_only.secret
    with pytest.raises(PermissionDeniedError) as scope:
        connect(api_key=read_only.secret, base_url=live.url).videos.create("preview", "x", **SMALL)
    assert scope.value.status_code == 403 and scope.value.code == "insufficient_scope"

    mine = sdk.videos.create_and_wait("preview", "mine", timeout=60, **SMALL)
    with pytest.raises(NotFoundError) as other:
        connect(api_key=other_key, base_url=live.url).tasks.retrieve(mine.id)
    assert other.value.status_code == 404 and other.value.code == "task_not_found"

    with pytest.raises(InsufficientCreditsError) as poor:
        connect(api_key=poor_key, base_url=live.url).videos.create("preview", "x", **SMALL)
    assert poor.value.status_code == 402

    with pytest.raises(UnprocessableEntityError) as bad_size:
        sdk.videos.create("preview", "x", duration=1, size="17x3")
    assert bad_size.value.status_code == 422 and bad_size.value.param

    with pytest.raises(ConflictError) as done:
        sdk.tasks.cancel(mine.id)
    assert done.value.code == "task_not_cancellable"
    assert done.value.request_id and done.value.request_id.startswith("req_")


def test_connection_error_is_typed(connect: Connect) -> None:
    sdk = connect(api_key="fg_live_x", base_url="http://127.0.0.1:9", max_retries=1, no_sleep=True)
    with pytest.raises(APIConnectionError):
        sdk.models.list()


def test_concurrency_429_is_retried_after_retry_after(live: Live, connect: Connect) -> None:
    account_id, key = live.account()
    cli_json(
        live.env,
        "admin",
        "set-plan",
        "one",
        "--max-concurrent-videos",
        "1",
        "--max-concurrent-images",
        "1",
        "--requests-per-minute",
        "100000",
    )
    cli_json(live.env, "admin", "assign-plan", account_id, "one")
    seen: list[tuple[int, str | None]] = []

    def record(response: httpx.Response) -> None:
        if response.request.method == "POST":
            seen.append((response.status_code, response.request.headers.get("idempotency-key")))

    sdk = connect(api_key=key, base_url=live.url, max_retries=8, on_response=record)
    first = sdk.videos.create("preview", "first", duration=10, fps=30, size="1920x1080")
    second = sdk.videos.create("preview", "second", **SMALL)
    statuses = [status for status, _ in seen]
    assert statuses[0] == 202 and 429 in statuses[1:] and statuses[-1] == 202, statuses
    assert len({ikey for _, ikey in seen[1:]}) == 1, "retries reuse one Idempotency-Key"
    assert sdk.tasks.retrieve(first.id).is_terminal()
    assert sdk.tasks.wait(second.id, timeout=60).status == "completed"
    assert len(sdk.tasks.list(limit=10).data) == 2
