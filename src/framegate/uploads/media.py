"""Media decoding: what an uploaded file is (decided by decoding it, never by its declared
type or name), and frames taken from a stored video (thumbnails, spritesheets).

The first bytes only choose which decoder to try: an image must then decode with Pillow
(PNG, JPEG or WebP, bombs refused), a video must open in its container's demuxer and
decode a frame with PyAV. Naming the demuxer instead of letting FFmpeg probe keeps a
stranger's file away from formats such as HLS playlists, which read other files or URLs.
Both decode under the process's image decoding limit, an image reduced as it decodes.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import av
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream
from PIL import Image

from framegate.exceptions import InvalidValue
from framegate.kit.images import image_decoding, image_type, read_image
from framegate.uploads.receive import file_too_large
from framegate.uploads.schemas import UploadKind

ACCEPTED_TYPES: Final = "PNG, JPEG or WebP images, or MP4, MOV or WebM videos"
_HEAD_BYTES = 64
# A video stream's first frame must appear within this many of its packets; more would
# let a crafted file keep the decoder busy without ever showing a picture.
_MAX_PACKETS_FOR_FIRST_FRAME = 300
_WEBM_CODECS = frozenset({"vp8", "vp9", "av1"})
# An image is decoded only to prove it decodes: reduced this far, a JPEG decodes at an
# eighth of its size and nothing larger than this is kept afterwards.
_PROOF_SIZE = (256, 256)
# What PyAV raises on a damaged or hostile file: the file's fault, never a server error.
_VIDEO_ERRORS = (av.FFmpegError, OSError, ValueError, EOFError, IndexError)


@dataclass(frozen=True, slots=True)
class Media:
    kind: UploadKind
    content_type: str
    extension: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class MediaLimits:
    image_max_bytes: int
    video_max_bytes: int
    max_pixels: int


def unsupported(param: str, why: str = "") -> InvalidValue:
    return InvalidValue(
        f"{param} is not a supported type{why}; upload {ACCEPTED_TYPES}.",
        param=param,
        code="unsupported_media",
    )


def _video_type(head: bytes) -> tuple[str, str, str] | None:
    """Demuxer, content type and extension for an MP4, MOV or WebM signature."""
    if head[4:8] == b"ftyp":
        if head[8:12] == b"qt  ":
            return "mov", "video/quicktime", "mov"
        return "mov", "video/mp4", "mp4"
    # EBML magic; WebM declares its DocType in the header that follows it.
    if head.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in head:
        return "matroska", "video/webm", "webm"
    return None


def identify(path: Path, size: int, *, limits: MediaLimits, param: str) -> Media:
    """Decode the file at ``path`` and say what it is (blocking: run it with
    ``image_decoding.run``)."""
    if size == 0:
        raise InvalidValue(f"{param} is empty.", param=param, code="empty_file")
    with path.open("rb") as handle:
        head = handle.read(_HEAD_BYTES)
    image = image_type(head)
    if image is not None:
        if size > limits.image_max_bytes:
            raise file_too_large(limits.image_max_bytes, "The image")
        return _identify_image(path, image, limits.max_pixels, param)
    video = _video_type(head)
    if video is not None:
        if size > limits.video_max_bytes:
            raise file_too_large(limits.video_max_bytes, "The video")
        return _identify_video(path, video, limits.max_pixels, param)
    raise unsupported(param)


def _identify_image(path: Path, image_type: tuple[str, str], max_pixels: int, param: str) -> Media:
    content_type, extension = image_type
    # Pillow recognises these formats by the same signatures, so the format it decoded is
    # the one the signature named.
    decoded = read_image(path, param=param, max_pixels=max_pixels, cover=_PROOF_SIZE)
    return Media(UploadKind.image, content_type, extension, decoded.width, decoded.height)


def _identify_video(
    path: Path, video_type: tuple[str, str, str], max_pixels: int, param: str
) -> Media:
    demuxer, content_type, extension = video_type
    try:
        with av.open(str(path), mode="r", format=demuxer) as container:
            stream = _video_stream(container, param)
            if extension == "webm" and stream.codec_context.name not in _WEBM_CODECS:
                raise unsupported(param, f" (WebM with {stream.codec_context.name} video)")
            declared = stream.codec_context.width * stream.codec_context.height
            # Checked before decoding allocates a frame of that size.
            if declared > max_pixels:
                raise _too_many_pixels(param, stream, max_pixels)
            with image_decoding.slot():
                frame = _first_frame(container, stream)
    except _VIDEO_ERRORS:
        frame = None
    if frame is None:
        raise InvalidValue(
            f"{param} could not be decoded as a video; the file is truncated or corrupt. "
            f"Upload {ACCEPTED_TYPES}.",
            param=param,
            code="invalid_video",
        )
    return Media(UploadKind.video, content_type, extension, frame.width, frame.height)


def _video_stream(container: InputContainer, param: str) -> VideoStream:
    if not container.streams.video:
        raise unsupported(param, " (it has no video stream)")
    return container.streams.video[0]


def _first_frame(container: InputContainer, stream: VideoStream) -> VideoFrame | None:
    for count, packet in enumerate(container.demux(stream)):
        for frame in packet.decode():
            if isinstance(frame, VideoFrame):
                return frame
        if count >= _MAX_PACKETS_FOR_FIRST_FRAME:
            break
    return None


def _too_many_pixels(param: str, stream: VideoStream, max_pixels: int) -> InvalidValue:
    width, height = stream.codec_context.width, stream.codec_context.height
    return InvalidValue(
        f"{param} is {width}x{height} pixels; the limit is {max_pixels / 1_000_000:g} "
        "megapixels. Resize it and try again.",
        param=param,
        code="video_too_large",
    )


def frame_grid(source: Path | bytes, *, count: int, columns: int, tile_width: int) -> bytes:
    """``count`` frames spread evenly over a video, in a JPEG grid ``columns`` wide (a
    spritesheet, or with one frame a thumbnail)."""
    opened = str(source) if isinstance(source, Path) else io.BytesIO(source)
    with av.open(opened, mode="r") as container:
        stream = container.streams.video[0]
        total = stream.frames
        wanted = _spread(total, count) if total else None
        picked: list[Image.Image] = []
        for index, frame in enumerate(container.decode(stream)):
            if wanted is None or index in wanted:
                picked.append(_tile(frame.to_image(), tile_width))
            if wanted is not None and len(picked) == len(wanted):
                break
    if wanted is None:  # the container did not say how many frames: pick among all
        picked = [picked[i] for i in sorted(_spread(len(picked), count))]
    if not picked:
        raise ValueError("the video has no frames")
    columns = min(columns, len(picked))
    rows = math.ceil(len(picked) / columns)
    width, height = picked[0].size
    sheet = Image.new("RGB", (columns * width, rows * height))
    for position, tile in enumerate(picked):
        sheet.paste(tile, ((position % columns) * width, (position // columns) * height))
    buffer = io.BytesIO()
    sheet.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _spread(total: int, count: int) -> set[int]:
    if total <= count:
        return set(range(total))
    return {round(i * (total - 1) / (count - 1)) for i in range(count)} if count > 1 else {0}


def _tile(image: Image.Image, width: int) -> Image.Image:
    if image.width <= width:
        return image.convert("RGB")
    height = max(2, round(image.height * width / image.width))
    return image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
