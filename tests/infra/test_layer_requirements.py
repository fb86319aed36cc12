"""The deployed layer is what was tested: its requirements are uv.lock's pins, exactly."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_layer_requirements_are_generated_from_the_lock() -> None:
    # Given uv (scripts/check installs it) and the committed requirements file
    assert shutil.which("uv"), "uv is needed to check the layer's requirements"
    committed = (ROOT / "layers/common/requirements.txt").read_text(encoding="utf-8")

    # When they are generated again from uv.lock
    generated = subprocess.run(
        [str(ROOT / "scripts/layer-requirements")],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout

    # Then nothing differs (regenerate with: scripts/layer-requirements > layers/common/...)
    assert committed == generated, "layers/common/requirements.txt drifted from uv.lock"


def test_the_layer_pins_every_package_and_ships_no_development_tool() -> None:
    lines = [
        line
        for line in (ROOT / "layers/common/requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert all("==" in line for line in lines), lines
    names = {line.split("==")[0] for line in lines}
    assert {"aws-lambda-powertools", "pydantic", "httpx", "jinja2"} <= names
    assert not names & {"moto", "typer", "rich", "pytest", "mypy", "aws-sam-translator"}
