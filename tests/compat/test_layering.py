"""The dialects translate and call services: no module under framegate.compat reaches the
database, storage or the task lifecycle itself, and nothing in framegate.kit imports a
dialect (the error-prefix table is installed by framegate.api)."""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import framegate.compat
import framegate.kit
from framegate.compat.pixverse.schemas import MODERATION_CODES, pixverse_size
from framegate.engines.base import MODERATION_BLOCKED
from framegate.engines.vendors.pixverse import PIXVERSE_SIZES

FORBIDDEN_IN_COMPAT = (
    "sqlalchemy",
    "framegate.db",
    "framegate.storage",
    "framegate.tasks.lifecycle",
)


def _imports(package: object) -> dict[str, set[str]]:
    """Every module under ``package`` and the modules it imports (absolute names)."""
    found: dict[str, set[str]] = {}
    path = Path(package.__path__[0])  # type: ignore[attr-defined]
    prefix = f"{package.__name__}."  # type: ignore[attr-defined]
    for info in pkgutil.walk_packages([str(path)], prefix):
        relative = info.name.removeprefix(prefix).replace(".", "/")
        file = path / relative / "__init__.py" if info.ispkg else path / f"{relative}.py"
        names: set[str] = set()
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        found[info.name] = names
    return found


def _under(name: str, roots: tuple[str, ...]) -> bool:
    return any(name == root or name.startswith(f"{root}.") for root in roots)


def test_compat_imports_no_database_storage_or_lifecycle() -> None:
    modules = _imports(framegate.compat)
    assert len(modules) >= 16  # four dialects of four modules each, at least
    offending = {
        module: sorted(name for name in names if _under(name, FORBIDDEN_IN_COMPAT))
        for module, names in modules.items()
    }
    assert {module: names for module, names in offending.items() if names} == {}


def test_kit_imports_no_dialect() -> None:
    offending = {
        module: sorted(name for name in names if _under(name, ("framegate.compat",)))
        for module, names in _imports(framegate.kit).items()
    }
    assert {module: names for module, names in offending.items() if names} == {}


def test_pixverse_dialect_sizes_and_codes_match_the_vendor_engine() -> None:
    # The dialect keeps its own copy of what PixVerse's API documents; the engine that
    # calls PixVerse must agree with it.
    assert {pair: pixverse_size(*pair) for pair in PIXVERSE_SIZES.values()} == {
        pair: size for size, pair in PIXVERSE_SIZES.items()
    }
    assert MODERATION_BLOCKED in MODERATION_CODES
