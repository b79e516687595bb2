"""Running the fuzz targets of ``scripts/fuzz`` from tests: bounded atheris runs, and the targets
themselves in-process."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

FUZZ_DIR = Path(__file__).resolve().parents[2] / "scripts" / "fuzz"


def load_targets() -> ModuleType:
    """``scripts/fuzz/targets.py`` as a module (uninstrumented)."""
    spec = importlib.util.spec_from_file_location("imgapi_fuzz_targets", FUZZ_DIR / "targets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bounded_run(target: str, runs: int, tmp: Path) -> subprocess.CompletedProcess[str]:
    """``scripts/fuzz/run <target> --runs N`` with a fresh seeded corpus and a fixed libFuzzer seed."""
    return subprocess.run(
        [
            sys.executable,
            str(FUZZ_DIR / "run"),
            target,
            f"--runs={runs}",
            "--timeout=10",
            f"--corpus={tmp / 'corpus'}",
            f"--artifacts={tmp / 'artifacts'}",
            "-seed=1",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
