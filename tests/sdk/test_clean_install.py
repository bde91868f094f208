"""The SDK installs alone in a clean virtualenv, without the server's dependencies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SDK = Path(__file__).resolve().parents[2] / "sdk" / "python"

CHECK = """
import importlib.util, framegate_client
from framegate_client import Framegate, AsyncFramegate, APIError
for name in ("fastapi", "sqlalchemy", "framegate", "uvicorn", "standardwebhooks"):
    assert importlib.util.find_spec(name) is None, name
print(framegate_client.__version__)
"""


def test_sdk_installs_alone_in_a_clean_venv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(SDK)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    checked = subprocess.run(
        [str(python), "-c", CHECK], capture_output=True, text=True, timeout=30, cwd=tmp_path
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == "0.1.0"
