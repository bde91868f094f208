"""Turn an image reference from a request into a decoded RGB image, defensively.

Images arrive from strangers, so decoding is limited to three well-exercised formats, the
pixel count is checked from the header before any pixel memory is allocated, and every
Pillow failure becomes a 4xx that names the field instead of a 500.

Decoding is also where an image costs memory: a PNG is held at full size (4 bytes per
pixel, about 160 MB at the 40 MP cap) until it can be reduced. So every decode in the
process takes a slot of one :data:`image_decoding` limiter (a few at a time, whoever asks:
the task service, uploads, the workers), a JPEG is reduced while it decodes (``draft``),
and an image is reduced to the size its caller needs right after it decodes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import io
import math
import re
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, ParamSpec, TypeVar

from PIL import Image, UnidentifiedImageError

from framegate.exceptions import InvalidValue, PayloadTooLarge
from framegate.kit.safe_fetch import FetchPolicy, fetch_url

ALLOWED_FORMATS: Final[frozenset[str]] = frozenset({"PNG", "JPEG", "WEBP"})
IMAGE_ACCEPT: Final[str] = "image/png, image/jpeg, image/webp;q=0.9, */*;q=0.1"
DEFAULT_DECODE_CONCURRENCY: Final = 2

_FORMAT_NAMES = "PNG, JPEG or WebP"
# A data URI's header ("data:image/png;base64") is short; looking for its comma only this far
# keeps a multi-megabyte value without one from being scanned or copied.
_MAX_DATA_URI_HEADER = 256
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_URL_SAFE_TO_STANDARD = str.maketrans("-_", "+/")
_WHITESPACE = re.compile(r"\s")

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

# Modes Image.reduce averages well; the others (palette, bilevel, 16-bit grey) become RGB
# first, which costs at most 4 bytes per pixel more.
_REDUCIBLE_MODES = frozenset({"L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "I", "F"})
# A box reduction stops at twice the final size and a Lanczos resize does the rest: as
# good as resizing the whole image (Pillow's thumbnail does the same) for a fraction of
# the work and memory.
_REDUCING_GAP = 1.0
_ORIENTATION_TAG = 0x0112
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Orientations that turn the stored image a quarter turn: its width is the upright height.
_QUARTER_TURNS = frozenset({5, 6, 7, 8})
_JPEG_QUALITY = 95

_P = ParamSpec("_P")
_T = TypeVar("_T")


class DecodeLimiter:
    """At most ``concurrency`` image decodes at once in this process.

    Blocking code takes a :meth:`slot` around a decode (``read_image`` does); async code
    hands the blocking call to :meth:`run`, which queues it for threads of its own, so
    waiting holds no thread of the default executor and only these few threads ever hold
    full-size pixels (their malloc arenas are all that a burst can grow).
    """

    def __init__(self, concurrency: int = DEFAULT_DECODE_CONCURRENCY) -> None:
        self._condition = threading.Condition()
        self._concurrency = concurrency
        self._busy = 0
        self._held = threading.local()
        self._executor: ThreadPoolExecutor | None = None

    @property
    def concurrency(self) -> int:
        return self._concurrency

    @property
    def busy(self) -> int:
        """Decodes running now."""
        return self._busy

    def configure(self, concurrency: int) -> None:
        """Set the number of decodes at once (FRAMEGATE_IMAGE_DECODE_CONCURRENCY)."""
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        with self._condition:
            if concurrency == self._concurrency:
                return
            self._concurrency = concurrency
            retired, self._executor = self._executor, None
            self._condition.notify_all()
        if retired is not None:
            # Calls already queued there still run; new ones go to a pool of the new size.
            retired.shutdown(wait=False)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Wait for a free slot and hold it (re-entrant within one thread)."""
        depth: int = getattr(self._held, "depth", 0)
        if depth == 0:
            with self._condition:
                self._condition.wait_for(lambda: self._busy < self._concurrency)
                self._busy += 1
        self._held.depth = depth + 1
        try:
            yield
        finally:
            self._held.depth = depth
            if depth == 0:
                with self._condition:
                    self._busy -= 1
                    self._condition.notify()

    async def run(self, function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run blocking ``function`` on the decode threads, holding a slot."""
        loop = asyncio.get_running_loop()
        call = functools.partial(self._in_slot, function, *args, **kwargs)
        # Submitted under the lock, so configure() cannot retire the pool in between.
        with self._condition:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self._concurrency, thread_name_prefix="framegate-decode"
                )
            queued = loop.run_in_executor(self._executor, call)
        return await queued

    def _in_slot(self, function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        with self.slot():
            return function(*args, **kwargs)


# One per process: the bound is on the process's memory, whichever service decodes.
image_decoding = DecodeLimiter()


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """An upright RGB image, reduced to what its caller needs, and what it was."""

    image: Image.Image
    format: str
    # The upright size of the image as sent.
    width: int
    height: int

    @property
    def reduced(self) -> bool:
        return self.image.size != (self.width, self.height)


# The signatures of the formats framegate decodes: content type and file extension.
_IMAGE_SIGNATURES: Final = (
    (lambda head: head.startswith(b"\x89PNG\r\n\x1a\n"), "image/png", "png"),
    (lambda head: head.startswith(b"\xff\xd8\xff"), "image/jpeg", "jpg"),
    (lambda head: head[:4] == b"RIFF" and head[8:12] == b"WEBP", "image/webp", "webp"),
)


def image_type(head: bytes) -> tuple[str, str] | None:
    """Content type and extension of a PNG, JPEG or WebP signature (the first bytes only
    choose the decoder; decoding decides what a file is)."""
    for matches, content_type, extension in _IMAGE_SIGNATURES:
        if matches(head):
            return content_type, extension
    return None


def image_media_type(head: bytes) -> str | None:
    found = image_type(head)
    return None if found is None else found[0]


def _looks_like_allowed_format(data: bytes) -> bool:
    return image_type(data) is not None


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
    data: bytes | Path,
    *,
    param: str = "input_image",
    max_pixels: int = 40_000_000,
    cover: tuple[int, int] | None = None,
) -> Image.Image:
    """Decode PNG, JPEG or WebP bytes into an upright RGB image (see read_image)."""
    return read_image(data, param=param, max_pixels=max_pixels, cover=cover).image


def read_image(
    data: bytes | Path,
    *,
    param: str = "input_image",
    max_pixels: int = 40_000_000,
    cover: tuple[int, int] | None = None,
) -> DecodedImage:
    """Decode PNG, JPEG or WebP bytes (or a file of them) into an upright RGB image.

    With ``cover`` (a width and height) the image comes back reduced to the smallest size
    that still covers that box (see reduced_size), JPEGs already while they decode. Blocks
    until a slot of :data:`image_decoding` is free, and holds it while decoding.
    """
    with image_decoding.slot():
        if isinstance(data, Path):
            with data.open("rb") as handle:
                return _read(handle, param, max_pixels, cover)
        return _read(io.BytesIO(data), param, max_pixels, cover)


def reduced_size(size: tuple[int, int], cover: tuple[int, int]) -> tuple[int, int]:
    """The smallest size of ``size``'s shape that covers ``cover``: what a frame of
    ``cover`` filled by scaling and cropping needs. Never larger than ``size``, and the long
    side never more than twice the cover's, so a panorama keeps no megapixels the crop
    would throw away."""
    width, height = size
    scale = min(
        1.0,
        max(cover[0] / width, cover[1] / height),
        2 * max(cover) / max(width, height),
    )
    if scale >= 1.0:
        return size
    return max(1, math.ceil(width * scale - 1e-6)), max(1, math.ceil(height * scale - 1e-6))


def _read(
    stream: BinaryIO, param: str, max_pixels: int, cover: tuple[int, int] | None
) -> DecodedImage:
    try:
        image = Image.open(stream, formats=sorted(ALLOWED_FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own guard fires in open() for sizes far past any sane max_pixels.
        raise _too_many_pixels(param, None, max_pixels) from None
    except UnidentifiedImageError:
        stream.seek(0)
        if _looks_like_allowed_format(stream.read(16)):
            raise _invalid_image(param) from None
        raise InvalidValue(
            f"{param} is not a supported image; use {_FORMAT_NAMES}.",
            param=param,
            code="unsupported_image",
        ) from None
    except _DECODE_ERRORS:
        raise _invalid_image(param) from None

    width, height = image.size
    # open() has read only the header so far; this is the last point before decoding
    # allocates width * height pixels.
    if width * height > max_pixels:
        raise _too_many_pixels(param, (width, height), max_pixels)
    image_format = image.format or ""
    try:
        if cover is not None and image_format == "JPEG":
            # The JPEG decoder scales by 1/2, 1/4 or 1/8 as it decodes: the full-size
            # pixels are never allocated.
            image.draft(None, reduced_size(image.size, _stored(cover, _orientation(image))))
        image.load()
        orientation = _orientation(image)
        pixels = _reduce(image, None if cover is None else _stored(cover, orientation))
        del image  # the full-size pixels, when the reduction made a copy
        method = _UPRIGHT.get(orientation)
        if method is not None:
            pixels = pixels.transpose(method)
        if pixels.mode != "RGB":
            pixels = pixels.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(param, (width, height), max_pixels) from None
    except _DECODE_ERRORS:
        raise _invalid_image(param) from None
    if orientation in _QUARTER_TURNS:
        width, height = height, width
    return DecodedImage(pixels, image_format, width, height)


def _orientation(image: Image.Image) -> int:
    value = image.getexif().get(_ORIENTATION_TAG, 1)
    return value if isinstance(value, int) else 1


def _stored(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """An upright ``size`` in the orientation the pixels are stored in."""
    return (size[1], size[0]) if orientation in _QUARTER_TURNS else size


def _reduce(image: Image.Image, cover: tuple[int, int] | None) -> Image.Image:
    """``image`` reduced to cover ``cover``: a box reduction while it is large, then
    Lanczos. A new image whenever anything was done, else ``image`` itself."""
    pixels = image
    if cover is None:
        return pixels
    target = reduced_size(pixels.size, cover)
    if target == pixels.size:
        return pixels
    if pixels.mode not in _REDUCIBLE_MODES:
        pixels = pixels.convert("RGB")
    factor_x = int(pixels.width / target[0] / _REDUCING_GAP)
    factor_y = int(pixels.height / target[1] / _REDUCING_GAP)
    if factor_x > 1 or factor_y > 1:
        pixels = pixels.reduce((max(1, factor_x), max(1, factor_y)))
    if pixels.mode in ("LA", "RGBA"):
        # Resizing these premultiplies alpha in a copy; the alpha is dropped anyway.
        pixels = pixels.convert("RGB")
    return pixels.resize(target, Image.Resampling.LANCZOS)


def intake_image(
    data: bytes, *, param: str = "input_image", max_pixels: int, cover: tuple[int, int]
) -> bytes:
    """The bytes worth keeping of an input image for an output of size ``cover``.

    The image is decoded (an invalid one is refused here). When it is larger than the
    output needs, the reduced, upright image is re-encoded (JPEG stays JPEG, the others
    become PNG) and kept instead: a 36-megapixel upload for a 720p clip is not worth
    storing, nor decoding again at full size when the task runs.
    """
    decoded = read_image(data, param=param, max_pixels=max_pixels, cover=cover)
    if not decoded.reduced:
        return data
    buffer = io.BytesIO()
    if decoded.format == "JPEG":
        decoded.image.save(buffer, "JPEG", quality=_JPEG_QUALITY)
    else:
        decoded.image.save(buffer, "PNG")
    return buffer.getvalue()


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
    # Each step copies the payload only when it has to change it: a burst of large data
    # URIs should cost the request bodies, not several copies of each.
    payload = value[comma + 1 :]
    if _WHITESPACE.search(payload):
        payload = "".join(payload.split())
    if len(payload) > encoded_limit:
        raise _data_too_large(param, max_bytes)
    if not payload:
        raise InvalidValue(
            f"{param} is an empty data URI; it must carry the image's bytes.",
            param=param,
            code="invalid_data_uri",
        )
    if payload.endswith("="):
        payload = payload.rstrip("=")
    if "-" in payload or "_" in payload:
        payload = payload.translate(_URL_SAFE_TO_STANDARD)
    if len(payload) % 4:
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


async def read_image_source(
    value: str, *, policy: FetchPolicy, param: str = "input_image"
) -> bytes:
    """The raw bytes behind ``value`` (an http(s) URL or a data URI), not yet decoded."""
    return await _read_source(value.strip(), policy=policy, param=param)
