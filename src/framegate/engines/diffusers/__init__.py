"""Open-weight models through diffusers (torch and diffusers are imported lazily).

The package imports nothing until an attribute is asked for, so ``accel`` (which the GPU
benchmark imports on machines with only torch and diffusers) loads without the engine's
other dependencies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from framegate.engines.diffusers.engine import DiffusersEngine, create_engine

__all__ = ["DiffusersEngine", "create_engine"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from framegate.engines.diffusers import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
