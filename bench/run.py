"""The benchmark run: every measurement, in one process, against one emulator and sandbox."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from bench import coldstart, freshness, hostile, items, parse_diff, throughput
from bench.calls import lower_bound
from bench.cost import Measured
from bench.emulator import CountingMotoServer, tally
from bench.harness import Bench, open_bench, shipments
from bench.throughput import Throughput
from trackwatch_cli.sandbox import SandboxServer

#: Every timed figure is measured this many times, and shown with its spread.
REPETITIONS = 3


@dataclass(frozen=True)
class Config:
    """Sizes of one run."""

    name: str
    #: Shipments in the request-count, calls and equivalence runs.
    shipments: int
    #: Shipments through dispatch and poll, one fresh stack each.
    scaling: tuple[int, ...]
    #: Share of shipments moved on before the scaling run's second cycle.
    scaling_change_share: float
    #: The largest size that also gets the second (mixed) cycle: changes are the slow
    #: part of the emulator (~30 ms each), the unchanged cycle is what scales with size.
    scaling_mixed_max: int
    throughput_awbs: int
    naive_throughput_awbs: int
    latency_s: float
    parse_min_time_s: float
    coldstart_runs: int


#: 50,000 would fit the issue's wish but not "a few minutes": seeding plus one cycle costs
#: the emulator ~6.5 ms a shipment on 2 cores (10,000: 28 s + 37 s), so 50,000 alone is
#: 5-8 minutes. `--sizes 1000,10000,50000` runs it.
FULL = Config("full", 500, (1_000, 5_000, 20_000), 0.1, 5_000, 1000, 100, 0.3, 1.0, 3)
QUICK = Config("quick", 100, (100, 300, 1_000), 0.1, 1_000, 250, 50, 0.3, 0.2, 2)


@dataclass
class Phase:
    """The emulator's requests of one phase, with the figures read off them."""

    name: str
    shipments: int
    totals: dict[str, float]
    seconds: float = 0.0

    def per(self, key: str, count: int | None = None) -> float:
        """A total divided by the shipments (or `count`)."""
        return self.totals.get(key, 0.0) / (count or self.shipments)


@dataclass
class ScalePoint:
    """One size of the scaling run."""

    shipments: int
    seed_s: float
    unchanged: Phase
    mixed: Phase | None
    changed: int
    calls: int
    lower_bound: int


@dataclass
class Results:
    """Everything one run measured."""

    config: Config
    started: float = field(default_factory=time.time)
    phases: dict[str, Phase] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    events: dict[str, Counter[str]] = field(default_factory=dict)
    same_events: bool = False
    #: Shipments the changed cycle actually wrote (UpdateItem on the shipments table).
    changes: int = 0
    #: Deliveries to notifier queues the changed cycle's events were routed to.
    routed: int = 0
    #: Three repetitions each.
    throughput: list[Throughput] = field(default_factory=list)
    naive_throughput: list[Throughput] = field(default_factory=list)
    scaling: list[ScalePoint] = field(default_factory=list)
    parse: list[parse_diff.ParseDiffResult] = field(default_factory=list)
    #: As deployed, and with bytecode.
    coldstart: list[coldstart.ColdStart] = field(default_factory=list)
    #: The items at 8, 30 and 60 scans.
    items: list[items.ItemSizes] = field(default_factory=list)
    #: Each function's environment as the template sets it (by folder name).
    environments: dict[str, dict[str, str]] = field(default_factory=dict)
    hostile: list[hostile.PeakMemory] = field(default_factory=list)
    #: Change capture, three ways (None when not run).
    freshness: freshness.FreshnessResults | None = None
    elapsed_s: float = 0.0
    #: What was measured again since (rendered under the header).
    notes: list[str] = field(default_factory=list)

    def measured(self) -> Measured:
        """The per-unit figures the cost model takes."""
        ours, changed = self.phases["ours.unchanged"], self.phases["ours.changed"]
        assert self.throughput and self.naive_throughput
        changes = self.changes

        def extra(key: str) -> float:
            return max(0.0, changed.totals.get(key, 0.0) - ours.totals.get(key, 0.0)) / changes

        def table_wru(name: str) -> float:
            return sum(
                extra(key)
                for key in changed.totals
                if key.startswith("dynamodb:") and name in key and key.endswith(":wru")
            )

        def table_index_wru(name: str) -> float:
            return sum(
                extra(key)
                for key in changed.totals
                if key.startswith("dynamodb:") and name in key and key.endswith(":index_wru")
            )

        notifiable = sum(
            n
            for kind, n in self.events["ours"].items()
            if kind in ("shipment.status_changed", "shipment.ndr_raised", "shipment.stuck")
        )
        return Measured(
            poll_rru=ours.per("dynamodb:BatchGetItem:rru"),
            poll_sqs_billed=ours.per("sqs:billed"),
            change_wru_shipments=table_wru("ShipmentsTable"),
            change_wru_event_log=table_wru("EventLogTable"),
            change_index_wru_shipments=table_index_wru("ShipmentsTable"),
            change_sns_billed=extra("sns:billed"),
            events_per_change=sum(self.events["ours"].values()) / changes,
            notifiable_per_change=notifiable / changes,
            routed_per_change=self.routed / changes,
            awbs_per_s=statistics.median(t.rate for t in self.throughput),
            naive_awbs_per_s=statistics.median(t.rate for t in self.naive_throughput),
        )


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _phase(bench: Bench, name: str, shipments: int, seconds: float = 0.0) -> Phase:
    return Phase(name, shipments, dict(tally(bench.server.log.of(name))), seconds)


def _timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def requests_and_calls(bench: Bench, results: Results) -> None:
    """Per-shipment requests of ours and the naive poller; calls; the same events."""
    count = results.config.shipments
    batch = shipments(count)
    bench.seed(batch)
    bound = lower_bound(s.key for s in batch)
    # A first cycle warms what a warm Lambda would have: modules, the secret, connections.
    bench.cycle("warmup")
    bench.tick()
    for name, run in (
        ("ours.unchanged", lambda: bench.cycle("ours.unchanged")),
        ("naive.unchanged", lambda: bench.naive_cycle("naive.unchanged")),
    ):
        bench.sandbox.reset_stats()
        seconds = _timed(run)
        results.phases[name] = _phase(bench, name, count, seconds)
        results.calls[name] = len(bench.sandbox.requests)
    results.calls["lower_bound"] = bound
    unexpected = bench.events("ours.unchanged") + bench.events("naive.unchanged")
    if unexpected:
        raise RuntimeError(f"an unchanged cycle published {len(unexpected)} events")
    bench.tick()
    bench.advance(batch)
    for name, run in (
        ("ours.changed", lambda: bench.cycle("ours.changed")),
        ("naive.changed", lambda: bench.naive_cycle("naive.changed")),
    ):
        bench.sandbox.reset_stats()
        seconds = _timed(run)
        results.phases[name] = _phase(bench, name, count, seconds)
    results.changes = int(results.phases["ours.changed"].totals.get("dynamodb:UpdateItem", 0))
    ours, naive = bench.events("ours.changed"), bench.events("naive.changed")
    results.routed = sum(len(channels) for _, _, channels in bench.routed("ours.changed"))
    results.events["ours"] = Counter(kind for kind, _ in ours)
    results.events["naive"] = Counter(kind for kind, _ in naive)
    results.same_events = sorted(ours) == sorted(naive)
    if bench.runtime.crashes:
        raise RuntimeError(f"handlers crashed: {bench.runtime.crashes[:3]}")


def scaling_point(bench: Bench, size: int, change_share: float, mixed: bool) -> ScalePoint:
    """Seed `size` shipments; one unchanged cycle; maybe one cycle with a share moved on."""
    batch = shipments(size)
    seed_s = _timed(lambda: bench.seed(batch, naive=False))
    bench.sandbox.reset_stats()
    unchanged = _phase(
        bench, "scale.unchanged", size, _timed(lambda: bench.cycle("scale.unchanged"))
    )
    calls = len(bench.sandbox.requests)
    moved = batch[:: max(1, round(1 / change_share))] if mixed else []
    second: Phase | None = None
    if mixed:
        bench.tick()
        bench.advance(moved)
        second = _phase(bench, "scale.mixed", size, _timed(lambda: bench.cycle("scale.mixed")))
    return ScalePoint(
        shipments=size,
        seed_s=seed_s,
        unchanged=unchanged,
        mixed=second,
        changed=len(moved),
        calls=calls,
        lower_bound=lower_bound(s.key for s in batch),
    )


def throughput_only(config: Config) -> tuple[list[Throughput], list[Throughput]]:
    """The throughput phase alone (ours, naive), on a stack seeded as the full run's is."""
    server = CountingMotoServer().start()
    sandbox = SandboxServer().start()
    ours: list[Throughput] = []
    naive: list[Throughput] = []
    log = open(os.devnull, "w")  # noqa: SIM115 - closed in finally
    try:
        with open_bench(server, sandbox, log) as bench:
            bench.seed(shipments(config.shipments))
            bench.cycle("warmup")
            bench.tick()
            _say(f"throughput at {config.latency_s * 1000:.0f} ms latency, three times")
            for _ in range(REPETITIONS):
                ours.append(throughput.ours(bench, config.throughput_awbs, config.latency_s))
                naive.append(
                    throughput.naive(bench, config.naive_throughput_awbs, config.latency_s)
                )
    finally:
        sandbox.stop()
        server.stop()
        log.close()
    return ours, naive


def environments_of(bench: Bench) -> dict[str, dict[str, str]]:
    """Each function's environment as the deployed template sets it (by folder name)."""
    return {spec.code_dir.name: dict(spec.environment) for spec in bench.stack.functions.values()}


def deployed_environments() -> dict[str, dict[str, str]]:
    """`environments_of` a stack deployed for the purpose (the template as it is now)."""
    server = CountingMotoServer().start()
    sandbox = SandboxServer().start()
    try:
        with open(os.devnull, "w") as log, open_bench(server, sandbox, log) as bench:
            return environments_of(bench)
    finally:
        sandbox.stop()
        server.stop()


def run(config: Config) -> Results:
    """Every benchmark of `config`, in order; progress on stderr."""
    results = Results(config)
    started = time.perf_counter()
    server = CountingMotoServer().start()
    sandbox = SandboxServer().start()
    log = open(os.devnull, "w")  # noqa: SIM115 - closed in finally
    try:
        _say(f"{config.name} run: requests, calls and events over {config.shipments} shipments")
        with open_bench(server, sandbox, log) as bench:
            requests_and_calls(bench, results)
            _say(f"throughput at {config.latency_s * 1000:.0f} ms latency, three times")
            for _ in range(REPETITIONS):
                results.throughput.append(
                    throughput.ours(bench, config.throughput_awbs, config.latency_s)
                )
                results.naive_throughput.append(
                    throughput.naive(bench, config.naive_throughput_awbs, config.latency_s)
                )
            results.environments = environments_of(bench)
        for size in config.scaling:
            _say(f"scaling: {size:,} shipments")
            with open_bench(server, sandbox, log) as bench:
                results.scaling.append(
                    scaling_point(
                        bench,
                        size,
                        config.scaling_change_share,
                        mixed=size <= config.scaling_mixed_max,
                    )
                )
    finally:
        sandbox.stop()
        server.stop()
        log.close()
    _say("parse and diff")
    results.parse = parse_diff.run(config.parse_min_time_s, REPETITIONS)
    _say("item sizes at 8, 30 and 60 scans")
    results.items = items.run()
    _say("cold start")
    results.coldstart = coldstart.run(
        results.environments, repetitions=REPETITIONS, runs=config.coldstart_runs
    )
    _say("peak memory on a 50 MB answer")
    results.hostile = hostile.run(3)
    with open(os.devnull, "w") as quiet:
        # One repetition here: `python -m bench --freshness` runs three, with their spread.
        fresh = freshness.FULL if config.name == "full" else freshness.QUICK
        results.freshness = freshness.run(replace(fresh, repeats=1), quiet, say=_say)
    results.elapsed_s = time.perf_counter() - started
    return results
