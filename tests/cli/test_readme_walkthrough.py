"""The README's curl walkthrough, run verbatim against `framegate serve` (only the port differs)."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import av
import pytest

from tests.processes import Server, environment, free_port, throwaway_database

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"


def walkthrough_script() -> str:
    text = README.read_text()
    block = re.search(r"<!-- walkthrough:start -->\s*```bash\n(.*?)```", text, re.S)
    assert block, "README lost its walkthrough block"
    return block.group(1)


def test_readme_walkthrough_produces_the_promised_mp4(backend: str, tmp_path: Path) -> None:
    port = free_port()
    with throwaway_database(backend) as database_url:
        env = environment(tmp_path / "data", database_url)
        server = Server(env, port, tmp_path / "server.log")
        server.start()
        try:
            script = walkthrough_script().replace("127.0.0.1:8000", f"127.0.0.1:{port}")
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", script],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
        finally:
            server.stop()
        assert done.returncode == 0, done.stdout + done.stderr
        hint = (tmp_path / "server.log").read_text()
        assert "framegate admin create-account" in hint  # fresh data dir: how to get a key

    assert "completed 100" in done.stdout
    assert '"available":90' in done.stdout.replace(" ", "")
    with av.open(io.BytesIO((tmp_path / "video.mp4").read_bytes())) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert (stream.width, stream.height, float(stream.average_rate)) == (1280, 720, 24.0)
        assert stream.codec_context.name == "h264"
    assert frames == 5 * 24
