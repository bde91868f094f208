"""Screenshots of every console page, for docs/console/ and the README.

Starts a throwaway `framegate serve` (SQLite, the preview engine) on loopback, fills it
with an account, a few tasks, a key and a webhook endpoint through the API, signs in with
Debian's Chromium (Playwright, /usr/bin/chromium) and saves one PNG per page at 1280 px
wide, plus the overview on a phone-sized screen.

    python scripts/console_screenshots.py [--out docs/console]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
FRAMEGATE = str(Path(sys.executable).parent / "framegate")
CHROMIUM = "/usr/bin/chromium"
MAX_HEIGHT = 1400
PAGES = {
    "overview": "/console",
    "playground": "/console/playground",
    "tasks": "/console/tasks",
    "usage": "/console/usage",
    "credits": "/console/credits",
    "keys": "/console/keys",
    "webhooks": "/console/webhooks",
    "models": "/console/models",
    "admin": "/console/admin",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def framegate(env: dict[str, str], *args: str) -> Any:
    done = subprocess.run(
        [FRAMEGATE, *args, "--json"], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def populate(url: str, key: str) -> str:
    """Tasks (finished, failed, with a tag), a second key, a webhook endpoint; returns the id
    of a completed task."""
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
    prompts = ["a lighthouse at dusk, waves below", "paper boats on a rainy street", "neon fox"]
    ids = []
    for index, prompt in enumerate(prompts):
        body = {
            "model": "preview",
            "prompt": prompt,
            "duration": 2,
            "size": "640x360",
            "metadata": {"campaign": "spring" if index % 2 else "launch"},
        }
        ids.append(client.post("/v1/async/videos/generations", json=body).json()["id"])
    client.post("/v1/keys", json={"name": "mobile app", "scopes": ["videos:write", "tasks:read"]})
    client.post(
        "/v1/webhooks",
        json={"url": "https://hooks.example.invalid/framegate", "events": ["task.completed"]},
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        states = [client.get(f"/v1/tasks/{task_id}").json()["status"] for task_id in ids]
        if all(state in ("completed", "failed", "cancelled") for state in states):
            break
        time.sleep(0.5)
    return ids[0]


def shoot(page: Page, path: str, target: Path) -> None:
    """The page from its top, down to MAX_HEIGHT px (long lists are cut there)."""
    page.goto(path)
    page.wait_for_load_state("networkidle")
    size = page.viewport_size or {"width": 1280, "height": 860}
    height = min(MAX_HEIGHT, page.evaluate("() => document.documentElement.scrollHeight"))
    clip = {"x": 0, "y": 0, "width": size["width"], "height": height}
    page.screenshot(path=str(target), full_page=True, clip=clip)
    # 256 colours: a third of the bytes, and the console's flat colours survive it.
    with Image.open(target) as shot:
        reduced = shot.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    reduced.save(target, optimize=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "console")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="framegate-shots-") as scratch:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEGATE_")}
        env.update(
            FRAMEGATE_DATA_DIR=str(Path(scratch) / "data"),
            FRAMEGATE_SECRET_KEY=secrets.token_urlsafe(40),
            FRAMEGATE_ENV="development",
        )
        account = framegate(
            env, "admin", "create-account", "--name", "Acme Studio", "--credits", "2500", "--admin"
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = (Path(scratch) / "server.log").open("wb")
        server = subprocess.Popen(
            [FRAMEGATE, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            for _ in range(200):
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            task_id = populate(url, account["api_key"])
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=url)
                page = context.new_page()
                page.goto("/console/sign-in")
                page.get_by_label("API key").fill(account["api_key"])
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url(f"{url}/console")
                for name, path in PAGES.items():
                    shoot(page, path, args.out / f"{name}.png")
                shoot(page, f"/console/tasks/{task_id}", args.out / "task.png")
                phone = browser.new_context(
                    viewport={"width": 390, "height": 844},
                    base_url=url,
                    storage_state=context.storage_state(),
                )
                shoot(phone.new_page(), "/console", args.out / "overview-phone.png")
                browser.close()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
            log.close()
    for shot in sorted(args.out.glob("*.png")):
        print(f"{shot.relative_to(ROOT)}  {shot.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
