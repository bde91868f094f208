"""POST /v1/uploads and GET /v1/uploads/{upload_id}."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from framegate.dependencies import (
    API_KEY_SCHEME,
    AbsoluteURL,
    ReadSessionDep,
    RuntimeDep,
    SessionDep,
)
from framegate.exceptions import error_responses
from framegate.kit.forms import multipart_body
from framegate.kit.views import from_row
from framegate.models import Upload
from framegate.runtime import Runtime
from framegate.uploads.auth import UploadWriter
from framegate.uploads.schemas import UploadObject, UploadPurpose
from framegate.uploads.service import is_expired

router = APIRouter(tags=["uploads"], responses=error_responses(401, 403))

UploadId = Annotated[str, Path(max_length=40, description="The upload id, e.g. upl_…")]

# The body is parsed by the route itself (see uploads/receive.py), so FastAPI cannot infer
# its shape; it is declared here for the OpenAPI document.
_MULTIPART_BODY: dict[str, Any] = {
    **multipart_body(
        ["file"],
        {
            "file": {"type": "string", "format": "binary"},
            "purpose": {
                "type": "string",
                "enum": [p.value for p in UploadPurpose],
                "description": "When given, the file must be of that kind.",
            },
        },
    ),
    "security": [{API_KEY_SCHEME: []}],
}


def _view(upload: Upload, runtime: Runtime, absolute: Callable[[str], str]) -> UploadObject:
    url = None if is_expired(upload) else runtime.links.url(upload.key, absolute)
    return from_row(UploadObject, upload, url=url)


@router.post(
    "/v1/uploads",
    status_code=201,
    responses=error_responses(400, 413, 422),
    summary="Upload an image or video",
    openapi_extra=_MULTIPART_BODY,
)
async def create_upload(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    auth: UploadWriter,
    absolute: AbsoluteURL,
) -> UploadObject:
    """Upload a PNG, JPEG or WebP image or an MP4, MOV or WebM video (multipart field `file`);
    an image's id works as `input_image`."""
    upload = await runtime.uploads.create(
        session,
        auth.account.id,
        request.stream(),
        content_type=request.headers.get("content-type"),
        content_length=request.headers.get("content-length"),
    )
    return _view(upload, runtime, absolute)


@router.get(
    "/v1/uploads/{upload_id}",
    responses=error_responses(404),
    summary="Retrieve an upload",
    openapi_extra={"security": [{API_KEY_SCHEME: []}]},
)
async def get_upload(
    upload_id: UploadId,
    runtime: RuntimeDep,
    session: ReadSessionDep,
    auth: UploadWriter,
    absolute: AbsoluteURL,
) -> UploadObject:
    """The upload's type, size and dimensions, with a fresh signed download URL."""
    upload = await runtime.uploads.get(session, auth.account.id, upload_id)
    return _view(upload, runtime, absolute)
