"""Cursor pagination, the same on every list route: `limit` and `after` query parameters,
rows read one past the limit to learn whether another page follows."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Query

PageLimit = Annotated[int, Query(ge=1, le=100)]
PageAfter = Annotated[str | None, Query(description="next_cursor of the previous page")]

Row = TypeVar("Row")


def one_page(rows: list[Row], limit: int) -> tuple[list[Row], bool]:
    """The first ``limit`` of ``rows`` (read with ``limit + 1``) and whether more follow."""
    return rows[:limit], len(rows) > limit
