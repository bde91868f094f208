from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class UsageRow(BaseModel):
    group: str = Field(description="The day (YYYY-MM-DD), model, key id or tag value.")
    tasks: int = Field(description="Completed (charged) tasks.")
    video_seconds: float
    images: int
    credits: int


class Usage(BaseModel):
    object: Literal["usage"] = "usage"
    group_by: str
    start: int = Field(description="Unix seconds, inclusive.")
    end: int = Field(description="Unix seconds, exclusive.")
    data: list[UsageRow]
    total: UsageRow
