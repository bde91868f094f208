"""Maps engine names (as catalog routes name them) to engine instances."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from framegate.engines.base import Engine
from framegate.engines.preview import PreviewEngine

if TYPE_CHECKING:
    from framegate.catalog.schemas import ModelRoute
    from framegate.config import Settings


class EngineRegistry:
    def __init__(self, engines: Iterable[Engine]) -> None:
        self._engines = {engine.name: engine for engine in engines}

    def get(self, name: str) -> Engine | None:
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

    def close(self) -> None:
        for engine in self._engines.values():
            close = getattr(engine, "close", None)
            if close is not None:
                close()


def default_engines(settings: Settings) -> EngineRegistry:
    """The engines every installation has: the CPU preview and diffusers (whose routes
    are available only where torch, diffusers and the weights are)."""
    from framegate.engines.diffusers import create_engine

    return EngineRegistry([PreviewEngine(), create_engine(settings)])
