"""Requests without a valid key are limited per client address."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from framegate.app import create_app
from framegate.config import Settings
from framegate.engines.preview import PreviewEngine
from framegate.engines.registry import EngineRegistry
from framegate.kit.addresses import parse_networks
from framegate.kit.crypto import generate_api_key
from framegate.limits.clients import ClientLimiter
from framegate.runtime import Runtime
from tests.conftest import make_account


@pytest.fixture
async def strict_app(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The suite's database with low per-address limits and no workers."""
    strict = settings.model_copy(
        update={"anonymous_requests_per_minute": 5, "failed_auth_per_minute": 3}
    )
    app = create_app(strict, engines=EngineRegistry([PreviewEngine()]), start_workers=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            c.runtime = app.state.runtime  # type: ignore[attr-defined]
            yield c


async def test_anonymous_flood_gets_429_with_retry_after(strict_app: httpx.AsyncClient) -> None:
    statuses = [(await strict_app.get("/v1/models")).status_code for _ in range(8)]
    assert statuses[:5] == [200] * 5
    assert statuses[5:] == [429] * 3
    response = await strict_app.get("/v1/models")
    assert response.json()["error"]["code"] == "client_rate_limit_exceeded"
    assert 1 <= int(response.headers["retry-after"]) <= 60
    # Liveness probes are never limited.
    assert (await strict_app.get("/healthz")).status_code == 200


async def test_failed_keys_get_429_but_good_keys_keep_working(
    strict_app: httpx.AsyncClient,
) -> None:
    runtime: Runtime = strict_app.runtime  # type: ignore[attr-defined]
    good = await make_account(runtime)
    assert (await strict_app.get("/v1/credits", headers=good.headers)).status_code == 200
    statuses = []
    for _ in range(6):
        wrong = {"Authorization": f"Bearer {generate_api_key()}"}
        statuses.append((await strict_app.get("/v1/credits", headers=wrong)).status_code)
    assert statuses[:2] == [401, 401]
    assert set(statuses[3:]) == {429}
    # Malformed keys count too.
    response = await strict_app.get("/v1/credits", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 429
    assert "Retry-After" in response.headers
    # A key this process has already verified is not held back by the address's failures.
    assert (await strict_app.get("/v1/credits", headers=good.headers)).status_code == 200


async def test_bad_signatures_count_as_failures(strict_app: httpx.AsyncClient) -> None:
    statuses = [
        (await strict_app.get(f"/v1/files/x?expires=9999999999&signature={'0' * 64}")).status_code
        for _ in range(5)
    ]
    assert statuses[:2] == [403, 403]
    assert statuses[-1] == 429


def _scope(peer: str, forwarded: str | None = None) -> dict[str, object]:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    return {"type": "http", "client": (peer, 1234), "headers": headers}


def test_client_address_believes_only_trusted_proxies() -> None:
    limiter = ClientLimiter(
        storage_url="memory://",
        anonymous_per_minute=10,
        failed_auth_per_minute=10,
        trusted_proxies=parse_networks("10.0.0.0/8, ::1/128"),
    )
    # An untrusted peer's header is ignored.
    assert limiter.client_address(_scope("203.0.113.5", "1.2.3.4")) == "203.0.113.5"
    # A trusted proxy: the first untrusted hop from the right.
    assert limiter.client_address(_scope("10.0.0.2", "1.2.3.4, 198.51.100.9")) == "198.51.100.9"
    assert limiter.client_address(_scope("10.0.0.2", "198.51.100.9, 10.0.0.7")) == "198.51.100.9"
    assert limiter.client_address(_scope("::1", "2001:db8::1")) == "2001:db8::1"
    # Junk in the header falls back to the proxy itself, never to a made-up address.
    assert limiter.client_address(_scope("10.0.0.2", "not-an-ip")) == "10.0.0.2"
    assert limiter.client_address(_scope("10.0.0.2")) == "10.0.0.2"
    no_proxies = ClientLimiter(
        storage_url="memory://", anonymous_per_minute=10, failed_auth_per_minute=10
    )
    assert no_proxies.client_address(_scope("10.0.0.2", "1.2.3.4")) == "10.0.0.2"
