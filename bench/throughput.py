"""Poll worker throughput against the sandbox with injected Clickpost latency.

The real poll path: the poll function's own `PollService` (over the deployed shipments
table, with its `ClickpostClient` and credentials), one `asyncio.run` and one client per
batch of ten PollQueue messages, exactly as one PollShipments invocation runs them, in a
process of its own (`bench.throughput_child`), as Lambda runs it: the sandbox and the
emulator work in other processes, not under the worker's interpreter lock. The bound for
one invocation is calls in flight x 5 AWBs ÷ latency.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.harness import Bench
from bench.naive import IN_FLIGHT
from bench.throughput_child import Naive, Ours, timed
from trackwatch.logic.batching import plan_calls
from trackwatch.models.tracking import MAX_WAYBILLS_PER_CALL
from trackwatch.services.dispatch import pack

#: PollQueue messages per invocation (the template's BatchSize).
BATCH_SIZE = 10
CALLS_PER_MESSAGE = 10


@dataclass(frozen=True)
class Throughput:
    """AWBs per second, against the bound."""

    awbs: int
    calls: int
    elapsed_s: float
    in_flight: int
    latency_s: float
    peak_concurrency: int

    @property
    def rate(self) -> float:
        """AWBs per second."""
        return self.awbs / self.elapsed_s

    @property
    def bound(self) -> float:
        """in flight x AWBs per call ÷ latency."""
        return self.in_flight * MAX_WAYBILLS_PER_CALL / self.latency_s


def ours(bench: Bench, awbs: int, latency_s: float) -> Throughput:
    """Poll the first `awbs` seeded shipments through the real poll path."""
    in_flight = int(
        bench.stack.functions["PollShipmentsFunction"].environment["CLICKPOST_MAX_IN_FLIGHT"]
    )
    keys = [s.key for s in bench.seeded[:awbs]]
    calls = plan_calls(keys)
    messages = pack(calls, CALLS_PER_MESSAGE, "bench", bench.clock)
    batches = [messages[i : i + BATCH_SIZE] for i in range(0, len(messages), BATCH_SIZE)]
    job = Ours(
        environment=bench.runtime.environment_of("PollShipmentsFunction"),
        endpoint_url=bench.server.endpoint,
        region=bench.stack.region,
        now=bench.clock,
        warm_up=batches[0],
        batches=batches,
    )
    warm_up_calls = sum(len(m.calls) for m in job.warm_up)
    bench.sandbox.latency_s = latency_s
    bench.sandbox.reset_stats()
    try:
        with bench.server.log.during("throughput"):
            elapsed = timed(job)
    finally:
        bench.sandbox.latency_s = 0.0
    return Throughput(
        awbs=len(keys),
        calls=len(bench.sandbox.requests) - warm_up_calls,
        elapsed_s=elapsed,
        in_flight=in_flight,
        latency_s=latency_s,
        peak_concurrency=bench.sandbox.max_concurrency,
    )


def naive(bench: Bench, awbs: int, latency_s: float) -> Throughput:
    """The naive poller over the first `awbs` items of its scan, at the same latency."""
    job = Naive(
        table=bench.naive_table,
        topic_arn=bench.naive_topic,
        base_url=bench.sandbox.base_url,
        endpoint_url=bench.server.endpoint,
        region=bench.stack.region,
        now=bench.clock,
        limit=awbs,
    )
    bench.sandbox.latency_s = latency_s
    bench.sandbox.reset_stats()
    try:
        with bench.server.log.during("naive.throughput"):
            elapsed = timed(job)
    finally:
        bench.sandbox.latency_s = 0.0
    return Throughput(
        awbs=awbs,
        calls=len(bench.sandbox.requests),
        elapsed_s=elapsed,
        in_flight=IN_FLIGHT,
        latency_s=latency_s,
        peak_concurrency=bench.sandbox.max_concurrency,
    )
