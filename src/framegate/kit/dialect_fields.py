"""Fields of other vendors' request dialects that the native routes refuse with a pointer
to the field this API uses instead (not a generic 'unknown field')."""

from __future__ import annotations

from typing import Any

from framegate.exceptions import BadRequest

# Fields other vendors' dialects use, and what this API calls them instead.
_DIALECT_FIELDS = {
    "seconds": "Use 'duration' (whole seconds) instead of 'seconds'.",
    "image_url": "Use 'input_image' (an https URL or a data URI) instead of 'image_url'.",
    "async": (
        "There is no 'async' flag: every video request is asynchronous. POST to "
        "/v1/async/videos/generations and poll GET /v1/tasks/{id}."
    ),
}


def refuse_dialect_fields(data: Any) -> Any:
    """A pydantic ``mode="before"`` validator body."""
    if isinstance(data, dict):
        for name, hint in _DIALECT_FIELDS.items():
            if name in data:
                raise BadRequest(hint, param=name, code="unsupported_parameter")
    return data
