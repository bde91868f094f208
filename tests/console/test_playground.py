"""The playground page in a real browser: a model picked, the price estimated as the form
changes (the same figure the estimate API gives), a clip generated and followed over SSE to
the end, played and downloaded; image-to-video with an uploaded PNG; the API's error naming
the field; images on a phone, with the keyboard; the request as code, without the key (and
the Python snippets run as they are shown)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from playwright.sync_api import Browser, FilePayload, Page, expect

from tests.console.conftest import DESKTOP, PHONE, ConsoleServer, new_page, sign_in

PROMPT = "A paper boat drifting down a rain-soaked street at dusk"
SNIPPETS = ("curl", "python", "openai")
WAIT_MS = 30_000


def open_playground(page: Page) -> None:
    page.goto("/console/playground")
    expect(page.get_by_label("Model")).to_be_enabled()
    expect(page.locator("#pg-estimate")).to_have_attribute("data-state", "ready")


def shown_estimate(page: Page) -> int:
    """The credits the page shows, once its estimate has caught up with the form."""
    expect(page.locator("#pg-estimate")).to_have_attribute("data-state", "ready")
    return int(page.locator("#pg-estimate-credits").inner_text().replace(",", ""))


def api_estimate(server: ConsoleServer, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{server.url}/v1/estimates", json=body, timeout=10)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def auth(server: ConsoleServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.user['api_key']}"}


def latest_task_ids(server: ConsoleServer) -> list[str]:
    response = httpx.get(f"{server.url}/v1/tasks?limit=3", headers=auth(server), timeout=10)
    return [task["id"] for task in response.json()["data"]]


def set_clip(page: Page, *, duration: int, width: int, height: int) -> None:
    page.get_by_label("Duration (seconds)").fill(str(duration))
    page.get_by_label("Size", exact=True).select_option("custom")
    page.get_by_label("Width (px)").fill(str(width))
    page.get_by_label("Height (px)").fill(str(height))


def wait_for_done(page: Page) -> None:
    progress = page.get_by_role("progressbar", name="Generation progress")
    expect(progress).to_have_attribute("aria-valuenow", "100", timeout=WAIT_MS)
    expect(page.locator("#pg-status")).to_contain_text("Completed", timeout=WAIT_MS)


def played_duration(page: Page) -> float:
    """The clip's duration as the browser decoded it (its first frame is ready)."""
    page.wait_for_function(
        "() => { const v = document.querySelector('video'); return v && v.readyState >= 2; }",
        timeout=WAIT_MS,
    )
    duration: float = page.evaluate("() => document.querySelector('video').duration")
    return duration


def snippets(page: Page) -> dict[str, str]:
    return {name: page.locator(f"#pg-code-{name}").text_content() or "" for name in SNIPPETS}


def curl_body(curl: str) -> dict[str, Any]:
    """The JSON body of the curl snippet (-d '…')."""
    start = curl.index("-d '") + 4
    body: dict[str, Any] = json.loads(curl[start : curl.index("'", start)])
    return body


def png(size: tuple[int, int] = (64, 36)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_text_to_video_from_price_to_playing_clip(
    user_page: Page, console_server: ConsoleServer, tmp_path: Path
) -> None:
    page = user_page
    open_playground(page)
    expect(page.get_by_label("Model")).to_have_value("preview")
    expect(page.locator("#pg-model-info")).to_contain_text("text-to-video")
    # The model's defaults, priced as the API prices them.
    defaults = api_estimate(console_server, model="preview", duration=5, size="1280x720", fps=24)
    assert shown_estimate(page) == defaults["credits"]

    page.get_by_label("Prompt", exact=True).fill(PROMPT)
    set_clip(page, duration=2, width=320, height=180)
    small = api_estimate(console_server, model="preview", duration=2, size="320x180", fps=24)
    assert shown_estimate(page) == small["credits"] != defaults["credits"]
    expect(page.locator("#pg-estimate")).to_contain_text("320\u00d7180")

    # The code is the form's request, with the key left to the environment.
    code = snippets(page)
    key = console_server.user["api_key"]
    for name, text in code.items():
        assert PROMPT in text, name
        assert key not in text and "fg_live_" not in text, name
        assert "FRAMEGATE_API_KEY" in text, name
    assert curl_body(code["curl"]) == {
        "model": "preview",
        "prompt": PROMPT,
        "duration": 2,
        "size": "320x180",
        "fps": 24,
    }

    page.get_by_role("button", name="Generate").click()
    wait_for_done(page)
    assert abs(played_duration(page) - 2) <= 0.1
    assert page.locator("video").get_attribute("poster")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= DESKTOP["width"]

    # The download link saves the MP4.
    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download MP4").click()
    download = downloading.value
    assert download.suggested_filename.endswith(".mp4")
    data = Path(download.path()).read_bytes()
    assert data[4:8] == b"ftyp" and len(data) > 1000
    task_id = page.locator("#pg-result").get_attribute("data-task-id")
    task = httpx.get(f"{console_server.url}/v1/tasks/{task_id}", headers=auth(console_server))
    assert task.json()["input"]["prompt"] == PROMPT
    assert task.json()["credits_used"] == small["credits"]

    # The Python snippets run as shown, with the key from the environment only.
    env = {**os.environ, "FRAMEGATE_API_KEY": key}
    for name in ("python", "openai"):
        ran = subprocess.run(
            [sys.executable, "-c", code[name]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ran.returncode == 0, f"{name}: {ran.stderr}"
        assert (tmp_path / "video.mp4").read_bytes()[4:8] == b"ftyp"
        (tmp_path / "video.mp4").unlink()


def test_image_to_video_with_an_uploaded_png(
    user_page: Page, console_server: ConsoleServer
) -> None:
    page = user_page
    open_playground(page)
    page.get_by_label("Prompt", exact=True).fill("The waves roll in")
    set_clip(page, duration=1, width=320, height=180)
    first_frame = FilePayload(name="first-frame.png", mimeType="image/png", buffer=png())
    page.get_by_label("First frame").set_input_files(files=[first_frame])
    preview = page.locator("#pg-first-preview")
    expect(preview.locator("code")).to_contain_text("upl_")
    upload_id = preview.locator("code").inner_text()
    expect(preview.get_by_role("img")).to_be_visible()
    # Priced with the image, as the API prices it; the code sends the upload's id.
    asked = {"model": "preview", "duration": 1, "size": "320x180", "fps": 24}
    priced = api_estimate(console_server, **asked, input_image=upload_id)
    assert shown_estimate(page) == priced["credits"]
    assert curl_body(snippets(page)["curl"])["input_image"] == upload_id
    assert f'input_reference={{"file_id": "{upload_id}"}}' in snippets(page)["openai"]

    page.get_by_role("button", name="Generate").click()
    wait_for_done(page)
    assert abs(played_duration(page) - 1) <= 0.1
    task_id = page.locator("#pg-result").get_attribute("data-task-id")
    task = httpx.get(f"{console_server.url}/v1/tasks/{task_id}", headers=auth(console_server))
    assert task.json()["input"]["input_image"] == upload_id


def test_the_apis_error_names_the_field(user_page: Page, console_server: ConsoleServer) -> None:
    page = user_page
    open_playground(page)
    before = latest_task_ids(console_server)
    page.get_by_label("Prompt", exact=True).fill("Too long a clip")
    duration = page.get_by_label("Duration (seconds)")
    duration.fill("99")  # past the model's max_duration (10), typed in
    # The estimate already says what is wrong...
    expect(page.locator("#pg-estimate")).to_have_attribute("data-state", "error")
    expect(page.locator("#pg-estimate")).to_contain_text("duration must be between 1 and 10")
    # ...and Generate shows the API's answer, naming the field, and goes to it.
    page.get_by_role("button", name="Generate").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Duration")
    expect(alert).to_contain_text("duration must be between 1 and 10 seconds for 'preview'")
    expect(duration).to_have_attribute("aria-invalid", "true")
    expect(duration).to_be_focused()
    expect(page.get_by_role("progressbar")).to_be_hidden()
    assert latest_task_ids(console_server) == before  # nothing was submitted
    # Fixing it clears the mark and prices the clip again.
    duration.fill("3")
    expect(duration).not_to_have_attribute("aria-invalid", "true")
    fixed = api_estimate(console_server, model="preview", duration=3)
    assert shown_estimate(page) == fixed["credits"]


def test_a_failed_task_and_a_cancelled_one(user_page: Page) -> None:
    """The test catalog's routes (conftest): one whose tasks fail, one slow enough to cancel."""
    page = user_page
    open_playground(page)
    page.get_by_label("Prompt", exact=True).fill("This one breaks")
    page.get_by_label("Model").select_option("console-broken")
    page.get_by_role("button", name="Generate").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The task failed", timeout=WAIT_MS)
    expect(alert).to_contain_text("credits were released")
    expect(page.locator("video")).to_have_count(0)

    page.get_by_label("Model").select_option("console-slow")
    page.get_by_role("button", name="Generate").click()
    expect(alert).to_be_hidden()
    cancel = page.get_by_role("button", name="Cancel task")
    cancel.click()
    expect(page.locator("#pg-status")).to_contain_text("Cancelled", timeout=WAIT_MS)
    expect(cancel).to_be_hidden()
    expect(page.locator("video")).to_have_count(0)


def test_images_on_a_phone_with_the_keyboard(
    browser: Browser, console_server: ConsoleServer
) -> None:
    context, page, watch = new_page(browser, console_server, PHONE)
    try:
        sign_in(page, console_server.user["api_key"], then="/console/playground")
        expect(page.locator("#pg-estimate")).to_have_attribute("data-state", "ready")
        page.get_by_label("Model").select_option("preview-image")
        # An image model's controls: a count, no duration or frame rate.
        expect(page.get_by_label("Number of images")).to_have_value("1")
        expect(page.get_by_label("Duration (seconds)")).to_have_count(0)
        expect(page.get_by_label("Frame rate (fps)")).to_have_count(0)
        default = api_estimate(console_server, model="preview-image")
        assert shown_estimate(page) == default["credits"]

        page.get_by_label("Prompt", exact=True).focus()
        page.keyboard.type("A lighthouse on a cliff")
        page.keyboard.press("Tab")
        expect(page.get_by_label("Things to avoid")).to_be_focused()
        page.get_by_label("Number of images").fill("2")
        page.get_by_label("Size", exact=True).select_option("custom")
        page.get_by_label("Width (px)").fill("256")
        page.get_by_label("Height (px)").fill("256")
        priced = api_estimate(console_server, model="preview-image", n=2, size="256x256")
        assert shown_estimate(page) == priced["credits"]

        # The code's tabs answer the arrow keys.
        page.get_by_role("tab", name="curl").focus()
        page.keyboard.press("ArrowRight")
        python_tab = page.get_by_role("tab", name="Python SDK")
        expect(python_tab).to_be_focused()
        expect(python_tab).to_have_attribute("aria-selected", "true")
        expect(page.get_by_role("tabpanel")).to_contain_text("client.images.generate(")

        # Ctrl+Enter in the prompt generates.
        page.get_by_label("Prompt", exact=True).focus()
        page.keyboard.press("Control+Enter")
        wait_for_done(page)
        images = page.locator("#pg-result img")
        expect(images).to_have_count(2)
        page.wait_for_function(
            "() => [...document.querySelectorAll('#pg-result img')]"
            ".every((i) => i.complete && i.naturalWidth === 256)",
            timeout=WAIT_MS,
        )
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px screen"
    finally:
        context.close()
    assert not watch.errors, watch.errors
    assert not watch.foreign, watch.foreign
