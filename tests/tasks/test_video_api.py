"""Text-to-video and image-to-video over HTTP, end to end, with the MP4 decoded."""

from __future__ import annotations

import base64
import io

import av
import httpx
import numpy as np
from PIL import Image

from tests.conftest import Tenant, file_path, wait_for_task


def decode(data: bytes) -> tuple[int, int, int, float]:
    """(frames, width, height, fps) of an MP4, by decoding every frame."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames, stream.width, stream.height, float(stream.average_rate)


def png_data_uri(width: int = 64, height: int = 48) -> str:
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, : width // 2] = (200, 40, 40)
    pixels[:, width // 2 :] = (40, 40, 200)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


async def test_text_to_video_end_to_end(client: httpx.AsyncClient, account: Tenant) -> None:
    body = {"model": "preview", "prompt": "a red fox", "duration": 2, "size": "320x176", "fps": 12}
    response = await client.post("/v1/async/videos/generations", json=body, headers=account.headers)
    assert response.status_code == 202, response.text
    submitted = response.json()
    assert submitted["object"] == "task"
    assert submitted["status"] == "queued"
    assert submitted["id"].startswith("task_")
    assert submitted["credits_reserved"] == 2  # 2 s x 1 credit/s at 480p
    assert submitted["estimated_seconds"] >= 1
    assert response.headers["x-request-id"]

    task = await wait_for_task(client, account, submitted["id"])
    assert task["status"] == "completed", task
    assert task["progress"] == 100
    assert task["credits_used"] == 2
    assert task["processing_ms"] is not None and task["processing_ms"] >= 0
    output = task["result"]["data"][0]
    assert output["content_type"] == "video/mp4"
    assert (output["width"], output["height"], output["fps"]) == (320, 176, 12)

    video = await client.get(file_path(output["url"]))
    assert video.status_code == 200
    assert video.headers["content-type"] == "video/mp4"
    frames, width, height, fps = decode(video.content)
    assert (frames, width, height, fps) == (2 * 12, 320, 176, 12.0)

    thumbnail = await client.get(file_path(output["thumbnail_url"]))
    assert thumbnail.status_code == 200
    assert Image.open(io.BytesIO(thumbnail.content)).format == "JPEG"


async def test_image_to_video_end_to_end(client: httpx.AsyncClient, account: Tenant) -> None:
    body = {
        "model": "preview",
        "prompt": "slow pan",
        "duration": 1,
        "resolution": "480p",
        "aspect_ratio": "16:9",
        "fps": 10,
        "input_image": png_data_uri(),
    }
    response = await client.post("/v1/async/videos/generations", json=body, headers=account.headers)
    assert response.status_code == 202, response.text
    assert response.json()["input"]["input_image"].startswith("data URI")
    task = await wait_for_task(client, account, response.json()["id"])
    assert task["status"] == "completed", task
    output = task["result"]["data"][0]
    video = await client.get(file_path(output["url"]))
    frames, width, height, fps = decode(video.content)
    assert (frames, width, height, fps) == (10, 854, 480, 10.0)


async def test_task_is_listed_and_paginated(client: httpx.AsyncClient, account: Tenant) -> None:
    ids = []
    for index in range(3):
        response = await client.post(
            "/v1/async/videos/generations",
            json={"model": "preview", "prompt": f"clip {index}", "duration": 1, "size": "64x64"},
            headers=account.headers,
        )
        ids.append(response.json()["id"])
    first = (await client.get("/v1/tasks?limit=2", headers=account.headers)).json()
    assert [t["id"] for t in first["data"]] == ids[::-1][:2]
    assert first["has_more"] is True
    second = (
        await client.get(f"/v1/tasks?limit=2&after={first['next_cursor']}", headers=account.headers)
    ).json()
    assert [t["id"] for t in second["data"]] == [ids[0]]
    assert second["has_more"] is False
    for task_id in ids:
        await wait_for_task(client, account, task_id)
    done = (await client.get("/v1/tasks?status=completed", headers=account.headers)).json()
    assert {t["id"] for t in done["data"]} == set(ids)


async def test_image_generation_answers_with_urls(
    client: httpx.AsyncClient, account: Tenant
) -> None:
    response = await client.post(
        "/v1/images/generations",
        json={"model": "preview-image", "prompt": "a lamp", "n": 2, "size": "256x256"},
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["data"]) == 2
    assert body["credits_used"] == 2
    image = await client.get(file_path(body["data"][0]["url"]))
    assert image.status_code == 200
    assert Image.open(io.BytesIO(image.content)).size == (256, 256)
