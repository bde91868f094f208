"""A burst of large input images raises a real server's peak memory by a bounded amount.

Eight concurrent submits of a 6000x6000 image (36 megapixels, under the 40 MP cap, a
small data URI) once decoded them all at full size at once, before credits were looked
at. The server's high-water mark (VmHWM) must now grow by at most MAX_GROWTH whether the
account has no credits (refused before any decode) or enough (decoded a few at a time,
reduced to the output size).
"""

from __future__ import annotations

import base64
import io
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.processes import Server, cli_json, environment, free_port

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmHWM from /proc"),
    pytest.mark.slow,  # a server process
]

SIDE = 6000
CONCURRENT = 8
MAX_GROWTH = 400 * 1024 * 1024
OUTPUT = {"model": "preview", "prompt": "intake", "duration": 1, "size": "1280x720"}
PRICE = 2  # 1 s at 720p


def memory(pid: int, field: str = "VmHWM") -> int:
    """A memory figure of the process from /proc, in bytes: VmHWM is the high-water mark
    of its resident memory, VmRSS the resident memory now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def data_uri(data: bytes, media_type: str) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def patterned_png() -> str:
    """6000x6000 of gradients: a PNG of ~180 KB that decodes to 36 megapixels."""
    x = (np.arange(SIDE, dtype=np.uint32) // 7 % 256).astype(np.uint8)
    y = (np.arange(SIDE, dtype=np.uint32) // 11 % 256).astype(np.uint8)
    pixels = np.empty((SIDE, SIDE, 3), np.uint8)
    pixels[..., 0] = x[None, :]
    pixels[..., 1] = y[:, None]
    pixels[..., 2] = x[None, :] ^ y[:, None]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", compress_level=6)
    return data_uri(buffer.getvalue(), "image/png")


def noisy_jpeg() -> str:
    """6000x6000 of coarse random noise: a JPEG of ~1.5 MB, nothing a codec can flatten."""
    rng = np.random.default_rng(7)
    coarse = Image.fromarray(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    coarse.resize((SIDE, SIDE), Image.Resampling.BILINEAR).save(buffer, "JPEG", quality=40)
    return data_uri(buffer.getvalue(), "image/jpeg")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Server, str, str]]:
    """A fresh server (SQLite, no generation workers: only the intake is measured), a
    funded account's key and a broke account's key."""
    root = tmp_path
    env = environment(
        root / "data",
        "",
        FRAMEGATE_WORKER_CONCURRENCY="0",
        FRAMEGATE_DEFAULT_MAX_CONCURRENT_VIDEOS="100",
    )
    funded = cli_json(env, "admin", "create-account", "--name", "funded", "--credits", "1000")
    broke = cli_json(env, "admin", "create-account", "--name", "broke", "--credits", "0")
    server = Server(env, free_port(), root / "server.log")
    server.start()
    try:
        yield server, funded["api_key"], broke["api_key"]
    finally:
        server.stop()


def submit(server: Server, api_key: str, image: str) -> int:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        response = client.post(
            "/v1/async/videos/generations",
            json={**OUTPUT, "input_image": image},
            headers={"Authorization": f"Bearer {api_key}"},
        )
        return response.status_code


def submit_burst(server: Server, api_key: str, image: str) -> list[int]:
    with ThreadPoolExecutor(CONCURRENT) as pool:
        return list(pool.map(lambda _: submit(server, api_key, image), range(CONCURRENT)))


def warm_up(server: Server, api_key: str) -> None:
    """One small image-to-video submit, so imports and first-use caches count as baseline."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "teal").save(buffer, "PNG")
    assert submit(server, api_key, data_uri(buffer.getvalue(), "image/png")) == 202


def mib(count: int) -> str:
    return f"{count / 2**20:.0f} MiB"


@pytest.mark.parametrize("image", [patterned_png, noisy_jpeg], ids=["png", "noisy-jpeg"])
def test_burst_of_large_images_keeps_peak_memory_bounded(
    server: tuple[Server, str, str], image: Callable[[], str]
) -> None:
    running, funded_key, broke_key = server
    assert running.process is not None
    pid = running.process.pid
    uri = image()
    warm_up(running, funded_key)
    baseline = memory(pid)

    refused = submit_burst(running, broke_key, uri)
    after_refused = memory(pid)
    accepted = submit_burst(running, funded_key, uri)
    after_accepted = memory(pid)

    print(
        f"\n{image.__name__}: {len(uri) / 1024:.0f} KiB data URI x {CONCURRENT}; peak RSS "
        f"{mib(baseline)} warm, +{mib(after_refused - baseline)} after the refused burst, "
        f"+{mib(after_accepted - baseline)} after the accepted one; RSS now "
        f"{mib(memory(pid, 'VmRSS'))}"
    )
    assert refused == [402] * CONCURRENT
    assert accepted == [202] * CONCURRENT
    assert after_refused - baseline <= MAX_GROWTH
    assert after_accepted - baseline <= MAX_GROWTH
