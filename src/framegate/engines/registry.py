"""Maps engine names (as catalog routes name them) to engine instances."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from framegate.engines.base import Engine, RemoteEngine
from framegate.engines.preview import PreviewEngine

# Local engines are awaited (generate); remote ones (the vendors) are polled (submit/poll).
AnyEngine = Engine | RemoteEngine

if TYPE_CHECKING:
    from framegate.catalog.schemas import ModelRoute
    from framegate.config import Settings


class EngineRegistry:
    def __init__(self, engines: Iterable[AnyEngine]) -> None:
        self._engines: dict[str, AnyEngine] = {}
        # Told apart once, by the protocol each implements: the worker dispatches on this.
        self._remote: dict[str, RemoteEngine] = {}
        self._local: dict[str, Engine] = {}
        for engine in engines:
            self._engines[engine.name] = engine
            if isinstance(engine, RemoteEngine):
                self._remote[engine.name] = engine
            else:
                self._local[engine.name] = engine

    def get(self, name: str) -> AnyEngine | None:
        return self._engines.get(name)

    def remote(self, name: str) -> RemoteEngine | None:
        """The engine called ``name`` when it is remote (submitted, then polled)."""
        return self._remote.get(name)

    def local(self, name: str) -> Engine | None:
        """The engine called ``name`` when it is local (awaited)."""
        return self._local.get(name)

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
