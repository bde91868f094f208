"""API-key scopes. ``admin`` implies every other scope."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    videos_write = "videos:write"
    images_write = "images:write"
    tasks_read = "tasks:read"
    credits_read = "credits:read"
    keys_manage = "keys:manage"
    admin = "admin"


ALL_SCOPES: tuple[str, ...] = tuple(scope.value for scope in Scope)
# What a new account's first key and `POST /v1/keys` get when no scopes are named.
DEFAULT_SCOPES: tuple[str, ...] = tuple(s for s in ALL_SCOPES if s != Scope.admin)


def has_scope(granted: list[str], needed: str) -> bool:
    return needed in granted or Scope.admin in granted
