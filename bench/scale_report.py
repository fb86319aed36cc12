"""The "Local runtime at scale" section of BENCHMARKS.md, from `bench.scale`'s results.

The section sits between two markers; `python -m bench` rewrites the rest of the file and
keeps it (`keep_section`).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.scale import MemoryRun, ScaleResults, ScaleRun, Side

BEGIN = "<!-- bench.scale: begin -->"
END = "<!-- bench.scale: end -->"
GOAL_RATIO = 1.5
GOAL_REGISTER_S = 60.0
GOAL_MEMORY = 1 << 30
#: The multiplication sign (a literal one trips ruff's ambiguous-character rule).
TIMES = "\u00d7"
#: Operations listed in "where the emulator's time goes".
TOP_OPERATIONS = 10


def keep_section(previous: str, rewritten: str) -> str:
    """`rewritten` with the scale section of `previous` appended, if it had one."""
    if BEGIN not in previous or END not in previous or BEGIN in rewritten:
        return rewritten
    section = previous[previous.index(BEGIN) : previous.index(END) + len(END)]
    return rewritten.rstrip("\n") + "\n\n" + section + "\n"


def write_section(path: Path, results: ScaleResults) -> None:
    """Replace (or add) the section in `path`."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    section = f"{BEGIN}\n{markdown(results)}\n{END}"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")


def _spread(values: list[float], unit: str = "", digits: int = 0) -> str:
    """median [min-max] over the repeats (just the value when there is one)."""
    if len(values) == 1:
        return f"{values[0]:,.{digits}f}{unit}"
    median = statistics.median(values)
    return f"{median:,.{digits}f}{unit} [{min(values):,.{digits}f}-{max(values):,.{digits}f}]"


def _mb(value: float) -> float:
    return value / (1 << 20)


def _sizes(results: ScaleResults) -> dict[int, list[ScaleRun]]:
    by_size: dict[int, list[ScaleRun]] = {}
    for run in results.runs:
        by_size.setdefault(run.size, []).append(run)
    return by_size


def _row(label: str, runs: list[ScaleRun], value: Callable[[ScaleRun], float], **kw: object) -> str:
    return f"| {label} | " + _spread([value(r) for r in runs], **kw) + " |"  # type: ignore[arg-type]


def _size_table(size: int, runs: list[ScaleRun]) -> list[str]:
    cycles = runs[0].cycles

    def rate(side: Side, count: int) -> float:
        return count / side.cycles_s if side.cycles_s else 0.0

    lines = [
        f"### {size:,} shipments, {cycles} cycles ({len(runs)} run{'s' if len(runs) > 1 else ''})",
        "",
        "| | median [min-max] |",
        "|---|---:|",
        _row(
            "trackwatch: whole run, s (start, deploy, register, cycles, drain, summary)",
            runs,
            lambda r: r.ours.seconds,
            digits=1,
        ),
        _row("trackwatch: registering the CSV, s", runs, lambda r: r.ours.register_s, digits=1),
        _row(
            "trackwatch: the cycles until every queue is drained, s",
            runs,
            lambda r: r.ours.cycles_s,
            digits=1,
        ),
        _row("naive poller: the same cycles, s", runs, lambda r: r.naive.seconds, digits=1),
        _row(
            "**cycles: trackwatch / naive**",
            runs,
            lambda r: r.ours.cycles_s / r.naive.seconds,
            digits=2,
        ),
        _row(
            "whole run: trackwatch / naive",
            runs,
            lambda r: r.ours.seconds / r.naive.seconds,
            digits=2,
        ),
        _row("trackwatch polls (AWBs)", runs, lambda r: r.ours.polls),
        _row("naive polls (AWBs)", runs, lambda r: r.naive.polls),
        _row("trackwatch polls/s (cycles)", runs, lambda r: rate(r.ours, r.ours.polls), digits=1),
        _row("naive polls/s", runs, lambda r: rate(r.naive, r.naive.polls), digits=1),
        _row("trackwatch events published", runs, lambda r: r.ours.events),
        _row("naive events published", runs, lambda r: r.naive.events),
        _row(
            "messages sent (the phone channel, WhatsApp or SMS, and e-mail; the naive "
            "poller sends none)",
            runs,
            lambda r: r.ours.messages,
        ),
        _row("messages/s (cycles)", runs, lambda r: rate(r.ours, r.ours.messages), digits=1),
        _row("trackwatch peak memory, MB", runs, lambda r: _mb(r.ours.peak_rss)),
        _row("emulator peak memory (both runs), MB", runs, lambda r: _mb(r.emulator_peak)),
        _row("trackwatch process CPU, s", runs, lambda r: r.ours.cpu_s, digits=1),
        _row("emulator CPU during trackwatch, s", runs, lambda r: r.ours.emulator_cpu_s, digits=1),
        _row(
            "emulator busy during trackwatch, % (its CPU ÷ the whole run's wall time; one "
            "interpreter: 100 at most)",
            runs,
            lambda r: 100 * r.ours.emulator_cpu_s / r.ours.seconds,
        ),
        _row(
            "emulator CPU during the naive poller, s",
            runs,
            lambda r: r.naive.emulator_cpu_s,
            digits=1,
        ),
        "",
    ]
    return [line for line in lines if line is not None]


def _operations(runs: list[ScaleRun]) -> list[str]:
    """Where the emulator's CPU went in the trackwatch runs of the largest size."""
    totals: dict[str, list[float]] = {}
    for run in runs:
        for name, (count, cpu) in run.ours.emulator_ops.items():
            entry = totals.setdefault(name, [0.0, 0.0])
            entry[0] += count
            entry[1] += cpu
    spent = sum(cpu for _, cpu in totals.values()) or 1.0
    lines = [
        "| operation | requests | emulator CPU, s | ms per request | share |",
        "|---|---:|---:|---:|---:|",
    ]
    ranked = sorted(totals.items(), key=lambda kv: -kv[1][1])[:TOP_OPERATIONS]
    for name, (count, cpu) in ranked:
        lines.append(
            f"| {name} | {count / len(runs):,.0f} | {cpu / len(runs):,.1f} | "
            f"{1000 * cpu / count:.2f} | {100 * cpu / spent:.0f}% |"
        )
    # The same, each operation over all its tables, queues and topics.
    by_operation: dict[str, float] = {}
    for name, (_, cpu) in totals.items():
        operation = name.split(" ", 1)[0]
        by_operation[operation] = by_operation.get(operation, 0.0) + cpu
    overall = sorted(by_operation.items(), key=lambda kv: -kv[1])[:TOP_OPERATIONS]
    shares = ", ".join(f"{name} {100 * cpu / spent:.0f}%" for name, cpu in overall)
    return [*lines, "", f"Each operation over all its tables, queues and topics: {shares}."]


def markdown(results: ScaleResults) -> str:
    """The section."""
    by_size = _sizes(results)
    out = [
        "## Local runtime at scale (issue 15)",
        "",
        f"- command: `{results.command}` ({results.elapsed_s:,.0f} s)",
        f"- machine: {os.cpu_count()} cores (`nproc`), {platform.machine()}, "
        f"{platform.system()} {platform.release()}; shared with other work while measured",
        f"- python: {sys.version.split()[0]}",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        "**How it is measured.** Per size and repeat: a fresh emulator (the product's, "
        "`trackwatch_cli.environment`, in a process of its own; `bench/scale_emulator.py` "
        "adds up the CPU each operation costs it) and one Clickpost sandbox in the benchmark "
        "process, on which every shipment follows the five-step `delivered_smoothly` journey, "
        "one step per poll. In that one emulator, one after the other (which goes first "
        "alternates by repeat): the naive poller (`bench/naive.py`: Scan, then per shipment "
        "one call for one AWB, GetItem, diff, PutItem, one Publish per event; no "
        "notifications) over its own shipments, and trackwatch as `trackwatch local "
        "--clickpost-url … --shipments FILE.csv --cycles N --events-out … "
        "--notifications-out …` runs it (`bench/scale_child.py`, a process of its own), "
        "every shipment with a phone and an e-mail, every notification sent. Times are "
        "wall-clock; the spread is over the repeats.",
        "",
    ]
    for size, runs in sorted(by_size.items()):
        out += _size_table(size, runs)
    if by_size:
        largest = max(by_size)
        out += [
            f"### Where the emulator's time goes ({largest:,} shipments, trackwatch, per run)",
            "",
            *_operations(by_size[largest]),
            "",
        ]
    if results.memory:
        out += [
            "### Registering a CSV into a fresh stack, then stopping",
            "",
            "Checked row by row, then registered a thousand rows at a time with batched "
            "writes (`trackwatch local`'s path); median [min-max] over the runs.",
            "",
            "| rows | runs | registered in, s | rows/s | trackwatch peak memory, MB | "
            "emulator peak memory, MB |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for rows, loads in sorted(_registrations(results).items()):
            out.append(
                f"| {rows:,} | {len(loads)} | {_spread([m.register_s for m in loads], '', 1)} | "
                f"{_spread([m.rows / m.register_s for m in loads])} | "
                f"{_spread([_mb(m.peak_rss) for m in loads])} | "
                f"{_spread([_mb(m.emulator_peak) for m in loads])} |"
            )
        out.append("")
    out += _goals(results, by_size)
    return "\n".join(out)


def _registrations(results: ScaleResults) -> dict[int, list[MemoryRun]]:
    by_rows: dict[int, list[MemoryRun]] = {}
    for run in results.memory:
        by_rows.setdefault(run.rows, []).append(run)
    return by_rows


def _goals(results: ScaleResults, by_size: dict[int, list[ScaleRun]]) -> list[str]:
    lines = ["### The goals", ""]
    if 2000 in by_size:
        runs = by_size[2000]
        ratio = statistics.median(r.ours.cycles_s / r.naive.seconds for r in runs)
        floor = statistics.median(r.ours.emulator_cpu_s / r.naive.seconds for r in runs)
        verdict = "met" if ratio <= GOAL_RATIO else "not met"
        lines.append(
            f"- 2,000 shipments in at most {GOAL_RATIO}{TIMES} the naive poller's time: "
            f"**{ratio:.2f}{TIMES}** (median, cycles) — {verdict}. "
            f"The emulator alone spent {floor:.2f}{TIMES} the naive poller's whole time on "
            "trackwatch's requests (its CPU seconds, one process, one core): that much no "
            "concurrency in the runtime can remove."
        )
    register = [r.ours.register_s for r in by_size.get(10000, [])]
    register += [m.register_s for m in _registrations(results).get(10000, [])]
    if register:
        worst = max(register)
        verdict = "met" if worst < GOAL_REGISTER_S else "not met"
        lines.append(
            f"- 10,000 rows registered in under {GOAL_REGISTER_S:.0f} s: "
            f"{_spread(register, ' s', 1)} — {verdict}."
        )
    for m in _registrations(results).get(100_000, [])[:1]:
        verdict = "met" if m.peak_rss < GOAL_MEMORY else "not met"
        lines.append(
            f"- peak memory under 1 GB at {m.rows:,} rows (registered): trackwatch "
            f"{_mb(m.peak_rss):,.0f} MB, the emulator {_mb(m.emulator_peak):,.0f} MB — {verdict}."
        )
    lines.append("")
    return lines
