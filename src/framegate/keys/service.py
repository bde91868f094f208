"""API keys: create (secret shown once), authenticate, list, rotate, revoke."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from cachetools import TTLCache
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from framegate.exceptions import Forbidden, InvalidValue, NotFound, Unauthorized
from framegate.keys.repository import api_key_repository
from framegate.keys.scopes import ALL_SCOPES, DEFAULT_SCOPES, has_scope
from framegate.kit.cluster import ClusterBus
from framegate.kit.crypto import (
    PURPOSE_API_KEY_HASH,
    derive_subkey,
    display_hint,
    generate_api_key,
    hash_api_key,
)
from framegate.kit.ids import new_id
from framegate.kit.time import as_utc, utcnow
from framegate.kit.validation import validate_choices
from framegate.models import Account, APIKey

# Writing last_used_at on every request would turn every poll into a write.
_LAST_USED_GRANULARITY = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class AuthContext:
    account: Account
    key: APIKey

    def require(self, scope: str) -> None:
        if not has_scope(self.key.scopes, scope):
            raise Forbidden(
                f"This API key lacks the '{scope}' scope. Use a key that has it, or create "
                "one with it via POST /v1/keys.",
                code="insufficient_scope",
            )


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: APIKey
    secret: str


def validate_scopes(scopes: list[str] | None) -> list[str]:
    if scopes is None:
        return list(DEFAULT_SCOPES)
    validate_choices(
        scopes,
        allowed=ALL_SCOPES,
        noun="scope",
        param="scopes",
        empty_message="A key needs at least one scope.",
    )
    return sorted(set(scopes))


class APIKeyService:
    def __init__(
        self,
        secret: str,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        read_sessionmaker: async_sessionmaker[AsyncSession],
        cache_seconds: float,
        previous_secrets: Sequence[str] = (),
        unknown_key_seconds: float = 30.0,
        bus: ClusterBus | None = None,
    ) -> None:
        # Revocations, rotations and account changes evict verified keys in every process
        # of the installation once they commit.
        self._bus = bus or ClusterBus(None)
        self._bus.subscribe("keys", lambda _: self.forget_cached_keys())
        self._bus.on_resync(self.forget_cached_keys)
        # Stored hashes are keyed with a subkey of the installation's secret. Keys hashed
        # under an earlier secret (or by versions that keyed with the secret itself) still
        # authenticate, and are re-hashed under the current subkey on first use.
        self._hash_key = derive_subkey(secret, PURPOSE_API_KEY_HASH)
        self._earlier_hash_keys = [
            derive_subkey(old, PURPOSE_API_KEY_HASH) for old in previous_secrets
        ] + [old.encode() for old in (secret, *previous_secrets)]
        self._sessionmaker = sessionmaker
        self._read_sessionmaker = read_sessionmaker
        # Verified keys by hash, so a poll does not pay a database round trip for its key.
        # Revoking or rotating here clears it at once; other processes see a revocation
        # within cache_seconds.
        self._cache: TTLCache[str, AuthContext] | None = (
            TTLCache(maxsize=10_000, ttl=cache_seconds) if cache_seconds > 0 else None
        )

        # Well-formed keys that matched nothing, so repeating one costs no lookup. Creating a
        # key clears it (a new key can never be one of these, but a cleared cache is cheap).
        self._unknown: TTLCache[str, bool] | None = (
            TTLCache(maxsize=10_000, ttl=unknown_key_seconds) if unknown_key_seconds > 0 else None
        )
        self._loading: dict[str, asyncio.Future[AuthContext]] = {}
        # Bumped by every revocation: a lookup that started before it must not put what it
        # read back into the cache, nor be shared with requests that came after it.
        self._generation = 0

    def forget_cached_keys(self) -> None:
        self._generation += 1
        self._loading.clear()
        if self._cache is not None:
            self._cache.clear()

    def _hash(self, value: str) -> str:
        return hash_api_key(value, self._hash_key)

    async def create(
        self,
        session: AsyncSession,
        account_id: str,
        *,
        name: str = "",
        scopes: list[str] | None = None,
        spend_cap: int | None = None,
    ) -> CreatedKey:
        secret = generate_api_key()
        key = APIKey(
            id=new_id("key"),
            account_id=account_id,
            name=name,
            secret_hash=self._hash(secret),
            display=display_hint(secret),
            scopes=validate_scopes(scopes),
            spend_cap=spend_cap,
        )
        session.add(key)
        await session.flush()
        if self._unknown is not None:
            self._unknown.clear()
        return CreatedKey(key=key, secret=secret)

    async def authenticate(
        self, token: str, *, may_look_up: Callable[[], Awaitable[None]] | None = None
    ) -> AuthContext:
        """The key's account and scopes. ``token`` is well formed (see kit.credentials);
        ``may_look_up`` runs before a database lookup and may refuse it (by raising)."""
        return await self._authenticate(self._hash(token), token, may_look_up)

    def digest(self, token: str) -> str:
        """The stored hash of a key's secret (what a console session remembers of its key)."""
        return self._hash(token)

    async def authenticate_digest(self, digest: str) -> AuthContext:
        """``authenticate`` for a key known by its stored hash (a console session's): the
        same cache and the same checks (revoked, rotated away, account disabled)."""
        return await self._authenticate(digest, None, None)

    async def _authenticate(
        self,
        digest: str,
        token: str | None,
        may_look_up: Callable[[], Awaitable[None]] | None,
    ) -> AuthContext:
        context = self._cache.get(digest) if self._cache is not None else None
        if context is None:
            if self._unknown is not None and digest in self._unknown:
                raise Unauthorized("Invalid API key.")
            if may_look_up is not None:
                await may_look_up()
            context = await self._load_once(token, digest)
        now = utcnow()
        # Checked on every request: a rotated key's grace period ends on time, cache or not.
        if context.key.revoked_at is not None and as_utc(context.key.revoked_at) <= now:
            raise Unauthorized("This API key has been revoked.", code="revoked_api_key")
        if not context.account.is_active:
            raise Unauthorized("This account is disabled.", code="account_disabled")
        return context

    async def _load_once(self, token: str | None, digest: str) -> AuthContext:
        """Concurrent requests with the same uncached key share one lookup."""
        pending = self._loading.get(digest)
        if pending is None:
            pending = asyncio.ensure_future(self._load(token, digest, self._generation))
            self._loading[digest] = pending
            pending.add_done_callback(
                lambda done: (
                    self._loading.pop(digest, None) if self._loading.get(digest) is done else None
                )
            )
        return await asyncio.shield(pending)

    async def _load(self, token: str | None, digest: str, generation: int) -> AuthContext:
        async with self._read_sessionmaker() as session:
            found = await api_key_repository.by_hash(session, digest)
            if found is None and token is not None and self._earlier_hash_keys:
                earlier = [hash_api_key(token, key) for key in self._earlier_hash_keys]
                found = await api_key_repository.by_any_hash(session, earlier)
                if found is not None:
                    await self._rehash(found[0], digest)
        if found is None:
            if self._unknown is not None and generation == self._generation:
                self._unknown[digest] = True
            raise Unauthorized("Invalid API key.")
        key, account = found
        now = utcnow()
        if key.last_used_at is None or now - as_utc(key.last_used_at) > _LAST_USED_GRANULARITY:
            async with self._sessionmaker() as session:
                await api_key_repository.touch(session, key.id, now)
                await session.commit()
            key.last_used_at = now
        context = AuthContext(account=account, key=key)
        if self._cache is not None and generation == self._generation:
            self._cache[digest] = context
        return context

    async def _rehash(self, key: APIKey, digest: str) -> None:
        async with self._sessionmaker() as session:
            await api_key_repository.rehash(session, key.id, digest)
            await session.commit()
        key.secret_hash = digest

    async def list_keys(self, session: AsyncSession, account_id: str) -> list[APIKey]:
        return await api_key_repository.list_for_account(session, account_id)

    async def get(self, session: AsyncSession, account_id: str, key_id: str) -> APIKey:
        key = await api_key_repository.get(session, account_id, key_id)
        if key is None:
            raise NotFound(f"No API key {key_id!r} in this account.", param="key_id")
        return key

    async def revoke(
        self, session: AsyncSession, account_id: str, key_id: str, *, by: AuthContext | None
    ) -> APIKey:
        """Revoke at once. ``by`` is the calling key (None for the operator CLI)."""
        key = await self.get(session, account_id, key_id)
        if by is not None:
            self.check_grantable(by, list(key.scopes))
        now = utcnow()
        if key.revoked_at is None or as_utc(key.revoked_at) > now:
            key.revoked_at = now
        await self.keys_changed(session)
        return key

    async def rotate(
        self,
        session: AsyncSession,
        account_id: str,
        key_id: str,
        *,
        by: AuthContext | None,
        grace_seconds: int = 0,
    ) -> CreatedKey:
        """A new secret with the same name, scopes and cap; the old one dies after the grace."""
        old = await self.get(session, account_id, key_id)
        if by is not None:
            self.check_grantable(by, list(old.scopes))
        now = utcnow()
        if old.revoked_at is not None and as_utc(old.revoked_at) <= now:
            raise InvalidValue("A revoked key cannot be rotated.", param="key_id")
        created = await self.create(
            session, account_id, name=old.name, scopes=list(old.scopes), spend_cap=old.spend_cap
        )
        old.revoked_at = now + timedelta(seconds=grace_seconds)
        old.rotated_to_id = created.key.id
        await self.keys_changed(session)
        return created

    async def keys_changed(self, session: AsyncSession) -> None:
        """Once ``session`` commits, every process forgets the keys it verified (their
        next use reads the key and its account anew)."""
        await self._bus.publish(session, "keys")

    @staticmethod
    def check_grantable(context: AuthContext, scopes: list[str]) -> None:
        """A key can only hand out (or rotate, or revoke) scopes it holds itself."""
        missing = [s for s in scopes if not has_scope(context.key.scopes, s)]
        if missing:
            raise Forbidden(
                f"This key cannot manage keys with scope(s) it does not hold: "
                f"{', '.join(missing)}.",
                code="insufficient_scope",
            )
