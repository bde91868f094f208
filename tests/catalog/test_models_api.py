"""Catalog routes and estimates."""

from __future__ import annotations

import httpx


async def test_models_list_capabilities_pricing_and_availability(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/models")
    assert response.status_code == 200
    models = {m["id"]: m for m in response.json()["data"]}
    preview = models["preview"]
    assert preview["available"] is True
    assert preview["kind"] == "video"
    assert preview["capabilities"]["text_to_video"] and preview["capabilities"]["image_to_video"]
    assert preview["pricing"] == {"unit": "second", "credits": {"480p": 1, "720p": 2, "1080p": 4}}
    assert "not a generative model" in preview["description"]
    assert models["preview-image"]["kind"] == "image"
    assert "test-failing" in models  # from the catalog file


async def test_model_by_alias_and_unknown(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/models/preview-video")).json()["id"] == "preview"
    missing = await client.get("/v1/models/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"


async def test_estimate_matches_what_a_task_holds(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/estimates",
        json={"model": "preview", "duration": 5, "resolution": "720p", "aspect_ratio": "9:16"},
    )
    assert response.status_code == 200, response.text
    estimate = response.json()
    assert (estimate["width"], estimate["height"]) == (720, 1280)
    assert estimate["credits"] == 10
    assert estimate["num_frames"] == 5 * 24
    assert estimate["estimated_seconds"] >= 1
    image = (
        await client.post(
            "/v1/estimates", json={"model": "preview-image", "n": 3, "size": "1024x1024"}
        )
    ).json()
    assert image["credits"] == 3 * 2 and image["n"] == 3


async def test_estimate_refuses_bad_values(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/estimates", json={"model": "preview", "duration": 0})
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "duration"
