"""Request field types the dialects share.

The dialects' request models are strict like the native ones (a JSON ``true`` is not the
integer 1, ``5.0`` is not 5) and their strings have the native API's exact patterns, so that
what the OpenAPI description allows is what the routes take. Where a vendor's clients send a
number as a string, the field says so in its schema rather than coercing whatever arrives.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from framegate.tasks.schemas import ASPECT_RATIO_PATTERN, SIZE_PATTERN

WHOLE_SECONDS_PATTERN = r"^[0-9]{1,3}$"
_WHOLE_SECONDS = re.compile(WHOLE_SECONDS_PATTERN)

AspectRatio = Annotated[str, Field(pattern=ASPECT_RATIO_PATTERN, examples=["16:9"])]
Size = Annotated[str, Field(pattern=SIZE_PATTERN, examples=["1280x720"])]

_SECONDS_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": WHOLE_SECONDS_PATTERN},
        {"type": "integer", "minimum": 0, "maximum": 999},
    ]
}


def _is_whole_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 999


def _seconds_as_string(value: Any) -> Any:
    if _is_whole_number(value):
        return str(value)
    if isinstance(value, str) and not _WHOLE_SECONDS.match(value):
        raise PydanticCustomError(
            "invalid_seconds", "must be whole seconds as a string, such as '4'"
        )
    return value


def _seconds_as_int(value: Any) -> Any:
    if isinstance(value, str) and _WHOLE_SECONDS.match(value):
        return int(value)
    return value


# Whole seconds sent as a string ("4", as OpenAI's SDK does) or as a JSON integer.
SecondsAsString = Annotated[
    str, BeforeValidator(_seconds_as_string), WithJsonSchema(_SECONDS_SCHEMA)
]
SecondsAsInt = Annotated[
    int, Field(ge=0, le=999), BeforeValidator(_seconds_as_int), WithJsonSchema(_SECONDS_SCHEMA)
]
