"""Who may upload: a key that can submit either videos or images."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from framegate.dependencies import authorize
from framegate.exceptions import Forbidden
from framegate.keys.middleware import request_auth
from framegate.keys.scopes import Scope, has_scope
from framegate.keys.service import AuthContext

# An upload only feeds a generation, so either generation scope is enough.
UPLOAD_SCOPES: tuple[str, ...] = (Scope.videos_write, Scope.images_write)


async def require_upload_scope(request: Request) -> AuthContext:
    context = request_auth(request.scope)
    held = next((s for s in UPLOAD_SCOPES if has_scope(context.key.scopes, s)), None)
    if held is None:
        raise Forbidden(
            f"This API key lacks both the {Scope.videos_write.value!r} and the "
            f"{Scope.images_write.value!r} scope; uploading needs one of them.",
            code="insufficient_scope",
        )
    # Through the shared path so the request also counts against the key's rate limit.
    return await authorize(request, held)


UploadWriter = Annotated[AuthContext, Depends(require_upload_scope)]
