"""Hostile input across every route family, on both databases: malformed credentials,
NUL bytes and invalid UTF-8, deep JSON, loose types. Each gets a 4xx naming the field or
header, never a 500 and never a traceback in the log."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from framegate.kit.crypto import generate_api_key
from framegate.runtime import Runtime
from tests.conftest import Tenant

BAD_KEY = ("fg_live_" + "A" * 40).encode() + "éééééé".encode()

# One authenticated read per route family (native and each dialect).
AUTHENTICATED_READS = [
    "/v1/tasks",
    "/v1/credits",
    "/v1/videos",
    "/v1/video/gen_1",
    "/openapi/v2/account/balance",
    "/v2/video/generations?generation_id=x",
]

# Deeply nested JSON to each family's submit route.
SUBMIT_ROUTES = [
    "/v1/async/videos/generations",
    "/v1/videos",
    "/v1/video/generate",
    "/openapi/v2/video/text/generate",
    "/v2/video/generations",
]


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.INFO)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [r.getMessage() for r in errors]


def _is_native(path: str) -> bool:
    return path.startswith(("/v1/tasks", "/v1/credits", "/v1/async", "/v1/keys", "/v1/uploads"))


@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize("path", AUTHENTICATED_READS)
@pytest.mark.parametrize("header", ["Authorization", "API-KEY", "X-API-Key"])
async def test_non_ascii_key_is_401_everywhere(
    client: httpx.AsyncClient, path: str, header: str
) -> None:
    value = b"Bearer " + BAD_KEY if header == "Authorization" else BAD_KEY
    response = await client.get(path, headers=[(header.encode(), value)])
    assert response.status_code == 401, response.text
    if _is_native(path):
        error = response.json()["error"]
        assert error["code"] == "invalid_api_key"
        assert error["param"] == header
        assert "letters and digits" in error["message"]


@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize(
    "key",
    [
        b"fg_live_short",
        ("fg_live_" + "A" * 46).encode(),  # right length, bad checksum
        b"sk-" + b"a" * 48,
        b"fg_live_" + b"\xff" * 46,
    ],
)
async def test_malformed_keys_are_refused_before_any_lookup(
    client: httpx.AsyncClient, runtime: Runtime, key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups = []
    monkeypatch.setattr(runtime.keys, "_load_once", lambda *a: lookups.append(a))
    response = await client.get("/v1/tasks", headers=[(b"authorization", b"Bearer " + key)])
    assert response.status_code == 401
    assert response.json()["error"]["param"] == "Authorization"
    assert lookups == []


@pytest.mark.usefixtures("no_tracebacks")
async def test_unknown_key_is_looked_up_once(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from framegate.keys.repository import api_key_repository

    calls = 0
    original = api_key_repository.by_hash

    async def counting(*args: object) -> object:
        nonlocal calls
        calls += 1
        return await original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(api_key_repository, "by_hash", counting)
    headers = {"Authorization": f"Bearer {generate_api_key()}"}
    for _ in range(5):
        response = await client.get("/v1/tasks", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
    assert calls == 1


@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize(
    "query",
    ["signature=%C3%A9", "signature=" + "g" * 64, "signature=%00", "signature=" + "é" * 64],
)
async def test_bad_file_signature_is_403(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get(f"/v1/files/x?expires=9999999999&{query}")
    assert response.status_code in (403, 422), response.text
    assert response.status_code < 500


async def test_public_routes_check_presented_keys(
    client: httpx.AsyncClient, runtime: Runtime, account: Tenant
) -> None:
    assert (await client.get("/v1/models")).status_code == 200
    assert (await client.get("/v1/models", headers=account.headers)).status_code == 200
    wrong = {"Authorization": f"Bearer {generate_api_key()}"}
    for path in ("/v1/models", "/v1/models/preview"):
        response = await client.get(path, headers=wrong)
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "invalid_api_key"
    malformed = {"X-API-Key": "fg_live_typo"}
    assert (await client.get("/v1/models", headers=malformed)).status_code == 401
    estimate = {"model": "preview", "duration": 5}
    response = await client.post("/v1/estimates", json=estimate, headers=wrong)
    assert response.status_code == 401
    # A revoked key is refused there too.
    async with runtime.sessionmaker() as session:
        await runtime.keys.revoke(session, account.id, account.key_id, by=None)
        await session.commit()
    response = await client.get("/v1/models", headers=account.headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "revoked_api_key"


NUL_READS = [
    "/v1/tasks/task_%00",
    "/v1/tasks?model=a%00b",
    "/v1/tasks?after=%00",
    "/v1/tasks?status=%C3",
    "/v1/videos/task_%00",
    "/v1/uploads/upl_%00",
    "/v1/webhooks/we_%00",
    "/v1/video/%00",
    "/v1/usage?group_by=metadata.%00",
    "/v1/keys/key_%ff",
]


@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize("path", NUL_READS)
async def test_nul_and_invalid_utf8_in_urls_are_422(
    client: httpx.AsyncClient, account: Tenant, path: str
) -> None:
    response = await client.get(path, headers=account.headers)
    # OpenAI's dialect answers every invalid request with 400, as OpenAI does.
    assert response.status_code == (422 if not path.startswith("/v1/videos") else 400)
    if _is_native(path):
        error = response.json()["error"]
        assert error["code"] == "invalid_text"
        assert error["param"] in ("path", "model", "after", "status", "group_by")


@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/keys", {"name": "a\u0000b"}, "name"),
        ("/v1/webhooks", {"url": "https://127.0.0.3/h", "description": "\u0000"}, "description"),
        (
            "/v1/async/videos/generations",
            {"model": "preview", "prompt": "x", "metadata": {"tag": "a\u0000"}},
            "metadata.tag",
        ),
        ("/v1/async/videos/generations", {"model": "preview", "prompt": "\ud800"}, "prompt"),
    ],
)
async def test_nul_in_json_strings_is_422_naming_the_field(
    client: httpx.AsyncClient, account: Tenant, path: str, body: dict[str, object], param: str
) -> None:
    # json.dumps escapes NUL and lone surrogates as \u0000 / \ud800, as clients send them.
    response = await client.post(
        path,
        content=json.dumps(body),
        headers={**account.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == param
    assert response.json()["error"]["code"] == "invalid_text"


@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize("path", SUBMIT_ROUTES)
@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50 + b"1" + b"}" * 50, b'{"prompt": "\xff"}'],
    ids=["deep", "fifty-levels", "invalid-utf8"],
)
async def test_unparseable_json_is_400_invalid_json(
    client: httpx.AsyncClient, account: Tenant, path: str, body: bytes
) -> None:
    response = await client.post(
        path, content=body, headers={**account.headers, "Content-Type": "application/json"}
    )
    assert response.status_code < 500, response.text
    if path.startswith("/openapi/v2/"):
        assert response.json()["ErrCode"] != 0  # PixVerse answers errors with HTTP 200
    else:
        assert response.status_code == 400, response.text
    if _is_native(path):
        error = response.json()["error"]
        assert error["code"] == "invalid_json"
        assert error["type"] == "invalid_request_error"


@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("duration", True),
        ("duration", 5.0),
        ("duration", "5"),
        ("size", "640x360\n"),
        ("size", " 640x360"),
        ("size", "640X360"),
        ("seed", False),
        ("camera_fixed", 1),
        ("camera_fixed", "true"),
        ("num_frames", 1.5),
    ],
)
async def test_documented_types_are_strict(
    client: httpx.AsyncClient, account: Tenant, field: str, value: object
) -> None:
    body = {"model": "preview", "prompt": "x", "duration": 2, "size": "640x360", field: value}
    response = await client.post("/v1/async/videos/generations", json=body, headers=account.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == field
    # The same rule on the estimate of that request.
    response = await client.post("/v1/estimates", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["param"] == field


@pytest.mark.parametrize("value", ["0.5", "1e9", "yesterday", "2026-13-01", "0001-01-01", "-5"])
async def test_usage_bounds_are_dates_or_unix_seconds(
    client: httpx.AsyncClient, account: Tenant, value: str
) -> None:
    response = await client.get("/v1/usage", params={"to": value}, headers=account.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == "to"


@pytest.mark.parametrize("days_ago", [0, 1, 30])
@pytest.mark.parametrize("form", ["unix", "date", "datetime"])
async def test_usage_accepts_iso_and_unix_seconds(
    client: httpx.AsyncClient, account: Tenant, form: str, days_ago: int
) -> None:
    when = datetime.now(UTC) - timedelta(days=days_ago)
    value = {
        "unix": str(int(when.timestamp())),
        "date": when.date().isoformat(),
        "datetime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }[form]
    response = await client.get("/v1/usage", params={"from": value}, headers=account.headers)
    assert response.status_code == 200, response.text


async def test_estimates_take_a_whole_generation_request(client: httpx.AsyncClient) -> None:
    body = {
        "model": "preview",
        "prompt": "A cinematic reveal",
        "negative_prompt": "blur",
        "duration": 5,
        "size": "1280x720",
        "seed": 7,
        "camera_fixed": True,
        "webhook_url": "https://127.0.0.3/hook",
        "metadata": {"team": "growth"},
    }
    response = await client.post("/v1/estimates", json=body)
    assert response.status_code == 200, response.text
    bare = await client.post("/v1/estimates", json={"model": "preview", "duration": 5})
    assert response.json()["credits"] == bare.json()["credits"]
    image = {"model": "preview-image", "prompt": "x", "n": 2, "size": "512x512", "seed": 1}
    assert (await client.post("/v1/estimates", json=image)).status_code == 200


def test_estimates_accept_every_generation_field() -> None:
    from framegate.tasks.schemas import (
        EstimateRequest,
        ImageGenerationRequest,
        VideoGenerationRequest,
    )

    generation = set(VideoGenerationRequest.model_fields) | set(ImageGenerationRequest.model_fields)
    assert generation <= set(EstimateRequest.model_fields)


@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize("header", ["Idempotency-Key", "Last-Event-ID"])
async def test_stored_headers_must_be_visible_ascii(
    client: httpx.AsyncClient, account: Tenant, header: str
) -> None:
    response = await client.post(
        "/v1/estimates",
        json={"model": "preview", "duration": 5},
        headers=[(header.encode(), b"caf\xc3\xa9\x01"), *account.headers.items()],
    )
    assert response.status_code == 422
    assert response.json()["error"]["param"] == header


async def test_odd_request_id_header_is_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers=[(b"x-request-id", b"\xff\xfe")])
    assert response.status_code == 200
    assert response.headers["x-request-id"].startswith("req_")


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 36), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize(
    ("path", "file_field", "fields"),
    [
        ("/v1/videos", "input_reference", {"model": "preview", "prompt": "a\x00b"}),
        ("/v1/video/generate", "image", {"model": "preview", "prompt": "a\x00b"}),
    ],
)
async def test_nul_in_multipart_fields_is_refused(
    client: httpx.AsyncClient, account: Tenant, path: str, file_field: str, fields: dict[str, str]
) -> None:
    response = await client.post(
        path,
        data=fields,
        files={file_field: ("a.png", _png(), "image/png")},
        headers=account.headers,
    )
    assert 400 <= response.status_code < 500, response.text
    assert "prompt" in response.text
    assert "NUL" in response.text


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/v1/keys", "GET, POST"),
        ("PUT", "/v1/webhooks/we_1", "DELETE, GET, PATCH"),
        ("DELETE", "/openapi/v2/account/balance", "GET"),
        # Fixed paths that a templated path would also fit list their own methods.
        ("PUT", "/v1/webhooks/task-secret", "GET"),
        ("PUT", "/v1/videos/generations", "POST"),
    ],
)
async def test_405_allow_lists_every_method_of_the_path(
    client: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
