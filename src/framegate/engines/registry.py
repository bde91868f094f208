"""Maps engine names (as catalog routes name them) to engine instances."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from framegate.engines.base import Engine
from framegate.engines.preview import PreviewEngine
from framegate.engines.vendors.base import VendorEngine

# Local engines are awaited (generate); vendor engines are polled (submit/poll).
AnyEngine = Engine | VendorEngine

if TYPE_CHECKING:
    from framegate.catalog.schemas import ModelRoute
    from framegate.config import Settings


class EngineRegistry:
    def __init__(self, engines: Iterable[AnyEngine]) -> None:
        self._engines = {engine.name: engine for engine in engines}

    def get(self, name: str) -> AnyEngine | None:
        return self._engines.get(name)

    def is_available(self, name: str, settings: Mapping[str, Any]) -> bool:
        engine = self._engines.get(name)
        return engine is not None and engine.is_available(settings)

    def names(self) -> list[str]:
        return sorted(self._engines)

    def check_route(self, route: ModelRoute) -> None:
        """Let the route's engine refuse settings it cannot run (raises ValueError)."""
        check = getattr(self._engines.get(route.engine), "check_route", None)
        if check is not None:
            check(route)

    def is_remote(self, name: str) -> bool:
        """Whether the engine is an upstream vendor (polled, never awaited)."""
        return bool(getattr(self._engines.get(name), "remote", False))

    def refuse(self, route: ModelRoute, shape: Any) -> None:
        """Let the route's engine refuse a request it cannot serve (raises InvalidValue)."""
        refuse = getattr(self._engines.get(route.engine), "refuse", None)
        if refuse is not None:
            refuse(route.settings, shape)

    async def prepare(self) -> None:
        """Engines' slow one-time set-up (the diffusers engine imports torch and probes its
        GPUs), on worker threads, once the catalog has checked its routes."""
        for engine in self._engines.values():
            prepare = getattr(engine, "prepare", None)
            if prepare is not None:
                await asyncio.to_thread(prepare)

    def close(self) -> None:
        for engine in self._engines.values():
            close = getattr(engine, "close", None)
            if close is not None:
                close()


def default_engines(settings: Settings) -> EngineRegistry:
    """The engines every installation has: the CPU preview, diffusers (whose routes are
    available only where torch, diffusers and the weights are) and the upstream vendors
    (available once their keys are set)."""
    from framegate.engines.diffusers import create_engine
    from framegate.engines.vendors import vendor_engines

    return EngineRegistry([PreviewEngine(), create_engine(settings), *vendor_engines(settings)])
