"""The engine contract: a local :class:`Engine` or a :class:`RemoteEngine`.

A local engine (preview, diffusers) is awaited: the worker hands it a fully validated
:class:`GenerationRequest`, a scratch directory, a progress callback and a cancellation
check; it writes its output files into the scratch directory and returns a
:class:`GenerationResult`; the worker stores the files and finalizes the task. The local
engines here subclass :class:`LocalEngine`, which hands them the four as one
:class:`GenerationJob`, with the helpers that write their image and video outputs.

A remote engine (the upstream vendors) is polled: ``submit`` starts a job and returns an
:class:`UpstreamJob`, each later claim of the parked task makes one ``poll``, and once the
job succeeded ``download`` fetches the result (dispatch/upstream.py). The registry tells
the two apart (:meth:`EngineRegistry.remote`). Engines never touch the database.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from PIL import Image

from framegate.engines.encode import save_jpeg, save_png

if TYPE_CHECKING:
    import numpy as np

    from framegate.kit.safe_fetch import FetchPolicy

OutputKind = Literal["video", "image"]

# Called with a fraction in [0, 1]; safe to call from any thread.
ProgressCallback = Callable[[float], None]
# Returns True once the task has been cancelled; engines check it between steps/frames.
CancelCheck = Callable[[], bool]

# The long side of the local engines' JPEG thumbnails, in pixels.
THUMBNAIL_SIDE = 512


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

    @classmethod
    def video(
        cls,
        path: Path,
        *,
        width: int,
        height: int,
        thumbnail_path: Path,
        num_frames: int,
        fps: int,
    ) -> GenerationResult:
        """One MP4 of ``num_frames`` frames at ``fps`` with its thumbnail."""
        return cls(
            [
                OutputFile(
                    path=path,
                    content_type="video/mp4",
                    width=width,
                    height=height,
                    thumbnail_path=thumbnail_path,
                    duration=num_frames / fps,
                    fps=fps,
                    num_frames=num_frames,
                )
            ]
        )


class EngineError(Exception):
    """A generation failed. ``retriable`` errors may be tried again on another attempt."""

    def __init__(self, message: str, *, code: str = "engine_error", retriable: bool = False):
        super().__init__(message)
        self.message = message
        self.code = code
        self.retriable = retriable


# framegate error codes for upstream failures.
UPSTREAM_ERROR = "upstream_error"  # the vendor failed the job (or answered nonsense)
UPSTREAM_TIMEOUT = "upstream_timeout"  # no answer in time / the job never finished
UPSTREAM_RATE_LIMITED = "upstream_rate_limited"  # 429: retried later
UPSTREAM_UNAVAILABLE = "upstream_unavailable"  # 5xx, connection errors: retried later
UPSTREAM_AUTH = "upstream_auth"  # the operator's key was refused
MODERATION_BLOCKED = "moderation_blocked"  # the vendor's safety filter refused it
UPSTREAM_INVALID = "upstream_invalid_request"  # the vendor refused the parameters


class UpstreamError(EngineError):
    """A vendor call failed. ``retriable``: try again later (after ``retry_after`` s)."""

    def __init__(
        self,
        message: str,
        *,
        code: str = UPSTREAM_ERROR,
        retriable: bool = False,
        retry_after: float | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, code=code, retriable=retriable)
        self.retry_after = retry_after
        self.status_code = status_code


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


@dataclass(frozen=True, slots=True)
class GenerationJob:
    """One ``generate`` call, handed as one through a local engine's steps."""

    request: GenerationRequest
    workdir: Path
    progress: ProgressCallback
    cancelled: CancelCheck

    def save_image(self, pixels: np.ndarray, path: Path, thumbnail_path: Path) -> OutputFile:
        """Save one image output (``H x W x 3`` uint8) as a PNG, with its JPEG thumbnail."""
        save_png(pixels, path)
        save_jpeg(pixels, thumbnail_path, max_side=THUMBNAIL_SIDE)
        height, width = int(pixels.shape[0]), int(pixels.shape[1])
        return OutputFile(path, "image/png", width, height, thumbnail_path)

    def finish_video(
        self,
        video_path: Path,
        thumbnail: np.ndarray | Image.Image,
        *,
        width: int,
        height: int,
        num_frames: int,
        fps: int,
    ) -> GenerationResult:
        """Save the video's thumbnail beside it, report the job done and return the MP4
        as its one output."""
        thumbnail_path = self.workdir / "thumbnail.jpg"
        save_jpeg(thumbnail, thumbnail_path, max_side=THUMBNAIL_SIDE)
        self.progress(1.0)
        return GenerationResult.video(
            video_path,
            width=width,
            height=height,
            thumbnail_path=thumbnail_path,
            num_frames=num_frames,
            fps=fps,
        )


class LocalEngine(Engine):
    """The engines that run here (preview, diffusers): ``generate`` hands the call to
    :meth:`run` as one :class:`GenerationJob`."""

    async def generate(
        self,
        request: GenerationRequest,
        workdir: Path,
        progress: ProgressCallback,
        cancelled: CancelCheck,
    ) -> GenerationResult:
        return await self.run(GenerationJob(request, workdir, progress, cancelled))

    @abstractmethod
    async def run(self, job: GenerationJob) -> GenerationResult:
        """Produce the job's outputs into its workdir; raise EngineError or
        TaskCancelledError."""


@dataclass(frozen=True, slots=True)
class UpstreamJob:
    """What ``submit`` returns and ``poll`` gets back: the vendor's id plus anything else
    the engine needs to poll (an operation name, a status URL...). JSON-serialisable."""

    id: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UpstreamStatus:
    """One poll's answer."""

    state: Literal["pending", "succeeded", "failed"]
    # 0..1 when the vendor reports progress.
    progress: float | None = None
    # On success: where the video is (downloaded by ``download``).
    video_url: str | None = None
    # On failure: what went wrong, with a framegate code.
    error: UpstreamError | None = None
    # The vendor's hint for the next poll, in seconds.
    poll_after: float | None = None


@runtime_checkable
class RemoteEngine(Protocol):
    """An engine whose work happens elsewhere: submitted once, then polled between parks.
    Every call raises :class:`UpstreamError` (``retriable`` ones are tried again later)."""

    name: str
    # Seconds between polls when the vendor gives no hint (the poller backs off from it).
    poll_interval: float

    def is_available(self, settings: Mapping[str, Any]) -> bool: ...

    async def submit(self, request: GenerationRequest) -> UpstreamJob:
        """Start the job upstream."""
        ...

    async def poll(self, job: UpstreamJob, request: GenerationRequest) -> UpstreamStatus:
        """One short status request."""
        ...

    async def cancel(self, job: UpstreamJob, request: GenerationRequest) -> None:
        """Best effort: stop the job upstream (the task was cancelled)."""
        ...

    async def download(self, url: str, destination: Path, policy: FetchPolicy) -> None:
        """Fetch the finished result into ``destination``."""
        ...
