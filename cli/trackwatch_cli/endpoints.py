"""Where a running `trackwatch local` can be reached, written where other commands look.

`trackwatch local` writes its emulator's URL, region, stack name and API URL to a small
JSON file while it runs (and removes it when it stops); `trackwatch shipments ... --local`
reads it, so nobody copies a port by hand. The file is `$TRACKWATCH_LOCAL_FILE` if set,
else `trackwatch/local.json` under `$XDG_STATE_HOME` (default `~/.local/state`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

#: The emulator takes any credentials; these are the ones the printed lines use.
EMULATOR_KEY_ID = "local"
EMULATOR_SECRET = "local"  # noqa: S105 - the emulator's placeholder, not a secret


@dataclass(frozen=True)
class LocalEndpoints:
    """A running local stack, as other clients reach it."""

    emulator_url: str
    region: str
    stack: str
    api_url: str
    #: The `trackwatch local` process; the file counts only while it lives.
    pid: int

    def environment(self) -> dict[str, str]:
        """The variables boto3 and the AWS CLI read to use the emulator."""
        return {
            "AWS_ENDPOINT_URL": self.emulator_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": EMULATOR_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": EMULATOR_SECRET,
        }

    def export_lines(self) -> list[str]:
        """Shell lines a user pastes to point boto3 or the AWS CLI at the emulator."""
        return [f"export {name}={value}" for name, value in self.environment().items()]


def endpoints_file(environ: Mapping[str, str] | None = None) -> Path:
    """Where the endpoints are written and read."""
    env = os.environ if environ is None else environ
    if env.get("TRACKWATCH_LOCAL_FILE"):
        return Path(env["TRACKWATCH_LOCAL_FILE"])
    state = Path(env.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "trackwatch" / "local.json"


def write_endpoints(endpoints: LocalEndpoints, path: Path) -> None:
    """Write the file (replacing another run's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(asdict(endpoints), indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


def remove_endpoints(path: Path, pid: int) -> None:
    """Remove the file if it is still this process's."""
    found = read_endpoints(path, check_alive=False)
    if found is not None and found.pid == pid:
        path.unlink(missing_ok=True)


def read_endpoints(path: Path, *, check_alive: bool = True) -> LocalEndpoints | None:
    """The endpoints of a running `trackwatch local`, or None (no file, a bad one, or
    one whose process is gone)."""
    try:
        found = LocalEndpoints(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    if check_alive and not _alive(found.pid):
        return None
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
