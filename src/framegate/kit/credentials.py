"""The one parser of the API key a request presents, for every route family.

A key may come as ``Authorization: Bearer …`` or the way other vendors' clients send it
(PixVerse's ``API-KEY``, others' ``X-API-Key``). Anything presented that cannot be a key —
another scheme, non-ASCII, the wrong length, a bad checksum — is refused here with 401,
before any hashing or database work.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import Scope

from framegate.exceptions import Unauthorized
from framegate.kit.crypto import API_KEY_LENGTH, KEY_PREFIX, api_key_problem

# Headers other vendors' clients carry the key in, in the order they are read.
_KEY_HEADERS = (
    (b"authorization", "Authorization"),
    (b"api-key", "API-KEY"),
    (b"x-api-key", "X-API-Key"),
)
_PROBLEMS = {
    "prefix": f"The API key is malformed: keys start with '{KEY_PREFIX}'.",
    "length": f"The API key is malformed: keys are {API_KEY_LENGTH} characters long.",
    "characters": (
        f"The API key is malformed: after '{KEY_PREFIX}' keys hold only letters and digits."
    ),
    "checksum": "The API key is malformed: its checksum does not match.",
}


@dataclass(frozen=True, slots=True)
class PresentedKey:
    token: str
    header: str


def presented_key(scope: Scope) -> PresentedKey | None:
    """The well-formed key the request carries, None when it carries none; 401 naming the
    header when what it carries cannot be a key."""
    found = None
    for name, label in _KEY_HEADERS:
        value = next((v for k, v in scope["headers"] if k == name), None)
        if value is not None and value.strip():
            found = (label, value.decode("latin-1").strip())
            break
    if found is None:
        return None
    header, token = found
    if header == "Authorization":
        scheme, _, token = token.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized(
                "Use 'Authorization: Bearer <api key>'.",
                param=header,
                code="invalid_authorization",
            )
    problem = api_key_problem(token)
    if problem:
        raise Unauthorized(f"{_PROBLEMS[problem]} Check that it was copied whole.", param=header)
    return PresentedKey(token=token, header=header)


def malformed_key_message(token: str) -> str | None:
    """Why ``token`` cannot be an API key (for people), None when it is well formed."""
    problem = api_key_problem(token)
    return None if not problem else f"{_PROBLEMS[problem]} Check that it was copied whole."
