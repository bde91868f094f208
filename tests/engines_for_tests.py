"""Engines the tests plug into the registry: one that fails, one that waits for a gate."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from framegate.engines.base import (
    CancelCheck,
    EngineError,
    GenerationRequest,
    GenerationResult,
    ProgressCallback,
    TaskCancelledError,
)
from framegate.engines.preview import PreviewEngine


class FailingEngine:
    """Reports some progress, then fails the way a broken model would."""

    name = "failing"

    def is_available(self, settings: Mapping[str, Any]) -> bool:
        return True

    async def generate(
        self,
        request: GenerationRequest,
        workdir: Path,
        progress: ProgressCallback,
        cancelled: CancelCheck,
    ) -> GenerationResult:
        progress(0.3)
        await asyncio.sleep(0.05)
        raise EngineError("the model crashed", code="engine_error")


class GatedEngine:
    """Holds each job until the test opens the gate, then renders with the preview engine."""

    name = "gated"

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started = 0
        self.stopped = 0  # jobs that saw their task cancelled and gave up their slot
        self._preview = PreviewEngine()

    def is_available(self, settings: Mapping[str, Any]) -> bool:
        return True

    async def generate(
        self,
        request: GenerationRequest,
        workdir: Path,
        progress: ProgressCallback,
        cancelled: CancelCheck,
    ) -> GenerationResult:
        self.started += 1
        progress(0.1)
        while not self.gate.is_set():
            # Like a real engine between steps: stop promptly once the task is cancelled.
            if cancelled():
                self.stopped += 1
                raise TaskCancelledError
            await asyncio.sleep(0.02)
        return await self._preview.generate(request, workdir, progress, cancelled)
