"""Clock helpers: timezone-aware UTC everywhere, unix seconds at the API edge."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def to_unix(value: datetime | None) -> int | None:
    return None if value is None else int(as_utc(value).timestamp())
