"""The engine protocol: what every engine (preview, diffusers, vendors) implements.

The worker hands an engine a fully validated :class:`GenerationRequest`, a scratch
directory, a progress callback and a cancellation check. The engine writes its output
files into the scratch directory and returns a :class:`GenerationResult`; the worker
stores the files and finalizes the task. Engines never touch the database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from PIL import Image

OutputKind = Literal["video", "image"]

# Called with a fraction in [0, 1]; safe to call from any thread.
ProgressCallback = Callable[[float], None]
# Returns True once the task has been cancelled; engines check it between steps/frames.
CancelCheck = Callable[[], bool]


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    task_id: str
    kind: OutputKind
    prompt: str
    width: int
    height: int
    seed: int
    # Video only (ignored for images): seconds, frames per second and the exact frame count.
    duration: float = 0.0
    fps: int = 0
    num_frames: int = 0
    negative_prompt: str | None = None
    # Decoded RGB input for image-to-video (or image edits); None for text-to-X.
    input_image: Image.Image | None = None
    # Decoded RGB last frame for first+last-frame video (with input_image as the first).
    last_image: Image.Image | None = None
    # Signed URLs of the stored input images under FRAMEGATE_PUBLIC_URL, for vendors that
    # take images only by URL (None when no public URL is configured).
    input_image_url: str | None = None
    last_image_url: str | None = None
    camera_fixed: bool = False
    # Number of images for image generation.
    n: int = 1
    # The route's engine settings from the catalog (engine specific).
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutputFile:
    path: Path
    content_type: str
    width: int
    height: int
    thumbnail_path: Path | None = None
    # Video only.
    duration: float | None = None
    fps: int | None = None
    num_frames: int | None = None


@dataclass(frozen=True, slots=True)
class GenerationResult:
    outputs: list[OutputFile]


class EngineError(Exception):
    """A generation failed. ``retriable`` errors may be tried again on another attempt."""

    def __init__(self, message: str, *, code: str = "engine_error", retriable: bool = False):
        super().__init__(message)
        self.message = message
        self.code = code
        self.retriable = retriable


class TaskCancelledError(Exception):
    """Raised by an engine when the cancel check turned true mid-generation."""


class Engine(Protocol):
    """An engine turns a request into files. ``generate`` must not block the event loop."""

    name: str

    def is_available(self, settings: Mapping[str, Any]) -> bool:
        """Whether a route configured with these settings can run here (weights, keys...)."""
        ...

    async def generate(
        self,
        request: GenerationRequest,
        workdir: Path,
        progress: ProgressCallback,
        cancelled: CancelCheck,
    ) -> GenerationResult:
        """Produce the outputs into ``workdir``; raise EngineError or TaskCancelledError."""
        ...
