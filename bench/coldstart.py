"""Cold start: the import time of each handler module, beside `import boto3` alone.

Each measurement is a fresh interpreter (`python -c`), timing only the import
statement (interpreter start-up is the same for every function and left out), in the
function's folder with the layer on the path, as Lambda lays them out.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


@dataclass(frozen=True)
class ImportTime:
    """Median import time of one module over several fresh interpreters."""

    name: str
    median_s: float
    runs: int


def _time_import(module: str, cwd: Path, runs: int) -> float:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    environment["PYTHONPATH"] = str(ROOT / "layers" / "common")
    times = []
    # One run more than counted: the first compiles bytecode, as a built layer ships it.
    for _ in range(runs + 1):
        done = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
            [sys.executable, "-c", _PROBE.format(module=module)],
            cwd=cwd,
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(done.stdout.strip().splitlines()[-1]))
    return statistics.median(times[1:])


def run(runs: int = 5) -> tuple[ImportTime, list[ImportTime]]:
    """`import boto3`, then `import app` in every functions/* folder."""
    baseline = ImportTime("boto3", _time_import("boto3", ROOT, runs), runs)
    functions = [
        ImportTime(folder.name, _time_import("app", folder, runs), runs)
        for folder in sorted((ROOT / "functions").iterdir())
        if (folder / "app.py").is_file()
    ]
    return baseline, functions
