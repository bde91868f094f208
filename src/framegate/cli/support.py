"""What every `framegate` command shares: its consoles, one-line failures, and settings that
are refused in one line when they cannot work together."""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from rich.console import Console

from framegate.config import ConfigurationError, Settings

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (no traceback)."""
    err_console.print(f"[red]error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(code)


def checked_settings(**overrides: Any) -> Settings:
    """The settings, or one error line (and exit 2) when they cannot work together."""
    settings = Settings(**overrides)
    try:
        settings.check()
    except ConfigurationError as exc:
        fail(str(exc), code=2)
    return settings
