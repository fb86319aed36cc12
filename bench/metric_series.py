"""The CloudWatch metric series trackwatch emits, counted from its log.

CloudWatch bills a custom metric per series, that is per metric name and set of dimension
values, for every month (pro rata by the hour) in which it receives a point. The functions
send their metrics as EMF lines (`{"_aws": {"CloudWatchMetrics": ...}, ...}`) in their
logs; this module reads them from a log (the local runtime's, `trackwatch-local.log`, or
any other) and says which series they make.

`uv run python -m bench.metric_series [LOG]` prints the count and the series by name.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

#: (namespace, metric name, ((dimension, value), ...))
type Series = tuple[str, str, tuple[tuple[str, str], ...]]

_EMF = '{"_aws"'


def series(lines: Iterable[str]) -> set[Series]:
    """Every series the EMF documents in `lines` make (a document may follow a prefix on
    its line, as the local runtime's log writes it; lines that are not EMF are skipped)."""
    found: set[Series] = set()
    for line in lines:
        start = line.find(_EMF)
        if start < 0:
            continue
        try:
            document = json.loads(line[start:])
            directives = document["_aws"]["CloudWatchMetrics"]
        except (ValueError, KeyError, TypeError):
            continue
        for directive in directives:
            for dimensions in directive.get("Dimensions", []):
                values = tuple((name, str(document.get(name))) for name in dimensions)
                for metric in directive.get("Metrics", []):
                    found.add((directive["Namespace"], metric["Name"], values))
    return found


def main(argv: list[str] | None = None) -> int:
    """Print the series in a log (default: the local runtime's)."""
    args = sys.argv[1:] if argv is None else argv
    log = Path(args[0]) if args else Path(tempfile.gettempdir()) / "trackwatch-local.log"
    with log.open(encoding="utf-8", errors="replace") as lines:
        found = series(lines)
    print(f"{len(found)} metric series in {log}")
    for name, count in sorted(Counter(name for _, name, _ in found).items()):
        print(f"  {name}: {count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
