"""`python -m bench.scale_child`: one `trackwatch local` run in a process of its own.

The scale benchmark runs the product here, in a fresh interpreter, so that its peak
memory and CPU time are its own; it deploys into the emulator the benchmark started
(where the naive poller runs too) and polls the benchmark's Clickpost sandbox, as a
user's `trackwatch local --clickpost-url … --shipments … --cycles N` does. Prints one
JSON object: phase times, counts, peak memory and CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

from rich.console import Console

from trackwatch_cli.environment import Emulator
from trackwatch_cli.local import LocalOptions, LocalSystem, quiet_libraries
from trackwatch_cli.sandbox import DEFAULT_KEY, DEFAULT_USERNAME

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    """Run once; print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.scale_child")
    parser.add_argument("--emulator", required=True)
    parser.add_argument("--clickpost", required=True)
    parser.add_argument("--shipments", type=Path, required=True)
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("--register-only", action="store_true")
    args = parser.parse_args(argv)
    out = Path(tempfile.mkdtemp(prefix="trackwatch-scale-"))
    options = LocalOptions(
        template=ROOT / "template.yaml",
        cycles=args.cycles,
        shipments=args.shipments,
        clickpost_url=args.clickpost,
        clickpost_key=DEFAULT_KEY,
        clickpost_username=DEFAULT_USERNAME,
        events_out=out / "events.jsonl",
        notifications_out=out / "notifications.jsonl",
        api_port=0,
        endpoints_path=out / "local.json",
        # The sandbox here has no clock: its journeys are dated January 2025, and to the
        # simulated clock every shipment would look a year overdue (as in bench/harness.py).
        settings={"DELAY_CHECKS": "false", "DELAY_CHECK_MINUTES": "0"},
    )
    # Progress goes to stderr (the benchmark shows it); the figures to stdout.
    console = Console(file=sys.stderr, force_terminal=False, soft_wrap=True)
    started = time.perf_counter()
    with (
        quiet_libraries(),
        warnings.catch_warnings(),
        LocalSystem(options, console, emulator=Emulator.attach(args.emulator)) as system,
    ):
        warnings.simplefilter("ignore", UserWarning)
        ready = time.perf_counter()
        if not args.register_only:
            system.run()
        finished = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {
        "rows": system.registered.rows,
        "register_s": system.registered.seconds,
        "startup_s": ready - started,
        "run_s": finished - ready,
        "total_s": finished - started,
        "awbs": system.polls.awbs,
        "events": system.timeline.events,
        "messages": system.timeline.notifications,
        "channels": dict(system.timeline.channels),
        "peak_rss": usage.ru_maxrss * 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "crashes": len(system.local.runtime.crashes),
    }
    print(json.dumps(figures), flush=True)
    for name in ("events.jsonl", "notifications.jsonl", "local.json"):
        (out / name).unlink(missing_ok=True)
    os.rmdir(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
