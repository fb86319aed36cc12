"""Cold start: each function's import as Lambda does it, beside `import boto3` in the same place.

Laid out as Lambda lays a function out, and nothing else on the path:
- the layer: `layers/common/requirements.txt` installed alone with `uv pip install --target`
  (no CLI, no dev tools: the dev virtualenv's httpx pulls in rich and pygments, a Lambda
  layer does not), plus the `trackwatch` package copied beside it, as `/opt/python`;
- the function's folder as the working directory (`/var/task`), first on the path;
- a fresh interpreter per measurement, without `site` (this machine's site-packages are not
  Lambda's), with Lambda's own environment variables and the function's as the template sets
  them (so `POWERTOOLS_*`, `LOG_LEVEL` and the tracing switch are what they are in AWS).

Bytecode: `sam build` ships the layer without bytecode that can validate (its zip entries
carry no timestamps, aws-lambda-builders#924), so every cold start compiles every module it
imports; *as deployed* measures that (no `__pycache__`, nothing written). *With bytecode*
measures the same with the layer precompiled (checked-hash .pyc, which would survive
packaging): what shipping bytecode would give. The standard library has its bytecode in
both, as the runtime's image does.

Two moments are timed in each interpreter: `import app` (Lambda's init phase, the goal's
measure), and then the first invocation's setup — `lambda_entry` building the container from
the environment and the handler from it, before any request — which Lambda bills as part of
the first request. Interpreter start-up is left out: it is the runtime's, the same for all.
"""

from __future__ import annotations

import compileall
import hashlib
import json
import os
import py_compile
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER_REQUIREMENTS = ROOT / "layers" / "common" / "requirements.txt"
PACKAGE = ROOT / "layers" / "common" / "trackwatch"

#: Lambda's reserved variables (docs: "Defined runtime environment variables"), with the values
#: an on-demand 512 MB function in us-east-1 sees. Lambda sets the X-Ray daemon's address in
#: every function, traced or not, so it says nothing about whether tracing is on.
LAMBDA_ENVIRONMENT = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/27/[$LATEST]0123456789abcdef",
    "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
    "AWS_ACCESS_KEY_ID": "ASIAEXAMPLEEXAMPLE00",
    "AWS_SECRET_ACCESS_KEY": "example-not-a-secret",
    "AWS_SESSION_TOKEN": "example-not-a-token",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
    "LANG": "en_US.UTF-8",
    "TZ": ":UTC",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
}

_PROBE = """
import json, time
started = time.perf_counter()
import {module}
imported = time.perf_counter()
ready = imported
if {setup}:
    from trackwatch.bootstrap import bootstrap
    from trackwatch.config import Settings
    {module}.handler(bootstrap(Settings.from_environ()))
    ready = time.perf_counter()
print(json.dumps([imported - started, ready - imported]))
"""


@dataclass(frozen=True)
class Probe:
    """What one fresh interpreter imports, where, with which environment."""

    name: str
    module: str
    cwd: Path
    environment: Mapping[str, str]
    #: Build the handler after the import, as the first invocation does.
    setup: bool


@dataclass
class ImportTime:
    """Seconds per fresh interpreter, grouped by repetition, for one module."""

    name: str
    #: Per repetition, the import time of each interpreter.
    imports: list[list[float]] = field(default_factory=list)
    #: Per repetition, the first invocation's setup after the import (0 for boto3).
    setups: list[list[float]] = field(default_factory=list)

    @property
    def runs(self) -> int:
        """Interpreters per repetition."""
        return len(self.imports[0]) if self.imports else 0

    @property
    def median_s(self) -> float:
        """The median import over every interpreter."""
        return statistics.median(t for rep in self.imports for t in rep)

    @property
    def medians(self) -> list[float]:
        """The median import of each repetition."""
        return [statistics.median(rep) for rep in self.imports]

    @property
    def setup_median_s(self) -> float:
        """The median first-invocation setup."""
        return statistics.median(t for rep in self.setups for t in rep)

    @property
    def total_medians(self) -> list[float]:
        """Per repetition, the median of import + setup."""
        return [
            statistics.median(i + s for i, s in zip(imp, sets, strict=True))
            for imp, sets in zip(self.imports, self.setups, strict=True)
        ]


@dataclass
class ColdStart:
    """Every module's times in one layout (as deployed, or with bytecode)."""

    bytecode: bool
    boto3: ImportTime
    functions: list[ImportTime]


def interpreter() -> str:
    """The plain interpreter under the virtualenv (no dev packages reachable through it)."""
    return str(getattr(sys, "_base_executable", sys.executable))


def build_layer(workdir: Path | None = None) -> Path:
    """`/opt/python`: the layer's requirements alone, and the trackwatch package beside them.

    The dependencies are installed once per version of requirements.txt (uv's cache makes
    that quick) and reused; the package is copied fresh each time.
    """
    digest = hashlib.sha256(LAYER_REQUIREMENTS.read_bytes()).hexdigest()[:12]
    base = (workdir or Path(tempfile.gettempdir())) / f"trackwatch-layer-{digest}"
    site = base / "python"
    if not (base / "installed").exists():
        shutil.rmtree(base, ignore_errors=True)
        subprocess.run(  # noqa: S603 - uv, fixed arguments
            [
                shutil.which("uv") or "uv",
                "pip",
                "install",
                "--quiet",
                "--target",
                str(site),
                "--python",
                interpreter(),
                "-r",
                str(LAYER_REQUIREMENTS),
            ],
            check=True,
        )
        (base / "installed").touch()
    shutil.rmtree(site / "trackwatch", ignore_errors=True)
    shutil.copytree(PACKAGE, site / "trackwatch", ignore=shutil.ignore_patterns("__pycache__"))
    return site


def set_bytecode(paths: Sequence[Path], compiled: bool) -> None:
    """Precompile `paths` (checked-hash .pyc), or remove every .pyc under them."""
    for path in paths:
        for cache in path.rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)
        if compiled:
            compileall.compile_dir(
                path,
                quiet=1,
                invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
            )


def _once(probe: Probe, site: Path, bytecode: bool) -> tuple[float, float]:
    environment = {
        **LAMBDA_ENVIRONMENT,
        **probe.environment,
        "AWS_LAMBDA_FUNCTION_NAME": probe.name,
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{probe.name}",
        "LAMBDA_TASK_ROOT": str(probe.cwd),
        "_HANDLER": "app.lambda_handler",
        "PYTHONPATH": os.pathsep.join([str(probe.cwd), str(site)]),
    }
    if not bytecode:
        # Lambda's /opt and /var/task are read-only: what it compiles is never kept.
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
    done = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [
            interpreter(),
            "-S",
            "-c",
            _PROBE.format(module=probe.module, setup=probe.setup),
        ],
        cwd=probe.cwd,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{probe.name}: the import failed:\n{done.stderr[-2000:]}")
    imported, setup = json.loads(done.stdout.strip().splitlines()[-1])
    return float(imported), float(setup)


def function_probes(environments: Mapping[str, Mapping[str, str]]) -> list[Probe]:
    """One probe per functions/* folder, with its environment (by folder name) if given."""
    return [
        Probe(
            name=folder.name,
            module="app",
            cwd=folder,
            environment=environments.get(folder.name, {}),
            setup=folder.name in environments,
        )
        for folder in sorted((ROOT / "functions").iterdir())
        if (folder / "app.py").is_file()
    ]


def measure(
    probes: Sequence[Probe], *, bytecode: bool, repetitions: int, runs: int, site: Path
) -> ColdStart:
    """`repetitions` rounds; in each, every module `runs` times, interleaved (so a busy
    moment of the machine falls on all of them alike)."""
    functions = [p.cwd for p in probes]
    set_bytecode([site, *functions], bytecode)
    boto3 = Probe("boto3", "boto3", ROOT, {}, setup=False)
    times = {p.name: ImportTime(p.name) for p in (boto3, *probes)}
    # One warm-up round: the file cache, as on a host that has run the runtime before.
    for probe in (boto3, *probes):
        _once(probe, site, bytecode)
    for _ in range(repetitions):
        for timing in times.values():
            timing.imports.append([])
            timing.setups.append([])
        for _ in range(runs):
            for probe in (boto3, *probes):
                imported, setup = _once(probe, site, bytecode)
                times[probe.name].imports[-1].append(imported)
                times[probe.name].setups[-1].append(setup)
    set_bytecode([site, *functions], False)
    return ColdStart(bytecode, times["boto3"], [times[p.name] for p in probes])


def run(
    environments: Mapping[str, Mapping[str, str]],
    *,
    repetitions: int = 3,
    runs: int = 5,
    bytecode: Sequence[bool] = (False, True),
) -> list[ColdStart]:
    """Every function as deployed (and with bytecode): `repetitions` x `runs` interpreters."""
    site = build_layer()
    probes = function_probes(environments)
    return [
        measure(probes, bytecode=b, repetitions=repetitions, runs=runs, site=site) for b in bytecode
    ]


def main() -> None:
    """`python -m bench.coldstart`: the table alone, without the stack's environments."""
    for result in run({}, repetitions=1, runs=3):
        base = result.boto3.median_s
        print(f"bytecode={result.bytecode}: boto3 {base * 1000:.0f} ms")
        for f in result.functions:
            print(f"  {f.name:24} {f.median_s * 1000:6.0f} ms  {f.median_s / base:.2f}x")


if __name__ == "__main__":
    main()
