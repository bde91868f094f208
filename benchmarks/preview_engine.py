"""Time the preview engine end to end (render + encode) on this machine.

    python benchmarks/preview_engine.py [--repeats 5] [--image photo.jpg]

Renders a 5 s, 1280x720, 24 fps clip (120 frames) as text-to-video and as image-to-video
(pan/zoom and fixed camera), and prints wall-clock and CPU seconds per run next to the
goal of under 3 s for the text-to-video clip. Wall time is what a caller waits; CPU time
(all threads) is the work done, and stays meaningful when other processes share the
machine, so the load average is printed as well.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import av
import numpy as np
from _common import cpu_model, own_cpu_seconds
from PIL import Image, ImageDraw

from framegate.engines.base import GenerationRequest
from framegate.engines.preview import PreviewEngine
from framegate.engines.preview.engine import _render_size
from framegate.engines.preview.frames import gbrp_frame
from framegate.engines.preview.scene import Grid, Scene

WIDTH, HEIGHT, FPS, SECONDS = 1280, 720, 24, 5
FRAMES = FPS * SECONDS
GOAL_SECONDS = 3.0
PROMPT = "a red fox running through a snowy forest at golden hour"


@dataclass
class Timings:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    size: int = 0

    def line(self, label: str) -> str:
        wall, cpu = self.wall, self.cpu
        text = (
            f"{label:<28} wall min {min(wall):5.2f} s  median {statistics.median(wall):5.2f} s"
            f"   cpu min {min(cpu):5.2f} s  median {statistics.median(cpu):5.2f} s"
        )
        return f"{text}   {self.size / 1024:6.0f} KiB" if self.size else text


def x264_stamp(mp4: Path) -> tuple[str, str]:
    """x264's version and the options that matter for speed, from the stream's SEI stamp."""
    match = re.search(rb"x264 - core (\d+)[^\x00]*?options: ([^\x00]*)", mp4.read_bytes())
    if match is None:
        return "unknown", "unknown"
    options = dict(
        item.split("=", 1)
        for item in match.group(2).decode(errors="replace").split()
        if "=" in item
    )
    keys = ("crf", "me", "subme", "rc_lookahead", "mbtree", "threads", "bframes")
    return match.group(1).decode(), " ".join(f"{k}={options[k]}" for k in keys if k in options)


def test_photo(width: int = 1920, height: int = 1080) -> Image.Image:
    """A deterministic, detailed input: soft colour fields, hard shapes and fine texture."""
    scene = Scene.from_prompt("benchmark input photo", 7, width / height)
    base = scene.render_rgb(Grid.build(width, height), 0.0).astype(np.int16)
    rng = np.random.default_rng(7)
    texture = rng.normal(0.0, 9.0, size=(height, width, 1)).astype(np.int16)
    image = Image.fromarray(np.clip(base + texture, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = int(rng.integers(20, 180))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.rectangle((x, y, x + size, y + size // 2), fill=colour)
        else:
            draw.ellipse((x, y, x + size, y + size), outline=colour, width=4)
    return image


def time_engine(request: GenerationRequest, repeats: int, workdir: Path) -> Timings:
    engine = PreviewEngine()
    timings = Timings()
    for attempt in range(repeats):
        target = workdir / f"{request.task_id}-{attempt}"
        wall, cpu = time.perf_counter(), own_cpu_seconds()
        job = engine.generate(request, target, lambda fraction: None, lambda: False)
        result = asyncio.run(job)
        timings.wall.append(time.perf_counter() - wall)
        timings.cpu.append(own_cpu_seconds() - cpu)
        timings.size = result.outputs[0].path.stat().st_size
    return timings


def time_render_only(repeats: int) -> Timings:
    """Scene rendering alone (what the engine does per frame before the encoder)."""
    scene = Scene.from_prompt(PROMPT, 1, WIDTH / HEIGHT)
    grid = Grid.build(*_render_size(WIDTH, HEIGHT))
    timings = Timings()
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), own_cpu_seconds()
        for i in range(FRAMES):
            gbrp_frame(scene.render_planes(grid, i / FPS))
        timings.wall.append(time.perf_counter() - wall)
        timings.cpu.append(own_cpu_seconds() - cpu)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--image", type=Path, help="input image for image-to-video")
    args = parser.parse_args()

    photo = Image.open(args.image).convert("RGB") if args.image else test_photo()
    base = GenerationRequest(
        task_id="t2v",
        kind="video",
        prompt=PROMPT,
        width=WIDTH,
        height=HEIGHT,
        seed=1,
        duration=SECONDS,
        fps=FPS,
        num_frames=FRAMES,
    )
    cases = {
        "text-to-video": base,
        "image-to-video (pan/zoom)": replace(base, task_id="i2v", input_image=photo),
        "image-to-video (fixed)": replace(
            base, task_id="i2v-fixed", input_image=photo, camera_fixed=True
        ),
    }

    with tempfile.TemporaryDirectory(prefix="framegate-bench-") as tmp:
        workdir = Path(tmp)
        # One untimed run warms imports, allocators and x264's tables.
        time_engine(replace(base, task_id="warm-up"), 1, workdir)
        results = {name: time_engine(req, args.repeats, workdir) for name, req in cases.items()}
        render = time_render_only(args.repeats)
        x264_core, x264_options = x264_stamp(workdir / "t2v-0" / "output.mp4")

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print("framegate preview engine benchmark")
    print(f"  machine   {platform.platform()} ({platform.machine()})")
    print(f"  cpu       {cpu_model()}, {os.cpu_count()} logical cores")
    print(f"  python    {sys.version.split()[0]} ({platform.python_implementation()})")
    libavcodec = ".".join(map(str, av.library_versions["libavcodec"]))
    print(f"  pyav      {av.__version__}, libavcodec {libavcodec}")
    print(f"  libx264   core {x264_core}; t2v stream: {x264_options}")
    print(f"  numpy     {np.__version__}")
    print(f"  load avg  {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (after the runs)")
    print(
        f"  clip      {SECONDS} s, {WIDTH}x{HEIGHT}, {FPS} fps = {FRAMES} frames, "
        f"{args.repeats} runs each"
    )
    print()
    for name, timings in results.items():
        print("  " + timings.line(name))
    print("  " + render.line("  t2v scene rendering alone"))
    print()
    t2v = results["text-to-video"].wall
    best, median = min(t2v), statistics.median(t2v)
    verdict = "meets" if median < GOAL_SECONDS else "misses"
    print(
        f"  goal: text-to-video under {GOAL_SECONDS:.0f} s end to end; "
        f"best {best:.2f} s, median {median:.2f} s: {verdict} it"
    )


if __name__ == "__main__":
    main()
