"""`framegate storage`: check the configured storage, and move local files to a bucket."""

from __future__ import annotations

import asyncio
import json
import mimetypes
import secrets
import time
from enum import StrEnum
from typing import Annotated, Any

import httpx
import typer

from framegate.cli.support import checked_settings, console, err_console, fail
from framegate.runtime import make_storage
from framegate.storage.base import Storage
from framegate.storage.local import LocalStorage

storage_app = typer.Typer(
    help="Where outputs and uploads live: check it, move local files to S3.",
    no_args_is_help=True,
)
PROBE_PREFIX = "framegate-check"
FETCH_TIMEOUT_SECONDS = 30.0
# What `migrate` copies: outputs and thumbnails, kept input images, uploads.
MIGRATED_PREFIXES = ("outputs/", "inputs/", "uploads/")


class Target(StrEnum):
    s3 = "s3"


def _problem(exc: BaseException) -> str:
    """One line about what went wrong; the client's messages name no credential."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"


@storage_app.command("check")
def check(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Write, read, presign (object storage: fetch the URL) and delete a probe object."""
    settings = checked_settings()
    storage = make_storage(settings)
    steps: list[dict[str, Any]] = []
    failed = asyncio.run(_check(storage, steps))
    if as_json:
        typer.echo(json.dumps({"storage": storage.describe(), "ok": not failed, "steps": steps}))
    else:
        console.print(f"storage: {storage.describe()}", soft_wrap=True)
        for step in steps:
            mark = "[green]ok[/green]" if step["ok"] else "[red]failed[/red]"
            console.print(f"  {step['step']:<8} {mark} {step['detail']}", soft_wrap=True)
    if failed:
        raise typer.Exit(1)


async def _check(storage: Storage, steps: list[dict[str, Any]]) -> bool:
    """Run the probe's steps in order, stopping at the first failure; True when one failed."""
    key = f"{PROBE_PREFIX}/{secrets.token_hex(8)}.txt"
    body = f"framegate storage check {secrets.token_hex(8)}\n".encode()

    async def write() -> str:
        await storage.put_bytes(key, body, "text/plain")
        return f"{len(body)} bytes to {key}"

    async def read() -> str:
        if await storage.get_bytes(key) != body:
            raise RuntimeError("the object read back differs from what was written")
        return "the same bytes came back"

    async def presign() -> str:
        url = storage.presigned_url(key)
        if url is None:
            return "local storage: files are served by the API under /v1/files"
        async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_SECONDS) as client:
            response = await client.get(url)
        if response.status_code != 200 or response.content != body:
            raise RuntimeError(
                f"GET of the presigned URL answered {response.status_code}: {response.text[:200]}"
            )
        return f"fetched by its presigned URL ({response.headers.get('content-type')})"

    async def delete() -> str:
        await storage.delete_prefix(key)
        if await storage.exists(key):
            raise RuntimeError("the object is still there after its deletion")
        return "deleted"

    for name, step in (("write", write), ("read", read), ("presign", presign), ("delete", delete)):
        started = time.perf_counter()
        try:
            detail = await step()
        except Exception as exc:
            steps.append({"step": name, "ok": False, "detail": _problem(exc)})
            if name != "write":
                await _remove_quietly(storage, key)
            return True
        elapsed = (time.perf_counter() - started) * 1000
        steps.append({"step": name, "ok": True, "detail": f"{detail} in {elapsed:.0f} ms"})
    return False


async def _remove_quietly(storage: Storage, key: str) -> None:
    try:
        await storage.delete_prefix(key)
    except Exception:
        return


@storage_app.command("migrate")
def migrate(
    to: Annotated[Target, typer.Option("--to", help="Where the files go (FRAMEGATE_S3_*).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List, copy nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Copy local outputs, input images and uploads to the S3 bucket under the same keys.

    One way, and safe to run again (objects already there with the same size are skipped).
    Task and upload rows keep their keys, and URLs are made on every read, so nothing in
    the database changes: restart with FRAMEGATE_STORAGE=s3 and the files are served from
    the bucket. The local files stay until you remove them.
    """
    settings = checked_settings()
    if not settings.s3_bucket:
        fail("set FRAMEGATE_S3_BUCKET (and FRAMEGATE_S3_ENDPOINT_URL off AWS) first", code=2)
    source = LocalStorage(settings.storage_dir)
    target = make_storage(settings.model_copy(update={"storage": to.value}))
    report = asyncio.run(_migrate(source, target, dry_run=dry_run))
    report.update(source=source.describe(), target=target.describe(), dry_run=dry_run)
    if as_json:
        typer.echo(json.dumps(report))
    else:
        verb = "would copy" if dry_run else "copied"
        console.print(
            f"{verb} {report['copied']} files ({report['bytes']} bytes) from "
            f"{report['source']} to {report['target']}; {report['skipped']} already there",
            soft_wrap=True,
        )
        for failure in report["failed"]:
            err_console.print(f"[red]failed:[/red] {failure}", soft_wrap=True)
    if report["failed"]:
        raise typer.Exit(1)


async def _migrate(source: LocalStorage, target: Storage, *, dry_run: bool) -> dict[str, Any]:
    report: dict[str, Any] = {"copied": 0, "skipped": 0, "bytes": 0, "failed": []}
    for prefix in MIGRATED_PREFIXES:
        present = {key: size async for key, size in target.objects(prefix)}
        async for key, size in source.objects(prefix):
            path = source.local_path(key)
            assert path is not None
            if present.get(key) == size:
                report["skipped"] += 1
                continue
            if not dry_run:
                try:
                    await target.put_file(key, path, _content_type(key))
                except Exception as exc:
                    report["failed"].append(f"{key}: {_problem(exc)}")
                    continue
            report["copied"] += 1
            report["bytes"] += size
    return report


def _content_type(key: str) -> str:
    guessed, _ = mimetypes.guess_type(key)
    return guessed or "application/octet-stream"
