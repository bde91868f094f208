"""The built-in CPU preview engine (deterministic motion graphics, no weights)."""

from framegate.engines.preview.engine import PreviewEngine

__all__ = ["PreviewEngine"]
