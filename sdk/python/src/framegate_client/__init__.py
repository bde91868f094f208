"""Python client for the framegate video generation API."""

from . import _exceptions, _models
from ._async_client import AsyncFramegate
from ._client import Framegate
from ._exceptions import *  # noqa: F403  (the errors: _exceptions.__all__)
from ._models import *  # noqa: F403  (the response objects: _models.__all__)

__version__ = "0.1.0"

__all__ = ["AsyncFramegate", "Framegate"]
__all__ += _exceptions.__all__
__all__ += _models.__all__
