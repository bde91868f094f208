"""The installation secret keys API-key hashes and URL signatures through separate HKDF
subkeys; earlier secrets (and hashes keyed with the secret itself) keep working during a
rotation and are re-hashed on first use."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select

from framegate.config import Settings
from framegate.kit.crypto import (
    PURPOSE_API_KEY_HASH,
    PURPOSE_URL_SIGNING,
    derive_subkey,
    generate_api_key,
    hash_api_key,
)
from framegate.models import APIKey
from framegate.runtime import Runtime
from framegate.storage.signing import URLSigner
from tests.conftest import make_account


def test_subkeys_differ_per_purpose_and_from_the_secret() -> None:
    secret = secrets.token_urlsafe(40)
    hashing = derive_subkey(secret, PURPOSE_API_KEY_HASH)
    signing = derive_subkey(secret, PURPOSE_URL_SIGNING)
    assert len(hashing) == len(signing) == 32
    assert hashing != signing
    assert secret.encode() not in (hashing, signing)
    assert derive_subkey(secret, PURPOSE_URL_SIGNING) == signing


def test_urls_signed_under_a_previous_secret_still_verify() -> None:
    old, new = secrets.token_urlsafe(40), secrets.token_urlsafe(40)
    path = URLSigner(old, 3600).sign_path("outputs/task_1/video.mp4")
    signature = path.rsplit("signature=", 1)[1]
    expires = int(path.split("expires=")[1].split("&")[0])
    rotated = URLSigner(new, 3600, previous_secrets=[old])
    assert rotated.verify("outputs/task_1/video.mp4", expires, signature) == ""
    assert URLSigner(new, 3600).verify("outputs/task_1/video.mp4", expires, signature) != ""
    # A signature made with the raw secret (no subkey) is not accepted.
    raw = hmac.new(new.encode(), f"files:x:{expires}".encode(), hashlib.sha256).hexdigest()
    assert rotated.verify("x", expires, raw) == "invalid_signature"


async def _stored_hash(runtime: Runtime, key_id: str) -> str:
    async with runtime.read_sessionmaker() as session:
        return (
            await session.execute(select(APIKey.secret_hash).where(APIKey.id == key_id))
        ).scalar_one()


async def test_keys_are_hashed_with_the_subkey(runtime: Runtime) -> None:
    tenant = await make_account(runtime)
    secret = runtime.settings.effective_secret_key
    stored = await _stored_hash(runtime, tenant.key_id)
    assert stored == hash_api_key(tenant.api_key, derive_subkey(secret, PURPOSE_API_KEY_HASH))
    assert stored != hash_api_key(tenant.api_key, secret.encode())


async def test_rotating_the_installation_secret_keeps_keys_working(
    runtime: Runtime, settings: Settings
) -> None:
    tenant = await make_account(runtime)
    old_secret = runtime.settings.effective_secret_key
    # Another key hashed the way earlier versions did: keyed with the secret itself.
    legacy_token = generate_api_key()
    async with runtime.sessionmaker() as session:
        created = await runtime.keys.create(session, tenant.id, name="legacy")
        created.key.secret_hash = hash_api_key(legacy_token, old_secret.encode())
        await session.commit()

    new_secret = secrets.token_urlsafe(40)
    rotated_settings = settings.model_copy(
        update={"secret_key": new_secret, "previous_secret_keys": [old_secret]}
    )
    rotated = await Runtime.create(rotated_settings, migrate=False)
    try:
        for token, key_id in ((tenant.api_key, tenant.key_id), (legacy_token, created.key.id)):
            context = await rotated.keys.authenticate(token)
            assert context.key.id == key_id
            # Re-hashed under the new secret's subkey on first use.
            assert await _stored_hash(rotated, key_id) == hash_api_key(
                token, derive_subkey(new_secret, PURPOSE_API_KEY_HASH)
            )
        # Without the old secret listed, the re-hashed keys still work; others would not.
        bare = await Runtime.create(
            settings.model_copy(update={"secret_key": new_secret}), migrate=False
        )
        try:
            assert (await bare.keys.authenticate(tenant.api_key)).key.id == tenant.key_id
        finally:
            await bare.close()
    finally:
        await rotated.close()
