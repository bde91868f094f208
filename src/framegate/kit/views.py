"""Response objects read from stored rows: one way to copy a row's attributes into its API view.

A view's fields take the row attribute of the same name; instants are stored as datetimes and
shown as Unix seconds (`UnixTime`, `OptionalUnixTime`). What a view computes (signed URLs,
hidden fields, renamed attributes) is passed by name and wins over the row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator

from framegate.kit.time import to_unix


def _seconds(value: Any) -> Any:
    return to_unix(value) if isinstance(value, datetime) else value


UnixTime = Annotated[int, BeforeValidator(_seconds)]
OptionalUnixTime = Annotated[int | None, BeforeValidator(_seconds)]

View = TypeVar("View", bound=BaseModel)


def from_row(view: type[View], row: object, **computed: Any) -> View:
    """`view` filled from `row`'s attributes of the same names, then from `computed`.

    Fields with a default that the row lacks (the `object` tag) keep their default; a field
    neither the row nor `computed` provides fails validation, so a view cannot silently lose
    a field.
    """
    values = {
        name: getattr(row, name)
        for name in view.model_fields
        if name not in computed and hasattr(row, name)
    }
    return view.model_validate({**values, **computed})
