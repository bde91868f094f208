"""Bounded decoding: a process-wide limit on decodes at once, and images reduced to the
size their caller needs (JPEGs while they decode)."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image, JpegImagePlugin

from framegate.exceptions import InvalidValue
from framegate.kit.images import (
    DecodeLimiter,
    image_decoding,
    intake_image,
    read_image,
    reduced_size,
)


def encode(fmt: str, size: tuple[int, int], mode: str = "RGB", **save: Any) -> bytes:
    image = Image.linear_gradient("L").resize(size).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def oriented(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


# --- the limiter ----------------------------------------------------------------------------


def test_slots_admit_at_most_the_concurrency() -> None:
    limiter = DecodeLimiter(2)
    inside = peak = 0
    lock = threading.Lock()

    def decode() -> None:
        nonlocal inside, peak
        with limiter.slot():
            with lock:
                inside += 1
                peak = max(peak, inside)
            time.sleep(0.02)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=decode) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert peak == 2
    assert limiter.busy == 0


def test_a_slot_is_reentrant_within_a_thread() -> None:
    limiter = DecodeLimiter(1)
    with limiter.slot(), limiter.slot():
        assert limiter.busy == 1
    assert limiter.busy == 0


def test_a_slot_is_given_back_when_the_decode_fails() -> None:
    limiter = DecodeLimiter(1)
    with pytest.raises(ValueError), limiter.slot():
        raise ValueError("corrupt")
    assert limiter.busy == 0


async def test_async_callers_queue_without_holding_more_slots() -> None:
    limiter = DecodeLimiter(2)
    seen: list[int] = []

    def work() -> None:
        seen.append(limiter.busy)
        time.sleep(0.02)

    await asyncio.gather(*(limiter.run(work) for _ in range(6)))
    assert len(seen) == 6
    assert max(seen) <= 2
    assert limiter.busy == 0


async def test_configure_changes_the_limit() -> None:
    limiter = DecodeLimiter(1)
    limiter.configure(3)
    assert limiter.concurrency == 3
    started = threading.Barrier(3, timeout=5)

    def meet() -> None:
        # Only passes when three run at once.
        started.wait()

    await asyncio.gather(*(limiter.run(meet) for _ in range(3)))
    with pytest.raises(ValueError):
        limiter.configure(0)


@pytest.fixture
def one_at_a_time() -> Iterator[None]:
    before = image_decoding.concurrency
    image_decoding.configure(1)
    yield
    image_decoding.configure(before)


def test_read_image_waits_for_the_process_wide_slot(one_at_a_time: None) -> None:
    data = encode("PNG", (32, 32))
    finished = threading.Event()

    def decode() -> None:
        read_image(data)
        finished.set()

    with image_decoding.slot():
        thread = threading.Thread(target=decode)
        thread.start()
        assert not finished.wait(0.2)  # held off while another decode runs
    assert finished.wait(5)
    thread.join()


# --- reduction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "cover", "expected"),
    [
        ((6000, 6000), (1280, 720), (1280, 1280)),
        ((6000, 4000), (1280, 720), (1280, 854)),
        ((4000, 6000), (1280, 720), (1280, 1920)),
        ((640, 480), (1280, 720), (640, 480)),  # never enlarged
        ((40_000, 1000), (1280, 720), (2560, 64)),  # a panorama keeps twice the long side
    ],
)
def test_reduced_size_covers_the_output(
    size: tuple[int, int], cover: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert reduced_size(size, cover) == expected


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [("PNG", "RGB"), ("PNG", "RGBA"), ("PNG", "P"), ("JPEG", "RGB"), ("WEBP", "RGB")],
)
def test_large_images_come_back_reduced(fmt: str, mode: str) -> None:
    decoded = read_image(encode(fmt, (2400, 1600), mode), cover=(320, 180))
    assert decoded.image.mode == "RGB"
    assert decoded.image.size == (320, 214)
    assert (decoded.width, decoded.height, decoded.format) == (2400, 1600, fmt)
    assert decoded.reduced


def test_jpeg_is_reduced_while_it_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    drafted: list[tuple[int, int]] = []
    draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self: JpegImagePlugin.JpegImageFile, mode: str | None, size: Any) -> Any:
        result = draft(self, mode, size)
        drafted.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    decoded = read_image(encode("JPEG", (3200, 1600)), cover=(400, 200))
    # Decoded at an eighth of its size: the full 5 megapixels were never allocated.
    assert drafted == [(400, 200)]
    assert decoded.image.size == (400, 200)


def test_orientation_is_applied_to_the_reduced_image() -> None:
    # Stored 2400x1200, displayed a quarter turn round: 1200x2400 upright.
    data = encode("JPEG", (2400, 1200), exif=oriented(6))
    decoded = read_image(data, cover=(100, 200))
    assert decoded.image.size == (100, 200)
    assert (decoded.width, decoded.height) == (1200, 2400)


def test_without_cover_the_image_keeps_its_size() -> None:
    decoded = read_image(encode("PNG", (300, 200)))
    assert decoded.image.size == (300, 200)
    assert not decoded.reduced


def test_the_pixel_cap_still_comes_first() -> None:
    with pytest.raises(InvalidValue) as info:
        read_image(encode("PNG", (200, 200)), max_pixels=10_000, cover=(10, 10))
    assert info.value.code == "image_too_large"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_corrupt_images_are_refused_when_reduced_too(fmt: str) -> None:
    data = encode(fmt, (800, 800))
    with pytest.raises(InvalidValue) as info:
        read_image(data[: len(data) // 2], cover=(64, 64), param="last_image")
    assert (info.value.code, info.value.param) == ("invalid_image", "last_image")


# --- what is kept ---------------------------------------------------------------------------


def test_intake_keeps_a_small_image_as_sent() -> None:
    data = encode("JPEG", (640, 360))
    assert intake_image(data, max_pixels=40_000_000, cover=(1280, 720)) is data


@pytest.mark.parametrize(("fmt", "kept"), [("PNG", "PNG"), ("WEBP", "PNG"), ("JPEG", "JPEG")])
def test_intake_keeps_a_large_image_reduced(fmt: str, kept: str) -> None:
    data = encode(fmt, (3000, 3000), exif=oriented(3))
    stored = intake_image(data, max_pixels=40_000_000, cover=(320, 180))
    with Image.open(io.BytesIO(stored)) as image:
        assert (image.format, image.size) == (kept, (320, 320))
        # Upright already: no orientation left for a later decode to apply twice.
        assert image.getexif().get(0x0112) is None


def test_intake_refuses_what_does_not_decode() -> None:
    with pytest.raises(InvalidValue) as info:
        intake_image(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, max_pixels=1000, cover=(8, 8))
    assert info.value.code == "invalid_image"
