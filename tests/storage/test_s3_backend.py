"""Storage backends against a real S3 server (SeaweedFS on loopback, a fresh bucket per test).

The Storage protocol behaves the same on the local directory and on a bucket; what only a
bucket does: multipart writes, the object's headers, presigned URLs (ranges, tampering,
expiry, no unsigned reads), a key prefix and a CDN origin; and `framegate storage check` and
`framegate storage migrate --to s3` run as real processes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import obstore
import pytest

from framegate.storage.base import Storage
from framegate.storage.local import LocalStorage
from framegate.storage.s3 import PART_BYTES, S3Storage
from tests.processes import FRAMEGATE, environment
from tests.s3server import REGION, S3Server

BACKENDS = ["local", "s3"]
INVALID_KEYS = ["", "/abs", "a/../b", "a//b", "a/./b", "a\\b", "a\x00b", "a\nb", "a\x7fb"]
KEY = "outputs/task_1/1/video-0.mp4"
CACHE_CONTROL = "private, max-age={ttl}, immutable"
CLI_TIMEOUT_SECONDS = 60


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch, s3_server: S3Server) -> None:
    """The test server's keys in the standard variables S3Storage reads (and nothing else of
    AWS's: no profile, session token or endpoint of the machine's)."""
    for name in list(os.environ):
        if name.startswith("AWS_") and name != "AWS_CA_BUNDLE":
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)


@pytest.fixture
def bucket(s3_server: S3Server) -> Iterator[str]:
    """A fresh bucket, dropped afterwards: the server has room for a few buckets holding
    data at a time (each takes several volumes of its own), not one per test of a run."""
    name = s3_server.new_bucket()
    yield name
    drop_bucket(s3_server, name)


def drop_bucket(server: S3Server, bucket: str) -> None:
    store = server.store(bucket)
    keys = list(bucket_objects(server, bucket))
    if keys:
        obstore.delete(store, keys)
    # DeleteBucket, signed by the test's own client (obstore has no call for it).
    url = obstore.sign(store, "DELETE", "", timedelta(seconds=60))
    response = httpx.delete(url, timeout=30)
    assert response.status_code == 204, response.text


def make_s3(server: S3Server, bucket: str, **options: Any) -> S3Storage:
    return S3Storage(bucket, endpoint_url=server.endpoint, region=REGION, **options)


@pytest.fixture
def s3_storage(s3_server: S3Server, bucket: str, aws_credentials: None) -> S3Storage:
    return make_s3(s3_server, bucket)


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "files")
    s3: S3Storage = request.getfixturevalue("s3_storage")
    return s3


def bucket_objects(server: S3Server, bucket: str) -> dict[str, int]:
    """Every object in the bucket, read with the test's own client: its full key and size."""
    return {
        str(meta["path"]): int(meta["size"])
        for page in obstore.list(server.store(bucket))
        for meta in page
    }


async def listed(storage: Storage, prefix: str = "") -> list[tuple[str, int]]:
    return sorted([item async for item in storage.objects(prefix)])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# The Storage protocol, on both backends.


async def test_bytes_round_trip(storage: Storage) -> None:
    assert await storage.put_bytes(KEY, b"first version", "video/mp4") == 13
    assert await storage.get_bytes(KEY) == b"first version"
    # Writing the key again replaces the object whole.
    assert await storage.put_bytes(KEY, b"second", "video/mp4") == 6
    assert await storage.get_bytes(KEY) == b"second"


async def test_put_file_returns_the_size(storage: Storage, tmp_path: Path) -> None:
    data = os.urandom(123_457)
    source = tmp_path / "source.mp4"
    source.write_bytes(data)
    assert await storage.put_file(KEY, source, "video/mp4") == len(data)
    assert await storage.get_bytes(KEY) == data
    assert await listed(storage) == [(KEY, len(data))]


async def test_open_streams_the_whole_object_in_chunks(storage: Storage) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    await storage.put_bytes(KEY, data, "video/mp4")
    stored = await storage.open(KEY)
    assert stored.size == len(data)
    chunks = [chunk async for chunk in stored.chunks]
    assert len(chunks) > 1, "a 3 MiB object came in one piece: it was not streamed"
    assert all(isinstance(chunk, bytes) for chunk in chunks)
    assert b"".join(chunks) == data


async def test_download_to_a_path(storage: Storage, tmp_path: Path) -> None:
    data = os.urandom(2 * 1024 * 1024 + 5)
    await storage.put_bytes(KEY, data, "video/mp4")
    target = tmp_path / "downloaded.mp4"
    await storage.download(KEY, target)
    assert sha256(target.read_bytes()) == sha256(data)

    missing = tmp_path / "missing.mp4"
    with pytest.raises(FileNotFoundError):
        await storage.download("outputs/task_1/1/missing.mp4", missing)
    assert not missing.exists()


async def test_exists(storage: Storage) -> None:
    assert not await storage.exists(KEY)
    await storage.put_bytes(KEY, b"x", "video/mp4")
    assert await storage.exists(KEY)
    # A folder is not an object.
    assert not await storage.exists("outputs/task_1")
    assert await storage.delete_prefix("outputs/task_1/") == 1
    assert not await storage.exists(KEY)


async def test_delete_folder_prefix_spares_its_siblings(storage: Storage) -> None:
    doomed = {
        "outputs/ab/1/video-0.mp4": b"v" * 10,
        "outputs/ab/1/thumbnail-0.jpg": b"t" * 3,
        "outputs/ab/2/video-0.mp4": b"w" * 7,
    }
    kept = {
        "outputs/abc/1/video-0.mp4": b"sibling",
        "outputs/a/1/video-0.mp4": b"shorter",
        "inputs/ab/image.png": b"input",
    }
    for key, data in {**doomed, **kept}.items():
        await storage.put_bytes(key, data, "application/octet-stream")

    assert await storage.delete_prefix("outputs/ab/") == len(doomed)
    assert await listed(storage) == sorted((key, len(data)) for key, data in kept.items())
    for key, data in kept.items():
        assert await storage.get_bytes(key) == data
    # Again: nothing left to delete, and no error.
    assert await storage.delete_prefix("outputs/ab/") == 0
    assert len(await listed(storage)) == len(kept)


async def test_delete_prefix_without_a_slash_is_a_folder_not_a_string_prefix(
    storage: Storage,
) -> None:
    await storage.put_bytes("outputs/ab/1/video-0.mp4", b"doomed", "video/mp4")
    await storage.put_bytes("outputs/abc/1/video-0.mp4", b"sibling", "video/mp4")
    assert await storage.delete_prefix("outputs/ab") == 1
    assert await listed(storage) == [("outputs/abc/1/video-0.mp4", 7)]


async def test_delete_prefix_of_one_key(storage: Storage) -> None:
    """A key is a prefix too (a discarded upload, the `storage check` probe): it deletes
    that object, not one whose key merely starts with the same characters."""
    await storage.put_bytes("uploads/up_1/image.png", b"doomed", "image/png")
    await storage.put_bytes("uploads/up_1/image.png2", b"kept", "image/png")
    assert await storage.delete_prefix("uploads/up_1/image.png") == 1
    assert not await storage.exists("uploads/up_1/image.png")
    assert await listed(storage) == [("uploads/up_1/image.png2", 4)]
    assert await storage.delete_prefix("uploads/up_1/image.png") == 0


async def test_objects_lists_keys_and_sizes(storage: Storage) -> None:
    stored = {
        "outputs/t1/1/video-0.mp4": 11,
        "outputs/t1/1/thumbnail-0.jpg": 5,
        "outputs/t2/2/video-0.mp4": 1,
        "inputs/t1/image.png": 9,
        "uploads/up_1/x.png": 4,
    }
    for key, size in stored.items():
        await storage.put_bytes(key, os.urandom(size), "application/octet-stream")

    assert await listed(storage) == sorted(stored.items())
    assert await listed(storage, "outputs/") == sorted(
        (key, size) for key, size in stored.items() if key.startswith("outputs/")
    )
    assert await listed(storage, "outputs/t1/") == [
        ("outputs/t1/1/thumbnail-0.jpg", 5),
        ("outputs/t1/1/video-0.mp4", 11),
    ]
    assert await listed(storage, "nothing/") == []


async def test_missing_key_is_file_not_found(storage: Storage) -> None:
    with pytest.raises(FileNotFoundError):
        await storage.get_bytes("outputs/none/1/video-0.mp4")
    with pytest.raises(FileNotFoundError):
        await storage.open("outputs/none/1/video-0.mp4")


@pytest.mark.parametrize("bad", INVALID_KEYS, ids=[ascii(key) for key in INVALID_KEYS])
async def test_invalid_keys_are_refused(storage: Storage, tmp_path: Path, bad: str) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(b"data")
    target = tmp_path / "target.bin"
    with pytest.raises(ValueError):
        await storage.put_bytes(bad, b"data", "text/plain")
    with pytest.raises(ValueError):
        await storage.put_file(bad, source, "text/plain")
    with pytest.raises(ValueError):
        await storage.get_bytes(bad)
    with pytest.raises(ValueError):
        await storage.open(bad)
    with pytest.raises(ValueError):
        await storage.download(bad, target)
    with pytest.raises(ValueError):
        await storage.exists(bad)
    with pytest.raises(ValueError):
        await storage.delete_prefix(bad)
    # The backend's own way of handing a key out: a local path, or a presigned URL.
    with pytest.raises(ValueError):
        if isinstance(storage, LocalStorage):
            storage.local_path(bad)
        else:
            storage.presigned_url(bad)
    assert await listed(storage) == []
    assert not target.exists()


# What only S3 does.


async def test_large_file_is_stored_by_multipart_and_reads_back_identical(
    s3_storage: S3Storage, s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    data = os.urandom(20 * 1024 * 1024)
    assert len(data) > 2 * PART_BYTES
    source = tmp_path / "large.mp4"
    source.write_bytes(data)

    assert await s3_storage.put_file(KEY, source, "video/mp4") == len(data)
    head = obstore.head(s3_server.store(bucket), KEY)
    assert head["size"] == len(data)
    # A multipart object's ETag is "<md5 of the parts' md5s>-<number of parts>".
    parts = -(-len(data) // PART_BYTES)
    assert str(head["e_tag"]).strip('"').endswith(f"-{parts}"), head["e_tag"]
    raw = obstore.get(s3_server.store(bucket), KEY)
    assert raw.attributes["Content-Type"] == "video/mp4"

    target = tmp_path / "back.mp4"
    await s3_storage.download(KEY, target)
    assert sha256(target.read_bytes()) == sha256(data)
    assert sha256(await s3_storage.get_bytes(KEY)) == sha256(data)


async def test_small_file_is_stored_in_one_put(
    s3_storage: S3Storage, s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "small.jpg"
    source.write_bytes(b"jpeg bytes")
    await s3_storage.put_file(KEY, source, "image/jpeg")
    head = obstore.head(s3_server.store(bucket), KEY)
    assert "-" not in str(head["e_tag"]).strip('"')
    assert str(head["e_tag"]).strip('"') == hashlib.md5(b"jpeg bytes").hexdigest()


async def test_objects_carry_content_type_and_cache_control(
    s3_server: S3Server, bucket: str, aws_credentials: None, tmp_path: Path
) -> None:
    storage = make_s3(s3_server, bucket, url_ttl_seconds=600)
    source = tmp_path / "thumb.jpg"
    source.write_bytes(b"thumbnail")
    await storage.put_bytes("inputs/t1/image.png", b"png", "image/png")
    await storage.put_file("outputs/t1/1/thumbnail-0.jpg", source, "image/jpeg")

    for key, content_type in (
        ("inputs/t1/image.png", "image/png"),
        ("outputs/t1/1/thumbnail-0.jpg", "image/jpeg"),
    ):
        attributes = obstore.get(s3_server.store(bucket), key).attributes
        assert attributes["Content-Type"] == content_type
        assert attributes["Cache-Control"] == CACHE_CONTROL.format(ttl=600)
        async with httpx.AsyncClient() as client:
            response = await client.get(storage.presigned_url(key))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == content_type
        assert response.headers["cache-control"] == CACHE_CONTROL.format(ttl=600)


async def test_presigned_url_serves_the_object_and_ranges(
    s3_storage: S3Storage, s3_server: S3Server
) -> None:
    data = b"0123456789abcdefghij"
    await s3_storage.put_bytes(KEY, data, "video/mp4")
    url = s3_storage.presigned_url(KEY)
    assert url.startswith(f"{s3_server.endpoint}/{s3_storage.bucket}/{KEY}?")
    async with httpx.AsyncClient() as client:
        whole = await client.get(url)
        part = await client.get(url, headers={"Range": "bytes=5-9"})
    assert whole.status_code == 200, whole.text
    assert whole.content == data
    assert part.status_code == 206, part.text
    assert part.content == b"56789"
    assert part.headers["content-range"] == f"bytes 5-9/{len(data)}"


async def test_presigned_url_with_an_altered_signature_is_403(s3_storage: S3Storage) -> None:
    await s3_storage.put_bytes(KEY, b"secret video", "video/mp4")
    url = s3_storage.presigned_url(KEY)
    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    altered = signature[:10] + ("0" if signature[10] != "0" else "1") + signature[11:]
    forged = url.replace(f"X-Amz-Signature={signature}", f"X-Amz-Signature={altered}")
    assert forged != url
    async with httpx.AsyncClient() as client:
        assert (await client.get(url)).status_code == 200
        response = await client.get(forged)
    assert response.status_code == 403
    assert b"secret video" not in response.content


async def test_presigned_url_expires(
    s3_server: S3Server, bucket: str, aws_credentials: None
) -> None:
    storage = make_s3(s3_server, bucket, url_ttl_seconds=1)
    await storage.put_bytes(KEY, b"short-lived", "video/mp4")
    url = storage.presigned_url(KEY)
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["1"]
    # The URL's date has a second's resolution: two seconds are past any 1 s validity.
    await asyncio.sleep(2.2)
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 403, response.text
    assert "expired" in response.text
    assert b"short-lived" not in response.content


async def test_unsigned_url_is_403(s3_storage: S3Storage, s3_server: S3Server) -> None:
    await s3_storage.put_bytes(KEY, b"private", "video/mp4")
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{s3_server.endpoint}/{s3_storage.bucket}/{KEY}")
    assert response.status_code == 403
    assert b"private" not in response.content


async def test_prefix_keeps_objects_under_it(
    s3_server: S3Server, bucket: str, aws_credentials: None, tmp_path: Path
) -> None:
    storage = make_s3(s3_server, bucket, prefix="tenant-a/files")
    source = tmp_path / "video.mp4"
    source.write_bytes(b"prefixed video")
    await storage.put_file(KEY, source, "video/mp4")
    await storage.put_bytes("inputs/t1/image.png", b"png", "image/png")

    assert bucket_objects(s3_server, bucket) == {
        f"tenant-a/files/{KEY}": 14,
        "tenant-a/files/inputs/t1/image.png": 3,
    }
    assert await listed(storage) == [("inputs/t1/image.png", 3), (KEY, 14)]
    assert await storage.get_bytes(KEY) == b"prefixed video"
    assert await storage.exists(KEY)
    assert "tenant-a/files/" in storage.describe()

    url = storage.presigned_url(KEY)
    assert urlsplit(url).path == f"/{bucket}/tenant-a/files/{KEY}"
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.content == b"prefixed video"

    assert await storage.delete_prefix("outputs/") == 1
    assert bucket_objects(s3_server, bucket) == {"tenant-a/files/inputs/t1/image.png": 3}


def test_public_base_url_rewrites_the_origin(s3_server: S3Server, aws_credentials: None) -> None:
    plain = make_s3(s3_server, "media", prefix="tenant-a/files")
    cdn = make_s3(s3_server, "media", prefix="tenant-a/files", public_base_url="https://cdn.test/")
    direct, rewritten = urlsplit(plain.presigned_url(KEY)), urlsplit(cdn.presigned_url(KEY))
    assert direct.path == f"/media/tenant-a/files/{KEY}"
    assert (rewritten.scheme, rewritten.netloc) == ("https", "cdn.test")
    # The CDN's origin is the bucket: the path is relative to it, the signature kept.
    assert rewritten.path == f"/tenant-a/files/{KEY}"
    query = parse_qs(rewritten.query, strict_parsing=True)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Credential"][0].startswith(f"{s3_server.access_key}/")
    assert query["X-Amz-Expires"] == ["3600"]
    assert len(query["X-Amz-Signature"][0]) == 64
    assert set(query) == set(parse_qs(direct.query))


def test_public_base_url_on_aws_is_relative_to_the_bucket(aws_credentials: None) -> None:
    """Off a custom endpoint (AWS itself) the CDN's URL is the object's path in the bucket
    too, whatever style the store signs in (signing needs no request)."""
    for prefix, path in (("", f"/{KEY}"), ("tenant-a/files", f"/tenant-a/files/{KEY}")):
        cdn = S3Storage(
            "media", region="eu-west-1", prefix=prefix, public_base_url="https://cdn.test"
        )
        url = urlsplit(cdn.presigned_url(KEY))
        assert (url.scheme, url.netloc, url.path) == ("https", "cdn.test", path)
        assert "X-Amz-Signature=" in url.query


def test_describe_names_no_credential(s3_server: S3Server, aws_credentials: None) -> None:
    for storage in (
        make_s3(s3_server, "media"),
        make_s3(s3_server, "media", prefix="/tenant-a/", public_base_url="https://cdn.test"),
    ):
        described = storage.describe()
        assert "media" in described
        assert s3_server.endpoint in described
        assert s3_server.secret_key not in described
        assert s3_server.access_key not in described
    assert (
        make_s3(s3_server, "media", prefix="/tenant-a/")
        .describe()
        .startswith("s3://media/tenant-a/ at ")
    )


# The CLI, as real processes.


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FRAMEGATE, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
    )


def local_env(data_dir: Path) -> dict[str, str]:
    """A framegate process's environment on the local directory: no AWS variable of the
    machine's but its CA bundle."""
    return {
        name: value
        for name, value in environment(data_dir, "").items()
        if not name.startswith("AWS_") or name == "AWS_CA_BUNDLE"
    }


def s3_env(server: S3Server, bucket: str, data_dir: Path, **extra: str) -> dict[str, str]:
    return {**local_env(data_dir), **server.environment(bucket, **extra)}


@pytest.mark.slow
def test_storage_check_on_s3(s3_server: S3Server, bucket: str, tmp_path: Path) -> None:
    done = run_cli(s3_env(s3_server, bucket, tmp_path / "data"), "storage", "check", "--json")
    report = json.loads(done.stdout)
    assert [(step["step"], step["ok"]) for step in report["steps"]] == [
        ("write", True),
        ("read", True),
        ("presign", True),
        ("delete", True),
    ], report
    assert report["ok"] is True
    assert done.returncode == 0, done.stderr
    assert bucket in report["storage"]
    assert bucket_objects(s3_server, bucket) == {}, "the probe object was left in the bucket"


@pytest.mark.slow
def test_storage_check_with_a_wrong_secret(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    wrong = f"wrong-{s3_server.secret_key[::-1]}"
    env = s3_env(s3_server, bucket, tmp_path / "data", AWS_SECRET_ACCESS_KEY=wrong)
    done = run_cli(env, "storage", "check")
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    assert wrong not in output
    assert s3_server.secret_key not in output
    failed = [line for line in output.splitlines() if "failed" in line]
    assert len(failed) == 1, output
    assert failed[0].split()[0] == "write", output
    # The line says why, after the step's name and mark.
    assert len(failed[0].split()) > 3, output

    done = run_cli(env, "storage", "check", "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["ok"] is False
    assert [(step["step"], step["ok"]) for step in report["steps"]] == [("write", False)]
    assert "\n" not in report["steps"][0]["detail"]
    assert wrong not in done.stdout + done.stderr
    assert s3_server.secret_key not in done.stdout + done.stderr
    assert bucket_objects(s3_server, bucket) == {}


@pytest.mark.slow
def test_storage_check_without_a_bucket(s3_server: S3Server, tmp_path: Path) -> None:
    env = s3_env(s3_server, "unused", tmp_path / "data")
    del env["FRAMEGATE_S3_BUCKET"]
    done = run_cli(env, "storage", "check")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "FRAMEGATE_S3_BUCKET" in lines[0]


@pytest.mark.slow
def test_storage_check_on_local_storage(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    done = run_cli(local_env(data_dir), "storage", "check", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert [step["step"] for step in report["steps"] if step["ok"]] == [
        "write",
        "read",
        "presign",
        "delete",
    ]
    assert str(data_dir.resolve() / "files") in report["storage"]
    assert [path for path in (data_dir / "files").rglob("*") if path.is_file()] == []


@pytest.mark.slow
def test_storage_migrate_to_s3(s3_server: S3Server, bucket: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    files = data_dir / "files"
    local = {
        "outputs/task_a/1/video-0.mp4": os.urandom(300_000),
        "outputs/task_a/1/thumbnail-0.jpg": os.urandom(2_000),
        "outputs/task_b/2/video-0.mp4": os.urandom(1_000),
        "inputs/task_a/image.png": os.urandom(5_000),
        "uploads/up_1/x.png": os.urandom(700),
    }
    content_types = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".png": "image/png"}
    for key, data in local.items():
        path = files / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    # Not migrated: what is outside outputs/, inputs/ and uploads/.
    (files / "framegate-check").mkdir()
    (files / "framegate-check" / "probe.txt").write_bytes(b"probe")
    total = sum(len(data) for data in local.values())
    env = s3_env(s3_server, bucket, data_dir)

    def migrate(*extra: str) -> dict[str, Any]:
        done = run_cli(env, "storage", "migrate", "--to", "s3", "--json", *extra)
        assert done.returncode == 0, done.stdout + done.stderr
        report: dict[str, Any] = json.loads(done.stdout)
        assert report["failed"] == []
        return report

    dry = migrate("--dry-run")
    assert (dry["copied"], dry["bytes"], dry["skipped"], dry["dry_run"]) == (
        len(local),
        total,
        0,
        True,
    )
    assert bucket_objects(s3_server, bucket) == {}

    first = migrate()
    assert (first["copied"], first["bytes"], first["skipped"]) == (len(local), total, 0)
    assert bucket in first["target"]
    assert bucket_objects(s3_server, bucket) == {key: len(data) for key, data in local.items()}
    store = s3_server.store(bucket)
    for key, data in local.items():
        result = obstore.get(store, key)
        assert sha256(bytes(result.bytes())) == sha256(data), key
        assert result.attributes["Content-Type"] == content_types[Path(key).suffix], key

    second = migrate()
    assert (second["copied"], second["bytes"], second["skipped"]) == (0, 0, len(local))
    again = migrate("--dry-run")
    assert (again["copied"], again["skipped"]) == (0, len(local))

    for key, data in local.items():
        assert (files / key).read_bytes() == data
    assert len(bucket_objects(s3_server, bucket)) == len(local)
