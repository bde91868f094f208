"""The console's usage page, and what it draws on the server: the spend plot (SVG) and the
CSV export. Both compute their numbers with the same service as GET /v1/usage, for the
session's key after checking its ``credits:read`` scope, and take the same query
parameters (``group_by``, ``from``, ``to``), so the plot, the table (which the page reads
from the API) and the file always agree."""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from framegate.console.charts import Chart, Series, bar_chart, line_chart, number
from framegate.console.web import User, page, secure
from framegate.dependencies import ReadSessionDep
from framegate.keys.scopes import Scope
from framegate.keys.service import AuthContext
from framegate.kit.time import as_utc, parse_instant, utcnow
from framegate.usage.repository import usage_repository
from framegate.usage.schemas import Usage
from framegate.usage.service import group_of, usage_service

router = APIRouter(include_in_schema=False)

# The plot shows this many groups (the largest spenders) and "other" for the rest.
MAX_SERIES = 8
OTHER = "(other)"
DEFAULT_DAYS = 30

GroupBy = Annotated[str, Query(max_length=80, description="day, model, key or metadata.<tag>")]
Start = Annotated[str | None, Query(alias="from", max_length=40)]
End = Annotated[str | None, Query(alias="to", max_length=40)]


@router.get("/console/usage", response_class=HTMLResponse)
async def usage_page(request: Request, user: User) -> Response:
    return page(request, user, "usage")


def default_range(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The last 30 whole UTC days, today included: midnight 29 days ago to tomorrow's."""
    today = (now or utcnow()).astimezone(UTC).date()
    end = datetime.combine(today + timedelta(days=1), time(), UTC)
    return end - timedelta(days=DEFAULT_DAYS), end


def usage_range(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """The query's range, as /v1/usage reads it; with neither bound, the last 30 UTC days."""
    if start is None and end is None:
        return default_range()
    until = parse_instant(end, param="to") if end is not None else utcnow()
    since = parse_instant(start, param="from") if start is not None else until - timedelta(days=30)
    return since, until


def days_between(start: datetime, end: datetime) -> list[date]:
    """Every UTC day that the range [start, end) touches."""
    first = as_utc(start).date()
    last = (as_utc(end) - timedelta(microseconds=1)).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _grouping(group_by: str) -> str:
    if group_by == "day":
        return "per day"
    if group_by.startswith("metadata."):
        return f"per day, by the metadata tag '{group_by.removeprefix('metadata.')}'"
    return f"per day, by {group_by}"


async def spend_chart(
    session: AsyncSession,
    auth: AuthContext,
    *,
    group_by: str,
    start: datetime,
    end: datetime,
) -> tuple[Chart, Usage]:
    """Credits spent per day over the range, one series per group (the largest
    ``MAX_SERIES``), and the usage the API would answer for the same query."""
    auth.require(Scope.credits_read)
    usage = await usage_service.usage(
        session, auth.account.id, group_by=group_by, start=start, end=end
    )
    days = days_between(start, end)
    index = {day: n for n, day in enumerate(days)}
    labels = [day.isoformat() for day in days]
    ranked = sorted(usage.data, key=lambda row: (-row.credits, row.group))
    if group_by == "day":
        values = [0.0] * len(days)
        for row in usage.data:
            values[index[date.fromisoformat(row.group)]] += row.credits
        series = [Series("credits", values)]
    else:
        top = [row.group for row in ranked[:MAX_SERIES]]
        # The rest, under a key no group can have (a group may be called "(other)" too).
        rest: str | None = None
        kept: list[str | None] = [*top, rest] if len(ranked) > MAX_SERIES else list(top)
        per_group: dict[str | None, list[float]] = defaultdict(lambda: [0.0] * len(days))
        for capture in await usage_repository.captures(session, auth.account.id, start, end):
            name = group_of(group_by, capture)
            day = as_utc(capture.created_at).date()
            per_group[name if name in top else rest][index[day]] += int(capture.credits)
        # Its label, unlike any group's.
        other = OTHER
        while other in top:
            other = f"({other})"
        series = [Series(other if name is None else name, per_group[name]) for name in kept]
    first, last = labels[0], labels[-1]
    total = usage.total.credits
    summary = f"Credits spent {_grouping(group_by)}, {first} to {last} (UTC): "
    summary += f"{number(total)} in all"
    spent = [(labels[n], sum(s.values[n] for s in series)) for n in range(len(days))]
    busy = [item for item in spent if item[1] > 0]
    if busy:
        peak = max(busy, key=lambda item: item[1])
        summary += f", on {len(busy)} of {len(days)} days"
        summary += f"; the most on {peak[0]} ({number(peak[1])})"
    if group_by != "day" and usage.data:
        parts = ", ".join(f"{row.group} {number(row.credits)}" for row in ranked)
        summary += f". By group: {parts}"
    chart = Chart(
        title=f"Credits spent {_grouping(group_by)}",
        summary=summary + ".",
        labels=labels,
        series=series,
        unit="credits",
        x_title="Day (UTC)",
        y_title="Credits",
        empty_message="No credits were spent in this range.",
    )
    return chart, usage


@router.get("/console/usage/chart.svg")
async def usage_chart(
    request: Request,
    user: User,
    session: ReadSessionDep,
    group_by: GroupBy = "day",
    start: Start = None,
    end: End = None,
    kind: Literal["bar", "line"] = "bar",
    width: Annotated[int, Query(ge=1, le=10_000)] = 960,
    height: Annotated[int, Query(ge=1, le=10_000)] = 300,
    ident: Annotated[str, Query(pattern=r"^[a-z][a-z0-9-]{0,30}$")] = "spend",
) -> Response:
    """The spend plot as an SVG document (the page inlines it)."""
    since, until = usage_range(start, end)
    chart, _usage = await spend_chart(session, user.auth, group_by=group_by, start=since, end=until)
    draw = line_chart if kind == "line" else bar_chart
    svg = draw(chart, ident=ident, width=width, height=height)
    return secure(Response(svg, media_type="image/svg+xml"), request.app.state.runtime)


# A spreadsheet runs cells starting with these as formulas; tag values are the caller's text.
_FORMULA = re.compile(r"^[=+\-@\t\r]")
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _cell(text: str) -> str:
    return f"'{text}" if _FORMULA.match(text) else text


def usage_csv(usage: Usage) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([usage.group_by, "tasks", "video_seconds", "images", "credits"])
    for row in [*usage.data, usage.total]:
        seconds = row.video_seconds
        writer.writerow(
            [
                _cell(row.group),
                row.tasks,
                int(seconds) if float(seconds).is_integer() else seconds,
                row.images,
                row.credits,
            ]
        )
    return out.getvalue()


@router.get("/console/usage.csv")
async def usage_export(
    request: Request,
    user: User,
    session: ReadSessionDep,
    group_by: GroupBy = "day",
    start: Start = None,
    end: End = None,
) -> Response:
    """The usage table as CSV: one row per group and a last ``total`` row."""
    user.auth.require(Scope.credits_read)
    since, until = usage_range(start, end)
    usage = await usage_service.usage(
        session, user.auth.account.id, group_by=group_by, start=since, end=until
    )
    last = (as_utc(until) - timedelta(microseconds=1)).date()
    grouping = _FILENAME_UNSAFE.sub("-", group_by)
    filename = f"framegate-usage-by-{grouping}-{as_utc(since).date()}-to-{last}.csv"
    response = Response(
        usage_csv(usage),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
    return secure(response, request.app.state.runtime)
