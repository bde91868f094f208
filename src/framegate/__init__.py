"""framegate: a self-hostable video and image generation API platform."""

__version__ = "0.1.0"
