"""The asynchronous client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from ._async_resources import Credits, Estimates, Images, Keys, Models, Tasks, Uploads, Videos
from ._base import (
    RETRIED_ERRORS,
    RetryableResponse,
    default_headers,
    request_headers,
    resolve_config,
    should_retry,
    wait_for_retry,
)
from ._exceptions import APIConnectionError, APITimeoutError, error_from_response
from ._models import Task
from ._webhooks import Webhooks

M = TypeVar("M", bound=BaseModel)


class AsyncFramegate:
    """Asynchronous framegate client (same API as :class:`Framegate`, awaitable).

    ``api_key`` defaults to ``FRAMEGATE_API_KEY``, ``base_url`` to ``FRAMEGATE_BASE_URL``
    (then ``http://127.0.0.1:8000``). 429, 5xx and connection errors are retried up to
    ``max_retries`` times with exponential backoff that honours ``Retry-After``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 60,
        max_retries: int = 3,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._config = resolve_config(api_key, base_url, timeout, max_retries)
        self.api_key = self._config.api_key
        self.base_url = self._config.base_url
        self.max_retries = self._config.max_retries
        self._http = http_client or httpx.AsyncClient(timeout=self._config.timeout)
        self._headers = default_headers(self._config)
        self._sleep = asyncio.sleep

    async def __aenter__(self) -> AsyncFramegate:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the underlying HTTP connections."""
        await self._http.aclose()

    @cached_property
    def videos(self) -> Videos:
        """Video generation (``create``, ``create_and_wait``)."""
        return Videos(self)

    @cached_property
    def images(self) -> Images:
        """Image generation."""
        return Images(self)

    @cached_property
    def tasks(self) -> Tasks:
        """Tasks: retrieve, list, cancel, wait, stream."""
        return Tasks(self)

    @cached_property
    def models(self) -> Models:
        """The model catalog."""
        return Models(self)

    @cached_property
    def estimates(self) -> Estimates:
        """Cost estimates."""
        return Estimates(self)

    @cached_property
    def credits(self) -> Credits:
        """Credit balance and ledger."""
        return Credits(self)

    @cached_property
    def keys(self) -> Keys:
        """API keys."""
        return Keys(self)

    @cached_property
    def uploads(self) -> Uploads:
        """File uploads."""
        return Uploads(self)

    @cached_property
    def webhooks(self) -> Webhooks:
        """Webhook signature verification."""
        return Webhooks()

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    async def _send(
        self, method: str, path: str, *, idempotency_key: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send with retries; return the final successful response or raise a typed error."""
        headers = {**self._headers, **request_headers(method, idempotency_key)}
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=wait_for_retry,
            retry=retry_if_exception_type(RETRIED_ERRORS),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    response = await self._http.request(
                        method, self._url(path), headers=headers, **kwargs
                    )
                    if should_retry(response):
                        raise RetryableResponse(response)
        except RetryableResponse as exc:
            raise error_from_response(exc.response) from None
        except httpx.TimeoutException as exc:
            raise APITimeoutError(request=exc.request) from exc
        except httpx.TransportError as exc:
            raise APIConnectionError(str(exc) or "Connection error.") from exc
        if response.is_error:
            raise error_from_response(response)
        return response

    async def _request(self, cast: type[M], method: str, path: str, **kwargs: Any) -> M:
        response = await self._send(method, path, **kwargs)
        return self._parse(cast, response.json())

    def _parse(self, cast: type[M], data: Any) -> M:
        value = cast.model_validate(data)
        if isinstance(value, Task):
            value._client = self
        for item in getattr(value, "data", None) or []:
            if isinstance(item, Task):
                item._client = self
        return value

    async def _adownload(self, url: str, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            async with self._http.stream("GET", self._url(url), headers=self._headers) as response:
                if response.is_error:
                    await response.aread()
                    raise error_from_response(response)
                with path.open("wb") as out:
                    async for chunk in response.aiter_bytes():
                        out.write(chunk)
        except httpx.TimeoutException as exc:
            raise APITimeoutError(request=exc.request) from exc
        except httpx.TransportError as exc:
            raise APIConnectionError(str(exc) or "Connection error.") from exc
        return path

    async def _event_lines(self, task_id: str, timeout: float) -> AsyncGenerator[str, None] | None:
        """The SSE lines of a task's event stream, or None when the server offers none."""
        headers = {**self._headers, "Accept": "text/event-stream"}
        request_timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        request = self._http.build_request(
            "GET",
            self._url(f"/v1/tasks/{task_id}/events"),
            headers=headers,
            timeout=request_timeout,
        )
        response = await self._http.send(request, stream=True)
        if response.status_code != 200 or not response.headers.get("content-type", "").startswith(
            "text/event-stream"
        ):
            await response.aread()
            await response.aclose()
            if response.status_code in (401, 403, 404):
                raise error_from_response(response)
            return None

        async def lines() -> AsyncGenerator[str, None]:
            try:
                async for line in response.aiter_lines():
                    yield line
            finally:
                await response.aclose()

        return lines()
