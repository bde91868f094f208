from __future__ import annotations

import base64
import io
import struct
import time
import zlib
from typing import Any

import pytest
from PIL import Image, ImageFile

from framegate.exceptions import InvalidValue, PayloadTooLarge
from framegate.kit import images
from framegate.kit.images import (
    ALLOWED_FORMATS,
    decode_image,
    parse_data_uri,
    read_image_source,
)
from framegate.kit.safe_fetch import FetchPolicy

POLICY = FetchPolicy(connect_timeout=1.0, read_timeout=1.0, total_timeout=2.0)


def encode(fmt: str, size: tuple[int, int] = (8, 6), mode: str = "RGB", **save: Any) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, "red" if mode in ("RGB", "RGBA") else 1).save(buffer, fmt, **save)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A valid-looking PNG that declares ``width`` x ``height`` but carries almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def data_uri(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


# --- decode_image ---------------------------------------------------------------------------


def test_allowed_formats() -> None:
    assert sorted(ALLOWED_FORMATS) == ["JPEG", "PNG", "WEBP"]


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [("PNG", "RGB"), ("PNG", "RGBA"), ("PNG", "P"), ("JPEG", "RGB"), ("WEBP", "RGBA")],
)
def test_decodes_to_rgb(fmt: str, mode: str) -> None:
    image = decode_image(encode(fmt, mode=mode))
    assert image.mode == "RGB"
    assert image.size == (8, 6)


def test_exif_orientation_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    image = decode_image(encode("JPEG", size=(8, 4), exif=exif))
    assert image.size == (4, 8)


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_other_formats_refused(fmt: str) -> None:
    with pytest.raises(InvalidValue) as info:
        decode_image(encode(fmt), param="first_frame")
    assert info.value.code == "unsupported_image"
    assert info.value.param == "first_frame"
    assert "PNG, JPEG or WebP" in info.value.message


def test_garbage_refused_as_unsupported() -> None:
    for data in (b"", b"not an image at all", bytes(range(256)) * 4):
        with pytest.raises(InvalidValue) as info:
            decode_image(data)
        assert info.value.code == "unsupported_image"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_truncated_refused_as_invalid(fmt: str) -> None:
    data = encode(fmt, size=(64, 64))
    with pytest.raises(InvalidValue) as info:
        decode_image(data[: len(data) // 2])
    assert info.value.code == "invalid_image"
    assert info.value.param == "input_image"


def test_corrupt_pixel_data_refused() -> None:
    data = bytearray(encode("PNG", size=(64, 64)))
    idat = data.index(b"IDAT")
    data[idat + 8 : idat + 40] = b"\xff" * 32
    with pytest.raises(InvalidValue) as info:
        decode_image(bytes(data))
    assert info.value.code == "invalid_image"


@pytest.mark.parametrize("side", [50_000, 7_000])
def test_pixel_bomb_refused_before_decoding(side: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # 50000x50000 trips Pillow's own guard in open(); 7000x7000 (49 MP) passes it and is
    # caught by the max_pixels check. Neither may reach the pixel decoder.
    data = png_header_only(side, side)
    assert len(data) < 200

    def no_load(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_load)
    started = time.monotonic()
    with pytest.raises(InvalidValue) as info:
        decode_image(data)
    assert time.monotonic() - started < 1.0
    assert info.value.code == "image_too_large"
    assert "40 megapixels" in info.value.message


def test_max_pixels_is_configurable() -> None:
    data = encode("PNG", size=(100, 100))
    with pytest.raises(InvalidValue) as info:
        decode_image(data, max_pixels=5_000)
    assert info.value.code == "image_too_large"
    assert "100x100 pixels" in info.value.message
    assert decode_image(data, max_pixels=10_000).size == (100, 100)


# --- parse_data_uri -------------------------------------------------------------------------


def test_data_uri_round_trip() -> None:
    png = encode("PNG")
    assert parse_data_uri(data_uri(png), max_bytes=1024) == png


def test_data_uri_tolerates_case_wrapping_and_missing_padding() -> None:
    png = encode("PNG")
    encoded = base64.b64encode(png).decode()
    wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    assert parse_data_uri("DATA:Image/PNG;BASE64," + wrapped, max_bytes=1024) == png
    assert parse_data_uri("data:image/png;base64," + encoded.rstrip("="), max_bytes=1024) == png
    urlsafe = base64.urlsafe_b64encode(png).decode()
    assert parse_data_uri("data:image/png;base64," + urlsafe, max_bytes=1024) == png


@pytest.mark.parametrize(
    "value",
    [
        "image/png;base64,AAAA",
        "data:image/png;base64",
        "data:text/plain;base64,aGVsbG8=",
        "data:;base64,aGVsbG8=",
        "data:image/png,%89PNG",
        "data:image/png;base64,",
        "data:image/png;base64,@@@@",
        "data:image/png;base64,aGVsbG8=aGVsbG8=",
        "data:image/png;base64,A",
        "data:image/png;base64,aGVsbG8é",
    ],
)
def test_malformed_data_uris_refused(value: str) -> None:
    with pytest.raises(InvalidValue) as info:
        parse_data_uri(value, param="first_frame", max_bytes=1024)
    assert info.value.code == "invalid_data_uri"
    assert info.value.param == "first_frame"
    assert info.value.message.startswith("first_frame ")


def test_data_uri_over_cap_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decode(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("the payload was decoded")

    monkeypatch.setattr(images.base64, "b64decode", no_decode)
    with pytest.raises(PayloadTooLarge) as info:
        parse_data_uri(data_uri(b"x" * 4096), max_bytes=1024)
    assert info.value.code == "input_too_large"
    assert info.value.status_code == 413
    assert info.value.param == "input_image"


def test_data_uri_cap_is_exact() -> None:
    assert parse_data_uri(data_uri(b"x" * 1024), max_bytes=1024) == b"x" * 1024
    # 1025 bytes encode to the same 1368 characters as 1026 do: the decoded length decides.
    with pytest.raises(PayloadTooLarge):
        parse_data_uri(data_uri(b"x" * 1025), max_bytes=1024)


# --- read_image_source ----------------------------------------------------------------------


async def test_read_image_source_from_data_uri() -> None:
    png = encode("PNG", mode="RGBA")
    raw = await read_image_source(f"  {data_uri(png)} ", policy=POLICY)
    assert raw == png
    image = decode_image(raw)
    assert image.mode == "RGB"
    assert image.size == (8, 6)


async def test_read_image_source_applies_the_byte_cap() -> None:
    policy = FetchPolicy(max_bytes=16)
    with pytest.raises(PayloadTooLarge):
        await read_image_source(data_uri(encode("PNG")), policy=policy)


@pytest.mark.parametrize(
    "value",
    [
        "/etc/passwd",
        "image.png",
        "file:///etc/passwd",
        "ftp://127.0.0.1/x.png",
        "s3://bucket/key.png",
        "C:\\images\\x.png",
        "",
    ],
)
async def test_read_image_source_refuses_other_inputs(value: str) -> None:
    with pytest.raises(InvalidValue) as info:
        await read_image_source(value, policy=POLICY, param="first_frame")
    assert info.value.code == "unsupported_input"
    assert info.value.param == "first_frame"
    assert "https URL or a data URI" in info.value.message


async def test_read_image_source_urls_go_through_the_guard() -> None:
    with pytest.raises(InvalidValue) as info:
        await read_image_source("http://127.0.0.1:9/x.png", policy=POLICY)
    assert info.value.code == "unsafe_url"
