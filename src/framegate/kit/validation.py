"""Turning request validation errors into framegate errors (one field, one fix)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from framegate.exceptions import BadRequest, FramegateError, InvalidValue


def from_validation(errors: Any) -> FramegateError:
    """The first of pydantic's errors as a 400/422 naming the field."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    param = ".".join(loc) or None
    message = str(first.get("msg", "invalid value"))
    kind = first.get("type", "")
    if kind == "missing" and param is None:
        return BadRequest(
            "The request needs a JSON body; see the API reference for its fields.",
            code="missing_body",
        )
    if kind == "json_invalid":
        return BadRequest("The body is not valid JSON.", code="invalid_json")
    if kind == "extra_forbidden":
        return InvalidValue(
            f"Unknown field {param!r}. Check the field name against the API reference.",
            param=param,
            code="unknown_parameter",
        )
    if kind == "missing":
        return InvalidValue(f"{param} is required.", param=param, code="missing_parameter")
    return InvalidValue(f"{param}: {message}" if param else message, param=param)


def validate_choices(
    values: Collection[str],
    *,
    allowed: Sequence[str],
    noun: str,
    param: str,
    empty_message: str,
) -> None:
    """Reject ``values`` naming anything outside ``allowed``, or naming nothing."""
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise InvalidValue(
            f"Unknown {noun}(s): {', '.join(unknown)}. Valid {noun}s: {', '.join(allowed)}.",
            param=param,
        )
    if not values:
        raise InvalidValue(empty_message, param=param)
