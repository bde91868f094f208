"""Per-address limits for requests that no key vouches for.

Requests without a key (public routes, signed downloads) and requests whose key or
signature failed are counted per client address, so a flood of anonymous calls or a key
guessing run is answered 429 before it costs more than a counter increment.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from limits import RateLimitItemPerMinute
from starlette.types import Scope

from framegate.kit.addresses import IPNetwork
from framegate.limits.service import RateLimited
from framegate.limits.window import retry_after_seconds, sliding_window_limiter

_UNKNOWN_CLIENT = "unknown"


class ClientLimiter:
    def __init__(
        self,
        *,
        storage_url: str,
        anonymous_per_minute: int,
        failed_auth_per_minute: int,
        trusted_proxies: Iterable[IPNetwork] = (),
    ) -> None:
        self._limiter = sliding_window_limiter(storage_url)
        self._anonymous = RateLimitItemPerMinute(anonymous_per_minute)
        self._failures = RateLimitItemPerMinute(failed_auth_per_minute)
        self._trusted = tuple(trusted_proxies)

    def client_address(self, scope: Scope) -> str:
        """The peer's address, or the first untrusted hop of X-Forwarded-For (read from the
        right) when the peer is a trusted proxy."""
        client = scope.get("client")
        peer = client[0] if client else _UNKNOWN_CLIENT
        if not self._trusted or not self._is_trusted(peer):
            return peer
        forwarded = b",".join(v for k, v in scope["headers"] if k == b"x-forwarded-for")
        for hop in reversed(forwarded.decode("latin-1").split(",")):
            address = hop.strip()
            if not self._is_trusted(address):
                return address if _is_ip(address) else peer
        return peer

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._trusted)

    async def count_anonymous(self, client: str) -> None:
        """One request without a key; 429 once the address's budget is spent."""
        if not await self._limiter.hit(self._anonymous, "anonymous", client):
            raise await self._refusal(
                self._anonymous,
                "anonymous",
                client,
                "Too many requests without an API key from this address",
            )

    async def check_failures(self, client: str) -> None:
        """429 while the address has spent its budget of failed authentications."""
        if not await self._limiter.test(self._failures, "auth-failed", client):
            raise await self._refusal(
                self._failures,
                "auth-failed",
                client,
                "Too many requests with an invalid API key or signature from this address",
            )

    async def count_failure(self, client: str) -> None:
        await self._limiter.hit(self._failures, "auth-failed", client)

    async def _refusal(
        self, item: RateLimitItemPerMinute, namespace: str, client: str, what: str
    ) -> RateLimited:
        retry_after = await retry_after_seconds(self._limiter, item, namespace, client)
        return RateLimited(
            f"{what} (limit {item.amount} per minute). Retry after {retry_after} s.",
            code="client_rate_limit_exceeded",
            headers={"Retry-After": str(retry_after)},
        )


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
