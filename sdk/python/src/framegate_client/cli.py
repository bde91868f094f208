"""Client commands of the ``framegate`` command, built on this SDK only.

``register_client_commands(app)`` adds ``generate``, ``models``, ``credits``, ``estimate``
and a ``tasks`` group to a Typer app. Needs the ``cli`` extra (typer and rich); the rest of
the SDK never imports this module.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ._client import Framegate
from ._exceptions import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    FramegateError,
    InsufficientCreditsError,
    NotFoundError,
    UnprocessableEntityError,
)
from ._models import Task

__all__ = ["register_client_commands"]

ApiKey = Annotated[
    str | None,
    typer.Option("--api-key", envvar="FRAMEGATE_API_KEY", help="API key.", show_envvar=True),
]
BaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        envvar="FRAMEGATE_BASE_URL",
        help="Server URL (default http://127.0.0.1:8000).",
        show_envvar=True,
    ),
]
Timeout = Annotated[float, typer.Option("--timeout", help="Seconds to wait for the task.")]


def _reason(error: FramegateError) -> str:
    """One line saying what went wrong, from the SDK's typed error."""
    if isinstance(error, AuthenticationError):
        return f"invalid API key (401): {error.message}"
    if isinstance(error, InsufficientCreditsError):
        return f"insufficient credits (402): {error.message}"
    if isinstance(error, UnprocessableEntityError):
        field = f"invalid {error.param}" if error.param else "invalid request"
        return f"{field} (422): {error.message}"
    if isinstance(error, NotFoundError):
        return f"not found (404): {error.message}"
    if isinstance(error, APIError):
        code = f" {error.code}" if error.code else ""
        return f"server answered {error.status_code}{code}: {error.message}"
    return str(error)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn SDK errors into one ``error: <reason>`` line on stderr and exit status 1."""
    try:
        yield
    except FramegateError as error:
        line = " ".join(_reason(error).split())
        typer.echo(f"error: {line}", err=True)
        raise typer.Exit(1) from None


def _client(api_key: str | None, base_url: str | None) -> Framegate:
    return Framegate(api_key=api_key or None, base_url=base_url or None)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("elapsed"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )


def _follow(client: Framegate, task: Task, timeout: float) -> Task:
    """Show a progress bar while the task runs; return it once terminal (fresh URLs)."""
    deadline = time.monotonic() + timeout
    with _progress() as progress:
        bar = progress.add_task(task.status, total=100, completed=task.progress)
        try:
            for snapshot in client.tasks.stream(task.id, timeout=timeout):
                done = 100 if snapshot.status == "completed" else snapshot.progress
                progress.update(bar, description=snapshot.status, completed=done)
                if snapshot.is_terminal():
                    break
        except (httpx.HTTPError, APIConnectionError):
            pass  # tasks.wait below falls back to polling
        remaining = max(1.0, deadline - time.monotonic())
        final = client.tasks.wait(task.id, timeout=remaining)
        done = 100 if final.status == "completed" else final.progress
        progress.update(bar, description=final.status, completed=done)
    return final


def _require_completed(task: Task) -> None:
    if task.status == "completed":
        return
    why = f": {task.error.code}: {task.error.message}" if task.error else ""
    typer.echo(f"error: task {task.id} {task.status}{' '.join(why.split())}", err=True)
    raise typer.Exit(1)


def _task_lines(task: Task) -> list[str]:
    lines = [
        f"id:           {task.id}",
        f"type:         {task.type}",
        f"model:        {task.model}",
        f"status:       {task.status}",
        f"progress:     {task.progress}%",
        f"credits used: {task.credits_used} (reserved {task.credits_reserved})",
        f"created_at:   {task.created_at}",
    ]
    prompt = task.input.get("prompt")
    if prompt:
        lines.append(f"prompt:       {prompt}")
    if task.error is not None:
        lines.append(f"error:        {task.error.code}: {task.error.message}")
    if task.result is not None:
        lines.extend(f"output:       {item.url}" for item in task.result.data)
    return lines


def generate(
    prompt: Annotated[str, typer.Argument(help="What the video shows.")],
    image: Annotated[
        str | None, typer.Option("--image", help="First frame: a file path or a URL.")
    ] = None,
    model: Annotated[str, typer.Option("--model", help="Model id or alias.")] = "preview",
    duration: Annotated[int | None, typer.Option("--duration", help="Seconds.")] = None,
    size: Annotated[str | None, typer.Option("--size", help="WxH, e.g. 1280x720.")] = None,
    fps: Annotated[int | None, typer.Option("--fps", help="Frames per second.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="MP4 path (default <task id>.mp4).")
    ] = None,
    timeout: Timeout = 600,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Generate a video, show its progress, save the MP4."""
    with _errors(), _client(api_key, base_url) as client:
        task = client.videos.create(
            model, prompt, duration=duration, size=size, fps=fps, seed=seed, input_image=image
        )
        try:
            final = _follow(client, task, timeout)
        except KeyboardInterrupt:
            hint = f"framegate tasks watch {task.id}"
            typer.echo(f"error: interrupted; task {task.id} keeps running ({hint})", err=True)
            raise typer.Exit(130) from None
        _require_completed(final)
        path = final.save(output or Path(f"{final.id}.mp4"))
        typer.echo(f"saved:        {path}")
        typer.echo(f"task:         {final.id}")
        typer.echo(f"credits used: {final.credits_used}")


def models(api_key: ApiKey = None, base_url: BaseUrl = None) -> None:
    """List the models of the catalog."""
    with _errors(), _client(api_key, base_url) as client:
        for model in client.models.list().data:
            state = "available" if model.available else "unavailable"
            aliases = f"  aliases: {', '.join(model.aliases)}" if model.aliases else ""
            typer.echo(f"{model.id:<24} {model.kind:<6} {state}{aliases}")


def credits(api_key: ApiKey = None, base_url: BaseUrl = None) -> None:
    """Show the account's credit balance."""
    with _errors(), _client(api_key, base_url) as client:
        balance = client.credits.retrieve()
        typer.echo(f"available: {balance.available}")
        typer.echo(f"held:      {balance.held}")


def estimate(
    model: Annotated[str, typer.Option("--model", help="Model id or alias.")] = "preview",
    duration: Annotated[int | None, typer.Option("--duration", help="Seconds.")] = None,
    size: Annotated[str | None, typer.Option("--size", help="WxH.")] = None,
    fps: Annotated[int | None, typer.Option("--fps", help="Frames per second.")] = None,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """What a video request would cost, without running it."""
    with _errors(), _client(api_key, base_url) as client:
        quote = client.estimates.create(model, duration=duration, size=size, fps=fps)
        typer.echo(f"credits:   {quote.credits}")
        typer.echo(f"size:      {quote.width}x{quote.height} ({quote.resolution_tier})")
        if quote.num_frames is not None:
            typer.echo(f"frames:    {quote.num_frames} at {quote.fps} fps")
        typer.echo(f"about:     {quote.estimated_seconds} s")


def tasks_list(
    limit: Annotated[int, typer.Option("--limit", help="How many, newest first.")] = 20,
    status: Annotated[str | None, typer.Option("--status", help="Only this status.")] = None,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """List the account's tasks, newest first."""
    with _errors(), _client(api_key, base_url) as client:
        page = client.tasks.list(limit=limit, status=status)
        for task in page.data:
            typer.echo(
                f"{task.id}  {task.status:<10} {task.model:<12} {task.progress:>3}%  "
                f"{task.credits_used} credits"
            )


def tasks_show(
    task_id: Annotated[str, typer.Argument(help="Task id.")],
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Show one task."""
    with _errors(), _client(api_key, base_url) as client:
        for line in _task_lines(client.tasks.retrieve(task_id)):
            typer.echo(line)


def tasks_cancel(
    task_id: Annotated[str, typer.Argument(help="Task id.")],
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Cancel a queued or processing task (its credits are released)."""
    with _errors(), _client(api_key, base_url) as client:
        task = client.tasks.cancel(task_id)
        typer.echo(f"{task.id}: {task.status}")


def tasks_watch(
    task_id: Annotated[str, typer.Argument(help="Task id.")],
    timeout: Timeout = 600,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Follow a task's progress until it is terminal."""
    with _errors(), _client(api_key, base_url) as client:
        final = _follow(client, client.tasks.retrieve(task_id), timeout)
        for line in _task_lines(final):
            typer.echo(line)
        _require_completed(final)


def register_client_commands(app: typer.Typer, *, models_app: typer.Typer | None = None) -> None:
    """Add the client commands (generate, models, credits, estimate, tasks) to ``app``.

    With ``models_app`` (a group with subcommands of its own), ``models`` without a
    subcommand lists the catalog.
    """
    app.command("generate")(generate)
    if models_app is None:
        app.command("models")(models)
    else:

        @models_app.callback(invoke_without_command=True)
        def models_group(
            ctx: typer.Context, api_key: ApiKey = None, base_url: BaseUrl = None
        ) -> None:
            """List the models of the catalog (through the API), or run a subcommand."""
            if ctx.invoked_subcommand is None:
                models(api_key, base_url)

        app.add_typer(models_app, name="models")
    app.command("credits")(credits)
    app.command("estimate")(estimate)
    tasks_app = typer.Typer(help="Tasks of the account (API client).", no_args_is_help=True)
    tasks_app.command("list")(tasks_list)
    tasks_app.command("show")(tasks_show)
    tasks_app.command("cancel")(tasks_cancel)
    tasks_app.command("watch")(tasks_watch)
    app.add_typer(tasks_app, name="tasks")
