"""`uv run python -m bench [--quick] [--out BENCHMARKS.md] [--plot bench/scaling.png]`."""

from __future__ import annotations

import argparse
import logging
import pickle
import sys
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path

from bench import report
from bench.run import FULL, QUICK, Results, run
from bench.scale_report import keep_section

ROOT = Path(__file__).resolve().parents[1]
#: The last run's results, so a report can be rewritten without measuring again.
LAST_RUN = Path(tempfile.gettempdir()) / "trackwatch-bench-results.pickle"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, write the report and the plot."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--plot", type=Path, default=ROOT / "bench" / "scaling.png")
    parser.add_argument(
        "--sizes",
        help="comma-separated scaling sizes, e.g. 1000,10000,50000 (default: the run's own)",
    )
    parser.add_argument(
        "--freshness",
        action="store_true",
        help="only change capture's three-way run; rewrites that section of --out in place",
    )
    parser.add_argument(
        "--throughput",
        action="store_true",
        help="only the poll worker's throughput; rewrites that section of --out in place",
    )
    parser.add_argument(
        "--parse",
        action="store_true",
        help=f"only parse and diff, measured again into the last run's results ({LAST_RUN}), "
        "then the whole report rewritten from them",
    )
    parser.add_argument(
        "--items",
        action="store_true",
        help=f"only the item sizes, computed again into the last run's results ({LAST_RUN}) "
        "(with --parse: both), then the whole report rewritten from them",
    )
    parser.add_argument(
        "--coldstart",
        action="store_true",
        help=f"only the cold starts, measured again into the last run's results ({LAST_RUN}) "
        "on a stack deployed from today's template (with --parse, --items: those too)",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help=f"rewrite the report from the last run's results ({LAST_RUN}), measuring nothing",
    )
    args = parser.parse_args(argv)
    for name in ("moto", "werkzeug", "httpx", "botocore", "trackwatch", "samtranslator"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    # Handlers that record no metric in a run say so on every invocation.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    if args.freshness:
        return _freshness_only(args.out, quick=args.quick)
    if args.throughput:
        return _throughput_only(args.out, quick=args.quick)
    again = {"parse": args.parse, "items": args.items, "coldstart": args.coldstart}
    if args.render_only or any(again.values()):
        results = pickle.loads(LAST_RUN.read_bytes())  # noqa: S301 - our own file
        if any(again.values()):
            _measure_again(results, **again)
            LAST_RUN.write_bytes(pickle.dumps(results))
    else:
        config = QUICK if args.quick else FULL
        if args.sizes:
            sizes = tuple(int(n) for n in args.sizes.split(","))
            config = replace(config, scaling=sizes, scaling_mixed_max=min(sizes[-1], 10_000))
        results = run(config)
        LAST_RUN.write_bytes(pickle.dumps(results))
    command = "uv run python -m bench" + (" --quick" if results.config.name == "quick" else "")
    if args.sizes:
        command += f" --sizes {args.sizes}"
    try:
        plot = args.plot.resolve().relative_to(args.out.resolve().parent)
    except ValueError:
        plot = args.plot.resolve()
    report.draw(results, args.plot)
    previous = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
    # The local runtime's scale section is `python -m bench.scale`'s: kept as it was.
    rewritten = keep_section(previous, report.markdown(results, command, plot))
    args.out.write_text(rewritten, encoding="utf-8")
    print(f"wrote {args.out} and {args.plot}", file=sys.stderr)
    return 0


def _measure_again(results: Results, *, parse: bool, items: bool, coldstart: bool = False) -> None:
    """Measure parse and diff (three repetitions), compute the item sizes, and/or measure
    the cold starts again, in place of the run's, with a note saying so."""
    from datetime import UTC, datetime

    from bench import coldstart as cold
    from bench import items as item_sizes
    from bench import parse_diff
    from bench.run import REPETITIONS, deployed_environments

    again = []
    if parse:
        results.parse = parse_diff.run(results.config.parse_min_time_s, REPETITIONS)
        again.append("parse and diff measured")
    if items:
        results.items = item_sizes.run()
        again.append("the item sizes (and the bill's lines built on them) computed")
    if coldstart:
        results.environments = deployed_environments()
        results.coldstart = cold.run(
            results.environments, repetitions=REPETITIONS, runs=results.config.coldstart_runs
        )
        again.append("the cold starts measured")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    chosen = (("parse", parse), ("items", items), ("coldstart", coldstart))
    flags = " ".join(f"--{name}" for name, on in chosen if on)
    results.notes.append(
        f"{' and '.join(again)} again at {when} by `uv run python -m bench {flags}`, on "
        "the code of that day; the rest is the full run's"
    )


def _throughput_only(out: Path, *, quick: bool) -> int:
    """Measure the poll worker's throughput alone and splice its section into `out`."""
    from datetime import UTC, datetime

    from bench.run import throughput_only

    ours, naive = throughput_only(QUICK if quick else FULL)
    command = "uv run python -m bench --throughput" + (" --quick" if quick else "")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    note = (
        f"the poll worker's throughput measured again at {when} by `{command}`, each worker in "
        "a process of its own (`bench/throughput_child.py`); the bill's PollShipments line "
        "still uses the full run's figure"
    )
    document = out.read_text(encoding="utf-8") if out.exists() else ""
    section = report.throughput_section(ours, naive)
    out.write_text(report.splice_throughput(document, section, note), encoding="utf-8")
    print(f"wrote the throughput section of {out}", file=sys.stderr)
    return 0


def _freshness_only(out: Path, *, quick: bool) -> int:
    """Run change capture's benchmark alone and splice its section into `out`."""
    import os

    from bench import freshness

    config = freshness.QUICK if quick else freshness.FULL
    with open(os.devnull, "w") as log:
        fresh = freshness.run(config, log, say=lambda m: print(f"[bench] {m}", file=sys.stderr))
    command = "uv run python -m bench --freshness" + (" --quick" if quick else "")
    document = out.read_text(encoding="utf-8") if out.exists() else ""
    out.write_text(
        report.splice_freshness(document, report.freshness(fresh, command)), encoding="utf-8"
    )
    print(f"wrote the change-capture section of {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
