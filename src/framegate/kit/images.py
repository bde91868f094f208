"""Turn an image reference from a request into a decoded RGB image, defensively.

Images arrive from strangers, so decoding is limited to three well-exercised formats, the
pixel count is checked from the header before any pixel memory is allocated, and every
Pillow failure becomes a 4xx that names the field instead of a 500.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import math
import re
import struct
import zlib
from typing import Final

from PIL import Image, ImageOps, UnidentifiedImageError

from framegate.exceptions import InvalidValue, PayloadTooLarge
from framegate.kit.safe_fetch import FetchPolicy, fetch_url

ALLOWED_FORMATS: Final[frozenset[str]] = frozenset({"PNG", "JPEG", "WEBP"})
IMAGE_ACCEPT: Final[str] = "image/png, image/jpeg, image/webp;q=0.9, */*;q=0.1"

_FORMAT_NAMES = "PNG, JPEG or WebP"
# A data URI's header ("data:image/png;base64") is short; looking for its comma only this far
# keeps a multi-megabyte value without one from being scanned or copied.
_MAX_DATA_URI_HEADER = 256
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_URL_SAFE_TO_STANDARD = str.maketrans("-_", "+/")

# What Pillow's decoders and EXIF parser raise on damaged input; bytes from a stranger failing
# to decode is the caller's error, never a server fault.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
    KeyError,
    IndexError,
    TypeError,
)


def _looks_like_allowed_format(data: bytes) -> bool:
    return (
        data.startswith(b"\x89PNG\r\n\x1a\n")
        or data.startswith(b"\xff\xd8\xff")
        or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
    )


def _invalid_image(param: str) -> InvalidValue:
    return InvalidValue(
        f"{param} could not be decoded; the file is truncated or corrupt. "
        f"Re-export it as {_FORMAT_NAMES}.",
        param=param,
        code="invalid_image",
    )


def _too_many_pixels(param: str, size: tuple[int, int] | None, max_pixels: int) -> InvalidValue:
    limit = f"{max_pixels / 1_000_000:g} megapixels"
    shown = f"{size[0]}x{size[1]} pixels" if size else "too many pixels"
    return InvalidValue(
        f"{param} is {shown}; the limit is {limit}. Resize it and try again.",
        param=param,
        code="image_too_large",
    )


def decode_image(
    data: bytes, *, param: str = "input_image", max_pixels: int = 40_000_000
) -> Image.Image:
    """Decode PNG, JPEG or WebP bytes into an upright RGB image."""
    try:
        image = Image.open(io.BytesIO(data), formats=sorted(ALLOWED_FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own guard fires in open() for sizes far past any sane max_pixels.
        raise _too_many_pixels(param, None, max_pixels) from None
    except UnidentifiedImageError:
        if _looks_like_allowed_format(data):
            raise _invalid_image(param) from None
        raise InvalidValue(
            f"{param} is not a supported image; use {_FORMAT_NAMES}.",
            param=param,
            code="unsupported_image",
        ) from None
    except _DECODE_ERRORS:
        raise _invalid_image(param) from None

    with image:
        width, height = image.size
        # open() has read only the header so far; this is the last point before decoding
        # allocates width * height pixels.
        if width * height > max_pixels:
            raise _too_many_pixels(param, (width, height), max_pixels)
        try:
            image.load()
            upright = ImageOps.exif_transpose(image)
            return upright.convert("RGB")
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_many_pixels(param, (width, height), max_pixels) from None
        except _DECODE_ERRORS:
            raise _invalid_image(param) from None


def parse_data_uri(value: str, *, param: str = "input_image", max_bytes: int) -> bytes:
    """Decode a base64 ``data:image/...`` URI, refusing it by its length before decoding."""
    comma = value.find(",", 0, _MAX_DATA_URI_HEADER)
    header = value[:comma].lower() if comma != -1 else ""
    if not header.startswith("data:"):
        raise InvalidValue(
            f"{param} is not a valid data URI; expected data:image/png;base64,<data>.",
            param=param,
            code="invalid_data_uri",
        )
    media_type, *flags = (part.strip() for part in header[5:].split(";"))
    if not media_type.startswith("image/"):
        raise InvalidValue(
            f"{param} is a data URI for {media_type or 'text/plain'}, not an image; "
            "expected data:image/png;base64,<data>.",
            param=param,
            code="invalid_data_uri",
        )
    if "base64" not in flags:
        raise InvalidValue(
            f"{param} must be a base64 data URI (data:image/png;base64,<data>).",
            param=param,
            code="invalid_data_uri",
        )

    encoded_limit = 4 * math.ceil(max_bytes / 3)
    # Line-wrapped base64 carries a little whitespace; allow for it before stripping it.
    if len(value) - comma - 1 > encoded_limit + encoded_limit // 32 + 4:
        raise _data_too_large(param, max_bytes)
    payload = "".join(value[comma + 1 :].split())
    if len(payload) > encoded_limit:
        raise _data_too_large(param, max_bytes)
    if not payload:
        raise InvalidValue(
            f"{param} is an empty data URI; it must carry the image's bytes.",
            param=param,
            code="invalid_data_uri",
        )
    payload = payload.rstrip("=").translate(_URL_SAFE_TO_STANDARD)
    payload += "=" * (-len(payload) % 4)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidValue(
            f"{param} is not valid base64. Encode the image bytes with standard base64.",
            param=param,
            code="invalid_data_uri",
        ) from None
    if len(data) > max_bytes:
        raise _data_too_large(param, max_bytes)
    return data


def _data_too_large(param: str, max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"{param} is larger than the {max_bytes / (1024 * 1024):g} MiB limit. Use a smaller image.",
        param=param,
        code="input_too_large",
    )


async def _read_source(value: str, *, policy: FetchPolicy, param: str) -> bytes:
    """The raw bytes behind ``value``.

    Each accepted form is recognised by its scheme here; a new form (an upload id, say) is one
    more branch ahead of the final refusal.
    """
    match = _SCHEME.match(value)
    scheme = match.group(1).lower() if match else None
    if scheme == "data":
        return parse_data_uri(value, param=param, max_bytes=policy.max_bytes)
    if scheme in ("http", "https"):
        fetched = await fetch_url(value, policy, param=param, accept=IMAGE_ACCEPT)
        return fetched.content
    got = f"a {scheme}: URL" if scheme else "neither a URL nor a data URI"
    raise InvalidValue(
        f"{param} must be an https URL or a data URI (data:image/png;base64,<data>); got {got}.",
        param=param,
        code="unsupported_input",
    )


async def load_image(
    value: str, *, policy: FetchPolicy, max_pixels: int, param: str = "input_image"
) -> tuple[bytes, Image.Image]:
    """Fetch or decode ``value`` (an http(s) URL or a data URI) into raw bytes and RGB pixels."""
    data = await _read_source(value.strip(), policy=policy, param=param)
    # Decoding a large image takes long enough to stall every other request on the loop.
    image = await asyncio.to_thread(decode_image, data, param=param, max_pixels=max_pixels)
    return data, image
