"""Data files that ship with the layer, each of which a deployment can replace."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from trackwatch.errors import ConfigurationError


def read_data_file(name: str, override_env: str, what: str) -> tuple[str, str]:
    """(text, source) of the file named by `override_env`, else of the packaged `name`."""
    override = os.environ.get(override_env)
    if override:
        path = Path(override)
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise ConfigurationError(f"cannot read {what} {path}: {exc}") from exc
    text = resources.files("trackwatch.data").joinpath(name).read_text("utf-8")
    return text, f"trackwatch/data/{name}"
