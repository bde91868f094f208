"""Maps engine names (as catalog routes name them) to engine instances."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from framegate.engines.base import Engine
from framegate.engines.preview import PreviewEngine


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


def default_engines() -> EngineRegistry:
    return EngineRegistry([PreviewEngine()])
