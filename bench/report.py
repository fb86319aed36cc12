"""BENCHMARKS.md and the scaling plot, from one run's results."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import cost
from bench.freshness import FreshnessResults, ModeRun
from bench.run import Phase, Results

X = "\N{MULTIPLICATION SIGN}"


def _ratio(ours: float, naive: float) -> str:
    if ours == 0:
        return "∞" if naive else "-"
    return f"{naive / ours:.1f}{X}"


def _n(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}"


def header(results: Results, command: str) -> list[str]:
    """Machine, interpreter, date, command."""
    return [
        "# Benchmarks",
        "",
        "Written by `bench/` (issue 7); do not edit by hand — rerun the command instead.",
        "",
        f"- command: `{command}` ({results.config.name} run, {results.elapsed_s:.0f} s)",
        f"- machine: {os.cpu_count()} cores (`nproc`), {platform.machine()}, "
        f"{platform.system()} {platform.release()}",
        f"- python: {sys.version.split()[0]}",
        f"- date: {datetime.fromtimestamp(results.started, UTC):%Y-%m-%d %H:%M} UTC",
        "",
        "**How it is measured.** The stack is `template.yaml` deployed into moto's server "
        "(`trackwatch_cli.stack.deploy`) and driven by the local Lambda runtime "
        '(`LocalRuntime.tick(scope="all")` + `settle()`), polling the Clickpost sandbox over '
        "loopback. Every AWS request is counted on the emulator's side: `bench/emulator.py` wraps "
        "moto's WSGI application and records (service, operation, resource) for each request it "
        "answers — the product's, the runtime's (SQS receives and deletes, stream reads) and the "
        "naive poller's alike. moto reports placeholder consumed capacity, so read and write "
        "units are computed from the items moto holds, by DynamoDB's rules (writes: "
        "ceil(max(before, after) / 1 KB), plus GSI entries put or deleted; reads: "
        "ceil(size / 4 KB), halved when eventually consistent). Clickpost calls are the "
        "sandbox's request log. Shipments are seeded with BatchWriteItem already in the state a "
        "poll of the sandbox's current answer leaves, over 7 carriers with uneven shares.",
        "",
        "**The naive baseline** (`bench/naive.py`, not in the product) runs in the same emulator "
        "against the same sandbox and the same shipments: it Scans its table, and per item, "
        "sequentially, makes one Clickpost call for one AWB, does GetItem, runs the same diff "
        "engine, PutItems the whole item (it records `last_polled_at`), and Publishes each event "
        "with its own SNS request. Ratios are naive ÷ ours: above 1 means ours is better.",
        "",
    ]


def calls(results: Results) -> list[str]:
    """Clickpost calls per cycle against the lower bound."""
    bound = results.calls["lower_bound"]
    ours, naive = results.calls["ours.unchanged"], results.calls["naive.unchanged"]
    rows = [
        "## Clickpost calls per cycle",
        "",
        f"One poll of every one of {results.config.shipments:,} active shipments, counted in the "
        "sandbox's request log; the lower bound is Σ over carriers of ceil(n / 5).",
        "",
        "| | calls | lower bound | calls ÷ bound |",
        "|---|---:|---:|---:|",
        f"| trackwatch | {ours:,} | {bound:,} | **{ours / bound:.2f}** |",
        f"| naive | {naive:,} | {bound:,} | {naive / bound:.2f} |",
    ]
    rows += ["", "Scaling runs (the same ratio at every size):", ""]
    rows += ["| shipments | calls | lower bound | calls ÷ bound |", "|---:|---:|---:|---:|"]
    for point in results.scaling:
        rows.append(
            f"| {point.shipments:,} | {point.calls:,} | {point.lower_bound:,} | "
            f"{point.calls / point.lower_bound:.2f} |"
        )
    return [*rows, ""]


def _row(label: str, ours: Phase, naive: Phase, key: str, divide: int | None = None) -> str:
    a, b = ours.per(key, divide), naive.per(key, divide)
    return f"| {label} | {_n(a)} | {_n(b)} | {_ratio(a, b)} |"


def requests(results: Results) -> list[str]:
    """Requests per shipment, unchanged and changed."""
    p = results.phases
    ours, naive = p["ours.unchanged"], p["naive.unchanged"]
    ours_c, naive_c = p["ours.changed"], p["naive.changed"]
    changes = results.changes
    ev = results.events
    return [
        "## AWS requests per shipment",
        "",
        f"From the emulator's request log, over {results.config.shipments:,} shipments. "
        "*Unchanged*: a cycle in which Clickpost has nothing new for any of them. *Changed*: "
        f"the next cycle, every shipment moved one step on its journey ({changes:,} writes). "
        "Ours includes the runtime's SQS receives/deletes and stream reads; the dispatcher "
        'here scans the DueIndex (`scope="all"`) instead of the per-minute Queries it '
        "runs in production (those are costed from docs/architecture.md, not measured).",
        "",
        "### An unchanged shipment, per poll",
        "",
        "| | trackwatch | naive | naive ÷ ours |",
        "|---|---:|---:|---:|",
        _row("DynamoDB write requests", ours, naive, "dynamodb:write_requests"),
        _row("DynamoDB write units (WRU)", ours, naive, "dynamodb:wru"),
        _row("DynamoDB read units (RRU)", ours, naive, "dynamodb:rru"),
        _row("DynamoDB requests, all", ours, naive, "dynamodb:requests"),
        _row("SNS requests", ours, naive, "sns:requests"),
        _row("SQS requests (billed 64 KB chunks)", ours, naive, "sqs:billed"),
        _row("DynamoDB Streams requests (free)", ours, naive, "dynamodbstreams:requests"),
        f"| Clickpost calls | {_n(results.calls['ours.unchanged'] / ours.shipments)} | "
        f"{_n(results.calls['naive.unchanged'] / naive.shipments)} | "
        f"{_ratio(results.calls['ours.unchanged'], results.calls['naive.unchanged'])} |",
        f"| wall time, ms | {ours.seconds * 1000 / ours.shipments:.2f} | "
        f"{naive.seconds * 1000 / naive.shipments:.2f} | {_ratio(ours.seconds, naive.seconds)} |",
        "",
        "### A changed shipment, per change",
        "",
        "| | trackwatch | naive | naive ÷ ours |",
        "|---|---:|---:|---:|",
        _row("DynamoDB write requests", ours_c, naive_c, "dynamodb:write_requests", changes),
        _row("DynamoDB write units (WRU)", ours_c, naive_c, "dynamodb:wru", changes),
        _row("SNS requests", ours_c, naive_c, "sns:requests", changes),
        _row("SNS billed publishes (64 KB chunks)", ours_c, naive_c, "sns:billed", changes),
        _row("events published", ours_c, naive_c, "sns:messages", changes),
        "",
        "Write units per table (changed cycle): "
        + ", ".join(
            f"`{k.split(':')[1]}` {v / changes:.2f}"
            for k, v in sorted(ours_c.totals.items())
            if k.endswith(":wru") and k.count(":") == 2 and "Item" not in k and v
        )
        + " per change.",
        "",
        "Why a change costs ours more write units than the naive PutItem: the shipment item "
        "keeps its last `outbox` (the change's events as JSON) after the publish, so the item "
        "is larger on every later write too; the per-change write also moves the DueIndex "
        "entry when the cadence class changes; and the publisher writes each event to the "
        "event log table as well. The naive item has none of these — and no replay — but "
        "writes on every poll, which is where the cost goes (below).",
        "",
        f"Same events from both: **{'yes' if results.same_events else 'NO'}** — "
        f"{sum(ev['ours'].values()):,} from trackwatch, {sum(ev['naive'].values()):,} from the "
        "naive poller, compared by `event_id` ("
        + ", ".join(f"{k.removeprefix('shipment.')} {v}" for k, v in sorted(ev["ours"].items()))
        + ").",
        "",
    ]


def parse(results: Results) -> list[str]:
    """Parse and diff rates against the JSON floor."""
    rows = [
        "## Parse and diff, AWB results per second on one core",
        "",
        "One track-order body of 5 AWBs (what one call returns), parsed with "
        "`parse_track_order` and diffed per AWB. *Steady*: the stored state already holds every "
        "scan (the common poll: no events). *First sight*: empty state, every scan new. The "
        "floor is `json.loads` of the same bytes; *floor ÷ steady* is how many times slower "
        "than decoding alone the steady path is.",
        "",
        "| response | body | json.loads (floor) | parse only | parse + diff, steady | "
        "parse + diff, first sight | floor ÷ steady |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results.parse:
        rows.append(
            f"| {r.shape} | {r.body_bytes / 1024:.0f} KB / 5 AWBs | {r.json_floor:,.0f} | "
            f"{r.parse_only:,.0f} | {r.steady:,.0f} | {r.first_sight:,.0f} | "
            f"{r.json_floor / r.steady:.1f}{X} |"
        )
    return [*rows, ""]


def throughput_table(results: Results) -> list[str]:
    """Poll worker throughput against the concurrency bound."""
    ours, naive = results.throughput, results.naive_throughput
    assert ours is not None and naive is not None
    return [
        f"## Poll throughput at {ours.latency_s * 1000:.0f} ms Clickpost latency",
        "",
        "One PollShipments invocation's worth at a time (10 messages of 10 calls, a fresh "
        "client per invocation), the real `PollService` and `ClickpostClient` against "
        f"`SandboxServer(latency_s=...)` and the deployed table. Bound = calls in flight {X} 5 "
        f"÷ latency. The naive poller's bound is 1 call {X} 1 AWB ÷ latency.",
        "",
        "| | AWBs | calls | seconds | AWBs/s | bound | ÷ bound | peak concurrency |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| trackwatch ({ours.in_flight} in flight) | {ours.awbs:,} | {ours.calls:,} | "
        f"{ours.elapsed_s:.2f} | {ours.rate:.1f} | {ours.bound:.1f} | "
        f"**{ours.rate / ours.bound:.2f}** | {ours.peak_concurrency} |",
        f"| naive (sequential, 1 AWB a call) | {naive.awbs:,} | {naive.calls:,} | "
        f"{naive.elapsed_s:.2f} | {naive.rate:.2f} | {1 / naive.latency_s:.2f} | "
        f"{naive.rate * naive.latency_s:.2f} | {naive.peak_concurrency} |",
        "",
        f"Ours ÷ naive: **{ours.rate / naive.rate:.0f}{X}** the AWBs per second. With "
        f"`PollMaxConcurrency` = 10 invocations at once the template's bound is 10{X} one "
        "invocation's.",
        "",
    ]


def scaling(results: Results, plot: Path) -> list[str]:
    """Dispatch + poll at each size: time and requests per shipment."""
    rows = [
        "## Scaling: dispatch and poll on the local stack",
        "",
        "A fresh stack per size, seeded with BatchWriteItem; then one cycle with nothing new "
        "(*unchanged*) and, up to "
        f"{results.config.scaling_mixed_max:,} shipments, one in which "
        f"{results.config.scaling_change_share:.0%} of the shipments moved on (*mixed*). "
        "Each change costs the emulator ~30 ms (UpdateItem, stream read, event-log write, "
        "PublishBatch, each a moto request), so the mixed cycle at the largest size would "
        "add minutes without telling more than the per-change figures above. The default "
        "sizes stop at 20,000: seeding plus one cycle costs this emulator ~6.5 ms a shipment "
        "on 2 cores (10,000: 28 s to seed, 37 s to cycle), so 50,000 alone takes 5-8 minutes, "
        "beyond a run of a few minutes; `--sizes 1000,10000,50000` includes it. "
        "moto runs in a process of its own; the sandbox, the runtime and the handlers share "
        "the other (2 cores in all), so the seconds are the emulator's, not AWS's: what "
        "matters is that they stay flat per shipment.",
        "",
        "| shipments | seed s | unchanged s | ms / shipment | AWS requests / shipment | "
        "RRU / shipment | mixed s | ms / shipment | AWS requests / shipment | WRU / change |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in results.scaling:
        u, m = p.unchanged, p.mixed
        second = (
            f"{m.seconds:.1f} | {m.seconds * 1000 / p.shipments:.2f} | "
            f"{_aws(m) / p.shipments:.4f} | "
            f"{m.totals.get('dynamodb:wru', 0) / max(1, p.changed):.2f}"
            if m is not None
            else "not run | | |"
        )
        rows.append(
            f"| {p.shipments:,} | {p.seed_s:.1f} | {u.seconds:.1f} | "
            f"{u.seconds * 1000 / p.shipments:.2f} | {_aws(u) / p.shipments:.4f} | "
            f"{u.per('dynamodb:rru'):.3f} | {second} |"
        )
    per_ms = [p.unchanged.seconds * 1000 / p.shipments for p in results.scaling]
    spread = max(per_ms) / min(per_ms) if per_ms else 0.0
    rows += [
        "",
        f"Largest ÷ smallest ms per shipment (unchanged): {spread:.2f}. Requests, read units "
        "and calls per shipment are flat; the wall time per shipment is not quite (it is the "
        "emulator's and this process's time, and where the growth comes from is not "
        "measured here).",
        "",
        f"![scaling]({plot.as_posix()})",
        "",
    ]
    return rows


def _aws(phase: Phase) -> float:
    return sum(
        v
        for k, v in phase.totals.items()
        if k.endswith(":requests") and not k.startswith("dynamodbstreams")
    )


def cold(results: Results) -> list[str]:
    """Handler import times against `import boto3`."""
    base = results.boto3_import
    assert base is not None
    rows = [
        "## Cold start: handler import time",
        "",
        f"`import app` in each function's folder with the layer on the path, in a fresh "
        f"interpreter, median of {base.runs} (after one warm-up that writes bytecode); "
        "interpreter start-up left out. Ratio to `import boto3` alone.",
        "",
        "| module | import ms | ÷ import boto3 |",
        "|---|---:|---:|",
        f"| `boto3` | {base.median_s * 1000:.0f} | 1.00 |",
    ]
    for item in results.imports:
        rows.append(
            f"| `functions/{item.name}/app.py` | {item.median_s * 1000:.0f} | "
            f"{item.median_s / base.median_s:.2f} |"
        )
    if results.imports:
        median = statistics.median(i.median_s for i in results.imports)
        rows += [
            "",
            f"Median handler: {median / base.median_s:.2f}{X} `import boto3`.",
        ]
    return [*rows, ""]


def money(results: Results) -> list[str]:
    """Monthly cost for 1M active shipments, ours and naive."""
    m = results.measured()
    ours, naive = cost.ours(m), cost.naive(m)
    rows = [
        "## Monthly cost for 1,000,000 active shipments",
        "",
        "Measured: the per-poll and per-change request counts and units above, and the "
        "AWBs per second (Lambda GB-s). Assumed, as in docs/architecture.md: the mix "
        "(70 % transit @120 min, 10 % out for delivery @30, 10 % new @240, 10 % grace @360), "
        "5-day life with 8 changes per shipment, 0.5 GB functions, the DueIndex Query reads "
        "(126,720 RRU a day, computed there), registrations and stops (4 WRU per shipment), "
        "21,600 empty PollQueue receives a day, PublishEvents at 10 records and 0.2 s an "
        "invocation; the naive design Scans every 30 minutes (48 a day) and polls at the same "
        "cadence. Prices (us-east-1, as docs/architecture.md cites them): DynamoDB on demand "
        f"${cost.WRU_PER_M} per million WRU and ${cost.RRU_PER_M} per million RRU; SQS "
        f"${cost.SQS_PER_M} and SNS ${cost.SNS_PER_M} per million requests (64 KB chunks); "
        f"Lambda arm64 ${cost.LAMBDA_GB_S} per GB-s and ${cost.LAMBDA_PER_M} per million "
        "requests. Left out of both: the subscriber side (the same in both), logs, storage, "
        "alarms, KMS.",
        "",
        f"Polls a day: {cost.polls_per_day():,.0f}; changes a day: {cost.changes_per_day():,.0f}.",
        "",
        "| trackwatch | formula | $ / month |",
        "|---|---|---:|",
    ]
    rows += [f"| {line.what} | {line.formula} | {line.dollars:,.2f} |" for line in ours]
    rows += [f"| **total** | | **{cost.total(ours):,.2f}** |", ""]
    rows += ["| naive | formula | $ / month |", "|---|---|---:|"]
    rows += [f"| {line.what} | {line.formula} | {line.dollars:,.2f} |" for line in naive]
    rows += [
        f"| **total** | | **{cost.total(naive):,.2f}** |",
        "",
        f"Naive ÷ ours: **{cost.total(naive) / cost.total(ours):.1f}{X}**. The naive Lambda line "
        "is for its sequential calls as measured; had it kept 10 calls in flight (as "
        "docs/architecture.md assumed) that line would be about a tenth.",
        "",
    ]
    return rows


def hostile_memory(results: Results) -> list[str]:
    """Peak memory on a hostile answer, ours against an uncapped client."""
    if not results.hostile:
        return []
    rows = [
        "## A hostile answer: peak memory on a 50 MB body",
        "",
        "One waybill's answer made 50 MB by the sandbox (`FaultKind.HUGE_BODY`). Peak Python "
        "allocations during the call (tracemalloc), median of the runs, with every run shown. "
        "The baseline is `httpx` with no cap: `client.get(...)`, then `response.content`.",
        "",
        "| client | outcome | peak MB (median) | runs |",
        "|---|---|---:|---|",
    ]
    for r in results.hostile:
        runs = ", ".join(f"{p:.1f}" for p in r.peaks_mb)
        rows.append(f"| {r.what} | {r.outcome} | {r.median_mb:.1f} | {runs} |")
    return [*rows, ""]


def markdown(results: Results, command: str, plot: Path) -> str:
    """The whole of BENCHMARKS.md."""
    lines = [
        *header(results, command),
        *calls(results),
        *requests(results),
        *parse(results),
        *throughput_table(results),
        *scaling(results, plot),
        *cold(results),
        *hostile_memory(results),
        *money(results),
        *freshness(results.freshness, command),
    ]
    return "\n".join(lines).rstrip() + "\n"


def draw(results: Results, path: Path) -> None:
    """Time and AWS requests per shipment against shipments (log scale), both cycles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [p.shipments for p in results.scaling]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for label in ("unchanged", "mixed"):
        points = [
            (p.shipments, phase)
            for p in results.scaling
            if (phase := p.unchanged if label == "unchanged" else p.mixed) is not None
        ]
        xs = [n for n, _ in points]
        left.plot(
            xs, [ph.seconds * 1000 / n for n, ph in points], marker="o", label=f"{label} cycle"
        )
        right.plot(
            xs, [_aws(ph) / n for n, ph in points], marker="o", label=f"{label}: AWS requests"
        )
        right.plot(
            xs,
            [ph.per("dynamodb:rru") for _, ph in points],
            marker="s",
            linestyle="--",
            label=f"{label}: DynamoDB RRU",
        )
    right.plot(
        sizes,
        [p.calls / p.shipments for p in results.scaling],
        marker="^",
        linestyle=":",
        label="Clickpost calls",
    )
    for axis, title in ((left, "wall time per shipment (ms)"), (right, "per shipment")):
        axis.set_xscale("log")
        axis.set_xlabel("active shipments")
        axis.set_title(title)
        axis.set_ylim(bottom=0)
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle("trackwatch: dispatch + poll on the local stack")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --------------------------------------------------------------------------- freshness

FRESHNESS_START = "<!-- freshness:start -->"
FRESHNESS_END = "<!-- freshness:end -->"


def _minutes(values: list[float], q: float) -> str:
    from bench.freshness import percentile

    if not values:
        return "-"
    return f"{percentile(values, q) / 60:.1f}"


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{_minutes(values, 0.5)} / {_minutes(values, 0.95)} / {max(values) / 60:.1f}"


def _awbs_per_call(r: ModeRun) -> str:
    return f"{r.track_awbs} ({r.track_awbs / max(1, r.track_calls):.2f})"


def _polls_by_source(r: ModeRun) -> str:
    return f"{r.hint_awbs} / {r.scheduled_awbs}"


def _minutes_by_mode(r: ModeRun) -> str:
    return f"{r.modes.get('sweep', 0)} / {r.modes.get('full', 0)}"


def _aws_requests(r: ModeRun) -> str:
    counts = [
        int(r.aws.get(f"{service}:requests", 0))
        for service in ("dynamodb", "sqs", "dynamodbstreams", "sns")
    ]
    return " / ".join(str(c) for c in counts)


def _units(r: ModeRun) -> str:
    return f"{r.aws.get('dynamodb:rru', 0):.0f} / {r.aws.get('dynamodb:wru', 0):.0f}"


def _lag_of(kind: str) -> Callable[[ModeRun], str]:
    def cell(r: ModeRun) -> str:
        lags = r.event_lags.get(kind, [])
        return f"{_spread(lags)} ({len(lags)})"

    return cell


def _range(values: list[float], digits: int = 0) -> str:
    """`low to high` (or the one value when they agree)."""
    low, high = min(values), max(values)
    if round(low, digits) == round(high, digits):
        return f"{low:,.{digits}f}"
    return f"{low:,.{digits}f} to {high:,.{digits}f}"


def _total_aws(r: ModeRun) -> float:
    return sum(r.aws.get(f"{s}:requests", 0) for s in ("dynamodb", "sqs", "dynamodbstreams", "sns"))


def freshness_spread(fresh: FreshnessResults) -> list[str]:
    """Every repetition's figures per mode, as ranges (low to high over the repetitions)."""
    from bench.freshness import calls_per_day, percentile

    if len(fresh.repeats) < 2:
        return []
    modes = [r.mode for r in fresh.repeats[0]]
    by_mode = {m: [runs[i] for runs in fresh.repeats] for i, m in enumerate(modes)}
    base = [calls_per_day(r)[1] for r in by_mode.get("cadence only", [])]

    def minutes(runs: list[ModeRun], pick: str, q: float) -> str:
        values = [
            percentile(getattr(r, pick) if pick != "all" else r.all_event_lags, q) / 60
            for r in runs
        ]
        return _range(values, 1)

    def row(label: str, cell: Callable[[list[ModeRun]], str]) -> str:
        return f"| {label} | " + " | ".join(cell(by_mode[m]) for m in modes) + " |"

    return [
        "",
        f"**Spread over {len(fresh.repeats)} repetitions** (low to high; each repetition has "
        "other waybills, so other cadence slots and sweep cycles, and starts "
        "17 simulated minutes after the one before, so other feed windows; the tables "
        "above are the first repetition's):",
        "",
        "| | " + " | ".join(modes) + " |",
        "|---|" + "---:|" * len(modes),
        row("missed", lambda rs: _range([r.missed for r in rs])),
        row("events published twice", lambda rs: _range([r.duplicates for r in rs])),
        row("track-order calls", lambda rs: _range([r.track_calls for r in rs])),
        row("updated-order feed requests", lambda rs: _range([r.feed_calls for r in rs])),
        row(
            "AWS requests (DynamoDB + SQS + streams + SNS)",
            lambda rs: _range([_total_aws(r) for r in rs]),
        ),
        row("lag to the event p50, min", lambda rs: minutes(rs, "all", 0.5)),
        row("lag to the event p95, min", lambda rs: minutes(rs, "all", 0.95)),
        row(
            "lag to the event max, min",
            lambda rs: _range([max(r.all_event_lags) / 60 for r in rs if r.all_event_lags], 1),
        ),
        row("lag to the message p50, min", lambda rs: minutes(rs, "message_lags", 0.5)),
        row("lag to the message p95, min", lambda rs: minutes(rs, "message_lags", 0.95)),
        row(
            "fewer track-order calls a day at 1M",
            lambda rs: (
                _range([b / calls_per_day(r)[1] for b, r in zip(base, rs, strict=True)], 1) + X
                if base
                else "-"
            ),
        ),
    ]


def freshness(fresh: FreshnessResults | None, command: str = "uv run python -m bench") -> list[str]:
    """The change-capture section, between markers (`--freshness` rewrites it in place)."""
    if fresh is None:
        return []
    from bench.freshness import calls_per_day

    runs = fresh.runs
    config = fresh.config
    head = "| | " + " | ".join(r.mode for r in runs) + " |"
    rule = "|---|" + "---:|" * len(runs)

    def row(label: str, cell: Callable[[ModeRun], object]) -> str:
        return f"| {label} | " + " | ".join(str(cell(r)) for r in runs) + " |"

    lines = [
        FRESHNESS_START,
        "## Change capture: the same journeys three ways",
        "",
        f"`{command}` ({config.name} run, {fresh.elapsed_s:.0f} s, "
        f"{datetime.fromtimestamp(fresh.started, UTC):%Y-%m-%d %H:%M} UTC). "
        f"{config.shipments} shipments on the sandbox's journeys (the six valid ones in turn), "
        f"{config.speedup:g}{X} faster than the packaged ones, each registered when its journey "
        f"starts (spread over {config.stagger_hours:g} simulated hours), over 7 carriers; "
        f"{config.tail_hours:g} simulated hours are played after the last step. Each mode is "
        "a fresh `template.yaml` stack in the counting emulator and a fresh sandbox whose "
        "journeys move with the simulated clock; every simulated minute the sandbox's webhooks "
        "go out (third mode), the schedules fire at their rates and every queue and stream is "
        "worked off. Lag is from Clickpost's record of the scan (`recorded_at`) to the published "
        "event (`published_at`, read back from the event log) and to the customer's SMS or "
        "e-mail (quiet hours off: the pipeline's own lag), in simulated minutes, at the "
        "simulation's one-minute resolution. *Missed*: scans the sandbox revealed that were "
        "never published.",
        "",
        head,
        rule,
        row("simulated minutes", lambda r: r.minutes),
        row("scans revealed (ground truth)", lambda r: r.revealed),
        row("**missed**", lambda r: f"**{r.missed}**"),
        row("events published / twice", lambda r: f"{r.events} / {r.duplicates}"),
        row("changes (writes with events)", lambda r: r.changes),
        row("track-order calls", lambda r: r.track_calls),
        row("AWBs asked (per call)", _awbs_per_call),
        row("updated-order feed requests", lambda r: r.feed_calls),
        row("webhooks received", lambda r: r.webhooks),
        row("AWBs polled on a hint / by the dispatcher", _polls_by_source),
        row("hints already seen (no poll)", lambda r: r.already_seen),
        row("minutes at the sweep / full cadence", _minutes_by_mode),
        row("lag to the event, min: p50 / p95 / max", lambda r: _spread(r.all_event_lags)),
        row("lag to the message, min: p50 / p95 / max", lambda r: _spread(r.message_lags)),
        row("messages sent", lambda r: len(r.message_lags)),
        row("AWS requests: DynamoDB / SQS / streams / SNS", _aws_requests),
        row("DynamoDB RRU / WRU", _units),
        row("Lambda invocations", lambda r: sum(r.invocations.values())),
        "",
        "Lag to the event by type, minutes (p50 / p95 / max, count):",
        "",
        head,
        rule,
    ]
    for kind in sorted({k for r in runs for k in r.event_lags}):
        lines.append(row(f"`{kind}`", _lag_of(kind)))
    scale = {r.mode: calls_per_day(r) for r in runs}
    base = scale.get("cadence only", (0.0, 0.0, 0.0))[1]
    lines += [
        "",
        "**At 1,000,000 active shipments** (docs/architecture.md's mix and 1.6M changes a day): "
        "cadence only is the architecture's 14.2M AWB polls; with the feed, the sweep's polls "
        "at the template's default periods plus, per change, the AWBs each run polled on a "
        "hint per change (re-sent webhooks and feed overlaps included), in full calls of five.",
        "",
        head,
        rule,
        row("AWB polls a day", lambda r: f"{scale[r.mode][0]:,.0f}"),
        row("track-order calls a day", lambda r: f"{scale[r.mode][1]:,.0f}"),
        row("updated-order requests a day", lambda r: f"{scale[r.mode][2]:,.0f}"),
        row(
            "fewer track-order calls than cadence only",
            lambda r: f"**{base / scale[r.mode][1]:.1f}{X}**" if scale[r.mode][1] else "-",
        ),
        *freshness_spread(fresh),
        FRESHNESS_END,
        "",
    ]
    return lines


def splice_freshness(document: str, section: list[str]) -> str:
    """`document` with its freshness section replaced by `section` (appended if absent)."""
    text = "\n".join(section).rstrip() + "\n"
    if FRESHNESS_START in document and FRESHNESS_END in document:
        before, _, rest = document.partition(FRESHNESS_START)
        _, _, after = rest.partition(FRESHNESS_END)
        return before + text.rstrip("\n") + after
    return document.rstrip() + "\n\n" + text
