"""The ``framegate`` command: serve the platform, administer it, and (through the SDK) use it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from framegate_client.cli import register_client_commands
from rich.table import Table

from framegate import __version__
from framegate.app import create_app
from framegate.cli.models import models_app
from framegate.cli.storage import storage_app
from framegate.cli.support import checked_settings, console, err_console, fail
from framegate.config import Settings
from framegate.db import transaction, upgrade_database
from framegate.dispatch.distributed import ClusterWorker, RouteSelectionError, select_routes
from framegate.exceptions import FramegateError
from framegate.keys.scopes import ALL_SCOPES
from framegate.kit.time import to_unix
from framegate.limits.service import PlanLimits
from framegate.runtime import Runtime

app = typer.Typer(
    help="framegate: a self-hostable video generation API platform.",
    no_args_is_help=True,
    add_completion=False,
)
admin_app = typer.Typer(help="Operator commands: accounts and credits.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys of an account.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
app.add_typer(keys_app, name="keys")
app.add_typer(storage_app, name="storage")
# generate, tasks, models, credits, estimate (the SDK's); `models` also pulls weights.
register_client_commands(app, models_app=models_app)

T = TypeVar("T")


def _run(work: Callable[[Runtime], Awaitable[T]]) -> T:
    """Build the runtime (migrating the database), run one operation, close it."""

    async def main() -> T:
        runtime = await Runtime.create(Settings())
        try:
            return await work(runtime)
        finally:
            await runtime.close()

    try:
        return asyncio.run(main())
    except FramegateError as exc:
        err_console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None


def _emit(payload: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    if as_json:
        typer.echo(json.dumps(payload))
    else:
        for line in lines:
            console.print(line)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Concurrent generation jobs in this process.")
    ] = None,
    with_worker: Annotated[
        bool,
        typer.Option(
            "--with-worker",
            help="Distributed mode: also serve the routes this machine can run (small "
            "deployments). Embedded mode always does.",
        ),
    ] = False,
) -> None:
    """Run the API: with the embedded worker pool (FRAMEGATE_DISPATCH=embedded, the
    default), or as an API node of a distributed deployment."""
    # Imported here: every other command starts faster without the server stack.
    import uvicorn

    overrides: dict[str, Any] = {}
    if workers is not None:
        overrides["worker_concurrency"] = workers
    settings = checked_settings(**overrides)
    listen_host = host or settings.host
    listen_port = port or settings.port

    async def count_accounts(runtime: Runtime) -> int:
        async with runtime.sessionmaker() as session:
            return len(await runtime.accounts.list_accounts(session))

    if _run(count_accounts) == 0:
        console.print(
            "[bold]No accounts yet.[/bold] Create one and get its first API key with:\n"
            f"  framegate admin create-account --name me --credits 1000\n"
            f"(data directory: {settings.data_dir.resolve()})"
        )
    role = " (API node)" if settings.is_distributed and not with_worker else ""
    base = f"http://{listen_host}:{listen_port}"
    console.print(f"framegate {__version__} listening on {base}{role}; console: {base}/console")
    uvicorn.run(
        create_app(settings, with_worker=with_worker),
        host=listen_host,
        port=listen_port,
        log_level=settings.log_level,
        access_log=False,
    )


@app.command()
def worker(
    routes: Annotated[
        str | None,
        typer.Option(
            help="Routes to serve: catalog ids or globs, comma-separated (e.g. 'wan-*,"
            "preview'). Default: every route whose engine is available on this machine."
        ),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Tasks run at once (default FRAMEGATE_WORKER_CONCURRENCY).")
    ] = None,
) -> None:
    """Run engines only, for a distributed deployment (FRAMEGATE_DISPATCH=distributed): take
    the jobs of the chosen routes from PostgreSQL until SIGTERM, then let running tasks
    finish (FRAMEGATE_WORKER_SHUTDOWN_SECONDS) or hand them back."""
    settings = checked_settings()
    if not settings.is_distributed:
        fail(
            "`framegate worker` serves a distributed deployment: set FRAMEGATE_DISPATCH=distributed"
        )
    # What the worker does (tasks stopped, jobs run again, leases lost) goes to stderr.
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    patterns = [p.strip() for p in routes.split(",") if p.strip()] if routes else None
    slots = concurrency if concurrency is not None else settings.worker_concurrency
    if slots < 1:
        fail("--concurrency must be at least 1")

    async def main() -> None:
        runtime = await Runtime.create(settings)
        try:
            chosen = select_routes(runtime, patterns)
            cluster = ClusterWorker(runtime, chosen, slots)
            console.print(
                f"framegate {__version__} worker {cluster.instance_id}: "
                f"{', '.join(r.id for r in chosen)} (concurrency {slots})"
            )
            await cluster.run()
        finally:
            await runtime.close()

    try:
        asyncio.run(main())
    except RouteSelectionError as exc:
        fail(str(exc))


@admin_app.command("create-account")
def create_account(
    name: Annotated[str, typer.Option(help="Account name.")],
    credits: Annotated[int, typer.Option(help="Opening credits.")] = 0,
    admin: Annotated[bool, typer.Option(help="Give the first key the admin scope.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create an account with opening credits and print its first API key (shown once)."""

    async def work(runtime: Runtime) -> dict[str, Any]:
        async with transaction(runtime.sessionmaker) as session:
            created = await runtime.accounts.create(
                session,
                name=name,
                credits=credits,
                scopes=list(ALL_SCOPES) if admin else None,
            )
            return {
                "account_id": created.account.id,
                "name": created.account.name,
                "credits": created.account.credit_balance,
                "api_key": created.key.secret,
                "api_key_id": created.key.key.id,
                "scopes": created.key.key.scopes,
            }

    result = _run(work)
    _emit(
        result,
        as_json,
        [
            f"account  {result['account_id']} ({result['name']}), {result['credits']} credits",
            f"api key  [bold]{result['api_key']}[/bold]",
            "Store the key now: it is not shown again.",
        ],
    )


@admin_app.command("grant")
def grant(
    account_id: Annotated[str, typer.Argument(help="Account id (acct_…).")],
    credits: Annotated[int, typer.Option(help="Credits to add.")],
    description: Annotated[str, typer.Option(help="Ledger note.")] = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Add credits to an account."""

    async def work(runtime: Runtime) -> dict[str, Any]:
        async with transaction(runtime.sessionmaker) as session:
            account = await runtime.accounts.grant(session, account_id, credits, description)
            balance = account.credit_balance
        return {"account_id": account_id, "credits": credits, "balance": balance}

    result = _run(work)
    _emit(result, as_json, [f"{account_id}: +{credits} credits, balance {result['balance']}"])


@admin_app.command("accounts")
def list_accounts(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List accounts."""

    async def work(runtime: Runtime) -> list[dict[str, Any]]:
        async with runtime.sessionmaker() as session:
            return [
                {"account_id": a.id, "name": a.name, "credits": a.credit_balance}
                for a in await runtime.accounts.list_accounts(session)
            ]

    rows = _run(work)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table("account", "name", "credits")
    for row in rows:
        table.add_row(row["account_id"], row["name"], str(row["credits"]))
    console.print(table)


@admin_app.command("set-plan")
def set_plan(
    name: Annotated[str, typer.Argument(help="Plan name.")],
    max_concurrent_videos: Annotated[int, typer.Option(help="Unfinished video tasks.")],
    max_concurrent_images: Annotated[int, typer.Option(help="Unfinished image tasks.")],
    requests_per_minute: Annotated[int, typer.Option(help="Requests per minute per key.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create or replace a plan (limits for every account on it)."""

    async def work(runtime: Runtime) -> dict[str, Any]:
        limits = PlanLimits(
            name=name,
            max_concurrent_videos=max_concurrent_videos,
            max_concurrent_images=max_concurrent_images,
            requests_per_minute=requests_per_minute,
        )
        async with transaction(runtime.sessionmaker) as session:
            await runtime.limits.save_plan(session, limits)
        return dataclasses.asdict(limits)

    result = _run(work)
    _emit(result, as_json, [f"plan {name}: {result}"])


@admin_app.command("assign-plan")
def assign_plan(
    account_id: Annotated[str, typer.Argument(help="Account id (acct_…).")],
    plan: Annotated[str, typer.Argument(help="Plan name.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Move an account to a plan (takes effect within a second on running servers)."""

    async def work(runtime: Runtime) -> dict[str, Any]:
        async with transaction(runtime.sessionmaker) as session:
            await runtime.accounts.update(session, account_id, plan=plan)
        return {"account_id": account_id, "plan": plan}

    result = _run(work)
    _emit(result, as_json, [f"{account_id} is on plan {plan}"])


@keys_app.command("create")
def create_key(
    account: Annotated[str, typer.Option(help="Account id (acct_…).")],
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    scope: Annotated[
        list[str] | None, typer.Option(help="Scope to grant (repeat); default all but admin.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create an API key for an account (the secret is shown once)."""

    async def work(runtime: Runtime) -> dict[str, Any]:
        async with transaction(runtime.sessionmaker) as session:
            await runtime.accounts.get(session, account)
            created = await runtime.keys.create(session, account, name=name, scopes=scope)
            return {
                "account_id": account,
                "api_key_id": created.key.id,
                "api_key": created.secret,
                "scopes": created.key.scopes,
            }

    result = _run(work)
    _emit(
        result,
        as_json,
        [f"key {result['api_key_id']}: [bold]{result['api_key']}[/bold] (shown once)"],
    )


@keys_app.command("list")
def list_keys(
    account: Annotated[str, typer.Option(help="Account id (acct_…).")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List an account's keys (never their secrets)."""

    async def work(runtime: Runtime) -> list[dict[str, Any]]:
        async with runtime.sessionmaker() as session:
            await runtime.accounts.get(session, account)
            return [
                {
                    "api_key_id": k.id,
                    "name": k.name,
                    "display": k.display,
                    "scopes": k.scopes,
                    "revoked_at": to_unix(k.revoked_at),
                }
                for k in await runtime.keys.list_keys(session, account)
            ]

    rows = _run(work)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table("key", "name", "hint", "scopes", "revoked")
    for row in rows:
        revoked = "yes" if row["revoked_at"] else ""
        table.add_row(
            row["api_key_id"], row["name"], row["display"], " ".join(row["scopes"]), revoked
        )
    console.print(table)


@keys_app.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="Key id (key_…).")],
    account: Annotated[str, typer.Option(help="Account id (acct_…).")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Revoke a key at once."""

    async def work(runtime: Runtime) -> dict[str, Any]:
        async with transaction(runtime.sessionmaker) as session:
            key = await runtime.keys.revoke(session, account, key_id, by=None)
            return {"api_key_id": key.id, "revoked_at": to_unix(key.revoked_at)}

    result = _run(work)
    _emit(result, as_json, [f"revoked {result['api_key_id']}"])


@app.command()
def migrate() -> None:
    """Apply pending database migrations (serve does this too)."""
    upgrade_database(Settings().resolved_database_url)
    console.print("database is up to date")
