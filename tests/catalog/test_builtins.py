"""The built-in routes are data: the same routes, ids, prices and settings as the code that
built them did (a snapshot of that code's routes, dumped before they moved to YAML)."""

from __future__ import annotations

import json
from pathlib import Path

from framegate.catalog.builtins import load_builtin_routes

SNAPSHOT = Path(__file__).with_name("builtin_routes.json")


def test_builtin_routes_match_the_snapshot() -> None:
    expected = json.loads(SNAPSHOT.read_text())
    routes = [route.model_dump(mode="json") for route in load_builtin_routes()]
    assert [route["id"] for route in routes] == [route["id"] for route in expected]
    for route, snapshot in zip(routes, expected, strict=True):
        assert route == snapshot, route["id"]
