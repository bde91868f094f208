"""Operations written once and run by both clients.

A resource method returns either a :class:`Call` (one request and the model its answer
parses into) or an *operation*: a generator that yields I/O steps (:class:`Open`,
:class:`Sleep`, :class:`Next`, :class:`Drain`, :class:`Close`, :class:`Emit`)
and is sent their results. ``Framegate`` performs the steps with ``httpx.Client``,
``AsyncFramegate`` with ``httpx.AsyncClient``; everything else (retries, parsing, polling,
SSE, downloads) is written once, here and in the resources. The :class:`operation` and
:class:`iteration` descriptors turn a resource method into the public method of each
client, with the same signature and docstring.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

import httpx

if TYPE_CHECKING:
    from ._async_client import AsyncFramegate
    from ._client import Framegate
    from ._resources import Resource

T = TypeVar("T")
P = ParamSpec("P")

# Yields steps, is sent each step's result, returns the operation's result.
Operation = Generator[Any, Any, T]


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request and the response model its JSON answer parses into."""

    cast: type[T]
    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None
    data: dict[str, Any] | None = None
    files: dict[str, Any] | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Sleep:
    """Step: wait ``seconds`` with the client's ``_sleep``; result: None."""

    seconds: float


@dataclass
class Opened:
    """A streamed response, and the iterator (lines or bytes) over its body."""

    response: httpx.Response
    iterator: Any


@dataclass(frozen=True)
class Open:
    """Step: send ``request`` (once, streamed); result: :class:`Opened` over lines or bytes."""

    request: httpx.Request
    lines: bool


@dataclass(frozen=True)
class Next:
    """Step: the next item of an :class:`Opened`; result: the item, or None at the end."""

    opened: Opened


@dataclass(frozen=True)
class Drain:
    """Step: read the rest of an :class:`Opened` body and close it; result: None."""

    opened: Opened


@dataclass(frozen=True)
class Close:
    """Step: close an :class:`Opened`; result: None."""

    opened: Opened


@dataclass(frozen=True)
class Emit:
    """Step of an :class:`iteration`: hand ``value`` to the caller; result: None."""

    value: Any


class _Endpoint(Generic[P, T]):
    """Base of the descriptors: the resource method and the public signature it shows."""

    def __init__(self, build: Callable[Concatenate[Any, P], Any], returns: Any = None) -> None:
        self._build = build
        self._returns = returns
        functools.update_wrapper(self, build)  # type: ignore[arg-type]

    def _public(self, run: Callable[..., Any], returns: Any) -> Callable[..., Any]:
        """``run`` dressed as the resource method: its name, docstring and signature."""
        functools.update_wrapper(run, self._build)
        del run.__wrapped__  # type: ignore[attr-defined]
        signature = inspect.signature(self._build)
        parameters = list(signature.parameters.values())[1:]  # without the resource
        run.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=parameters, return_annotation=returns
        )
        return run

    def steps(self, resource: Any, *args: P.args, **kwargs: P.kwargs) -> Operation[Any]:
        """This method's operation on ``resource``, to run inside another operation."""
        operation: Operation[Any] = resource._client._operation(
            self._build(resource, *args, **kwargs)
        )
        return operation

    def _result_type(self) -> Any:
        """``X`` of the method's ``Call[X]`` or ``Operation[X]`` return annotation."""
        if self._returns is None:
            hints = typing.get_type_hints(self._build)
            self._returns = typing.get_args(hints["return"])[-1]
        return self._returns


class operation(_Endpoint[P, T]):
    """A resource method returning a :class:`Call` or an operation, as a method of both clients.

    On ``Framegate``'s resources it returns the result; on ``AsyncFramegate``'s it is a
    coroutine function with the same parameters.
    """

    def __init__(self, build: Callable[Concatenate[Any, P], Call[T] | Operation[T]]) -> None:
        super().__init__(build)

    def steps(self, resource: Any, *args: P.args, **kwargs: P.kwargs) -> Operation[T]:
        """This method's operation on ``resource``, to run inside another operation."""
        return super().steps(resource, *args, **kwargs)

    @overload
    def __get__(self, resource: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, resource: Resource[Framegate], owner: type[Any]) -> Callable[P, T]: ...

    @overload
    def __get__(
        self, resource: Resource[AsyncFramegate], owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    def __get__(self, resource: Any, owner: type[Any]) -> Any:
        if resource is None:
            return self
        client, build = resource._client, self._build
        if client.is_async:

            async def run_async(*args: Any, **kwargs: Any) -> Any:
                return await client._run(build(resource, *args, **kwargs))

            return self._public(run_async, self._result_type())

        def run(*args: Any, **kwargs: Any) -> Any:
            return client._run(build(resource, *args, **kwargs))

        return self._public(run, self._result_type())


class iteration(_Endpoint[P, T]):
    """A resource operation that hands out values with :class:`Emit`, as a method of both
    clients: an iterator of them on ``Framegate``'s resources, an async one on
    ``AsyncFramegate``'s.
    """

    @overload
    def __get__(self, resource: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(
        self, resource: Resource[Framegate], owner: type[Any]
    ) -> Callable[P, Iterator[T]]: ...

    @overload
    def __get__(
        self, resource: Resource[AsyncFramegate], owner: type[Any]
    ) -> Callable[P, AsyncIterator[T]]: ...

    def __get__(self, resource: Any, owner: type[Any]) -> Any:
        if resource is None:
            return self
        client, build = resource._client, self._build

        def run(*args: Any, **kwargs: Any) -> Any:
            return client._iterate(build(resource, *args, **kwargs))

        iterator = AsyncIterator if client.is_async else Iterator
        return self._public(run, iterator[self._result_type()])


def iterating(
    item: type[T],
) -> Callable[[Callable[Concatenate[Any, P], Operation[None]]], iteration[P, T]]:
    """Decorator: the method is an :class:`iteration` of ``item`` values."""

    def decorate(build: Callable[Concatenate[Any, P], Operation[None]]) -> iteration[P, T]:
        return iteration(build, item)

    return decorate


class Runner:
    """Steps an operation: iterating gives its steps; each step's result is fed back.

    Records what the operation opened, so that a client closes it even when the caller
    stops early (a ``break`` out of ``tasks.stream``) or the operation raises.
    """

    def __init__(self, operation: Operation[Any]) -> None:
        self._operation = operation
        self._value: Any = None
        self._error: BaseException | None = None
        self.result: Any = None
        self.opened: list[Opened] = []

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Any:
        value, error = self._value, self._error
        self._value, self._error = None, None
        try:
            if error is not None:
                return self._operation.throw(error)
            return self._operation.send(value)
        except StopIteration as stop:
            self.result = stop.value
            raise StopIteration from None

    def succeed(self, value: Any) -> None:
        """The step's result, sent into the operation next."""
        if isinstance(value, Opened):
            self.opened.append(value)
        self._value = value

    def fail(self, error: BaseException) -> None:
        """The step's exception, raised inside the operation next."""
        self._error = error

    def close(self) -> list[Opened]:
        """Close the operation; the responses it opened, for the client to close."""
        self._operation.close()
        return self.opened
