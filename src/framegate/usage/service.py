"""Usage per day, model, key or metadata tag, computed from the credit ledger."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from framegate.exceptions import InvalidValue
from framegate.kit.time import as_utc, to_unix
from framegate.models import TaskType
from framegate.usage.repository import usage_repository
from framegate.usage.schemas import Usage, UsageRow

_GROUPS = re.compile(r"^(day|model|key|metadata\.[A-Za-z0-9_.:-]{1,64})$")
MAX_RANGE = timedelta(days=366)
UNTAGGED = "(none)"


class UsageService:
    async def usage(
        self,
        session: AsyncSession,
        account_id: str,
        *,
        group_by: str,
        start: datetime,
        end: datetime,
    ) -> Usage:
        if not _GROUPS.match(group_by):
            raise InvalidValue(
                f"group_by must be day, model, key or metadata.<tag>; got {group_by!r}.",
                param="group_by",
            )
        if end <= start or end - start > MAX_RANGE:
            raise InvalidValue("'to' must be after 'from', at most 366 days apart.", param="to")
        rows = await usage_repository.captures(session, account_id, start, end)
        groups: dict[str, UsageRow] = defaultdict(
            lambda: UsageRow(group="", tasks=0, video_seconds=0, images=0, credits=0)
        )
        total = UsageRow(group="total", tasks=0, video_seconds=0, images=0, credits=0)
        for row in rows:
            name = group_of(group_by, row)
            for bucket in (groups[name], total):
                _add(bucket, row)
            groups[name].group = name
        return Usage(
            group_by=group_by,
            start=to_unix(start) or 0,
            end=to_unix(end) or 0,
            data=[groups[name] for name in sorted(groups)],
            total=total,
        )


def group_of(group_by: str, row: Any) -> str:
    if group_by == "day":
        return str(as_utc(row.created_at).date())
    if group_by == "model":
        return str(row.model)
    if group_by == "key":
        return str(row.api_key_id or UNTAGGED)
    tag = group_by.removeprefix("metadata.")
    return str((row.task_metadata or {}).get(tag, UNTAGGED))


def _add(bucket: UsageRow, row: Any) -> None:
    bucket.tasks += 1
    bucket.credits += int(row.credits)
    params = row.params or {}
    if row.type == TaskType.video_generation:
        bucket.video_seconds += float(params.get("duration") or 0)
    else:
        bucket.images += int(params.get("n") or 1)


usage_service = UsageService()
