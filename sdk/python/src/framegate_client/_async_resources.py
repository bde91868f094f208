"""Resources of the asynchronous client."""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from ._base import (
    InputImage,
    atask_payloads,
    backoff_intervals,
    classify_input_image,
    drop_none,
    upload_file_tuple,
)
from ._exceptions import APIConnectionError, WaitTimeoutError
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
from ._params import video_body

if TYPE_CHECKING:
    from ._async_client import AsyncFramegate


class _Resource:
    def __init__(self, client: AsyncFramegate) -> None:
        self._client = client


class Uploads(_Resource):
    """``POST /v1/uploads``."""

    async def create(
        self,
        file: str | Path | bytes,
        *,
        purpose: str | None = None,
        filename: str | None = None,
    ) -> Upload:
        """Upload a file (a path or bytes) as the multipart field ``file``."""
        name, content = upload_file_tuple(file, filename)
        data = drop_none({"purpose": purpose})
        return await self._client._request(
            Upload, "POST", "/v1/uploads", files={"file": (name, content)}, data=data
        )

    async def retrieve(self, upload_id: str) -> Upload:
        """An upload, with a fresh signed URL."""
        return await self._client._request(Upload, "GET", f"/v1/uploads/{upload_id}")


class Videos(_Resource):
    """Video generation."""

    async def _input_image(self, value: InputImage | None) -> str | None:
        if value is None:
            return None
        action, target = classify_input_image(value)
        if action == "pass":
            return str(target)
        upload = await Uploads(self._client).create(target, purpose="input_image")
        return upload.id

    async def create(
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
    ) -> Task:
        """Submit a video task (``POST /v1/async/videos/generations``); returns it queued.

        ``input_image`` may be a URL, data URI or upload id (sent as is), or a path or bytes
        (uploaded first through ``/v1/uploads``).
        """
        body = video_body(
            model,
            prompt,
            duration=duration,
            size=size,
            resolution=resolution,
            aspect_ratio=aspect_ratio,
            fps=fps,
            input_image=await self._input_image(input_image),
            negative_prompt=negative_prompt,
            seed=seed,
            camera_fixed=camera_fixed,
            webhook_url=webhook_url,
            metadata=metadata,
        )
        return await self._client._request(
            Task,
            "POST",
            "/v1/async/videos/generations",
            json=body,
            idempotency_key=idempotency_key,
        )

    async def create_and_wait(
        self, model: str, prompt: str, *, timeout: float = 600, **kwargs: Any
    ) -> Task:
        """Submit a video task and wait until it is terminal (see :meth:`Tasks.wait`)."""
        task = await self.create(model, prompt, **kwargs)
        return await Tasks(self._client).wait(task.id, timeout=timeout)


class Images(_Resource):
    """Image generation."""

    async def generate(
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
    ) -> ImagesResponse | Task:
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
        response = await self._client._send(
            "POST", "/v1/images/generations", json=body, idempotency_key=idempotency_key
        )
        if response.status_code == 202:
            return self._client._parse(Task, response.json())
        return ImagesResponse.model_validate(response.json())


class Tasks(_Resource):
    """Tasks: retrieve, list, cancel, wait, stream."""

    async def retrieve(self, task_id: str) -> Task:
        """A task (fresh signed output URLs)."""
        return await self._client._request(Task, "GET", f"/v1/tasks/{task_id}")

    async def list(
        self,
        *,
        limit: int | None = None,
        after: str | None = None,
        status: str | None = None,
        model: str | None = None,
        type: str | None = None,
    ) -> TaskList:
        """A page of the account's tasks, newest first; pass ``next_cursor`` as ``after``."""
        params = drop_none(
            {"limit": limit, "after": after, "status": status, "model": model, "type": type}
        )
        return await self._client._request(TaskList, "GET", "/v1/tasks", params=params)

    async def cancel(self, task_id: str) -> Task:
        """Cancel a queued or processing task (its credits are released)."""
        return await self._client._request(Task, "POST", f"/v1/tasks/{task_id}/cancel")

    async def stream(self, task_id: str, *, timeout: float = 600) -> AsyncGenerator[Task, None]:
        """Task snapshots from ``GET /v1/tasks/{id}/events`` until the terminal one."""
        lines = await self._client._event_lines(task_id, timeout)
        if lines is None:
            return
        try:
            async for payload in atask_payloads(lines):
                task = self._client._parse(Task, payload)
                yield task
                if task.is_terminal():
                    return
        finally:
            await lines.aclose()

    async def wait(self, task_id: str, *, timeout: float = 600, poll_interval: float = 1.0) -> Task:
        """Block until the task is terminal: follows SSE, falls back to polling with backoff.

        Raises :class:`WaitTimeoutError` when ``timeout`` seconds pass first.
        """
        deadline = time.monotonic() + timeout
        last: Task | None = None
        try:
            async with aclosing(self.stream(task_id, timeout=timeout)) as events:
                async for task in events:
                    last = task
                    if task.is_terminal():
                        return await self.retrieve(task_id)
                    if time.monotonic() >= deadline:
                        break
        except (httpx.HTTPError, APIConnectionError):
            pass  # fall back to polling
        return await self._poll(task_id, deadline, timeout, poll_interval, last)

    async def _poll(
        self, task_id: str, deadline: float, timeout: float, interval: float, last: Task | None
    ) -> Task:
        for delay in backoff_intervals(interval):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeoutError(task_id, timeout, last.status if last else None)
            last = await self.retrieve(task_id)
            if last.is_terminal():
                return last
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        raise AssertionError("unreachable")


class Models(_Resource):
    """The model catalog."""

    async def list(self) -> ModelList:
        """Every model with capabilities, pricing and availability."""
        return await self._client._request(ModelList, "GET", "/v1/models")

    async def retrieve(self, model_id: str) -> Model:
        """One model by id or alias."""
        return await self._client._request(Model, "GET", f"/v1/models/{model_id}")


class Estimates(_Resource):
    """Cost estimates."""

    async def create(
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
    ) -> Estimate:
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
        return await self._client._request(Estimate, "POST", "/v1/estimates", json=body)


class Credits(_Resource):
    """Credits."""

    async def retrieve(self) -> CreditBalance:
        """The balance: available and held."""
        return await self._client._request(CreditBalance, "GET", "/v1/credits")

    async def ledger(self, *, limit: int | None = None, after: str | None = None) -> LedgerPage:
        """A page of credit movements, newest first."""
        params = drop_none({"limit": limit, "after": after})
        return await self._client._request(LedgerPage, "GET", "/v1/credits/ledger", params=params)


class Keys(_Resource):
    """API keys."""

    async def create(
        self,
        *,
        name: str = "",
        scopes: builtins.list[str] | None = None,
        spend_cap: int | None = None,
    ) -> APIKey:
        """A new key; its ``secret`` is in this response only."""
        body = drop_none({"name": name, "scopes": scopes, "spend_cap": spend_cap})
        return await self._client._request(APIKey, "POST", "/v1/keys", json=body)

    async def list(self) -> APIKeyList:
        """The account's keys (without secrets)."""
        return await self._client._request(APIKeyList, "GET", "/v1/keys")

    async def rotate(self, key_id: str, *, grace_seconds: int | None = None) -> APIKey:
        """A new secret with the same scopes; the old one stops working (after the grace)."""
        body = drop_none({"grace_seconds": grace_seconds})
        return await self._client._request(APIKey, "POST", f"/v1/keys/{key_id}/rotate", json=body)

    async def revoke(self, key_id: str) -> APIKey:
        """Revoke a key; effective on the next request."""
        return await self._client._request(APIKey, "POST", f"/v1/keys/{key_id}/revoke")
