"""What both clients share: settings, resources, and the operations behind every request.

``Framegate`` and ``AsyncFramegate`` add only the I/O: how a step of an operation
(see :mod:`._operations`) is performed with ``httpx.Client`` or ``httpx.AsyncClient``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, TypeVar, cast

import httpx
from pydantic import BaseModel

from ._base import default_headers, request_headers, resolve_config
from ._exceptions import APIConnectionError, APITimeoutError, error_from_response
from ._models import Task
from ._operations import Call, Close, Drain, Next, Open, Opened, Operation, Sleep
from ._resources import Credits, Estimates, Images, Keys, Models, Tasks, Uploads, Videos
from ._retries import retry_delay, should_retry
from ._webhooks import Webhooks

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def connection_error(error: httpx.TransportError) -> APIConnectionError:
    """The typed error for a network failure."""
    if isinstance(error, httpx.TimeoutException):
        return APITimeoutError(request=error.request)
    return APIConnectionError(str(error) or "Connection error.")


@contextmanager
def typed_transport_errors() -> Iterator[None]:
    """Raise network failures as :class:`APIConnectionError` / :class:`APITimeoutError`."""
    try:
        yield
    except httpx.TransportError as error:
        raise connection_error(error) from error


HttpClient = TypeVar("HttpClient", httpx.Client, httpx.AsyncClient)


class BaseClient(Generic[HttpClient]):
    """Settings, resources and operations of both clients (the I/O is theirs).

    ``api_key`` defaults to ``FRAMEGATE_API_KEY``, ``base_url`` to ``FRAMEGATE_BASE_URL``
    (then ``http://127.0.0.1:8000``). 429, 5xx and connection errors are retried up to
    ``max_retries`` times with exponential backoff that honours ``Retry-After``.
    """

    is_async: ClassVar[bool]
    _http: HttpClient
    _http_class: type[HttpClient]

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 60,
        max_retries: int = 3,
        http_client: HttpClient | None = None,
    ) -> None:
        self._config = resolve_config(api_key, base_url, timeout, max_retries)
        self._http = http_client or self._http_class(timeout=self._config.timeout)
        self.api_key = self._config.api_key
        self.base_url = self._config.base_url
        self.max_retries = self._config.max_retries
        self._headers = default_headers(self._config)

    @cached_property
    def videos(self) -> Videos[Self]:
        """Video generation (``create``, ``create_and_wait``)."""
        return Videos(self)

    @cached_property
    def images(self) -> Images[Self]:
        """Image generation."""
        return Images(self)

    @cached_property
    def tasks(self) -> Tasks[Self]:
        """Tasks: retrieve, list, cancel, wait, stream."""
        return Tasks(self)

    @cached_property
    def models(self) -> Models[Self]:
        """The model catalog."""
        return Models(self)

    @cached_property
    def estimates(self) -> Estimates[Self]:
        """Cost estimates."""
        return Estimates(self)

    @cached_property
    def credits(self) -> Credits[Self]:
        """Credit balance and ledger."""
        return Credits(self)

    @cached_property
    def keys(self) -> Keys[Self]:
        """API keys."""
        return Keys(self)

    @cached_property
    def uploads(self) -> Uploads[Self]:
        """File uploads."""
        return Uploads(self)

    @cached_property
    def webhooks(self) -> Webhooks:
        """Webhook signature verification."""
        return Webhooks()

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    def _operation(self, work: Call[T] | Operation[T]) -> Operation[T]:
        return self._call(work) if isinstance(work, Call) else work

    def _call(self, call: Call[T]) -> Operation[T]:
        """Send a :class:`Call` with retries and parse its answer."""
        response = yield from self._send(
            call.method,
            call.path,
            idempotency_key=call.idempotency_key,
            params=call.params,
            json=call.json,
            data=call.data,
            files=call.files,
        )
        return cast(T, self._parse(cast(type[BaseModel], call.cast), response.json()))

    def _send(
        self, method: str, path: str, *, idempotency_key: str | None = None, **kwargs: Any
    ) -> Operation[httpx.Response]:
        """Send with retries; the final successful response, or a typed error.

        429, 408, 5xx and network failures are retried ``max_retries`` times, after the
        server's Retry-After or an exponential backoff.
        """
        headers = {**self._headers, **request_headers(method, idempotency_key)}
        for attempt in range(self.max_retries + 1):
            final = attempt == self.max_retries
            request = self._http.build_request(method, self._url(path), headers=headers, **kwargs)
            try:
                opened: Opened = yield Open(request, lines=False)
                yield Drain(opened)
            except httpx.TransportError as error:
                if final:
                    raise connection_error(error) from error
                retry_after = None
            else:
                response = opened.response
                if final or not should_retry(response):
                    break
                retry_after = response.headers.get("retry-after")
            yield Sleep(retry_delay(attempt, retry_after))
        if response.is_error:
            raise error_from_response(response)
        return response

    def _parse(self, cast: type[M], data: Any) -> M:
        value = cast.model_validate(data)
        if isinstance(value, Task):
            value._client = self
        for item in getattr(value, "data", None) or []:
            if isinstance(item, Task):
                item._client = self
        return value

    def _open(self, url: str, *, lines: bool, **kwargs: Any) -> Operation[Opened]:
        """Open a streamed GET (SSE lines or file bytes); typed errors for network failures."""
        request = self._http.build_request("GET", self._url(url), **kwargs)
        try:
            opened: Opened = yield Open(request, lines)
        except httpx.TransportError as error:
            raise connection_error(error) from error
        return opened

    def _save(self, url: str, path: Path) -> Operation[Path]:
        """Stream a file (a task's output) to ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        opened = yield from self._open(url, lines=False, headers=self._headers)
        if opened.response.is_error:
            yield Drain(opened)
            raise error_from_response(opened.response)
        with path.open("wb") as out, typed_transport_errors():
            while (chunk := (yield Next(opened))) is not None:
                out.write(chunk)
        yield Close(opened)
        return path
