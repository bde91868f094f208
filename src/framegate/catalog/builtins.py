"""Routes every installation has, before the operator's catalog file is applied.

They are data (``builtins.yaml``, shipped in the package), read with the same schema as
the operator's catalog file.
"""

from __future__ import annotations

from importlib import resources

import yaml

from framegate.catalog.schemas import CatalogFile, ModelRoute


def load_builtin_routes() -> list[ModelRoute]:
    text = resources.files("framegate.catalog").joinpath("builtins.yaml").read_text("utf-8")
    return CatalogFile.model_validate(yaml.safe_load(text)).routes


BUILTIN_ROUTES: list[ModelRoute] = load_builtin_routes()
