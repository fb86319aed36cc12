"""The dependency rule of docs/architecture.md, checked on every module's imports.

An AST check rather than import-linter: the handlers are `functions/<name>/app.py`, a
dozen modules all called `app` outside any package, which import-linter cannot name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers/common/trackwatch"

#: Libraries that talk to the outside world: only adapters may import them.
IO_LIBRARIES = ("boto3", "botocore", "httpx", "smtplib", "mypy_boto3")

#: Per layer, the trackwatch modules it may NOT import (a prefix matches its submodules).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "models": (
        "trackwatch.logic",
        "trackwatch.services",
        "trackwatch.adapters",
        "trackwatch.ports",
        "trackwatch.config",
        "trackwatch.bootstrap",
        "trackwatch.data",
        "trackwatch.api",
        "trackwatch.observability",
        "trackwatch.notify_batch",
        "trackwatch.whatsapp_batch",
    ),
    "logic": (
        "trackwatch.services",
        "trackwatch.adapters",
        "trackwatch.ports",
        "trackwatch.config",
        "trackwatch.bootstrap",
        "trackwatch.data",
        "trackwatch.api",
        "trackwatch.observability",
        "trackwatch.notify_batch",
        "trackwatch.whatsapp_batch",
    ),
    "ports": (
        "trackwatch.logic",
        "trackwatch.services",
        "trackwatch.adapters",
        "trackwatch.config",
        "trackwatch.bootstrap",
        "trackwatch.data",
    ),
    "services": (
        "trackwatch.adapters",
        "trackwatch.config",
        "trackwatch.bootstrap",
        "trackwatch.data",
        "trackwatch.api",
        "trackwatch.notify_batch",
        "trackwatch.whatsapp_batch",
    ),
    "adapters": (
        "trackwatch.services",
        "trackwatch.config",
        "trackwatch.bootstrap",
        "trackwatch.data",
        "trackwatch.api",
        "trackwatch.notify_batch",
        "trackwatch.whatsapp_batch",
    ),
    "data": ("trackwatch.services", "trackwatch.adapters", "trackwatch.bootstrap"),
    "config": (
        "trackwatch.logic",
        "trackwatch.services",
        "trackwatch.adapters",
        "trackwatch.bootstrap",
        "trackwatch.data",
    ),
    # The entry points' helpers in the layer: the routes, the notifiers' batch, metrics.
    "entry": ("trackwatch.adapters", "trackwatch.config", "trackwatch.data", "trackwatch.logic"),
    "bootstrap": (),
}
#: What a handler (functions/*/app.py) may import from trackwatch: the container, the
#: models, the powertools objects (observability) and the entry helpers; nothing else.
HANDLER_ALLOWED = (
    "trackwatch.bootstrap",
    "trackwatch.models",
    "trackwatch.observability",
    "trackwatch.errors",
    "trackwatch.notify_batch",
    "trackwatch.api",
    "trackwatch.batches",
    "trackwatch.whatsapp_batch",
)
ENTRY_MODULES = {"api", "notify_batch.py", "whatsapp_batch.py", "observability.py", "batches.py"}


def layer_of(path: Path) -> str:
    """The layer a module of the package belongs to."""
    if path.is_relative_to(ROOT / "functions"):
        return "handler"
    first = path.relative_to(PACKAGE).parts[0]
    if first in ENTRY_MODULES:
        return "entry"
    if first.endswith(".py"):
        return {
            "ports.py": "ports",
            "config.py": "config",
            "bootstrap.py": "bootstrap",
            "errors.py": "models",
            "__init__.py": "models",
        }[first]
    return first


def imports_of(source: str) -> list[str]:
    """Every module `source` imports (typing-only imports count: they are dependencies too)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(layer: str, imported: list[str]) -> list[str]:
    """The imports that break the rule for a module of `layer`."""
    broken = []
    for module in imported:
        if layer != "adapters" and any(_under(module, lib) for lib in IO_LIBRARIES):
            broken.append(f"{module} (only adapters talk to the outside world)")
        if layer == "handler":
            if _under(module, "trackwatch") and not any(
                _under(module, allowed) for allowed in HANDLER_ALLOWED
            ):
                broken.append(f"{module} (a handler uses the container, models, powertools)")
        elif any(_under(module, banned) for banned in FORBIDDEN[layer]):
            broken.append(f"{module} ({layer} may not depend on it)")
    return broken


def modules() -> list[Path]:
    return sorted([*PACKAGE.rglob("*.py"), *(ROOT / "functions").glob("*/app.py")])


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_keeps_the_dependency_rule(path: Path) -> None:
    broken = violations(layer_of(path), imports_of(path.read_text(encoding="utf-8")))
    assert broken == [], f"{path.relative_to(ROOT)} imports {broken}"


@pytest.mark.parametrize(
    ("layer", "source"),
    [
        ("logic", "from trackwatch.config import Settings"),
        ("logic", "from trackwatch.adapters.aws import AwsClients"),
        ("models", "from trackwatch.logic.diff import diff"),
        ("services", "from trackwatch.adapters.shipments_table import ShipmentsTable"),
        ("services", "import boto3"),
        ("logic", "import httpx"),
        ("handler", "from trackwatch.services.poll import PollService"),
        ("handler", "from trackwatch.adapters.clickpost import ClickpostClient"),
        ("adapters", "from trackwatch.config import ClickpostSettings"),
    ],
)
def test_a_deliberately_wrong_import_is_caught(layer: str, source: str) -> None:
    assert violations(layer, imports_of(source)) != []


def test_the_rule_allows_what_the_design_needs() -> None:
    assert violations("adapters", imports_of("import boto3\nimport httpx")) == []
    assert violations("handler", imports_of("from trackwatch.bootstrap import Container")) == []
    assert violations("services", imports_of("from trackwatch.ports import Tracker")) == []
    assert violations("logic", imports_of("from trackwatch.models.keys import ShipmentKey")) == []
