"""`uv run python -m bench.scale`: the local runtime at a user's scale, beside a naive poller.

For each size, each repeat: a fresh emulator (the product's, in a process of its own, with
its CPU time kept per operation: `bench.scale_emulator`) and a Clickpost sandbox in this
process, on which every shipment follows the five-step `delivered_smoothly` journey, one
step per poll. In that one emulator:

- **the naive poller** (`bench/naive.py`, no notifications) polls its own N shipments for
  the same number of cycles: Scan, then per shipment one call for one AWB, GetItem,
  diff, PutItem, one Publish per event;
- **trackwatch** runs as `trackwatch local --clickpost-url … --shipments FILE.csv
  --cycles N --events-out … --notifications-out …` would (`bench.scale_child`, a process
  of its own), its N shipments with a phone and an e-mail each, so every change a
  customer hears about is sent by SMS and by e-mail.

Which goes first alternates by repeat. Registration runs register a CSV into a fresh stack
and stop: how long 10,000 rows take, how much memory 100,000 rows take.
Writes the "Local runtime at scale" section of BENCHMARKS.md (the rest is `python -m bench`).
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.harness import batch_write
from bench.naive import against_sandbox
from bench.scale_emulator import CPU_PATH
from trackwatch.adapters.shipments_table import to_item
from trackwatch_cli.deployment import SimulatedClock
from trackwatch_cli.environment import Emulator, peak_memory_bytes
from trackwatch_cli.local import CYCLE_MINUTES, SIM_START
from trackwatch_cli.sandbox import SandboxServer

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(tempfile.gettempdir()) / "trackwatch-bench-scale.pickle"
JOURNEY = "delivered_smoothly"
CARRIERS = (4, 5, 6)


@dataclass
class Side:
    """One side of a run (trackwatch or the naive poller)."""

    seconds: float
    polls: int
    events: int
    messages: int = 0
    #: Of trackwatch: registration and the cycles apart (the naive table is seeded).
    register_s: float = 0.0
    cycles_s: float = 0.0
    peak_rss: int = 0
    cpu_s: float = 0.0
    emulator_cpu_s: float = 0.0
    emulator_ops: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class ScaleRun:
    """One size, one repeat."""

    size: int
    cycles: int
    repeat: int
    ours: Side
    naive: Side
    emulator_peak: int
    order: str


@dataclass
class MemoryRun:
    """A CSV registered into a fresh stack, then stopped."""

    rows: int
    register_s: float
    total_s: float
    peak_rss: int
    emulator_peak: int


@dataclass
class ScaleResults:
    """Everything one `bench.scale` run measured."""

    command: str
    runs: list[ScaleRun] = field(default_factory=list)
    memory: list[MemoryRun] = field(default_factory=list)
    elapsed_s: float = 0.0


def _say(message: str) -> None:
    print(f"[bench.scale] {message}", file=sys.stderr, flush=True)


def _emulator_cpu(emulator: Emulator) -> tuple[float, dict[str, list[float]]]:
    ops = httpx.get(f"{emulator.endpoint_url}{CPU_PATH}", timeout=30).json()
    return emulator.cpu_seconds() or 0.0, ops


def _delta(
    after: tuple[float, dict[str, list[float]]], before: tuple[float, dict[str, list[float]]]
) -> tuple[float, dict[str, list[float]]]:
    ops = {
        name: [count - before[1].get(name, [0, 0.0])[0], cpu - before[1].get(name, [0, 0.0])[1]]
        for name, (count, cpu) in after[1].items()
    }
    return after[0] - before[0], {k: v for k, v in ops.items() if v[0]}


def write_csv(path: Path, size: int, prefix: str) -> list[tuple[int, str]]:
    """`size` shipments, each with a phone and an e-mail; returns (cp_id, waybill)."""
    keys = [(CARRIERS[i % len(CARRIERS)], f"{prefix}{i:07d}") for i in range(size)]
    with path.open("w", encoding="utf-8") as handle:
        handle.write("waybill,cp_id,order_id,phone,email,language\n")
        for i, (cp_id, waybill) in enumerate(keys):
            handle.write(f"{waybill},{cp_id},ORD{i},+9198{i:08d},c{i}@example.com,en\n")
    return keys


def run_ours(
    emulator: Emulator, sandbox: SandboxServer, csv: Path, cycles: int, *, register_only: bool
) -> Side:
    """trackwatch in a process of its own; the emulator's CPU it cost."""
    before = _emulator_cpu(emulator)
    started = time.perf_counter()
    command = [
        sys.executable,
        "-m",
        "bench.scale_child",
        "--emulator",
        emulator.endpoint_url,
        "--clickpost",
        sandbox.base_url,
        "--shipments",
        str(csv),
        "--cycles",
        str(cycles),
    ]
    if register_only:
        command.append("--register-only")
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        command, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True
    )
    seconds = time.perf_counter() - started
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["crashes"]:
        raise RuntimeError(f"{figures['crashes']} handler crashes in the trackwatch run")
    cpu, ops = _delta(_emulator_cpu(emulator), before)
    return Side(
        seconds=seconds,
        polls=figures["awbs"],
        events=figures["events"],
        messages=figures["messages"],
        register_s=figures["register_s"],
        cycles_s=figures["run_s"],
        peak_rss=figures["peak_rss"],
        cpu_s=figures["cpu_s"],
        emulator_cpu_s=cpu,
        emulator_ops=ops,
    )


def run_naive(
    emulator: Emulator, sandbox: SandboxServer, keys: list[tuple[int, str]], cycles: int
) -> Side:
    """The naive poller in this process, on its own table and topic, `cycles` times."""
    clients = emulator.clients
    table = "naive-shipments"
    clients.dynamodb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    topic = clients.sns.create_topic(Name="naive-events")["TopicArn"]
    batch_write(
        clients,
        table,
        [
            to_item(
                {
                    "pk": f"{cp_id}#{waybill}",
                    "cp_id": cp_id,
                    "waybill": waybill,
                    "version": 1,
                    "state": "{}",
                    "registered_at": SIM_START.isoformat(),
                }
            )
            for cp_id, waybill in keys
        ],
    )
    clock = SimulatedClock(SIM_START)
    poller = against_sandbox(
        table=table,
        topic_arn=topic,
        base_url=sandbox.base_url,
        clients=clients,
        clock=clock,
    )
    before = _emulator_cpu(emulator)
    cpu_before = time.process_time()
    started = time.perf_counter()
    polls = events = 0
    for _ in range(cycles):
        summary = poller.cycle()
        polls += summary.polled
        events += sum(summary.events.values())
        clock.advance(timedelta(minutes=CYCLE_MINUTES))
    seconds = time.perf_counter() - started
    cpu, ops = _delta(_emulator_cpu(emulator), before)
    return Side(
        seconds=seconds,
        polls=polls,
        events=events,
        cycles_s=seconds,
        cpu_s=time.process_time() - cpu_before,
        emulator_cpu_s=cpu,
        emulator_ops=ops,
    )


def _sandbox(keys: list[tuple[int, str]]) -> SandboxServer:
    sandbox = SandboxServer(any_waybill=True).start()
    for cp_id, waybill in keys:
        sandbox.add_shipment(waybill, cp_id, JOURNEY)
    return sandbox


def run_size(size: int, cycles: int, repeat: int, work: Path) -> ScaleRun:
    """One repeat at one size: both pollers in one fresh emulator."""
    ours_keys = write_csv(work / f"ours-{size}.csv", size, "OUR")
    naive_keys = [(cp_id, "NAV" + waybill[3:]) for cp_id, waybill in ours_keys]
    emulator = Emulator(module="bench.scale_emulator", cwd=ROOT).start()
    sandbox = _sandbox(ours_keys + naive_keys)
    order = "naive first" if repeat % 2 == 0 else "trackwatch first"
    try:
        if repeat % 2 == 0:
            naive = run_naive(emulator, sandbox, naive_keys, cycles)
            ours = run_ours(
                emulator, sandbox, work / f"ours-{size}.csv", cycles, register_only=False
            )
        else:
            ours = run_ours(
                emulator, sandbox, work / f"ours-{size}.csv", cycles, register_only=False
            )
            naive = run_naive(emulator, sandbox, naive_keys, cycles)
        peak = emulator.peak_memory_bytes() or 0
    finally:
        sandbox.stop()
        emulator.stop()
    return ScaleRun(size, cycles, repeat, ours, naive, peak, order)


def run_memory(rows: int, work: Path) -> MemoryRun:
    """Register `rows` shipments from a CSV, then stop; peak memory of each process."""
    path = work / f"memory-{rows}.csv"
    write_csv(path, rows, "MEM")
    emulator = Emulator(module="bench.scale_emulator", cwd=ROOT).start()
    sandbox = SandboxServer(any_waybill=True).start()
    try:
        ours = run_ours(emulator, sandbox, path, 1, register_only=True)
        pid = emulator.pid
        peak = (peak_memory_bytes(pid) if pid else None) or 0
    finally:
        sandbox.stop()
        emulator.stop()
    return MemoryRun(rows, ours.register_s, ours.seconds, ours.peak_rss, peak)


def main(argv: list[str] | None = None) -> int:
    """Measure (or, with --render-only, reuse the last measurement) and write the section."""
    from bench.scale_report import write_section

    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--sizes", default="2000,10000")
    parser.add_argument("--repeats", default="3,1", help="repeats per size, in order")
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("--register-rows", default="10000,100000", help="'' for none")
    parser.add_argument("--register-repeats", default="3,1", help="repeats per row count")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument(
        "--append", action="store_true", help="add to the last run's results (another size)"
    )
    args = parser.parse_args(argv)
    if args.render_only:
        results: ScaleResults = pickle.loads(RESULTS.read_bytes())  # noqa: S301 - our own file
    else:
        command = "uv run python -m bench.scale " + " ".join(argv or sys.argv[1:])
        results = ScaleResults(command=command.strip())
        if args.append:
            earlier: ScaleResults = pickle.loads(RESULTS.read_bytes())  # noqa: S301 - ours
            earlier.command += f"; then `{results.command}`"
            results = earlier
        started = time.perf_counter()
        sizes = [int(s) for s in args.sizes.split(",")]
        repeats = [int(r) for r in args.repeats.split(",")]
        with tempfile.TemporaryDirectory(prefix="trackwatch-scale-") as tmp:
            work = Path(tmp)
            for size, count in zip(sizes, repeats + [repeats[-1]] * len(sizes), strict=False):
                for repeat in range(count):
                    _say(f"{size:,} shipments x {args.cycles} cycles, repeat {repeat + 1}/{count}")
                    run = run_size(size, args.cycles, repeat, work)
                    _say(f"  trackwatch {run.ours.seconds:.0f} s, naive {run.naive.seconds:.0f} s")
                    results.runs.append(run)
                    RESULTS.write_bytes(pickle.dumps(results))
            counts = [int(r) for r in args.register_repeats.split(",")]
            rows_list = [int(r) for r in args.register_rows.split(",") if r]
            for rows, count in zip(rows_list, counts + [counts[-1]] * len(rows_list), strict=False):
                for repeat in range(count):
                    _say(f"registering {rows:,} rows, repeat {repeat + 1}/{count}")
                    results.memory.append(run_memory(rows, work))
                    RESULTS.write_bytes(pickle.dumps(results))
        results.elapsed_s += time.perf_counter() - started
        RESULTS.write_bytes(pickle.dumps(results))
    write_section(args.out, results)
    _say(f"wrote {args.out}")
    return 0


def median_spread(values: list[float]) -> tuple[float, float, float]:
    """(median, min, max)."""
    return statistics.median(values), min(values), max(values)


if __name__ == "__main__":
    raise SystemExit(main())
