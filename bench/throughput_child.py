"""One poll worker in a process of its own, timed (`timed` starts it).

Lambda runs a poll worker alone in its environment; Clickpost and DynamoDB are elsewhere.
The benchmark process also hosts the Clickpost sandbox (its request handling holds the
same interpreter lock as whatever else runs there), so the worker is timed here, in a fresh
interpreter whose only work is the worker's, against the sandbox and the emulator over
loopback. The job comes pickled on stdin, the seconds go back pickled on stdout.

- `Ours`: the poll function's own `PollService`, built from the function's environment as
  its cold start builds it, then one warm-up invocation (untimed: every invocation but the
  first finds its container built), then one `asyncio.run` and one client per batch of
  PollQueue messages, as one PollShipments invocation runs them.
- `Naive`: the naive poller's cycle over the first `limit` items of its Scan.
"""

from __future__ import annotations

import asyncio
import pickle
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from trackwatch.models.messages import PollRequest

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Ours:
    """Time the product's poll worker over `batches` (each one invocation's messages)."""

    environment: dict[str, str]
    endpoint_url: str
    region: str
    now: datetime
    warm_up: list[PollRequest]
    batches: list[list[PollRequest]]


@dataclass(frozen=True)
class Naive:
    """Time one naive cycle over the first `limit` items of `table`."""

    table: str
    topic_arn: str
    base_url: str
    endpoint_url: str
    region: str
    now: datetime
    limit: int


def timed(job: Ours | Naive) -> float:
    """Run `job` in a child interpreter; its seconds."""
    done = subprocess.run(
        # Not `-m`: the job's classes must be this module's, not `__main__`'s.
        [sys.executable, "-c", "from bench.throughput_child import main; raise SystemExit(main())"],
        input=pickle.dumps(job),
        capture_output=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the timed worker failed: {done.stderr.decode()[-2000:]}")
    seconds: float = pickle.loads(done.stdout)  # noqa: S301 - our own child's answer
    return seconds


def _ours(job: Ours) -> float:
    from trackwatch.adapters.aws import AwsClients
    from trackwatch.bootstrap import bootstrap
    from trackwatch.config import Settings

    clients = AwsClients.emulator(job.endpoint_url, job.region)
    service = bootstrap(
        Settings(job.environment), clock=lambda: job.now, clients=clients
    ).poll_service

    async def invocation(batch: list[PollRequest]) -> None:
        failures, _ = await service.poll({str(i): r for i, r in enumerate(batch)})
        if any(failures.values()):
            raise RuntimeError(f"poll failed: {failures}")

    asyncio.run(invocation(job.warm_up))
    started = time.perf_counter()
    for batch in job.batches:
        asyncio.run(invocation(batch))
    return time.perf_counter() - started


def _naive(job: Naive) -> float:
    from bench.naive import against_sandbox
    from trackwatch.adapters.aws import AwsClients

    poller = against_sandbox(
        table=job.table,
        topic_arn=job.topic_arn,
        base_url=job.base_url,
        clients=AwsClients.emulator(job.endpoint_url, job.region),
        clock=lambda: job.now,
    )
    started = time.perf_counter()
    poller.cycle(job.limit)
    return time.perf_counter() - started


def main() -> int:
    """Read the job, run it, write its seconds."""
    job = pickle.loads(sys.stdin.buffer.read())  # noqa: S301 - our parent's job
    seconds = _ours(job) if isinstance(job, Ours) else _naive(job)
    sys.stdout.buffer.write(pickle.dumps(seconds))
    return 0
