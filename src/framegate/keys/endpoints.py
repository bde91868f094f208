"""API keys of the calling account: create, list, rotate, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from framegate.dependencies import ReadSessionDep, RuntimeDep, SessionDep, require_scope
from framegate.exceptions import error_responses
from framegate.keys.schemas import KeyCreate, KeyList, KeyObject, KeyRotate, KeyWithSecret
from framegate.keys.scopes import Scope
from framegate.keys.service import AuthContext, validate_scopes
from framegate.kit.views import from_row
from framegate.models import APIKey

router = APIRouter(tags=["keys"], responses=error_responses(401, 403))

KeyManager = Annotated[AuthContext, Depends(require_scope(Scope.keys_manage))]
KeyId = Annotated[str, Path(max_length=40)]


def _view(key: APIKey) -> KeyObject:
    return from_row(KeyObject, key)


def _with_secret(key: APIKey, secret: str) -> KeyWithSecret:
    return from_row(KeyWithSecret, key, secret=secret)


@router.post(
    "/v1/keys", status_code=201, responses=error_responses(422), summary="Create an API key"
)
async def create_key(
    body: KeyCreate, runtime: RuntimeDep, session: SessionDep, auth: KeyManager
) -> KeyWithSecret:
    """A new key for this account; the secret is in this response only."""
    scopes = validate_scopes(body.scopes)
    runtime.keys.check_grantable(auth, scopes)
    created = await runtime.keys.create(
        session, auth.account.id, name=body.name, scopes=scopes, spend_cap=body.spend_cap
    )
    return _with_secret(created.key, created.secret)


@router.get("/v1/keys", summary="List keys")
async def list_keys(runtime: RuntimeDep, session: ReadSessionDep, auth: KeyManager) -> KeyList:
    """The account's keys (never their secrets)."""
    return KeyList(data=[_view(k) for k in await runtime.keys.list_keys(session, auth.account.id)])


@router.post(
    "/v1/keys/{key_id}/rotate",
    status_code=201,
    responses=error_responses(404, 422),
    summary="Rotate a key",
)
async def rotate_key(
    key_id: KeyId,
    runtime: RuntimeDep,
    session: SessionDep,
    auth: KeyManager,
    body: KeyRotate | None = None,
) -> KeyWithSecret:
    """A new secret with the same scopes; the old one stops working after the grace period."""
    grace = body.grace_seconds if body else 0
    created = await runtime.keys.rotate(
        session, auth.account.id, key_id, by=auth, grace_seconds=grace
    )
    return _with_secret(created.key, created.secret)


@router.post("/v1/keys/{key_id}/revoke", responses=error_responses(404), summary="Revoke a key")
async def revoke_key(
    key_id: KeyId, runtime: RuntimeDep, session: SessionDep, auth: KeyManager
) -> KeyObject:
    """Revoke at once: the key answers 401 from now on."""
    key = await runtime.keys.revoke(session, auth.account.id, key_id, by=auth)
    return _view(key)


@router.delete(
    "/v1/keys/{key_id}", responses=error_responses(404), summary="Revoke a key (DELETE form)"
)
async def delete_key(
    key_id: KeyId, runtime: RuntimeDep, session: SessionDep, auth: KeyManager
) -> KeyObject:
    """Same as POST /v1/keys/{key_id}/revoke."""
    return await revoke_key(key_id, runtime, session, auth)
