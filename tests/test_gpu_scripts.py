"""The GPU scripts run on this CPU: benchmarks/gpu_check.py passes every case with tiny models,
and benchmarks/engine_gpu.py runs from a bare checkout on a machine that has torch, diffusers
and transformers but not framegate's own dependencies (PyAV, pydantic; Pillow for framegate's
part, which diffusers itself needs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
CASES = (
    "1 load",
    "2 warm",
    "3 progress",
    "4 cancel",
    "5 after-cancel",
    "6 ti2v",
    "7 ltx",
    "8 oom",
)

# Runs engine_gpu.py as on a bare GPU box: framegate not installed (the editable install's
# src/ taken off sys.path) and av, pydantic and PIL impossible to import. framegate's part
# (accel) is imported first with all three blocked (and loads neither torch nor diffusers);
# then PIL is allowed again, because diffusers imports Pillow itself, and the benchmark runs
# with av and pydantic still blocked.
BLOCKED_RUN = """
import importlib
import importlib.util
import runpy
import sys
from pathlib import Path

repo = Path(sys.argv[1])


def block(names):
    # None in sys.modules: `import` raises ModuleNotFoundError and importlib.util.find_spec
    # answers None, as for a package that is not installed.
    for name in names:
        sys.modules[name] = None


def imported(names):
    return sorted(n for n in names if sys.modules.get(n) is not None)


block(["av", "pydantic", "PIL"])
src = repo / "src"
sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != src]
importlib.invalidate_caches()
assert importlib.util.find_spec("framegate") is None, "framegate importable without src/"

sys.path.insert(0, str(src))
import framegate.engines.diffusers.accel  # noqa: E402,F401

assert not imported(["torch", "diffusers", "numpy"]), imported(["torch", "diffusers", "numpy"])
sys.path.remove(str(src))
for module in [m for m in sys.modules if m.partition(".")[0] == "framegate"]:
    del sys.modules[module]
importlib.invalidate_caches()

del sys.modules["PIL"]
script = repo / "benchmarks" / "engine_gpu.py"
sys.argv = [str(script), *sys.argv[2:]]
try:
    runpy.run_path(str(script), run_name="__main__")
finally:
    assert sys.modules["av"] is None and sys.modules["pydantic"] is None
    print("never imported: av, pydantic; framegate's accel without PIL")
"""


def test_gpu_check_passes_every_case_with_tiny_models_on_cpu(tmp_path: Path) -> None:
    report = tmp_path / "check.json"
    done = subprocess.run(
        [
            sys.executable,
            "benchmarks/gpu_check.py",
            "--device",
            "cpu",
            "--tiny",
            "--json",
            str(report),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    for case in CASES:
        assert any(row.startswith(f"| {case} ") and "| passed |" in row for row in rows), (
            case,
            rows,
        )
    cases = json.loads(report.read_text())["cases"]
    assert [c["case"] for c in cases] == list(CASES)
    assert all(c["passed"] for c in cases), cases


def test_engine_benchmark_needs_only_torch_and_diffusers(tmp_path: Path) -> None:
    wrapper = tmp_path / "blocked_run.py"
    wrapper.write_text(BLOCKED_RUN, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(wrapper), str(REPO), "--tiny", "--device", "cpu", "--runs", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "never imported: av, pydantic" in done.stdout
    assert "[stock]" in done.stdout and "[framegate]" in done.stdout
    assert "FAILED" not in output
