"""Uploaded images and videos: stored, typed by decoding, usable as input_image."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from framegate.db import after_rollback
from framegate.exceptions import InvalidValue, NotFound
from framegate.kit.ids import new_id
from framegate.kit.images import image_decoding
from framegate.kit.time import as_utc, utcnow
from framegate.models import Upload
from framegate.storage.base import Storage
from framegate.uploads.media import Media, MediaLimits, identify
from framegate.uploads.receive import (
    FILE_FIELD,
    FRAMING_ALLOWANCE,
    PURPOSE_FIELD,
    TEXT_FIELDS,
    ReceivedUpload,
    file_too_large,
    receive_upload,
)
from framegate.uploads.repository import upload_repository
from framegate.uploads.schemas import UploadKind, UploadPurpose

_ID_PREFIX = "upl"


def upload_key(upload_id: str, extension: str) -> str:
    return f"uploads/{upload_id}/original.{extension}"


@dataclass(frozen=True, slots=True)
class ReceivedForm:
    """A multipart form as it arrived: its text fields, and its file part on scratch disk,
    not yet decoded. ``upload_id`` is the id the file gets once stored (None: the form had
    no file part), so a request can name its upload before the upload exists."""

    fields: dict[str, str]
    upload_id: str | None
    file_field: str
    file: ReceivedUpload


def is_expired(upload: Upload) -> bool:
    return upload.expires_at is not None and as_utc(upload.expires_at) <= utcnow()


class UploadService:
    def __init__(
        self,
        *,
        storage: Storage,
        image_max_bytes: int,
        video_max_bytes: int,
        max_image_pixels: int,
        retention_days: float,
        scratch_dir: Path,
    ) -> None:
        self._storage = storage
        self._limits = MediaLimits(
            image_max_bytes=image_max_bytes,
            video_max_bytes=video_max_bytes,
            max_pixels=max_image_pixels,
        )
        self._retention_days = retention_days
        # Partial uploads land here, beside the storage root, before they are typed.
        self._scratch_dir = scratch_dir
        # Files of uploads whose transaction rolled back, being deleted.
        self._discarding: set[asyncio.Task[int]] = set()

    @property
    def stream_limit(self) -> int:
        """The kind is only known once the file is decoded, so bytes stream in up to the
        larger cap; the cap of the decoded kind is applied afterwards."""
        return max(self._limits.image_max_bytes, self._limits.video_max_bytes)

    def check_declared_length(self, content_length: str | None) -> None:
        """Refuse a body whose declared length is already past the limit, before reading it."""
        declared = (content_length or "").strip()
        if declared.isdigit() and int(declared) > self.stream_limit + FRAMING_ALLOWANCE:
            raise file_too_large(self.stream_limit)

    async def create(
        self,
        session: AsyncSession,
        account_id: str,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str | None,
        content_length: str | None,
    ) -> Upload:
        """Receive, decode and store one upload; the caller commits."""
        upload, _fields = await self.create_from_form(
            session,
            account_id,
            chunks,
            content_type=content_type,
            content_length=content_length,
        )
        assert upload is not None  # the file part is required here
        return upload

    async def create_from_form(
        self,
        session: AsyncSession,
        account_id: str,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str | None,
        content_length: str | None,
        file_field: str = FILE_FIELD,
        text_fields: frozenset[str] | None = TEXT_FIELDS,
        file_required: bool = True,
        purpose: UploadPurpose | None = None,
    ) -> tuple[Upload | None, dict[str, str]]:
        """Receive a multipart form: its file part becomes an upload (decoded, typed,
        stored; the caller commits) and its text fields come back as they are."""
        async with self.receive_form(
            chunks,
            content_type=content_type,
            content_length=content_length,
            file_field=file_field,
            text_fields=text_fields,
            file_required=file_required,
        ) as form:
            if form.upload_id is None:
                return None, form.fields
            wanted = purpose if purpose is not None else _purpose(form.fields)
            return await self.store(session, account_id, form, purpose=wanted), form.fields

    @asynccontextmanager
    async def receive_form(
        self,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str | None,
        content_length: str | None,
        file_field: str = FILE_FIELD,
        text_fields: frozenset[str] | None = TEXT_FIELDS,
        file_required: bool = True,
    ) -> AsyncIterator[ReceivedForm]:
        """Receive a multipart form, its file part onto scratch disk, without decoding it.

        Dialects whose requests are forms (an image plus the request's fields) check what
        the request costs from its text fields first, and only then ``store`` the file,
        which decodes it. The scratch file is removed when the block exits.
        """
        self.check_declared_length(content_length)
        received = await receive_upload(
            chunks,
            content_type=content_type,
            scratch_dir=self._scratch_dir,
            max_file_bytes=self.stream_limit,
            file_field=file_field,
            text_fields=text_fields,
            file_required=file_required,
        )
        try:
            upload_id = None if received.filename is None else new_id(_ID_PREFIX)
            yield ReceivedForm(received.fields, upload_id, file_field, received)
        finally:
            await asyncio.to_thread(received.path.unlink, missing_ok=True)

    async def store(
        self,
        session: AsyncSession,
        account_id: str,
        form: ReceivedForm,
        *,
        purpose: UploadPurpose | None = None,
    ) -> Upload:
        """Decode the form's file, type it and store it as upload ``form.upload_id``; the
        caller commits."""
        if form.upload_id is None or form.file.filename is None:
            raise ValueError("the form has no file part to store")
        received = form.file
        media = await image_decoding.run(
            identify, received.path, received.size, limits=self._limits, param=form.file_field
        )
        _check_purpose(purpose, media)
        key = upload_key(form.upload_id, media.extension)
        size = await self._storage.put_file(key, received.path, media.content_type)
        now = utcnow()
        upload = Upload(
            id=form.upload_id,
            number=secrets.randbelow(2**53 - 1) + 1,
            account_id=account_id,
            key=key,
            kind=media.kind.value,
            content_type=media.content_type,
            bytes=size,
            width=media.width,
            height=media.height,
            filename=received.filename,
            created_at=now,
            expires_at=now + timedelta(days=self._retention_days),
        )
        # Written with the request's transaction; if that rolls back, so does the file.
        after_rollback(session, lambda: self._discard(key))
        return upload_repository.stage(session, upload)

    def _discard(self, key: str) -> None:
        task = asyncio.get_running_loop().create_task(self._storage.delete_prefix(key))
        self._discarding.add(task)
        task.add_done_callback(self._discarding.discard)

    async def get_by_number(self, session: AsyncSession, account_id: str, number: int) -> Upload:
        """An upload by its integer alias (dialects with numeric ids: PixVerse's img_id)."""
        upload = await upload_repository.get_by_number(session, account_id, number)
        if upload is None or upload.deleted_at is not None:
            raise NotFound(f"No upload {number} in this account.", param="upload_id")
        return upload

    async def get(self, session: AsyncSession, account_id: str, upload_id: str) -> Upload:
        upload = await upload_repository.get(session, account_id, upload_id)
        if upload is None or upload.deleted_at is not None:
            raise NotFound(f"No upload {upload_id!r} in this account.", param="upload_id")
        return upload

    async def image_bytes(
        self, session: AsyncSession, account_id: str, upload_id: str, *, param: str
    ) -> bytes:
        """The stored bytes of this account's image upload, or a 4xx naming ``param``.
        Callers pass a read session: a submission must not hold the write lock while it
        reads and decodes an image."""
        upload = await upload_repository.get(session, account_id, upload_id)
        if upload is None:
            raise InvalidValue(
                f"{param}: no upload {upload_id!r} in this account. Upload the image with "
                "POST /v1/uploads and pass the id it returns.",
                param=param,
                code="upload_not_found",
            )
        if upload.deleted_at is not None:
            raise InvalidValue(
                f"{param}: upload {upload_id!r} has been deleted. Upload the image again.",
                param=param,
                code="upload_deleted",
            )
        if upload.kind != UploadKind.image:
            raise InvalidValue(
                f"{param}: upload {upload_id!r} is a {upload.kind}; {param} needs an image "
                "upload (PNG, JPEG or WebP).",
                param=param,
                code="upload_not_image",
            )
        # The file may already be swept by retention even if the row says otherwise.
        if is_expired(upload) or not await self._storage.exists(upload.key):
            raise InvalidValue(
                f"{param}: upload {upload_id!r} has expired. Upload the image again.",
                param=param,
                code="upload_expired",
            )
        return await self._storage.get_bytes(upload.key)


def _purpose(fields: dict[str, str]) -> UploadPurpose | None:
    value = fields.get(PURPOSE_FIELD)
    if value is None:
        return None
    try:
        return UploadPurpose(value)
    except ValueError:
        allowed = ", ".join(p.value for p in UploadPurpose)
        raise InvalidValue(f"purpose must be one of: {allowed}.", param=PURPOSE_FIELD) from None


def _check_purpose(purpose: UploadPurpose | None, media: Media) -> None:
    wanted = {
        UploadPurpose.input_image: UploadKind.image,
        UploadPurpose.input_video: UploadKind.video,
    }
    if purpose is not None and wanted[purpose] != media.kind:
        raise InvalidValue(
            f"file is a {media.kind.value} but purpose is {purpose.value}.",
            param=FILE_FIELD,
            code="wrong_media_kind",
        )
