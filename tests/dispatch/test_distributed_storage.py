"""A distributed deployment on object storage: an API node and a worker process that share
no directory (each its own FRAMEGATE_DATA_DIR, one secret, one PostgreSQL, one bucket on a
real S3 server) complete an image-to-video task from an uploaded image."""

from __future__ import annotations

import io
import secrets
from pathlib import Path

import httpx
import obstore
from PIL import Image

from tests.dispatch.distributed_helpers import decode_mp4, deployment
from tests.s3server import S3Server

SIZE = (96, 64)
CLIP = {"model": "preview", "prompt": "the sea at dawn", "duration": 1, "size": "96x64"}


def png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 144, 255)).save(buffer, format="PNG")
    return buffer.getvalue()


def stored_files(data_dir: Path) -> list[str]:
    """Files a process keeps in its data directory, other than its database and secret."""
    if not data_dir.exists():
        return []
    return sorted(
        str(p.relative_to(data_dir))
        for p in data_dir.rglob("*")
        if p.is_file() and p.name not in {"framegate.db", "secret.key"}
    )


def test_api_node_and_worker_sharing_no_directory_complete_an_upload_task(
    tmp_path: Path, s3_server: S3Server
) -> None:
    bucket = s3_server.new_bucket()
    extra = s3_server.environment(bucket, FRAMEGATE_SECRET_KEY=secrets.token_urlsafe(40))
    with deployment(tmp_path, **extra) as cluster, cluster.client() as client:
        api_dir = Path(cluster.env["FRAMEGATE_DATA_DIR"])
        worker_dir = tmp_path / "worker-data"
        worker = cluster.worker(
            "--concurrency", "1", env={**cluster.env, "FRAMEGATE_DATA_DIR": str(worker_dir)}
        )
        cluster.start_worker(worker)

        image = png(SIZE)
        uploaded = client.post("/v1/uploads", files={"file": ("frame.png", image, "image/png")})
        assert uploaded.status_code == 201, uploaded.text
        upload = uploaded.json()
        assert upload["url"].startswith(s3_server.endpoint), upload["url"]
        assert httpx.get(upload["url"], timeout=30).content == image

        task = cluster.submit(client, {**CLIP, "input_image": upload["id"]})
        finished = cluster.wait_terminal(client, [task["id"]], timeout=120)[task["id"]]
        assert finished["status"] == "completed", f"{finished}\n{cluster.logs()}"
        output = finished["result"]["data"][0]
        # Fetched from the bucket, not through the API.
        assert output["url"].startswith(s3_server.endpoint), output["url"]
        video = httpx.get(output["url"], timeout=30)
        assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
        frames, width, height = decode_mp4(video.content)
        assert (width, height) == SIZE and frames == output["num_frames"] > 0
        thumbnail = httpx.get(output["thumbnail_url"], timeout=30)
        assert Image.open(io.BytesIO(thumbnail.content)).format == "JPEG"
        cluster.check_settled(client, {task["id"]: finished})

        keys = {
            str(meta["path"]) for page in obstore.list(s3_server.store(bucket)) for meta in page
        }
        assert any(k.startswith(f"outputs/{task['id']}/") for k in keys), keys
        assert any(k.startswith(f"inputs/{task['id']}/") for k in keys), keys
        assert any(k.startswith(f"uploads/{upload['id']}/") for k in keys), keys
        # Neither process kept a file of its own.
        assert stored_files(api_dir) == [], stored_files(api_dir)
        assert stored_files(worker_dir) == [], stored_files(worker_dir)
