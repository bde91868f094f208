"""Object storage (FRAMEGATE_STORAGE=s3) through the HTTP API, against a real S3 server
(SeaweedFS on loopback): outputs, thumbnails, uploads and input images go to the bucket and
nowhere on the API's disk; clients fetch them by presigned URLs that the S3 server checks
(an altered or expired one is refused); retention deletes a task's objects and its links
answer 410; the OpenAI dialect streams the content from the bucket; old /v1/files links
redirect to the bucket; a vendor's result is stored in the bucket too."""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import av
import httpx
import httpx2
import obstore
import openai
import pytest
from fastapi import FastAPI
from obstore.store import S3Store
from PIL import Image
from sqlalchemy import update

from framegate.app import create_app
from framegate.config import Settings
from framegate.db import transaction
from framegate.kit.time import utcnow
from framegate.models import Task, Upload
from framegate.runtime import Runtime
from framegate.storage.s3 import S3Storage
from tests.conftest import Tenant, file_path, make_account, wait_for_task
from tests.engines.vendors.common import FAKE_HOST, SAMPLE_FRAMES
from tests.engines.vendors.fake_kling import FakeKling
from tests.s3server import S3Server
from tests.waiting import wait_until

# The SDK marks the Sora methods deprecated (OpenAI's own service is being retired).
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")

WIDTH, HEIGHT, DURATION, FPS = 160, 96, 2, 8
CLIP = {"model": "preview", "duration": DURATION, "fps": FPS, "size": f"{WIDTH}x{HEIGHT}"}
# What may stay in the data directory of an installation on object storage: the SQLite
# database (and its journal) and the generated secret; scratch folders, empty.
DATA_DIR_FILES = {"framegate.db", "framegate.db-wal", "framegate.db-shm", "secret.key"}
SCRATCH_DIRS = {"tmp", "tmp/uploads"}


def s3_settings(data_dir: Path, server: S3Server, bucket: str, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "env": "test",
        "data_dir": data_dir,
        "secret_key": secrets.token_urlsafe(40),
        "storage": "s3",
        "s3_bucket": bucket,
        "s3_endpoint_url": server.endpoint,
        "worker_concurrency": 2,
        "worker_poll_seconds": 0.05,
        "task_lease_seconds": 5.0,
        "reaper_interval_seconds": 0.5,
        # The vendor fake (and only it) serves its results on this loopback address.
        "allow_private_networks": f"{FAKE_HOST}/32",
        "default_max_concurrent_videos": 100,
        "default_requests_per_minute": 100_000,
        "anonymous_requests_per_minute": 1_000_000,
        "failed_auth_per_minute": 1_000_000,
        "vendor_poll_seconds": 0.05,
        "vendor_poll_max_seconds": 0.2,
    }
    base.update(overrides)
    return Settings(**base)


@pytest.fixture(scope="module")
def aws_credentials(s3_server: S3Server) -> Iterator[None]:
    """obstore takes the keys from the standard AWS variables, as in a deployment."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
        patch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
        yield


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    return s3_server.new_bucket()


@pytest.fixture(scope="module")
def store(s3_server: S3Server, bucket: str) -> S3Store:
    """The test's own client of the bucket (not framegate's)."""
    return s3_server.store(bucket)


@pytest.fixture(scope="module")
def kling() -> Iterator[FakeKling]:
    with FakeKling() as fake:
        yield fake


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("s3-api")


@pytest.fixture(scope="module")
async def s3app(
    aws_credentials: None,
    s3_server: S3Server,
    bucket: str,
    kling: FakeKling,
    data_dir: Path,
) -> AsyncIterator[FastAPI]:
    settings = s3_settings(data_dir, s3_server, bucket, **kling.settings_overrides())
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="module")
def runtime(s3app: FastAPI) -> Runtime:
    value: Runtime = s3app.state.runtime
    return value


@pytest.fixture(scope="module")
async def api(s3app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=s3app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture(scope="module")
async def web() -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client, as a browser or a client's backend fetching a result URL."""
    async with httpx.AsyncClient(timeout=30, trust_env=False) as c:
        yield c


@pytest.fixture(scope="module")
async def tenant(runtime: Runtime) -> Tenant:
    return await make_account(runtime, credits=100_000)


def png_bytes(
    size: tuple[int, int] = (320, 192), color: tuple[int, int, int] = (30, 160, 90)
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def decoded_frames(data: bytes) -> tuple[int, int, int]:
    """(frames, width, height) of an MP4, decoded with PyAV."""
    with av.open(io.BytesIO(data), mode="r") as container:
        frames = list(container.decode(video=0))
    return len(frames), frames[0].width, frames[0].height


def jpeg_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        image.load()
        return image.size


async def bucket_keys(store: S3Store, prefix: str) -> list[str]:
    return sorted(str(meta["path"]) for meta in await obstore.list(store, prefix).collect_async())


async def bucket_object(store: S3Store, key: str) -> bytes:
    return bytes(await (await obstore.get_async(store, key)).bytes_async())


def presigned_key(url: str, server: S3Server, bucket: str) -> str:
    """The object key a presigned URL names, after checking that it points at the bucket."""
    origin = f"{server.endpoint}/{bucket}/"
    assert url.startswith(origin), f"{url} is not a URL of the bucket {origin}"
    parsed = httpx.URL(url)
    assert "X-Amz-Signature" in parsed.params and "X-Amz-Credential" in parsed.params
    return parsed.path.removeprefix(f"/{bucket}/")


async def submit(api: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    body = {**CLIP, "prompt": "a paper boat on a pond", **fields}
    response = await api.post("/v1/async/videos/generations", json=body, headers=tenant.headers)
    assert response.status_code == 202, response.text
    return await wait_for_task(api, tenant, response.json()["id"], timeout=60)


async def upload_png(api: httpx.AsyncClient, tenant: Tenant, data: bytes) -> dict[str, Any]:
    response = await api.post(
        "/v1/uploads", files={"file": ("start.png", data, "image/png")}, headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def get_task(api: httpx.AsyncClient, tenant: Tenant, task_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/tasks/{task_id}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def stray_files(data_dir: Path) -> list[str]:
    """What the data directory holds besides the database, the secret and the (empty)
    scratch folders."""
    stray = []
    for path in data_dir.rglob("*"):
        name = str(path.relative_to(data_dir))
        if name not in (SCRATCH_DIRS if path.is_dir() else DATA_DIR_FILES):
            stray.append(name)
    return sorted(stray)


@pytest.fixture(scope="module")
async def t2v(api: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
    task = await submit(api, tenant)
    assert task["status"] == "completed", task["error"]
    return task


@pytest.fixture(scope="module")
async def i2v(api: httpx.AsyncClient, tenant: Tenant) -> tuple[dict[str, Any], dict[str, Any]]:
    """An image-to-video task made from an upload, and the upload."""
    upload = await upload_png(api, tenant, png_bytes())
    task = await submit(api, tenant, input_image=upload["id"])
    assert task["status"] == "completed", task["error"]
    assert task["input"]["input_image"] == upload["id"]
    return task, upload


# --- outputs live in the bucket ----------------------------------------------------------------


async def test_outputs_and_uploads_are_in_the_bucket_and_served_from_it(
    api: httpx.AsyncClient,
    web: httpx.AsyncClient,
    store: S3Store,
    s3_server: S3Server,
    bucket: str,
    data_dir: Path,
    t2v: dict[str, Any],
    i2v: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    i2v_task, upload = i2v
    for task in (t2v, i2v_task):
        output = task["result"]["data"][0]
        assert (output["width"], output["height"]) == (WIDTH, HEIGHT)
        assert (output["duration"], output["fps"], output["num_frames"]) == (
            DURATION,
            FPS,
            DURATION * FPS,
        )
        # Straight from the bucket: the API serves none of the bytes.
        video_key = presigned_key(output["url"], s3_server, bucket)
        thumbnail_key = presigned_key(output["thumbnail_url"], s3_server, bucket)
        assert video_key.startswith(f"outputs/{task['id']}/")
        assert thumbnail_key.startswith(f"outputs/{task['id']}/")
        video = await web.get(output["url"])
        assert video.status_code == 200, video.text
        assert video.headers["content-type"] == "video/mp4"
        assert video.headers["cache-control"] == "private, max-age=3600, immutable"
        assert decoded_frames(video.content) == (DURATION * FPS, WIDTH, HEIGHT)
        assert video.content == await bucket_object(store, video_key)
        thumbnail = await web.get(output["thumbnail_url"])
        assert thumbnail.status_code == 200, thumbnail.text
        assert thumbnail.headers["content-type"] == "image/jpeg"
        width, height = jpeg_size(thumbnail.content)
        assert width / height == pytest.approx(WIDTH / HEIGHT, rel=0.05)

        # A player seeks with Range requests.
        size = len(video.content)
        part = await web.get(output["url"], headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.content == video.content[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{size}"
        tail = await web.get(output["url"], headers={"Range": "bytes=-50"})
        assert tail.status_code == 206 and tail.content == video.content[-50:]

    i2v_keys = await bucket_keys(store, f"outputs/{i2v_task['id']}/")
    assert [key.rsplit("/", 1)[-1] for key in i2v_keys] == ["thumbnail-0.jpg", "video-0.mp4"]
    # The input image the task was made from is kept in the bucket for remixes.
    assert await bucket_keys(store, f"inputs/{i2v_task['id']}/") == [
        f"inputs/{i2v_task['id']}/input"
    ]
    assert await bucket_keys(store, f"uploads/{upload['id']}/") == [
        f"uploads/{upload['id']}/original.png"
    ]
    assert await bucket_keys(store, f"inputs/{t2v['id']}/") == []

    # Nothing of them on the API's disk (the worker removes its scratch folder just after
    # the task completes).
    await wait_until(
        lambda: not stray_files(data_dir),
        10,
        lambda: f"the data directory to hold only the database: {stray_files(data_dir)}",
    )


async def test_an_uploads_url_is_presigned_on_the_bucket(
    api: httpx.AsyncClient,
    web: httpx.AsyncClient,
    tenant: Tenant,
    store: S3Store,
    s3_server: S3Server,
    bucket: str,
) -> None:
    data = png_bytes((64, 48), (200, 20, 20))
    created = await upload_png(api, tenant, data)
    fetched = await api.get(f"/v1/uploads/{created['id']}", headers=tenant.headers)
    assert fetched.status_code == 200, fetched.text
    for url in (created["url"], fetched.json()["url"]):
        key = presigned_key(url, s3_server, bucket)
        assert key == f"uploads/{created['id']}/original.png"
        response = await web.get(url)
        assert response.status_code == 200, response.text
        assert response.content == data == await bucket_object(store, key)
        assert response.headers["content-type"] == "image/png"


# --- the S3 server checks the presigned URLs --------------------------------------------------


async def test_an_altered_presigned_url_is_refused_by_the_bucket(
    web: httpx.AsyncClient, t2v: dict[str, Any]
) -> None:
    url = httpx.URL(t2v["result"]["data"][0]["url"])
    signature = url.params["X-Amz-Signature"]
    flipped = "0" if signature[-1] != "0" else "1"
    forged = url.copy_set_param("X-Amz-Signature", signature[:-1] + flipped)
    assert (await web.get(forged)).status_code == 403
    # The signature covers the key and the validity: another object, a longer life.
    thumbnail = str(url).replace("video-0.mp4", "thumbnail-0.jpg")
    assert (await web.get(thumbnail)).status_code == 403
    longer = url.copy_set_param("X-Amz-Expires", str(int(url.params["X-Amz-Expires"]) + 60))
    assert (await web.get(longer)).status_code == 403
    unsigned = str(url).split("?", 1)[0]
    assert (await web.get(unsigned)).status_code == 403
    assert (await web.get(url)).status_code == 200  # the URL as handed out still works


async def test_an_expired_presigned_url_is_refused_by_the_bucket(
    aws_credentials: None,
    s3_server: S3Server,
    bucket: str,
    web: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    settings = s3_settings(tmp_path, s3_server, bucket, signed_url_ttl_seconds=1)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
            tenant = await make_account(application.state.runtime)
            data = png_bytes((32, 32))
            upload_id = (await upload_png(api, tenant, data))["id"]

            async def fresh_url() -> str:
                response = await api.get(f"/v1/uploads/{upload_id}", headers=tenant.headers)
                url: str = response.json()["url"]
                assert httpx.URL(url).params["X-Amz-Expires"] == "1"
                return url

            # A URL is good for about a second from the second it was signed in: fetched at
            # once, it serves (retried should the second turn between signing and fetching).
            async def served_fresh() -> bool:
                response = await web.get(await fresh_url())
                return response.status_code == 200 and response.content == data

            await wait_until(served_fresh, 10, "a fresh one-second URL to serve the upload")
            url = await fresh_url()

            async def refused() -> httpx.Response | None:
                response = await web.get(url)
                return response if response.status_code != 200 else None

            stale: httpx.Response = await wait_until(
                refused, 10, "the one-second URL to expire", interval=0.2
            )
            assert stale.status_code == 403
            assert b"expired" in stale.content.lower(), stale.text


# --- retention ---------------------------------------------------------------------------------


async def test_retention_deletes_the_tasks_objects_and_its_links_answer_410(
    api: httpx.AsyncClient,
    web: httpx.AsyncClient,
    runtime: Runtime,
    tenant: Tenant,
    store: S3Store,
    s3_server: S3Server,
    bucket: str,
) -> None:
    upload = await upload_png(api, tenant, png_bytes((96, 96), (10, 10, 200)))
    task = await submit(api, tenant, input_image=upload["id"])
    kept = await submit(api, tenant, prompt="another task, not expired")
    assert task["status"] == kept["status"] == "completed"
    output = task["result"]["data"][0]
    video_key = presigned_key(output["url"], s3_server, bucket)
    old_link = runtime.signer.sign_path(video_key)  # a link handed out by the API before
    assert (await api.get(old_link)).status_code == 307
    outputs, inputs = f"outputs/{task['id']}/", f"inputs/{task['id']}/"
    assert len(await bucket_keys(store, outputs)) == 2
    assert len(await bucket_keys(store, inputs)) == 1

    async with runtime.sessionmaker() as session:  # as if the retention period had passed
        await session.execute(
            update(Task).where(Task.id == task["id"]).values(expires_at=utcnow() - timedelta(1))
        )
        await session.commit()
    assert runtime.sweeper is not None
    assert await runtime.sweeper.run_once() == 1

    assert await bucket_keys(store, outputs) == []
    assert await bucket_keys(store, inputs) == []
    assert len(await bucket_keys(store, f"outputs/{kept['id']}/")) == 2  # another task's stay
    after = await get_task(api, tenant, task["id"])
    assert after["status"] == "completed" and after["result"] is None
    gone = await api.get(old_link)
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "output_expired"
    # The presigned URL handed out before: the object is no longer in the bucket.
    assert (await web.get(output["url"])).status_code == 404

    # A second sweep, and a second purge of the same task, are harmless.
    assert await runtime.sweeper.run_once() == 0
    async with runtime.sessionmaker() as session:
        row = await session.get(Task, task["id"])
        assert row is not None
    async with transaction(runtime.sessionmaker) as session:
        await runtime.tasks.purge_outputs(session, row)
    assert (await get_task(api, tenant, task["id"]))["result"] is None
    assert (await api.get(old_link)).status_code == 410
    assert (await get_task(api, tenant, kept["id"]))["result"] is not None

    # An upload past its retention leaves the bucket too, and its id no longer works.
    async with runtime.sessionmaker() as session:
        await session.execute(
            update(Upload)
            .where(Upload.id == upload["id"])
            .values(expires_at=utcnow() - timedelta(1))
        )
        await session.commit()
    await runtime.sweeper.run_once()
    assert await bucket_keys(store, f"uploads/{upload['id']}/") == []
    refused = await api.post(
        "/v1/async/videos/generations",
        json={**CLIP, "prompt": "x", "input_image": upload["id"]},
        headers=tenant.headers,
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["param"] == "input_image"


# --- the OpenAI dialect --------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def openai_client(s3app: FastAPI, tenant: Tenant) -> AsyncIterator[openai.AsyncOpenAI]:
    transport = httpx2.ASGITransport(app=s3app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield openai.AsyncOpenAI(
            base_url="http://testserver/v1",
            api_key=tenant.api_key,
            http_client=http,
            max_retries=0,
            timeout=30,
        )


async def test_openai_download_content_streams_the_bucket_objects(
    openai_client: openai.AsyncOpenAI,
    store: S3Store,
    s3_server: S3Server,
    bucket: str,
    t2v: dict[str, Any],
) -> None:
    output = t2v["result"]["data"][0]
    video_key = presigned_key(output["url"], s3_server, bucket)
    thumbnail_key = presigned_key(output["thumbnail_url"], s3_server, bucket)

    content = await openai_client.videos.download_content(t2v["id"])
    assert content.response.headers["content-type"] == "video/mp4"
    assert content.content == await bucket_object(store, video_key)
    assert int(content.response.headers["content-length"]) == len(content.content)
    assert decoded_frames(content.content) == (DURATION * FPS, WIDTH, HEIGHT)

    thumbnail = await openai_client.videos.download_content(t2v["id"], variant="thumbnail")
    assert thumbnail.response.headers["content-type"] == "image/jpeg"
    assert thumbnail.content == await bucket_object(store, thumbnail_key)
    jpeg_size(thumbnail.content)

    # Made from a temporary local copy of the MP4: its 16 frames, 5 per row (tiles of the
    # frame's own size, narrower than the 256 px at most).
    sheet = await openai_client.videos.download_content(t2v["id"], variant="spritesheet")
    assert sheet.response.headers["content-type"] == "image/jpeg"
    assert jpeg_size(sheet.content) == (5 * WIDTH, 4 * HEIGHT)


async def test_openai_delete_removes_the_objects_from_the_bucket(
    openai_client: openai.AsyncOpenAI, api: httpx.AsyncClient, tenant: Tenant, store: S3Store
) -> None:
    upload = await upload_png(api, tenant, png_bytes((64, 64)))
    task = await submit(api, tenant, input_image=upload["id"])
    assert task["status"] == "completed", task["error"]
    assert len(await bucket_keys(store, f"outputs/{task['id']}/")) == 2
    deleted = await openai_client.videos.delete(task["id"])
    assert deleted.deleted is True
    assert await bucket_keys(store, f"outputs/{task['id']}/") == []
    assert await bucket_keys(store, f"inputs/{task['id']}/") == []
    with pytest.raises(openai.NotFoundError):
        await openai_client.videos.download_content(task["id"])
    assert (await get_task(api, tenant, task["id"]))["result"] is None
    # The upload is the account's own file, not the task's: it stays until its retention.
    assert len(await bucket_keys(store, f"uploads/{upload['id']}/")) == 1


# --- /v1/files links ---------------------------------------------------------------------------


async def test_an_api_file_link_redirects_to_the_bucket(
    api: httpx.AsyncClient,
    web: httpx.AsyncClient,
    runtime: Runtime,
    store: S3Store,
    s3_server: S3Server,
    bucket: str,
    t2v: dict[str, Any],
    i2v: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    output = t2v["result"]["data"][0]
    _, upload = i2v
    keys = [
        presigned_key(output["url"], s3_server, bucket),
        presigned_key(output["thumbnail_url"], s3_server, bucket),
        f"uploads/{upload['id']}/original.png",
    ]
    for key in keys:
        response = await api.get(runtime.signer.sign_path(key))
        assert response.status_code == 307, response.text
        location = response.headers["location"]
        assert presigned_key(location, s3_server, bucket) == key
        served = await web.get(location)
        assert served.status_code == 200, served.text
        assert served.content == await bucket_object(store, key)

    # The link's own signature is still checked before anything is redirected.
    link = runtime.signer.sign_path(keys[0])
    forged = link[:-1] + ("0" if link[-1] != "0" else "1")
    assert (await api.get(forged)).status_code == 403
    missing = await api.get(runtime.signer.sign_path("outputs/task_missing/1/video-0.mp4"))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "file_not_found"


# --- a vendor's result ---------------------------------------------------------------------------


async def test_a_vendor_result_is_stored_in_the_bucket(
    api: httpx.AsyncClient,
    web: httpx.AsyncClient,
    tenant: Tenant,
    kling: FakeKling,
    store: S3Store,
    s3_server: S3Server,
    bucket: str,
    data_dir: Path,
) -> None:
    kling.script("succeed", polls=2)
    before = kling.submitted
    response = await api.post(
        "/v1/async/videos/generations",
        json={"model": "kling-v2", "prompt": "a lighthouse at dusk"},
        headers=tenant.headers,
    )
    assert response.status_code == 202, response.text
    task = await wait_for_task(api, tenant, response.json()["id"], timeout=60)
    assert task["status"] == "completed", task["error"]
    assert kling.submitted == before + 1 and task["served_by"] == "kling-v2"
    output = task["result"]["data"][0]
    key = presigned_key(output["url"], s3_server, bucket)  # ours, not the vendor's URL
    assert key.startswith(f"outputs/{task['id']}/")
    assert key in await bucket_keys(store, f"outputs/{task['id']}/")
    video = await web.get(output["url"])
    assert video.status_code == 200, video.text
    assert video.content == await bucket_object(store, key)
    assert decoded_frames(video.content)[0] == SAMPLE_FRAMES
    assert not file_path(output["url"]).startswith("/v1/files/")
    await wait_until(
        lambda: not stray_files(data_dir),
        10,
        lambda: f"the data directory to hold only the database: {stray_files(data_dir)}",
    )


def test_the_storage_is_the_bucket(runtime: Runtime, bucket: str) -> None:
    assert isinstance(runtime.storage, S3Storage)
    described = runtime.storage.describe()
    assert described.startswith(f"s3://{bucket}/")
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in described
