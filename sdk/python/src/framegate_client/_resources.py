"""The resources of both clients, each method written once.

A method returns the :class:`Call` it makes, or an operation (a generator of I/O steps) when
it takes more than one request; ``Framegate`` runs it with blocking I/O, ``AsyncFramegate``
awaits it (see :mod:`._operations`).
"""

from __future__ import annotations

import builtins
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx

from ._base import (
    InputImage,
    SSEParser,
    backoff_intervals,
    classify_input_image,
    drop_none,
    is_event_stream,
    task_payload,
    upload_file_tuple,
)
from ._exceptions import APIConnectionError, WaitTimeoutError, error_from_response
from ._models import (
    APIKey,
    APIKeyList,
    CreditBalance,
    Estimate,
    ImagesResponse,
    LedgerPage,
    Model,
    ModelList,
    Task,
    TaskList,
    Upload,
)
from ._operations import (
    Call,
    Close,
    Drain,
    Emit,
    Next,
    Opened,
    Operation,
    Sleep,
    iterating,
    operation,
)

if TYPE_CHECKING:
    from ._base_client import BaseClient

C = TypeVar("C", bound="BaseClient[Any]", covariant=True)


class Resource(Generic[C]):
    """A group of API methods of a client."""

    def __init__(self, client: C) -> None:
        self._client = client


def upload_call(
    file: str | Path | bytes, purpose: str | None, filename: str | None
) -> Call[Upload]:
    """The multipart ``POST /v1/uploads`` of a path or bytes."""
    name, content = upload_file_tuple(file, filename)
    data = drop_none({"purpose": purpose})
    return Call(Upload, "POST", "/v1/uploads", files={"file": (name, content)}, data=data)


class Uploads(Resource[C]):
    """``POST /v1/uploads``."""

    @operation
    def create(
        self,
        file: str | Path | bytes,
        *,
        purpose: str | None = None,
        filename: str | None = None,
    ) -> Call[Upload]:
        """Upload a file (a path or bytes) as the multipart field ``file``."""
        return upload_call(file, purpose, filename)

    @operation
    def retrieve(self, upload_id: str) -> Call[Upload]:
        """An upload, with a fresh signed URL."""
        return Call(Upload, "GET", f"/v1/uploads/{upload_id}")


class Videos(Resource[C]):
    """Video generation."""

    def _input_image(self, value: InputImage | None) -> Operation[str | None]:
        if value is None:
            return None
        action, target = classify_input_image(value)
        if action == "pass":
            return str(target)
        upload = yield from self._client._call(upload_call(target, "input_image", None))
        return upload.id

    @operation
    def create(
        self,
        model: str,
        prompt: str,
        *,
        duration: int | None = None,
        size: str | None = None,
        resolution: str | None = None,
        aspect_ratio: str | None = None,
        fps: int | None = None,
        input_image: InputImage | None = None,
        negative_prompt: str | None = None,
        seed: int | None = None,
        camera_fixed: bool | None = None,
        webhook_url: str | None = None,
        metadata: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Operation[Task]:
        """Submit a video task (``POST /v1/async/videos/generations``); returns it queued.

        ``input_image`` may be a URL, data URI or upload id (sent as is), or a path or bytes
        (uploaded first through ``/v1/uploads``).
        """
        body = drop_none(
            {
                "model": model,
                "prompt": prompt,
                "duration": duration,
                "size": size,
                "resolution": resolution,
                "aspect_ratio": aspect_ratio,
                "fps": fps,
                "input_image": (yield from self._input_image(input_image)),
                "negative_prompt": negative_prompt,
                "seed": seed,
                "camera_fixed": camera_fixed,
                "webhook_url": webhook_url,
                "metadata": metadata,
            }
        )
        path = "/v1/async/videos/generations"
        call = Call(Task, "POST", path, json=body, idempotency_key=idempotency_key)
        return (yield from self._client._call(call))

    @operation
    def create_and_wait(
        self, /, model: str, prompt: str, *, timeout: float = 600, **kwargs: Any
    ) -> Operation[Task]:
        """Submit a video task and wait until it is terminal (see :meth:`Tasks.wait`)."""
        task = yield from Videos.create.steps(self, model, prompt, **kwargs)
        return (yield from Tasks.wait.steps(Tasks(self._client), task.id, timeout=timeout))


class Images(Resource[C]):
    """Image generation."""

    @operation
    def generate(
        self,
        model: str,
        prompt: str,
        *,
        n: int = 1,
        size: str | None = None,
        negative_prompt: str | None = None,
        seed: int | None = None,
        webhook_url: str | None = None,
        metadata: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Operation[ImagesResponse | Task]:
        """Generate images; a :class:`Task` comes back instead when they take too long."""
        body = drop_none(
            {
                "model": model,
                "prompt": prompt,
                "n": n,
                "size": size,
                "seed": seed,
                "negative_prompt": negative_prompt,
                "webhook_url": webhook_url,
                "metadata": metadata,
            }
        )
        response = yield from self._client._send(
            "POST", "/v1/images/generations", json=body, idempotency_key=idempotency_key
        )
        if response.status_code == 202:
            return self._client._parse(Task, response.json())
        return ImagesResponse.model_validate(response.json())


class Tasks(Resource[C]):
    """Tasks: retrieve, list, cancel, wait, stream."""

    @operation
    def retrieve(self, task_id: str) -> Call[Task]:
        """A task (fresh signed output URLs)."""
        return Call(Task, "GET", f"/v1/tasks/{task_id}")

    @operation
    def list(
        self,
        *,
        limit: int | None = None,
        after: str | None = None,
        status: str | None = None,
        model: str | None = None,
        type: str | None = None,
    ) -> Call[TaskList]:
        """A page of the account's tasks, newest first; pass ``next_cursor`` as ``after``."""
        params = drop_none(
            {"limit": limit, "after": after, "status": status, "model": model, "type": type}
        )
        return Call(TaskList, "GET", "/v1/tasks", params=params)

    @operation
    def cancel(self, task_id: str) -> Call[Task]:
        """Cancel a queued or processing task (its credits are released)."""
        return Call(Task, "POST", f"/v1/tasks/{task_id}/cancel")

    @iterating(Task)
    def stream(self, task_id: str, *, timeout: float = 600) -> Operation[None]:
        """Task snapshots from ``GET /v1/tasks/{id}/events`` until the terminal one."""
        events = yield from self._events(task_id, timeout)
        if events is None:
            return
        parser = SSEParser()
        while (task := (yield from self._next_snapshot(events, parser))) is not None:
            yield Emit(task)
            if task.is_terminal():
                break
        yield Close(events)

    @operation
    def wait(
        self, task_id: str, *, timeout: float = 600, poll_interval: float = 1.0
    ) -> Operation[Task]:
        """Block until the task is terminal: follows SSE, falls back to polling with backoff.

        Raises :class:`WaitTimeoutError` when ``timeout`` seconds pass first.
        """
        deadline = time.monotonic() + timeout
        last: Task | None = None
        try:
            events = yield from self._events(task_id, timeout)
            parser = SSEParser()
            while events is not None and time.monotonic() < deadline:
                last = yield from self._next_snapshot(events, parser)
                if last is None:
                    break
                if last.is_terminal():
                    yield Close(events)
                    return (yield from Tasks.retrieve.steps(self, task_id))
            if events is not None:
                yield Close(events)
        except (httpx.HTTPError, APIConnectionError):
            pass  # fall back to polling
        return (yield from self._poll(task_id, deadline, timeout, poll_interval, last))

    def _poll(
        self, task_id: str, deadline: float, timeout: float, interval: float, last: Task | None
    ) -> Operation[Task]:
        for delay in backoff_intervals(interval):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeoutError(task_id, timeout, last.status if last else None)
            last = yield from Tasks.retrieve.steps(self, task_id)
            if last.is_terminal():
                return last
            yield Sleep(min(delay, max(0.0, deadline - time.monotonic())))
        raise AssertionError("unreachable")

    def _events(self, task_id: str, timeout: float) -> Operation[Opened | None]:
        """The task's SSE stream, or None when the server offers none."""
        headers = {**self._client._headers, "Accept": "text/event-stream"}
        events = yield from self._client._open(
            f"/v1/tasks/{task_id}/events",
            lines=True,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        )
        if is_event_stream(events.response):
            return events
        yield Drain(events)
        if events.response.status_code in (401, 403, 404):
            raise error_from_response(events.response)
        return None

    def _next_snapshot(self, events: Opened, parser: SSEParser) -> Operation[Task | None]:
        """The next task snapshot of an SSE stream (other events skipped); None at its end."""
        while (line := (yield Next(events))) is not None:
            event = parser.feed(line)
            payload = task_payload(event[1]) if event is not None else None
            if payload is not None:
                return self._client._parse(Task, payload)
        return None


class Models(Resource[C]):
    """The model catalog."""

    @operation
    def list(self) -> Call[ModelList]:
        """Every model with capabilities, pricing and availability."""
        return Call(ModelList, "GET", "/v1/models")

    @operation
    def retrieve(self, model_id: str) -> Call[Model]:
        """One model by id or alias."""
        return Call(Model, "GET", f"/v1/models/{model_id}")


class Estimates(Resource[C]):
    """Cost estimates."""

    @operation
    def create(
        self,
        model: str,
        *,
        duration: int | None = None,
        size: str | None = None,
        resolution: str | None = None,
        aspect_ratio: str | None = None,
        fps: int | None = None,
        n: int | None = None,
        input_image: str | None = None,
    ) -> Call[Estimate]:
        """The exact credits a request would hold, its output size and frame count."""
        body = drop_none(
            {
                "model": model,
                "duration": duration,
                "size": size,
                "resolution": resolution,
                "aspect_ratio": aspect_ratio,
                "fps": fps,
                "n": n,
                "input_image": input_image,
            }
        )
        return Call(Estimate, "POST", "/v1/estimates", json=body)


class Credits(Resource[C]):
    """Credits."""

    @operation
    def retrieve(self) -> Call[CreditBalance]:
        """The balance: available and held."""
        return Call(CreditBalance, "GET", "/v1/credits")

    @operation
    def ledger(self, *, limit: int | None = None, after: str | None = None) -> Call[LedgerPage]:
        """A page of credit movements, newest first."""
        params = drop_none({"limit": limit, "after": after})
        return Call(LedgerPage, "GET", "/v1/credits/ledger", params=params)


class Keys(Resource[C]):
    """API keys."""

    @operation
    def create(
        self,
        *,
        name: str = "",
        scopes: builtins.list[str] | None = None,
        spend_cap: int | None = None,
    ) -> Call[APIKey]:
        """A new key; its ``secret`` is in this response only."""
        body = drop_none({"name": name, "scopes": scopes, "spend_cap": spend_cap})
        return Call(APIKey, "POST", "/v1/keys", json=body)

    @operation
    def list(self) -> Call[APIKeyList]:
        """The account's keys (without secrets)."""
        return Call(APIKeyList, "GET", "/v1/keys")

    @operation
    def rotate(self, key_id: str, *, grace_seconds: int | None = None) -> Call[APIKey]:
        """A new secret with the same scopes; the old one stops working (after the grace)."""
        body = drop_none({"grace_seconds": grace_seconds})
        return Call(APIKey, "POST", f"/v1/keys/{key_id}/rotate", json=body)

    @operation
    def revoke(self, key_id: str) -> Call[APIKey]:
        """Revoke a key; effective on the next request."""
        return Call(APIKey, "POST", f"/v1/keys/{key_id}/revoke")
