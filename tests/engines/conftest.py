"""Fixtures of the engine tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.engines.tiny_pipelines import BUILDERS


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Each pipeline built once for the module, on first use."""
    built: dict[str, Path] = {}

    def get(key: str) -> Path:
        if key not in built:
            built[key] = BUILDERS[key](tmp_path_factory.mktemp(key))
        return built[key]

    return get
