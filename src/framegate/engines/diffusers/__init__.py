"""Open-weight models through diffusers (torch and diffusers are imported lazily)."""

from framegate.engines.diffusers.engine import DiffusersEngine, create_engine

__all__ = ["DiffusersEngine", "create_engine"]
