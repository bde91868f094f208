"""POST /v1/uploads types files by decoding them, stores them, and their ids feed input_image."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from framegate.keys.scopes import Scope
from framegate.kit.time import utcnow
from framegate.models import Upload
from framegate.runtime import Runtime
from tests.conftest import Tenant, file_path, make_account, wait_for_task
from tests.uploads.samples import image_bytes, video_bytes

I2V = {"model": "preview", "prompt": "a wave", "duration": 1, "size": "64x64"}


async def upload(
    client: httpx.AsyncClient,
    account: Tenant,
    data: bytes,
    filename: str = "upload.bin",
    declared_type: str = "application/octet-stream",
    **fields: str,
) -> httpx.Response:
    return await client.post(
        "/v1/uploads",
        files={"file": (filename, data, declared_type)},
        data=fields,
        headers=account.headers,
    )


async def uploaded(client: httpx.AsyncClient, account: Tenant, data: bytes) -> dict[str, Any]:
    response = await upload(client, account, data)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    ("data", "kind", "content_type"),
    [
        (image_bytes("PNG"), "image", "image/png"),
        (image_bytes("JPEG"), "image", "image/jpeg"),
        (image_bytes("WEBP"), "image", "image/webp"),
        (video_bytes("mp4"), "video", "video/mp4"),
        (video_bytes("mov"), "video", "video/quicktime"),
        (video_bytes("webm", "libvpx-vp9"), "video", "video/webm"),
    ],
    ids=["png", "jpeg", "webp", "mp4", "mov", "webm"],
)
async def test_upload_is_typed_by_decoding_and_stored(
    client: httpx.AsyncClient, account: Tenant, data: bytes, kind: str, content_type: str
) -> None:
    # The declared type and name say nothing useful on purpose: only decoding decides.
    response = await upload(client, account, data, filename="dir/clip.bin")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"].startswith("upl_")
    assert body["object"] == "upload"
    assert (body["kind"], body["content_type"]) == (kind, content_type)
    assert (body["bytes"], body["width"], body["height"]) == (len(data), 64, 48)
    assert body["filename"] == "clip.bin"
    assert body["expires_at"] > body["created_at"]
    stored = await client.get(file_path(body["url"]))
    assert stored.status_code == 200
    assert stored.content == data

    again = await client.get(f"/v1/uploads/{body['id']}", headers=account.headers)
    assert again.status_code == 200
    assert {k: v for k, v in again.json().items() if k != "url"} == {
        k: v for k, v in body.items() if k != "url"
    }


async def test_image_upload_id_works_as_input_image(
    client: httpx.AsyncClient, account: Tenant
) -> None:
    image = await uploaded(client, account, image_bytes("PNG", 96, 64))
    response = await client.post(
        "/v1/async/videos/generations",
        json={**I2V, "input_image": image["id"]},
        headers=account.headers,
    )
    assert response.status_code == 202, response.text
    task = await wait_for_task(client, account, response.json()["id"])
    assert task["status"] == "completed", task
    assert task["result"]["data"][0]["url"]


@pytest.mark.parametrize(
    ("data", "filename", "declared_type"),
    [
        (
            b"<!doctype html><html><body><script>alert(1)</script></body></html>",
            "a.html",
            "text/html",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect/></svg>',
            "x.png",
            "image/png",
        ),
        (b"just some text\n" * 50, "clip.mp4", "video/mp4"),
        (image_bytes("GIF"), "anim.gif", "image/gif"),
        (image_bytes("BMP"), "x.png", "image/png"),
    ],
    ids=["html", "svg-named-png", "text-named-mp4", "gif", "bmp-named-png"],
)
async def test_files_that_are_not_accepted_media_are_refused(
    client: httpx.AsyncClient, account: Tenant, data: bytes, filename: str, declared_type: str
) -> None:
    response = await upload(client, account, data, filename, declared_type)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == ("file", "unsupported_media")
    assert "PNG, JPEG or WebP" in error["message"] and "MP4, MOV or WebM" in error["message"]


async def test_damaged_files_are_refused_naming_file(
    client: httpx.AsyncClient, account: Tenant
) -> None:
    truncated_video = await upload(client, account, video_bytes()[:200])
    assert truncated_video.status_code == 422
    assert truncated_video.json()["error"]["param"] == "file"
    assert truncated_video.json()["error"]["code"] == "invalid_video"
    truncated_png = await upload(client, account, image_bytes("PNG")[:60])
    assert truncated_png.status_code == 422
    assert truncated_png.json()["error"]["param"] == "file"
    empty = await upload(client, account, b"")
    assert (empty.status_code, empty.json()["error"]["code"]) == (422, "empty_file")


async def test_another_accounts_upload_is_not_usable(
    client: httpx.AsyncClient, runtime: Runtime, account: Tenant
) -> None:
    image = await uploaded(client, account, image_bytes("PNG"))
    stranger = await make_account(runtime)
    response = await client.post(
        "/v1/async/videos/generations",
        json={**I2V, "input_image": image["id"]},
        headers=stranger.headers,
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == ("input_image", "upload_not_found")
    seen = await client.get(f"/v1/uploads/{image['id']}", headers=stranger.headers)
    assert seen.status_code == 404


async def test_video_expired_and_deleted_uploads_are_not_input_images(
    client: httpx.AsyncClient, runtime: Runtime, account: Tenant
) -> None:
    video = await uploaded(client, account, video_bytes())
    expired = await uploaded(client, account, image_bytes("PNG"))
    deleted = await uploaded(client, account, image_bytes("PNG"))
    async with runtime.sessionmaker() as session:
        past = utcnow() - timedelta(seconds=1)
        await session.execute(
            update(Upload).where(Upload.id == expired["id"]).values(expires_at=past)
        )
        await session.execute(
            update(Upload).where(Upload.id == deleted["id"]).values(deleted_at=past)
        )
        await session.commit()
    expected = {
        video["id"]: "upload_not_image",
        expired["id"]: "upload_expired",
        deleted["id"]: "upload_deleted",
        "upl_doesnotexist": "upload_not_found",
    }
    for upload_id, code in expected.items():
        response = await client.post(
            "/v1/async/videos/generations",
            json={**I2V, "input_image": upload_id},
            headers=account.headers,
        )
        assert response.status_code == 422, (upload_id, response.text)
        error = response.json()["error"]
        assert (error["param"], error["code"]) == ("input_image", code)
    shown = await client.get(f"/v1/uploads/{expired['id']}", headers=account.headers)
    assert shown.status_code == 200 and shown.json()["url"] is None
    gone = await client.get(f"/v1/uploads/{deleted['id']}", headers=account.headers)
    assert gone.status_code == 404


@pytest.mark.parametrize(
    ("scopes", "status"),
    [
        ([Scope.videos_write], 201),
        ([Scope.images_write], 201),
        ([Scope.tasks_read, Scope.credits_read], 403),
    ],
)
async def test_either_generation_scope_may_upload(
    client: httpx.AsyncClient, runtime: Runtime, scopes: list[str], status: int
) -> None:
    tenant = await make_account(runtime, scopes=scopes)
    response = await upload(client, tenant, image_bytes("PNG"))
    assert response.status_code == status, response.text
    unauthenticated = await client.post("/v1/uploads", files={"file": ("a.png", b"x")})
    assert unauthenticated.status_code == 401


async def test_purpose_must_match_the_decoded_kind(
    client: httpx.AsyncClient, account: Tenant
) -> None:
    ok = await upload(client, account, image_bytes("PNG"), purpose="input_image")
    assert ok.status_code == 201, ok.text
    mismatch = await upload(client, account, video_bytes(), purpose="input_image")
    assert mismatch.status_code == 422
    assert mismatch.json()["error"]["code"] == "wrong_media_kind"
    unknown = await upload(client, account, image_bytes("PNG"), purpose="wallpaper")
    assert (unknown.status_code, unknown.json()["error"]["param"]) == (422, "purpose")


async def test_malformed_upload_requests_are_refused(
    client: httpx.AsyncClient, account: Tenant
) -> None:
    as_json = await client.post("/v1/uploads", json={"file": "x"}, headers=account.headers)
    assert (as_json.status_code, as_json.json()["error"]["code"]) == (400, "not_multipart")
    no_file = await client.post(
        "/v1/uploads", files={"purpose": (None, "input_image")}, headers=account.headers
    )
    assert no_file.status_code == 422
    assert no_file.json()["error"]["param"] == "file"
    two_files = await client.post(
        "/v1/uploads",
        files=[("file", ("a.png", image_bytes("PNG"))), ("file", ("b.png", image_bytes("PNG")))],
        headers=account.headers,
    )
    assert (two_files.status_code, two_files.json()["error"]["code"]) == (422, "too_many_files")
    unknown = await client.post(
        "/v1/uploads",
        files={"file": ("a.png", image_bytes("PNG")), "other": (None, "x")},
        headers=account.headers,
    )
    assert (unknown.status_code, unknown.json()["error"]["param"]) == (422, "other")
    unterminated = await client.post(
        "/v1/uploads",
        content=b'--b\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nabc',
        headers={**account.headers, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert (unterminated.status_code, unterminated.json()["error"]["code"]) == (
        400,
        "invalid_multipart",
    )


async def test_refused_uploads_leave_no_scratch_files(
    client: httpx.AsyncClient, runtime: Runtime, account: Tenant
) -> None:
    await upload(client, account, b"<html></html>")
    await upload(client, account, image_bytes("PNG"))
    scratch = runtime.settings.data_dir / "tmp" / "uploads"
    assert scratch.is_dir()
    assert list(scratch.iterdir()) == []
