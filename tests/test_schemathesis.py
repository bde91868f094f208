"""/openapi.json tells the truth: schemathesis drives every operation of a live server
(``framegate serve`` on loopback) from the description alone, on SQLite and PostgreSQL,
and every answer must be a documented status whose body matches its schema."""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import yaml
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from framegate.app import create_app
from framegate.config import Settings
from tests.processes import Server, cli_json, environment, free_port, throwaway_database
from tests.uploads.samples import image_bytes

pytestmark = pytest.mark.slow

# Seeded and deterministic: the same cases on every run. MAX_EXAMPLES bounds the fuzzing
# phase per operation (the examples and coverage phases are bounded by the description);
# both databases together take about 1.5 minutes on 2 cores.
SEED = 20260101
MAX_EXAMPLES = 30

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
    # A method the path does not have: 405 with an Allow header listing every method.
    unsupported_method,
    allow_header_conformance,
]


def _description() -> dict[str, Any]:
    settings = Settings(env="test", data_dir=Path("unused"), secret_key=secrets.token_urlsafe(40))
    return create_app(settings, start_workers=False).openapi()


# The servers start inside a fixture, one per database, after collection; schemathesis'
# fixture-based loader (schemathesis.pytest.from_fixture) fails on pytest 9. So the cases
# come from the app's own description, and the first test checks that each live server
# serves exactly that at /openapi.json.
DESCRIPTION = _description()
schema = schemathesis.openapi.from_dict(
    DESCRIPTION,
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                # The run's own key is sent with every request.
                "with-security-parameters": False,
            },
            "phases": {"stateful": {"enabled": False}},
            # An event stream is read up to its first event (or the timeout).
            "max-stream-events": 1,
            "request-timeout": 10,
        }
    ),
)


# The preview engine under the model names the dialects' clients (and the description's
# examples) use, so that their requests reach the task service.
CATALOG: dict[str, Any] = {
    "routes": [
        {
            "id": "dialects-preview",
            "aliases": ["sora-2", "pixelapi", "v5", "pixverse/v5/text-to-video"],
            "kind": "video",
            "engine": "preview",
            "capabilities": {"text_to_video": True, "image_to_video": True},
            "pricing": {"unit": "second", "credits": {"480p": 1, "720p": 2, "1080p": 4}},
        }
    ]
}


PIXVERSE_TEXT = {
    "prompt": "a",
    "model": "v5",
    "duration": 5,
    "quality": "540p",
    "aspect_ratio": "16:9",
}


@dataclass(frozen=True)
class LiveServer:
    url: str
    api_key: str
    key_id: str
    account_id: str
    # What the operations that would lock the run's own key out act on instead.
    spare_key_id: str
    spare_account_id: str
    log: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@pytest.fixture(scope="module")
def live_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp(f"schemathesis-{backend}")
    catalog = data_dir / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(CATALOG))
    with throwaway_database(backend) as database_url:
        env = environment(
            data_dir,
            database_url,
            FRAMEGATE_SECRET_KEY=secrets.token_urlsafe(40),
            FRAMEGATE_CATALOG_FILE=str(catalog),
            # Tasks stay queued: the run checks the API, not the engines.
            FRAMEGATE_WORKER_CONCURRENCY="0",
            FRAMEGATE_IMAGE_SYNC_TIMEOUT_SECONDS="0",
            FRAMEGATE_DEFAULT_REQUESTS_PER_MINUTE="1000000",
            # Bad signatures count as failed authentications of the (one) client address.
            FRAMEGATE_FAILED_AUTH_PER_MINUTE="1000000",
            FRAMEGATE_ANONYMOUS_REQUESTS_PER_MINUTE="1000000",
            FRAMEGATE_DEFAULT_MAX_CONCURRENT_VIDEOS="10000",
            FRAMEGATE_DEFAULT_MAX_CONCURRENT_IMAGES="10000",
            # The webhook endpoint of test_existing_objects (nothing listens there).
            FRAMEGATE_ALLOW_PRIVATE_NETWORKS="127.0.0.3/32",
            FRAMEGATE_FETCH_CONNECT_TIMEOUT="0.5",
            FRAMEGATE_FETCH_READ_TIMEOUT="0.5",
            FRAMEGATE_LOG_LEVEL="warning",
        )
        owner = cli_json(
            env,
            "admin",
            "create-account",
            "--name",
            "schemathesis",
            "--credits",
            "1000000000",
            "--admin",
        )
        server = Server(env, free_port(), data_dir / "server.log")
        server.start()
        try:
            headers = {"Authorization": f"Bearer {owner['api_key']}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
                spare_key = http.post("/v1/keys", json={"name": "spare"}).json()
                spare_account = http.post("/v1/admin/accounts", json={"name": "spare"}).json()
            yield LiveServer(
                url=server.url,
                api_key=owner["api_key"],
                key_id=owner["api_key_id"],
                account_id=owner["account_id"],
                spare_key_id=spare_key["id"],
                spare_account_id=spare_account["id"],
                log=server.log,
            )
        finally:
            server.stop()


def test_live_server_serves_the_description_under_test(live_server: LiveServer) -> None:
    served = httpx.get(f"{live_server.url}/openapi.json", timeout=30).json()
    assert served == DESCRIPTION


def keep_the_key_alive(case: schemathesis.Case, server: LiveServer) -> None:
    """Point the operations that would revoke, rotate or disable the run's own key (or
    throttle its plan) at a spare key, account or plan instead."""
    path = case.path_parameters
    if not path:
        return
    if path.get("key_id") == server.key_id:
        path["key_id"] = server.spare_key_id
    if path.get("account_id") == server.account_id:
        path["account_id"] = server.spare_account_id
    if case.operation.path == "/v1/admin/plans/{name}" and path.get("name") == "default":
        path["name"] = "spare"


_IDEMPOTENCY_HEADERS = frozenset({"idempotency-key", "ai-trace-id"})
_WELL_FORMED_KEY = re.compile(r"^[!-~]([ -~]{0,253}[!-~])?$")
_fresh = itertools.count()


def use_fresh_idempotency_keys(case: schemathesis.Case) -> None:
    """Generated keys repeat ("0", "A"…), and a key stays the account's for a day: every
    later POST with it, to any route, would be 422 idempotency_key_reused. Well-formed keys
    get a unique suffix; malformed ones are sent as generated."""
    headers = case.headers or {}
    for name, value in list(headers.items()):
        if name.lower() in _IDEMPOTENCY_HEADERS and _WELL_FORMED_KEY.match(str(value)):
            headers[name] = f"{str(value)[:200]}.{next(_fresh)}"


@schema.parametrize()
def test_every_operation_answers_as_documented(
    case: schemathesis.Case, live_server: LiveServer
) -> None:
    keep_the_key_alive(case, live_server)
    use_fresh_idempotency_keys(case)
    logged = live_server.log.stat().st_size
    try:
        case.call_and_validate(base_url=live_server.url, headers=live_server.headers, checks=CHECKS)
    except BaseException:  # schemathesis reports failures as a BaseExceptionGroup
        _print_new_tracebacks(live_server.log, logged)
        raise


_printed: set[str] = set()


def _print_new_tracebacks(log: Path, since: int) -> None:
    """A 500's traceback is in the server's log, not in the response: print each distinct
    one once (pytest shows it with the failure)."""
    with log.open("rb") as file:
        file.seek(since)
        written = file.read().decode(errors="replace")
    lines = written.strip().splitlines()
    if "Traceback" in written and lines[-1] not in _printed:
        _printed.add(lines[-1])
        print(written[-4000:])


def test_existing_objects_answer_as_documented(live_server: LiveServer) -> None:
    """Fuzzed ids name nothing (404): these calls use objects that exist, so that the
    success answers of the operations on one object are checked too."""
    with httpx.Client(base_url=live_server.url, headers=live_server.headers, timeout=30) as http:
        created = [
            http.post("/v1/async/videos/generations", json={"model": "preview", "prompt": "a"}),
            http.post("/v1/videos", json={"prompt": "a"}),
            http.post("/v1/video/generate", json={"prompt": "a"}),
            http.post("/openapi/v2/video/text/generate", json=PIXVERSE_TEXT),
            http.post("/v2/video/generations", json={"model": "preview", "prompt": "a"}),
            http.post("/v1/uploads", files={"file": ("frame.png", image_bytes("PNG"))}),
            http.post("/v1/webhooks", json={"url": "http://127.0.0.3:9/hook"}),
            http.post("/v1/keys", json={"name": "to rotate"}),
            http.post("/v1/keys", json={"name": "to revoke"}),
        ]
    assert all(response.is_success for response in created), [r.text for r in created]
    task, video, generation, pixverse, aiml, upload, webhook, rotated, revoked = (
        response.json() for response in created
    )
    file = httpx.URL(upload["url"])

    def answer(method: str, path: str, body: Any = None, **parameters: str) -> int:
        """``parameters`` fill the path's placeholders; the others go in the query."""
        in_path = {name: value for name, value in parameters.items() if f"{{{name}}}" in path}
        query = {name: value for name, value in parameters.items() if name not in in_path}
        fields: dict[str, Any] = {"path_parameters": in_path, "query": query}
        if body is not None:
            fields["body"] = body
        case = schema[path][method].Case(**fields)
        response = case.call_and_validate(
            base_url=live_server.url, headers=live_server.headers, checks=CHECKS
        )
        return response.status_code

    task_id, video_id, webhook_id = task["id"], video["id"], webhook["id"]
    statuses = {
        "task": answer("GET", "/v1/tasks/{task_id}", task_id=task_id),
        "events": answer("GET", "/v1/tasks/{task_id}/events", task_id=task_id),
        "cancel": answer("POST", "/v1/tasks/{task_id}/cancel", task_id=task_id),
        "video": answer("GET", "/v1/videos/{video_id}", video_id=video_id),
        "remix": answer("POST", "/v1/videos/{video_id}/remix", {"prompt": "b"}, video_id=video_id),
        "delete video": answer("DELETE", "/v1/videos/{video_id}", video_id=video_id),
        "generation": answer(
            "GET", "/v1/video/{generation_id}", generation_id=generation["generation_id"]
        ),
        "pixverse result": answer(
            "GET", "/openapi/v2/video/result/{video_id}", video_id=pixverse["Resp"]["video_id"]
        ),
        "aiml": answer("GET", "/v2/video/generations", generation_id=aiml["id"]),
        "aiml by vendor": answer(
            "GET", "/v2/generate/video/{vendor}/generation", vendor="x", generation_id=aiml["id"]
        ),
        "upload": answer("GET", "/v1/uploads/{upload_id}", upload_id=upload["id"]),
        "file": answer(
            "GET", "/v1/files/{key}", key=file.path.removeprefix("/v1/files/"), **file.params
        ),
        "webhook": answer("GET", "/v1/webhooks/{webhook_id}", webhook_id=webhook_id),
        "edit webhook": answer(
            "PATCH", "/v1/webhooks/{webhook_id}", {"description": "b"}, webhook_id=webhook_id
        ),
        "deliveries": answer("GET", "/v1/webhooks/{webhook_id}/deliveries", webhook_id=webhook_id),
        "webhook secret": answer(
            "POST", "/v1/webhooks/{webhook_id}/rotate-secret", webhook_id=webhook_id
        ),
        "test webhook": answer("POST", "/v1/webhooks/{webhook_id}/test", webhook_id=webhook_id),
        "delete webhook": answer("DELETE", "/v1/webhooks/{webhook_id}", webhook_id=webhook_id),
        "rotate key": answer("POST", "/v1/keys/{key_id}/rotate", {}, key_id=rotated["id"]),
        "revoke key": answer("POST", "/v1/keys/{key_id}/revoke", key_id=revoked["id"]),
        "delete key": answer("DELETE", "/v1/keys/{key_id}", key_id=revoked["id"]),
        "grant": answer(
            "POST",
            "/v1/admin/accounts/{account_id}/credits",
            {"credits": 5},
            account_id=live_server.spare_account_id,
        ),
        "edit account": answer(
            "PATCH",
            "/v1/admin/accounts/{account_id}",
            {"name": "b"},
            account_id=live_server.spare_account_id,
        ),
    }
    assert all(200 <= status < 300 for status in statuses.values()), statuses
