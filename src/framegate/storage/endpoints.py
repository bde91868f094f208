"""Serves stored files behind signed, expiring URLs: from the data directory (local
storage), or by a redirect to the bucket's presigned URL (object storage: links handed out
before the outputs moved to a bucket keep working until they expire)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from framegate.dependencies import RuntimeDep
from framegate.exceptions import Forbidden, Gone, NotFound, error_responses

router = APIRouter(tags=["files"])

_CONTENT_TYPES = {
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "webm": "video/webm",
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
}


@router.get(
    "/v1/files/{key:path}",
    response_class=FileResponse,
    responses={
        200: {"content": {"video/mp4": {}, "image/jpeg": {}, "image/png": {}}},
        307: {"description": "The file is in object storage: its presigned URL"},
        **error_responses(403, 404, 410, 429),
    },
    summary="Download an output",
)
async def get_file(
    request: Request,
    key: Annotated[str, Path(max_length=300)],
    runtime: RuntimeDep,
    expires: Annotated[int, Query()],
    signature: Annotated[str, Query(max_length=128)],
) -> Response:
    """A signed output URL as found in a task's result; tampered or expired links get 403."""
    problem = runtime.signer.verify(key, expires, signature)
    if problem == "expired":
        raise Forbidden(
            "This link has expired. Fetch the task again for a fresh URL.", code="url_expired"
        )
    if problem:
        # Counted like a failed key: guessing signatures from one address ends in 429.
        client = runtime.clients.client_address(request.scope)
        await runtime.clients.count_failure(client)
        await runtime.clients.check_failures(client)
        raise Forbidden("Invalid signature for this URL.", code="invalid_signature")
    try:
        path = runtime.storage.local_path(key)
        direct = None if path is not None else runtime.storage.presigned_url(key)
    except ValueError:
        path = direct = None
    if direct is not None and await runtime.storage.exists(key):
        return RedirectResponse(direct, status_code=307)
    if path is None or not path.is_file():
        if await runtime.tasks.outputs_expired(key):
            raise Gone(
                "This output was deleted at the end of its retention period.",
                code="output_expired",
            )
        raise NotFound("This file no longer exists.", code="file_not_found")
    media_type = _CONTENT_TYPES.get(key.rsplit(".", 1)[-1], "application/octet-stream")
    return FileResponse(
        path, media_type=media_type, headers={"Cache-Control": "private, max-age=300"}
    )
