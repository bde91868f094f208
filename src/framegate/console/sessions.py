"""Console sessions: an API key exchanged for a cookie, checked against the key on every
request (a revoked or rotated-away key ends its sessions at once)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from framegate.db import transaction
from framegate.exceptions import Unauthorized
from framegate.keys.service import APIKeyService, AuthContext
from framegate.kit.time import as_utc, utcnow
from framegate.models import ConsoleSession

COOKIE_NAME = "framegate_console"
# The token in the cookie: 32 random bytes, URL-safe.
_TOKEN_LENGTH = 43


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """A signed-in browser: the key it acts as, and its session's CSRF token."""

    auth: AuthContext
    session_id: str
    csrf_token: str


def _session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ConsoleSessions:
    def __init__(
        self,
        keys: APIKeyService,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        read_sessionmaker: async_sessionmaker[AsyncSession],
        lifetime_seconds: int,
    ) -> None:
        self._keys = keys
        self._sessionmaker = sessionmaker
        self._read_sessionmaker = read_sessionmaker
        self.lifetime_seconds = lifetime_seconds

    async def open(self, api_key: str) -> tuple[str, ConsoleUser]:
        """Sign in with a key (Unauthorized when it is not a working key): the cookie's
        token and the session."""
        auth = await self._keys.authenticate(api_key)
        token = secrets.token_urlsafe(32)
        now = utcnow()
        row = ConsoleSession(
            id=_session_id(token),
            api_key_id=auth.key.id,
            key_hash=self._keys.digest(api_key),
            csrf_token=secrets.token_urlsafe(32),
            expires_at=now + timedelta(seconds=self.lifetime_seconds),
            created_at=now,
        )
        async with transaction(self._sessionmaker) as session:
            # Expired sessions of anyone go as new ones come.
            await session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
            session.add(row)
        return token, ConsoleUser(auth=auth, session_id=row.id, csrf_token=row.csrf_token)

    async def resolve(self, token: str) -> ConsoleUser | None:
        """The session of a cookie's token; None when there is none, it expired, or its key
        no longer works (the session is then deleted)."""
        if len(token) != _TOKEN_LENGTH:
            return None
        session_id = _session_id(token)
        async with self._read_sessionmaker() as session:
            row = (
                await session.execute(select(ConsoleSession).where(ConsoleSession.id == session_id))
            ).scalar_one_or_none()
        if row is None:
            return None
        if as_utc(row.expires_at) <= utcnow():
            await self._delete(session_id)
            return None
        try:
            auth = await self._keys.authenticate_digest(row.key_hash)
        except Unauthorized:
            await self._delete(session_id)
            return None
        return ConsoleUser(auth=auth, session_id=session_id, csrf_token=row.csrf_token)

    async def close(self, token: str) -> None:
        """Sign out (nothing to do for an unknown token)."""
        await self._delete(_session_id(token))

    async def _delete(self, session_id: str) -> None:
        async with transaction(self._sessionmaker) as session:
            await session.execute(delete(ConsoleSession).where(ConsoleSession.id == session_id))
