"""Turning request validation errors into framegate errors (one field, one fix)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from framegate.exceptions import BadRequest, FramegateError, InvalidValue

# Where FastAPI found the value; not part of the field's name.
_SOURCES = ("body", "query", "path", "header")


@dataclass(frozen=True, slots=True)
class FieldError:
    """The first of pydantic's errors: the field at fault (None: the body as a whole), the
    error's type and pydantic's message."""

    param: str | None
    kind: str
    message: str

    def invalid(self, message: str, *, code: str | None = None) -> InvalidValue:
        """An InvalidValue naming this error's field."""
        return InvalidValue(message, param=self.param, code=code)


def first_error(errors: Any) -> FieldError:
    """The first of pydantic's errors (``ValidationError.errors()``)."""
    first: Mapping[str, Any] = (
        errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    )
    loc = [str(p) for p in first.get("loc", ()) if p not in _SOURCES]
    message = str(first.get("msg", "invalid value"))
    return FieldError(param=".".join(loc) or None, kind=first.get("type", ""), message=message)


def from_validation(errors: Any) -> FramegateError:
    """The first of pydantic's errors as a 400/422 naming the field."""
    first = first_error(errors)
    param, kind = first.param, first.kind
    if kind == "missing" and param is None:
        return BadRequest(
            "The request needs a JSON body; see the API reference for its fields.",
            code="missing_body",
        )
    if kind == "json_invalid":
        return BadRequest("The body is not valid JSON.", code="invalid_json")
    if kind == "extra_forbidden":
        return first.invalid(
            f"Unknown field {param!r}. Check the field name against the API reference.",
            code="unknown_parameter",
        )
    if kind == "missing":
        return first.invalid(f"{param} is required.", code="missing_parameter")
    return first.invalid(f"{param}: {first.message}" if param else first.message)


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
