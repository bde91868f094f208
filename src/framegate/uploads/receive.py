"""Read a multipart/form-data upload from the request stream straight into a file.

Starlette's form parser spools the whole file before the route runs, so an oversized
upload would be read in full before it could be refused. Parsing the stream here refuses
it at the chunk that crosses the limit, and memory stays bounded by a few chunks whatever
the body's size.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError, MultipartParseError
from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect

from framegate.exceptions import BadRequest, InvalidValue, PayloadTooLarge
from framegate.kit.request_guard import check_text

if TYPE_CHECKING:
    # Declared for type checkers only by python-multipart.
    from python_multipart.multipart import MultipartCallbacks

FILE_FIELD = "file"
PURPOSE_FIELD = "purpose"
TEXT_FIELDS = frozenset({PURPOSE_FIELD})
# Room for what surrounds the file in the body: boundaries, part headers, the small
# text fields.
FRAMING_ALLOWANCE = 64 * 1024
_MAX_TEXT_FIELD_BYTES = 1024
_MAX_PARTS = 8
# A dialect's form carries its whole request (a prompt of up to 4000 characters).
_MAX_FORM_TEXT_BYTES = 16 * 1024
_MAX_FORM_PARTS = 32
_MAX_FILENAME_CHARS = 255
# File data is handed to a thread in batches this large: one thread hop per chunk would
# cost more than the write, and a bigger batch would only hold more memory.
_WRITE_BATCH_BYTES = 1024 * 1024
_MULTIPART_HINT = "Send the file as multipart/form-data in a field named 'file' (curl -F file=@…)."


@dataclass(slots=True)
class ReceivedUpload:
    """The file part, written to ``path`` (the caller removes it), and the text fields."""

    path: Path
    size: int
    # None when the form had no file part (and none was required).
    filename: str | None
    fields: dict[str, str] = field(default_factory=dict)


def mib(limit: int) -> str:
    return f"{limit / (1024 * 1024):g} MiB"


def file_too_large(limit: int, what: str = "The upload") -> PayloadTooLarge:
    return PayloadTooLarge(
        f"{what} is larger than the {mib(limit)} upload limit ({limit} bytes).",
        param=FILE_FIELD,
        code="file_too_large",
    )


def multipart_boundary(content_type: str | None) -> bytes:
    media_type, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise BadRequest(
            f"Expected a multipart/form-data body. {_MULTIPART_HINT}", code="not_multipart"
        )
    return boundary


class _FormReader:
    """Callbacks for python-multipart's streaming parser. The file part's bytes are counted
    and queued for writing (refused the moment they pass ``max_file_bytes``); the small
    text fields are kept in memory, each capped."""

    def __init__(
        self,
        max_file_bytes: int,
        file_field: str = FILE_FIELD,
        text_fields: frozenset[str] | None = TEXT_FIELDS,
    ) -> None:
        self.max_file_bytes = max_file_bytes
        self.file_field = file_field
        # None: any text field (a dialect's form carries its whole request).
        self.text_fields = text_fields
        self.file_bytes = 0
        self.filename: str | None = None
        self.fields: dict[str, str] = {}
        self.finished = False
        self._queued: list[bytes] = []
        self._queued_bytes = 0
        self._parts = 0
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._part: str | None = None
        self._text = bytearray()

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field_data,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    @property
    def batch_ready(self) -> bool:
        return self._queued_bytes >= _WRITE_BATCH_BYTES

    def take_queued(self) -> bytes:
        data = b"".join(self._queued)
        self._queued.clear()
        self._queued_bytes = 0
        return data

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > (_MAX_PARTS if self.text_fields is not None else _MAX_FORM_PARTS):
            raise BadRequest(f"Too many form fields. {_MULTIPART_HINT}", code="invalid_multipart")
        self._headers = {}
        self._part = None
        self._text = bytearray()

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[bytes(self._header_name).strip().lower()] = bytes(self._header_value).strip()
        self._header_name = bytearray()
        self._header_value = bytearray()

    def _headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.get(b"content-disposition"))
        name = options.get(b"name", b"").decode("utf-8", errors="replace")
        if disposition != b"form-data" or not name:
            raise BadRequest(
                f"A form part has no field name. {_MULTIPART_HINT}", code="invalid_multipart"
            )
        allowed = self.text_fields
        if name != self.file_field and allowed is not None and name not in allowed:
            raise InvalidValue(
                f"Unknown field {name!r}; the fields are {self.file_field!r} and "
                f"{', '.join(repr(f) for f in sorted(allowed))}.",
                param=name,
                code="unknown_parameter",
            )
        if name == self.file_field:
            if self.filename is not None:
                raise InvalidValue(
                    "Send one file per request.", param=self.file_field, code="too_many_files"
                )
            self.filename = _clean_filename(options.get(b"filename", b""))
        self._part = name

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part == self.file_field:
            self.file_bytes += end - start
            if self.file_bytes > self.max_file_bytes:
                raise file_too_large(self.max_file_bytes)
            self._queued.append(data[start:end])
            self._queued_bytes += end - start
            return
        self._text += data[start:end]
        limit = _MAX_TEXT_FIELD_BYTES if self.text_fields is not None else _MAX_FORM_TEXT_BYTES
        if len(self._text) > limit:
            raise InvalidValue(f"{self._part} is too long.", param=self._part)

    def _part_end(self) -> None:
        if self._part is None or self._part == self.file_field:
            return
        try:
            text = self._text.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidValue(f"{self._part} is not valid UTF-8.", param=self._part) from None
        self.fields[self._part] = check_text(text, param=self._part, where="form field")

    def _end(self) -> None:
        self.finished = True


def _clean_filename(raw: bytes) -> str:
    """Display only: the last path component, printable, bounded. It never decides the type
    or the storage key."""
    name = raw.decode("utf-8", errors="replace").replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c for c in name if c.isprintable())[:_MAX_FILENAME_CHARS]


async def _pump(
    chunks: AsyncIterator[bytes],
    parser: MultipartParser,
    reader: _FormReader,
    handle: BinaryIO,
    max_body_bytes: int,
) -> None:
    received = 0
    try:
        async for chunk in chunks:
            received += len(chunk)
            # Counted apart from the file part: a body can also grow through its other parts.
            if received > max_body_bytes:
                raise file_too_large(reader.max_file_bytes)
            parser.write(chunk)
            if reader.batch_ready:
                await asyncio.to_thread(handle.write, reader.take_queued())
        parser.finalize()
    except ClientDisconnect:
        raise BadRequest("The upload was interrupted.", code="upload_interrupted") from None
    except (MultipartParseError, FormParserError):
        raise BadRequest(
            f"The multipart body is malformed. {_MULTIPART_HINT}", code="invalid_multipart"
        ) from None
    await asyncio.to_thread(handle.write, reader.take_queued())
    if not reader.finished:
        raise BadRequest(
            "The multipart body ended before its closing boundary.", code="invalid_multipart"
        )


def _scratch_file(scratch_dir: Path) -> Path:
    scratch_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=scratch_dir, prefix="upload-", suffix=".part")
    os.close(fd)
    return Path(name)


async def receive_upload(
    chunks: AsyncIterator[bytes],
    *,
    content_type: str | None,
    scratch_dir: Path,
    max_file_bytes: int,
    file_field: str = FILE_FIELD,
    text_fields: frozenset[str] | None = TEXT_FIELDS,
    file_required: bool = True,
) -> ReceivedUpload:
    """Stream the body's file part into a scratch file, refusing it past ``max_file_bytes``.

    ``file_field`` names the file part and ``text_fields`` the text fields allowed beside
    it (None: any). Without a file part and ``file_required`` false, ``filename`` is None.
    """
    boundary = multipart_boundary(content_type)
    reader = _FormReader(max_file_bytes, file_field, text_fields)
    try:
        parser = MultipartParser(boundary, reader.callbacks())
    except FormParserError:
        raise BadRequest(
            f"Invalid multipart boundary. {_MULTIPART_HINT}", code="not_multipart"
        ) from None
    path = await asyncio.to_thread(_scratch_file, scratch_dir)
    try:
        with path.open("wb") as handle:
            await _pump(chunks, parser, reader, handle, max_file_bytes + FRAMING_ALLOWANCE)
        if reader.filename is None and file_required:
            raise InvalidValue(
                f"{file_field} is required. {_MULTIPART_HINT}",
                param=file_field,
                code="missing_parameter",
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return ReceivedUpload(
        path=path, size=reader.file_bytes, filename=reader.filename, fields=reader.fields
    )
