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
from bench.throughput import Throughput

X = "\N{MULTIPLICATION SIGN}"


def _ratio(ours: float, naive: float) -> str:
    if ours == 0:
        return "∞" if naive else "-"
    return f"{naive / ours:.1f}{X}"


def _n(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}"


def _spread(values: list[float], digits: int = 2, scale: float = 1.0) -> str:
    """The median of `values`, and their range in brackets."""
    scaled = [v * scale for v in values]
    low, high = min(scaled), max(scaled)
    return f"{statistics.median(scaled):,.{digits}f} ({low:,.{digits}f} to {high:,.{digits}f})"


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
        *(f"- then: {note}" for note in getattr(results, "notes", [])),
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
        "against the same sandbox and the same shipments: it Scans its table, and for the items "
        "the Scan returned, 10 at a time (a thread pool), makes one Clickpost call for one AWB, "
        "runs the same diff engine on the item as scanned (no second read), PutItems the whole "
        "item (it records `last_polled_at`), and Publishes each event with its own SNS request. "
        "Ratios are naive ÷ ours: above 1 means ours is better.",
        "",
        "**Spread.** Every timed figure is measured three times; a cell shows the median and, in "
        "brackets, the lowest and highest of the three.",
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
        "(its state, seen ids and last `outbox` packed with a preset dictionary, under 1 KB "
        "up to about 30 scans: one unit) is one write, but the write also moves the DueIndex "
        "entry when the cadence class changes (a delete and a put, two units: the bench's "
        "five-step journeys change class on most steps), and the publisher logs the change "
        "in the event log (its packed item and its LearnIndex entry, one unit each). The "
        "naive item has none of these — and no replay, no learned thresholds — but writes on "
        "every poll, which is where the cost goes (below).",
        "",
        f"Same events from both: **{'yes' if results.same_events else 'NO'}** — "
        f"{sum(ev['ours'].values()):,} from trackwatch, {sum(ev['naive'].values()):,} from the "
        "naive poller, compared by `event_id` ("
        + ", ".join(f"{k.removeprefix('shipment.')} {v}" for k, v in sorted(ev["ours"].items()))
        + ").",
        "",
    ]


def parse(results: Results) -> list[str]:
    """Parse and diff against the JSON floor."""
    rows = [
        "## Parse and diff against `json.loads`",
        "",
        "One track-order body of 5 AWBs (what one call returns), parsed with "
        "`parse_track_order` and diffed per AWB. *Steady*: the stored state already holds every "
        "scan (the common poll: no events); *+ stored record*: the same with each AWB's stored "
        "item decoded as a poll decodes it (`decode_state`); *first sight*: empty state, every "
        "scan new. Each path's time is its fastest call among calls taken in turn with the "
        "others for a second (this machine is shared: noise only ever adds time); the ratio is "
        "that time over `json.loads`' of the same bytes. Goal: steady ≤ 2.",
        "",
        "| response | body | json.loads, AWBs/s | parse only ÷ json | **steady ÷ json** | "
        "steady + stored record ÷ json | first sight, AWBs/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results.parse:
        rows.append(
            f"| {r.shape} | {r.body_bytes / 1024:.0f} KB / 5 AWBs | "
            f"{_spread(r.json_floor, 0)} | {_spread(r.parse_ratio)} | "
            f"**{_spread(r.steady_ratio)}** | {_spread(r.stored_ratio)} | "
            f"{_spread(r.first_sight, 0)} |"
        )
    return [*rows, ""]


def throughput_table(results: Results) -> list[str]:
    """Poll worker throughput against the concurrency bound, three repetitions."""
    return throughput_section(results.throughput, results.naive_throughput)


def splice_throughput(document: str, section: list[str], note: str) -> str:
    """`document` with its throughput section replaced by `section` and `note` added to its
    header's notes (the rest of the report stays the full run's)."""
    start = document.index(THROUGHPUT_HEADING)
    end = document.index("\n## ", start)
    document = document[:start] + "\n".join(section).rstrip() + "\n" + document[end:]
    header_end = document.index("\n\n**How it is measured.**")
    return document[:header_end] + f"\n- then: {note}" + document[header_end:]


THROUGHPUT_GOAL = 0.90


def throughput_section(ours: list[Throughput], naive: list[Throughput]) -> list[str]:
    """Poll worker throughput against the concurrency bound, three repetitions."""
    assert ours and naive
    first, plain = ours[0], naive[0]
    speedup = statistics.median(t.rate for t in ours) / statistics.median(t.rate for t in naive)
    share = statistics.median(t.rate / t.bound for t in ours)
    verdict = (
        f"Goal met: {share:.2f} of the bound."
        if share >= THROUGHPUT_GOAL
        else f"Goal missed by {THROUGHPUT_GOAL - share:.2f} of the bound ({share:.2f}): past the "
        "last call an invocation still writes its last message's shipments, and a fresh "
        "client opens its connections at the first calls."
    )
    return [
        f"{THROUGHPUT_HEADING}{first.latency_s * 1000:.0f} ms Clickpost latency",
        "",
        "One PollShipments invocation's worth at a time (10 messages of 10 calls, a fresh "
        "client per invocation), the real `PollService` and `ClickpostClient` against "
        "`SandboxServer(latency_s=...)` and the deployed table, three times. The worker runs "
        "in a process of its own (`bench/throughput_child.py`: built from the function's "
        "environment, one untimed warm-up invocation), as in Lambda: the sandbox's and the "
        "emulator's work is done in their own processes, not under the worker's interpreter "
        "lock; the naive poller is timed the same way. Bound = calls in "
        f"flight {X} AWBs per call ÷ latency. Goal: ≥ {THROUGHPUT_GOAL:.2f} of the bound.",
        "",
        "| | AWBs | calls | seconds | AWBs/s | bound | ÷ bound | peak concurrency |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| trackwatch ({first.in_flight} in flight, 5 AWBs a call) | {first.awbs:,} | "
        f"{first.calls:,} | {_spread([t.elapsed_s for t in ours])} | "
        f"{_spread([t.rate for t in ours], 1)} | {first.bound:.1f} | "
        f"**{_spread([t.rate / t.bound for t in ours])}** | "
        f"{max(t.peak_concurrency for t in ours)} |",
        f"| naive ({plain.in_flight} in flight, 1 AWB a call) | {plain.awbs:,} | "
        f"{plain.calls:,} | {_spread([t.elapsed_s for t in naive])} | "
        f"{_spread([t.rate for t in naive], 1)} | {plain.in_flight / plain.latency_s:.1f} | "
        f"{_spread([t.rate * t.latency_s / t.in_flight for t in naive])} | "
        f"{max(t.peak_concurrency for t in naive)} |",
        "",
        f"Ours ÷ naive: **{speedup:.1f}{X}** the AWBs per second (5 AWBs a call against 1). "
        f"With `PollMaxConcurrency` = 10 invocations at once the template's bound is 10{X} "
        "one invocation's.",
        "",
        verdict,
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
    """Handler import (and first-invocation setup) against `import boto3`, as Lambda loads."""
    rows = [
        "## Cold start: each function against `import boto3`",
        "",
        "Measured as Lambda loads a function (`bench/coldstart.py`): the layer's requirements "
        "alone installed as `/opt/python` with the `trackwatch` package, the function's folder "
        "first on the path, a fresh interpreter without `site` per measurement, Lambda's "
        "environment variables and the function's own as the template sets them. *import*: "
        "`import app` (Lambda's init phase, the goal's measure); *setup*: the container and "
        "handler built on the first invocation. *As deployed*: no bytecode (SAM ships the layer "
        "without bytecode that validates, so each cold start compiles); *with bytecode*: the "
        "layer precompiled. Each cell: median of the repetitions' medians (each over "
        f"{results.config.coldstart_runs} interpreters) and their range. Goal: import ≤ 2{X}.",
        "",
    ]
    for layout in results.coldstart:
        base = layout.boto3
        name = "with bytecode" if layout.bytecode else "as deployed"
        rows += [
            f"### {name}: `import boto3` {_spread(base.medians, 0, 1000)} ms",
            "",
            "| function | import ms | import ÷ boto3 | setup ms | import + setup ÷ boto3 |",
            "|---|---:|---:|---:|---:|",
        ]
        worst = 0.0
        for f in layout.functions:
            ratios = [i / b for i, b in zip(f.medians, base.medians, strict=True)]
            totals = [i / b for i, b in zip(f.total_medians, base.medians, strict=True)]
            worst = max(worst, statistics.median(ratios))
            rows.append(
                f"| `{f.name}` | {_spread(f.medians, 0, 1000)} | **{_spread(ratios)}** | "
                f"{f.setup_median_s * 1000:.0f} | {_spread(totals)} |"
            )
        rows += ["", f"Worst function ({name}): {worst:.2f}{X} `import boto3`.", ""]
    return rows


def money(results: Results) -> list[str]:
    """The monthly bill for 1M active shipments at 8, 30 and 60 scans, ours and naive."""
    m = results.measured()
    t = cost.Template.read()
    assumed = ", ".join(
        f"{k.replace('_', ' ')} {round(v, 3) if isinstance(v, float) else v:,}"
        for k, v in cost.ASSUMED.items()
    )
    prices = "; ".join(f"{p.unit} ${p.dollars:.10g} [{p.source}]" for p in cost.PRICES.values())
    sources = " ".join(f"[{n}] {url}." for n, url in cost.SOURCES.items())
    item_wru = m.change_wru_shipments - m.change_index_wru_shipments
    rows = [
        "## Monthly bill for 1,000,000 active shipments",
        "",
        "Every billed line, from the units measured above and the items the product stores at "
        "8, 30 and 60 scans (`bench/items.py`: the product's encoders, sized by DynamoDB's "
        "rules; a change's units are the measured ones, at the bench's journeys of up to 9 "
        "scans, plus what the longer item adds over the 8-scan one). Measured in this run: "
        f"per poll {m.poll_rru:.3f} RRU and "
        f"{m.poll_sqs_billed:.4f} billed SQS requests; per change {m.change_wru_shipments:.2f} "
        f"WRU on the shipments table (the item {item_wru:.2f}, "
        f"DueIndex moves {m.change_index_wru_shipments:.2f}: the bench's five-step journeys change "
        "cadence class on most changes; the bill counts a life's moves instead, "
        f"{cost.CLASS_MOVES_PER_SHIPMENT:.2f} of {cost.INDEX_MOVE_WRU} WRU over "
        f"{cost.CHANGES_PER_SHIPMENT} changes, {cost.index_wru_per_change():.2f} a change) and "
        f"{m.change_wru_event_log:.2f} on the "
        f"event log, {m.change_sns_billed:.2f} billed SNS publishes, {m.events_per_change:.2f} "
        f"events of which {m.notifiable_per_change:.2f} of the notifiable types and "
        f"{m.routed_per_change:.2f} deliveries to notifier queues as routed (the bench's "
        "customers: a phone each, half WhatsApp first, half SMS alone); "
        f"{m.awbs_per_s:.0f} AWBs/s per invocation (naive: {m.naive_awbs_per_s:.1f}). From "
        f"template.yaml: {t.memory_gb} GB functions, {t.alarms} alarms, {t.kms_keys} KMS keys, "
        f"{t.queues} queues, logs kept {t.log_retention_days} days. Assumed (docs/architecture.md, "
        "marked (A) there): the mix (70 % transit @120 min, 10 % out for delivery @30, 10 % new "
        "@240, 10 % grace @360), a 5-day life with 8 changes, the DueIndex Queries (126,720 RRU "
        f"a day), and {assumed}. Not counted: SMS, WhatsApp and e-mail provider fees, "
        "Clickpost, data transfer. Prices (us-east-1, free tiers ignored): "
        f"{prices}. Sources: {sources}",
        "",
        f"Polls a month: {cost.polls_per_day() * cost.DAYS / 1e6:,.0f}M; changes a month: "
        f"{cost.changes_per_day() * cost.DAYS / 1e6:,.0f}M.",
        "",
        "| scans | item | poll RRU | change WRU, shipments | event log WRU | trackwatch "
        "$/month | polling + events | naive $/month | naive ÷ ours | naive ÷ ours, "
        "polling + events |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    own = ("polling", "events")
    base = results.items[0]
    for size in results.items:
        ours, naive = cost.ours(m, size, base, t), cost.naive(m, size, base, t)
        rows.append(
            f"| {size.scans} | {size.item_bytes:,} B | {size.poll_rru} | "
            f"{cost.change_wru(m, size, base):.2f} | {m.change_wru_event_log:.2f} | "
            f"**{cost.total(ours):,.2f}** | "
            f"{cost.total(ours, own):,.2f} | {cost.total(naive):,.2f} | "
            f"{cost.total(naive) / cost.total(ours):.1f}{X} | "
            f"{cost.total(naive, own) / cost.total(ours, own):.1f}{X} |"
        )
    rows.append("")
    for size in results.items:
        ours, naive = cost.ours(m, size, base, t), cost.naive(m, size, base, t)
        rows += [
            f"### {size.scans} scans: every line",
            "",
            "| part | trackwatch | formula (a month) | $ |",
            "|---|---|---|---:|",
        ]
        rows += [
            f"| {line.part} | {line.what} | {line.formula} | {line.dollars:,.2f} |" for line in ours
        ]
        rows += [
            f"| | **total** | {cost.goal_gap(cost.total(ours))} | **{cost.total(ours):,.2f}** |",
            "",
            "| part | naive | formula (a month) | $ |",
            "|---|---|---|---:|",
        ]
        rows += [
            f"| {line.part} | {line.what} | {line.formula} | {line.dollars:,.2f} |"
            for line in naive
        ]
        rows += [f"| | **total** | | **{cost.total(naive):,.2f}** |", ""]
    saving = cost.CHANGE_CAPTURE_SAVING
    with_feed = ", ".join(
        f"≈ ${cost.total(cost.ours(m, size, base, t)) - saving:,.0f} at {size.scans} scans"
        for size in results.items
    )
    rows += [
        "With change capture (the feed, the default since it landed; docs/architecture.md, "
        '"With change capture"), PollShipments falls by ≈ $13 and the state reads by ≈ $11 a '
        "month, the feed and its hints add ≈ $1: the change writes, the event log and the "
        f"notification side stay as they are, so each total above falls by ≈ ${saving:.0f} "
        f"({with_feed}), far from the ≤ $100 goal with the feed.",
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
THROUGHPUT_HEADING = "## Poll throughput at "
FRESHNESS_END = "<!-- freshness:end -->"


def _minutes(values: list[float], q: float) -> str:
    from bench.freshness import percentile

    if not values:
        return "-"
    return f"{percentile(values, q) / 60:.1f}"


def _lags(values: list[float]) -> str:
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
        return f"{_lags(lags)} ({len(lags)})"

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
        row("lag to the event, min: p50 / p95 / max", lambda r: _lags(r.all_event_lags)),
        row("lag to the message, min: p50 / p95 / max", lambda r: _lags(r.message_lags)),
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
