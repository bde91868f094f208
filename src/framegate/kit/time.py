"""Clock helpers: timezone-aware UTC everywhere, unix seconds at the API edge."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from framegate.exceptions import InvalidValue


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def to_unix(value: datetime | None) -> int | None:
    return None if value is None else int(as_utc(value).timestamp())


_UNIX_SECONDS = re.compile(r"^[0-9]{1,11}$")
# Instants outside these years are typos, and arithmetic on them could overflow.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def parse_instant(value: str, *, param: str) -> datetime:
    """A query parameter's point in time: ISO 8601 (a date, or a time; UTC unless it says
    otherwise) or integer Unix seconds. Anything else is a 422 naming ``param``."""
    text = value.strip()
    try:
        if _UNIX_SECONDS.match(text):
            instant = datetime.fromtimestamp(int(text), UTC)
        else:
            instant = as_utc(datetime.fromisoformat(text))
        if not _EARLIEST <= instant <= _LATEST:
            raise ValueError(text)
        return instant
    except (ValueError, OverflowError, OSError):
        raise InvalidValue(
            f"{param} must be an ISO 8601 date or time (e.g. 2026-12-01 or "
            f"2026-12-01T12:00:00Z) or integer Unix seconds (1970 to 9000); got {value[:40]!r}.",
            param=param,
        ) from None
