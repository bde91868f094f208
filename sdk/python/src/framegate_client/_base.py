"""Pieces shared by the sync and async clients: configuration, SSE, inputs."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ._exceptions import FramegateError

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
USER_AGENT = "framegate-client/0.1.0"


@dataclass(frozen=True)
class ClientConfig:
    """Resolved client settings."""

    api_key: str
    base_url: str
    timeout: float
    max_retries: int


def resolve_config(
    api_key: str | None, base_url: str | None, timeout: float, max_retries: int
) -> ClientConfig:
    """Fill in the API key and base URL from the environment; fail clearly without a key."""
    key = api_key or os.environ.get("FRAMEGATE_API_KEY")
    if not key:
        raise FramegateError(
            "No API key: pass api_key=... or set the FRAMEGATE_API_KEY environment variable."
        )
    url = base_url or os.environ.get("FRAMEGATE_BASE_URL") or DEFAULT_BASE_URL
    if max_retries < 0:
        raise ValueError("max_retries must be >= 0")
    return ClientConfig(key, url.rstrip("/"), float(timeout), max_retries)


def default_headers(config: ClientConfig) -> dict[str, str]:
    """Headers sent with every request."""
    return {
        "Authorization": f"Bearer {config.api_key}",
        "User-Agent": USER_AGENT,
        "Accept": "application/json",
    }


def request_headers(method: str, idempotency_key: str | None) -> dict[str, str]:
    """Per-call headers: POSTs get one Idempotency-Key reused by all retries of the call."""
    if method.upper() != "POST":
        return {}
    return {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}


def drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping without keys whose value is None."""
    return {key: value for key, value in values.items() if value is not None}


class SSEParser:
    """Incremental text/event-stream parser: feed lines, get (event, data) pairs."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> tuple[str, str] | None:
        """Consume one line (without its newline); return an event when one is complete."""
        if line == "":
            if not self._data:
                self._event = ""
                return None
            event = (self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
        return None


def task_payload(data: str) -> dict[str, Any] | None:
    """The task object an SSE event's data carries; None for heartbeats and other events."""
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) and "status" in value else None


def is_event_stream(response: httpx.Response) -> bool:
    """Whether the server answered with an SSE stream."""
    content_type = response.headers.get("content-type", "")
    return response.status_code == 200 and content_type.startswith("text/event-stream")


InputImage = str | Path | bytes


def classify_input_image(value: InputImage) -> tuple[str, Any]:
    """('pass', str) for URLs, data URIs and upload ids; ('upload', path_or_bytes) otherwise."""
    if isinstance(value, bytes):
        return "upload", value
    if isinstance(value, Path):
        return "upload", value
    lowered = value.lower()
    if lowered.startswith(("http://", "https://", "data:")) or value.startswith("upl_"):
        return "pass", value
    if os.path.isfile(value):
        return "upload", Path(value)
    return "pass", value


def upload_file_tuple(file: str | Path | bytes, filename: str | None) -> tuple[str, bytes]:
    """(filename, content) for the multipart ``file`` field."""
    if isinstance(file, bytes):
        return filename or "upload", file
    path = Path(file)
    return filename or path.name, path.read_bytes()


def backoff_intervals(start: float, factor: float = 1.5, cap: float = 5.0) -> Iterable[float]:
    """Polling intervals growing from ``start`` up to ``cap``."""
    interval = max(0.05, start)
    while True:
        yield interval
        interval = min(cap, interval * factor)
