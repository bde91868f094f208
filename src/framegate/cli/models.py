"""``framegate models pull|local``: open weights for the diffusers routes of the catalog.

Weights are downloaded only here, by the operator, on a host that can reach the hub;
never at import time and never inside a request. Serving machines load them from
FRAMEGATE_MODELS_DIR (or the route's local directory) with no network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from framegate.catalog.schemas import ModelRoute
from framegate.catalog.service import CatalogError, load_routes
from framegate.config import Settings
from framegate.engines.diffusers.settings import DiffusersSettings, has_weights

models_app = typer.Typer(
    help="Models: list the catalog (through the API), pull and check open weights."
)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _routes(settings: Settings) -> list[ModelRoute]:
    try:
        return load_routes(settings.catalog_file)
    except CatalogError as exc:
        raise _fail(str(exc)) from None


def _diffusers_route(settings: Settings, name: str) -> tuple[ModelRoute, DiffusersSettings]:
    routes = _routes(settings)
    route = next(
        (r for r in routes if name.lower() in {r.id, *(a.lower() for a in r.aliases)}), None
    )
    local = sorted(r.id for r in routes if r.engine == "diffusers")
    if route is None:
        raise _fail(f"no route {name!r} in the catalog; routes with weights: {', '.join(local)}")
    if route.engine != "diffusers":
        raise _fail(
            f"route {route.id!r} runs on the {route.engine!r} engine, which has no weights to "
            f"pull; routes with weights: {', '.join(local)}"
        )
    try:
        return route, DiffusersSettings.model_validate(route.settings)
    except ValidationError as exc:
        raise _fail(f"route {route.id!r} has invalid settings: {exc}") from None


def _size_on_disk(directory: Path) -> int:
    if not directory.is_dir():
        return 0
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())


@models_app.command("pull")
def pull(
    route_name: Annotated[str, typer.Argument(metavar="ROUTE", help="Route id or alias.")],
    revision: Annotated[
        str | None, typer.Option(help="Branch, tag or commit (default: the route's revision).")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="HF_TOKEN", help="Hub token for gated repositories (or HF_TOKEN)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Download a route's weights from the hub into FRAMEGATE_MODELS_DIR."""
    settings = Settings()
    route, options = _diffusers_route(settings, route_name)
    target = options.weights_dir(settings.resolved_models_dir)
    if not options.is_repo_id:
        raise _fail(
            f"route {route.id!r} loads its weights from the local directory {target}; "
            "copy a save_pretrained directory there (nothing to pull)"
        )
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError:
        raise _fail(
            "huggingface_hub is not installed; install framegate with the diffusers extra: "
            "pip install 'framegate[diffusers]'"
        ) from None
    target.mkdir(parents=True, exist_ok=True)
    try:
        path = snapshot_download(
            repo_id=options.weights,
            revision=revision or options.revision,
            local_dir=target,
            token=token,
            allow_patterns=options.allow_patterns,
        )
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        raise _fail(f"could not download {options.weights}: {exc}") from None
    if not has_weights(Path(path)):
        raise _fail(
            f"{options.weights} is not a diffusers pipeline repository (no model_index.json); "
            "pick the repository with the -Diffusers layout"
        )
    result: dict[str, Any] = {
        "route": route.id,
        "repo_id": options.weights,
        "path": str(Path(path).resolve()),
        "bytes": _size_on_disk(Path(path)),
    }
    if as_json:
        typer.echo(json.dumps(result))
    else:
        typer.echo(f"pulled {options.weights} for {route.id}: {result['path']}")
        typer.echo(f"size: {result['bytes'] / 1024**3:.2f} GiB")


@models_app.command("local")
def local(
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """The catalog's open-weight routes: where their weights go and whether they are there."""
    settings = Settings()
    rows: list[dict[str, Any]] = []
    for route in _routes(settings):
        if route.engine != "diffusers":
            continue
        options = DiffusersSettings.model_validate(route.settings)
        directory = options.weights_dir(settings.resolved_models_dir)
        present = has_weights(directory)
        rows.append(
            {
                "route": route.id,
                "pipeline": options.pipeline,
                "weights": options.weights,
                "path": str(directory),
                "present": present,
                "bytes": _size_on_disk(directory) if present else 0,
                "device": options.device,
            }
        )
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for row in rows:
        state = f"{row['bytes'] / 1024**3:7.2f} GiB" if row["present"] else "    missing"
        typer.echo(f"{row['route']:<24} {state}  {row['device']:<7} {row['path']}")
