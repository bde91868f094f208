"""The diffusers engine: open-weight video and image models on the operator's GPUs.

Routes name a diffusers pipeline class and a weights directory (see settings.py and
docs/models.md). Each worker process loads a route's pipeline on first use and keeps it
warm (pipelines.py); inference runs on a thread per device so the event loop, and with
it the API and the lease heartbeats, stays responsive. Devices are keyed by their
normalised name (``cuda`` is ``cuda:0``): one slot semaphore, one thread pool and one
memory budget per GPU. One job runs per device at a time unless
FRAMEGATE_DIFFUSERS_JOBS_PER_DEVICE says otherwise; even then one pipeline (with the
variants built over its components) runs one request at a time.

Progress comes from ``callback_on_step_end``: the denoising steps fill most of the bar,
the VAE decode and the H.264 encode the last slice. The same callback checks for
cancellation at every step. Frames are converted to uint8 on the device a chunk at a time
and encoded on the CPU through the encoder every engine uses (H100/H200 have no NVENC),
after the device's slot is released, so the next job's denoising overlaps this encode.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps
from pydantic import ValidationError

from framegate.engines.base import (
    EngineError,
    GenerationJob,
    GenerationRequest,
    GenerationResult,
    LocalEngine,
    TaskCancelledError,
)
from framegate.engines.diffusers.cache import Geometry, PipelineCache
from framegate.engines.diffusers.noise import initial_latents, size_multiple
from framegate.engines.diffusers.pipelines import (
    LoadedPipeline,
    out_of_memory_error,
    out_of_memory_types,
    release_device_memory,
)
from framegate.engines.diffusers.settings import DiffusersSettings, has_weights
from framegate.engines.encode import encode_mp4

log = logging.getLogger(__name__)

__all__ = ["DiffusersEngine"]

# Share of the progress bar for the denoising steps; the VAE decode and the encode get
# the rest.
STEP_SHARE = 0.85


class DiffusersEngine(LocalEngine):
    name = "diffusers"

    def __init__(
        self,
        *,
        models_dir: Path,
        max_pipelines: int = 2,
        memory_budget_bytes: int | None = None,
        jobs_per_device: int = 1,
        cache: PipelineCache | None = None,
    ) -> None:
        self.models_dir = models_dir
        self.cache = cache or PipelineCache(
            max_pipelines=max_pipelines, budget_bytes=memory_budget_bytes
        )
        self._jobs_per_device = max(1, jobs_per_device)
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._executors: dict[str, ThreadPoolExecutor] = {}
        self._devices: dict[str, bool] = {}
        # Devices the catalog's routes name (check_route), probed by prepare().
        self._route_devices: set[str] = set()
        # Asked once: GET /v1/models checks every route's availability on each call.
        self._diffusers_installed = importlib.util.find_spec("diffusers") is not None

    # -- catalog -------------------------------------------------------------------------

    @staticmethod
    def parse(settings: Mapping[str, Any]) -> DiffusersSettings:
        try:
            return DiffusersSettings.model_validate(dict(settings))
        except ValidationError as exc:
            raise EngineError(
                f"invalid diffusers settings: {exc}", code="invalid_settings"
            ) from exc

    def check_route(self, route: Any) -> None:
        """Refuse, when the catalog loads, a route whose geometry the model cannot make.

        Raises ValueError naming the setting to fix.
        """
        try:
            settings = DiffusersSettings.model_validate(route.settings)
        except ValidationError as exc:
            raise ValueError(f"settings: {exc}") from exc
        self._route_devices.add(settings.device)
        caps = route.capabilities
        rule = settings.rule
        if (route.kind == "image") != (settings.family == "image"):
            raise ValueError(
                f"family {settings.family!r} does not generate {route.kind}s; "
                "use family 'image' for image routes and a video family for video routes"
            )
        sizes = caps.sizes or []
        for size in sizes:
            width, height = (int(side) for side in size.lower().split("x"))
            if width % rule.size_multiple or height % rule.size_multiple:
                raise ValueError(
                    f"capabilities.sizes: {size} is not a multiple of {rule.size_multiple} "
                    f"on both sides, which {settings.family} models need"
                )
        if not sizes and caps.size_multiple % rule.size_multiple:
            raise ValueError(
                f"capabilities.size_multiple must be a multiple of {rule.size_multiple} for "
                f"{settings.family} models; got {caps.size_multiple}"
            )
        for index, shape in enumerate(settings.warmup):
            if shape.width % rule.size_multiple or shape.height % rule.size_multiple:
                raise ValueError(
                    f"settings.warmup[{index}]: {shape.width}x{shape.height} is not a multiple "
                    f"of {rule.size_multiple} on both sides, which {settings.family} models need"
                )
            if route.kind == "video" and (shape.num_frames - 1) % rule.frame_step:
                raise ValueError(
                    f"settings.warmup[{index}]: num_frames must be {rule.frame_step}k+1 for "
                    f"{settings.family} models; got {shape.num_frames}"
                )
        if route.kind == "video" and caps.frame_step % rule.frame_step:
            raise ValueError(
                f"capabilities.frame_step must be a multiple of {rule.frame_step} for "
                f"{settings.family} models (frame counts {rule.frame_step}k+1); "
                f"got {caps.frame_step}"
            )

    def is_available(self, settings: Mapping[str, Any]) -> bool:
        try:
            parsed = self.parse(settings)
        except EngineError:
            return False
        if not self._diffusers_installed:
            return False
        if not has_weights(parsed.weights_dir(self.models_dir)):
            return False
        return self._device_usable(parsed.device)

    def prepare(self) -> None:
        """Import torch and probe the devices the catalog's routes name: seconds of work,
        done once at start-up on a worker thread (EngineRegistry.prepare) so that no API
        request (GET /v1/models asks is_available) waits for it on the event loop."""
        if not self._diffusers_installed:
            return
        for device in sorted(self._route_devices):
            self._device_usable(device)

    def _device_usable(self, device: str) -> bool:
        usable = self._devices.get(device)
        if usable is None:
            import torch

            kind, _, index = device.partition(":")
            if kind == "cuda":
                usable = torch.cuda.is_available() and int(index or 0) < torch.cuda.device_count()
            elif kind == "mps":
                usable = torch.backends.mps.is_available()
            else:
                usable = True
            self._devices[device] = usable
        return usable

    # -- generation ----------------------------------------------------------------------

    async def run(self, job: GenerationJob) -> GenerationResult:
        settings = self.parse(job.request.settings)
        stop = threading.Event()
        cancelled = job.cancelled

        def should_stop() -> bool:
            return stop.is_set() or cancelled()

        # The threads' steps stop on a shutdown (``stop``) as on a cancel.
        job = replace(job, cancelled=should_stop)
        async with self._slot(settings.device):
            if cancelled():
                raise TaskCancelledError
            pixels = await self._in_thread(
                stop, self._executor(settings.device), self._infer, job, settings
            )
        # The device is free for the next job while this one encodes on the CPU.
        return await self._in_thread(stop, None, self._encode, pixels, job, settings)

    @staticmethod
    async def _in_thread(
        stop: threading.Event, executor: ThreadPoolExecutor | None, fn: Any, *args: Any
    ) -> Any:
        future = asyncio.get_running_loop().run_in_executor(executor, fn, *args)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # Shutting down: stop at the next step (or frame), and hold on (to the device's
            # slot, too) until the thread has let go, through further cancels too.
            stop.set()
            while not future.done():
                with contextlib.suppress(BaseException):
                    await asyncio.shield(future)
            raise

    def _slot(self, device: str) -> asyncio.Semaphore:
        slot = self._slots.get(device)
        if slot is None:
            slot = self._slots[device] = asyncio.Semaphore(self._jobs_per_device)
        return slot

    def _executor(self, device: str) -> ThreadPoolExecutor:
        executor = self._executors.get(device)
        if executor is None:
            executor = ThreadPoolExecutor(
                max_workers=self._jobs_per_device, thread_name_prefix=f"diffusers-{device}"
            )
            self._executors[device] = executor
        return executor

    def close(self) -> None:
        for executor in self._executors.values():
            executor.shutdown(wait=True, cancel_futures=True)
        self._executors.clear()
        self.cache.clear()

    def _infer(self, job: GenerationJob, settings: DiffusersSettings) -> Any:
        """Run the model on the device; returns uint8 pixels (frames or images) on the CPU.

        Out of memory, the device's other idle pipelines are evicted and the request tried
        once more before it fails.
        """
        request, should_stop = job.request, job.cancelled
        variant = settings.image_pipeline if request.input_image is not None else None
        geometry = _geometry(request)
        weights_dir = settings.weights_dir(self.models_dir)
        oom = out_of_memory_types()
        for attempt in (1, 2):
            out_of_memory = False
            try:
                with self.cache.lease(
                    settings, weights_dir, variant=variant, geometry=geometry, stop=should_stop
                ) as loaded:
                    if should_stop():
                        raise TaskCancelledError
                    return self._run_pipeline(loaded, settings, job, geometry)
            except (TaskCancelledError, EngineError):
                raise
            except oom:
                # Handled below, once this frame no longer holds the traceback (and with
                # it the tensors that filled the device).
                out_of_memory = True
            except Exception as exc:
                log.exception("diffusers task %s failed", request.task_id)
                raise EngineError(
                    f"The model failed to generate this request ({type(exc).__name__}); "
                    "the credits were refunded.",
                    code="engine_error",
                ) from None
            assert out_of_memory
            release_device_memory()
            if attempt == 1 and self.cache.evict_idle(settings.device, keep=settings.cache_key()):
                log.warning(
                    "diffusers task %s: device out of memory; evicted idle pipelines, retrying",
                    request.task_id,
                )
                continue
            break
        log.warning("diffusers task %s: device out of memory", request.task_id)
        if self._jobs_per_device == 1:
            # It ran alone on the device: the next request of this geometry is refused
            # up front instead of failing after minutes of work.
            self.cache.record_out_of_memory(settings, geometry)
        raise out_of_memory_error()

    def _run_pipeline(
        self,
        loaded: LoadedPipeline,
        settings: DiffusersSettings,
        job: GenerationJob,
        geometry: Geometry,
    ) -> Any:
        import torch

        request = job.request
        multiple = size_multiple(loaded.pipe)
        if multiple and (request.width % multiple or request.height % multiple):
            raise EngineError(
                f"{settings.pipeline} makes sizes in multiples of {multiple}, not "
                f"{request.width}x{request.height} (fix the route's capabilities: sizes or "
                f"size_multiple {multiple})",
                code="invalid_settings",
            )
        arguments = self._call_arguments(loaded, settings, job)
        if request.kind == "video":
            arguments["num_frames"] = request.num_frames
            if "frame_rate" in loaded.call_parameters:
                arguments["frame_rate"] = request.fps
            if request.input_image is not None:
                arguments["image"] = _fit(request.input_image, request.width, request.height)
            if request.last_image is not None:
                if "last_image" not in loaded.call_parameters:
                    raise EngineError(
                        f"{settings.pipeline} does not take a last frame", code="invalid_request"
                    )
                arguments["last_image"] = _fit(request.last_image, request.width, request.height)
        else:
            arguments["num_images_per_prompt"] = request.n
        latents = initial_latents(
            loaded.pipe,
            width=request.width,
            height=request.height,
            num_frames=max(1, request.num_frames),
            batch=1 if request.kind == "video" else request.n,
            seed=request.seed,
        )
        if latents is not None and "latents" in loaded.call_parameters:
            arguments["latents"] = latents
        # The peak is device-wide: measured only where one job runs per device.
        measure = (
            settings.device_type == "cuda"
            and torch.cuda.is_available()
            and self._jobs_per_device == 1
        )
        with loaded.shared.lock:
            loaded.arm_offload()
            if measure:
                torch.cuda.reset_peak_memory_stats(settings.device)
                before = torch.cuda.memory_allocated(settings.device)
            try:
                with torch.inference_mode():
                    output = loaded.pipe(**arguments)
                    pixels = output.frames[0] if request.kind == "video" else output.images
                    del output
                    pixels = to_uint8(pixels)
            except BaseException:
                # The pipeline resets its cache hooks and re-arms CPU offload only at the
                # end of a call that returns: do it here for one that raised (cancel, out of
                # memory), or the next request starts from this one's stale state.
                with contextlib.suppress(Exception):
                    loaded.pipe.maybe_free_model_hooks()
                raise
            if measure:
                peak = torch.cuda.max_memory_allocated(settings.device) - before
                if settings.offload == "model":
                    # The component on the device was offloaded before the call: its
                    # weights (counted already) are in the peak.
                    peak -= loaded.memory_bytes
                self.cache.record_peak(settings, geometry, peak)
        return pixels

    def _call_arguments(
        self, loaded: LoadedPipeline, settings: DiffusersSettings, job: GenerationJob
    ) -> dict[str, Any]:
        import torch

        request = job.request
        # The request's route settings, not the loaded pipeline's: routes that share a
        # warm pipeline can differ in steps, guidance and call arguments.
        steps = settings.steps

        def on_step_end(
            pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]
        ) -> dict[str, Any]:
            if job.cancelled():
                raise TaskCancelledError
            total = getattr(pipe, "_num_timesteps", None) or steps
            job.progress(STEP_SHARE * min(1.0, (step + 1) / total))
            return {}

        arguments: dict[str, Any] = {
            "prompt": request.prompt,
            "height": request.height,
            "width": request.width,
            "num_inference_steps": steps,
            "guidance_scale": settings.guidance_scale,
            # For whatever the pipeline draws itself; the starting latents come from the CPU
            # (noise.py), so a seed gives the same video on every machine.
            "generator": torch.Generator(settings.device).manual_seed(request.seed),
            "output_type": "pt",
            "callback_on_step_end": on_step_end,
            "callback_on_step_end_tensor_inputs": ["latents"],
        }
        if request.negative_prompt:
            arguments["negative_prompt"] = request.negative_prompt
        if settings.guidance_scale_2 is not None:
            arguments["guidance_scale_2"] = settings.guidance_scale_2
        if settings.max_sequence_length is not None:
            arguments["max_sequence_length"] = settings.max_sequence_length
        arguments.update(settings.call_args)
        unknown = sorted(set(arguments) - loaded.call_parameters)
        if any(name in settings.call_args or name == "guidance_scale_2" for name in unknown):
            raise EngineError(
                f"{settings.pipeline} does not take {', '.join(unknown)} "
                "(fix the route's call_args / guidance_scale_2 settings)",
                code="invalid_settings",
            )
        return {k: v for k, v in arguments.items() if k in loaded.call_parameters}

    # -- encoding (CPU, after the device slot is released) ------------------------------

    def _encode(
        self, pixels: Any, job: GenerationJob, settings: DiffusersSettings
    ) -> GenerationResult:
        if job.request.kind == "video":
            return self._encode_video(pixels, job, settings)
        outputs = []
        for index, image in enumerate(pixels):
            if job.cancelled():
                raise TaskCancelledError
            path = job.workdir / f"image-{index}.png"
            thumbnail = job.workdir / f"thumbnail-{index}.jpg"
            outputs.append(job.save_image(image, path, thumbnail))
        job.progress(1.0)
        return GenerationResult(outputs)

    @staticmethod
    def _encode_video(
        frames: Any, job: GenerationJob, settings: DiffusersSettings
    ) -> GenerationResult:
        count, height, width = int(frames.shape[0]), int(frames.shape[1]), int(frames.shape[2])
        video_path = job.workdir / "video.mp4"
        encode_share = 1.0 - STEP_SHARE

        def on_frame(done: int) -> None:
            if job.cancelled():
                raise TaskCancelledError
            job.progress(STEP_SHARE + encode_share * 0.95 * done / count)

        encode_mp4(
            iter(frames),
            video_path,
            width=width,
            height=height,
            fps=job.request.fps,
            crf=settings.encode.crf,
            preset=settings.encode.preset,
            on_frame=on_frame,
        )
        return job.finish_video(
            video_path, frames[0], width=width, height=height, num_frames=count, fps=job.request.fps
        )


def _geometry(request: GenerationRequest) -> Geometry:
    if request.kind == "video":
        return Geometry(request.width, request.height, max(1, request.num_frames))
    return Geometry(request.width, request.height, 1, max(1, request.n))


def _fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale and centre-crop to the output's aspect, so the model gets no distortion."""
    return ImageOps.fit(image.convert("RGB"), (width, height), method=Image.Resampling.LANCZOS)


# Bytes of float32 pixels converted at a time: the only temporary on the device.
UINT8_CHUNK_BYTES = 64 * 1024**2


def to_uint8(tensor: Any, *, chunk_bytes: int = UINT8_CHUNK_BYTES) -> Any:
    """(..., channels, height, width) floats in [0, 1] on the device -> numpy uint8
    (..., height, width, channels) on the CPU.

    A few frames at a time: each chunk is scaled in float32 (in place when the tensor is
    float32 already, so the tensor is consumed) and its bytes copied into one preallocated
    CPU array, so the device holds at most one float32 chunk besides the input.
    """
    import numpy as np
    import torch

    *lead, channels, height, width = tensor.shape
    images = tensor.reshape(-1, channels, height, width)
    count = int(images.shape[0])
    out = np.empty((count, height, width, channels), dtype=np.uint8)
    target = torch.from_numpy(out)
    step = max(1, chunk_bytes // max(1, channels * height * width * 4))
    for start in range(0, count, step):
        chunk = images[start : start + step].to(dtype=torch.float32)
        chunk.clamp_(0, 1).mul_(255).round_()
        target[start : start + step].copy_(chunk.to(dtype=torch.uint8).movedim(1, -1))
        del chunk
    return out.reshape(*lead, height, width, channels)


def create_engine(settings: Any) -> DiffusersEngine:
    """The engine as framegate's settings configure it."""
    budget = settings.diffusers_memory_budget_gb
    return DiffusersEngine(
        models_dir=settings.resolved_models_dir,
        max_pipelines=settings.diffusers_max_pipelines,
        memory_budget_bytes=None if budget is None else int(budget * 1024**3),
        jobs_per_device=settings.diffusers_jobs_per_device,
    )
