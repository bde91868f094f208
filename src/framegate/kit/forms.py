"""Multipart forms that routes read themselves: receiving one, and describing one."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from fastapi import Request

if TYPE_CHECKING:
    from framegate.runtime import Runtime
    from framegate.uploads.service import ReceivedForm


def read_form(
    runtime: Runtime,
    request: Request,
    *,
    file_field: str,
    text_fields: frozenset[str] | None = None,
    file_required: bool,
) -> AbstractAsyncContextManager[ReceivedForm]:
    """The request's multipart form, its file part on scratch disk until the block exits
    (see UploadService.receive_form); ``text_fields`` None allows any text field."""
    return runtime.uploads.receive_form(
        request.stream(),
        content_type=request.headers.get("content-type"),
        content_length=request.headers.get("content-length"),
        file_field=file_field,
        text_fields=text_fields,
        file_required=file_required,
    )


def multipart_body(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    """openapi_extra's requestBody for a route that parses its multipart form itself."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "required": required, "properties": properties}
                }
            },
        }
    }
