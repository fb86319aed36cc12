"""Peak memory while answering a hostile Clickpost response: a 50 MB body for one waybill.

Ours: the trackwatch client, which streams the body and refuses it past its size cap
(5 MB by default). The baseline is what a competent team writes without a cap: httpx's
`client.get(...)` and `response.content`, which holds the whole body. Peak memory is
Python's own allocations during the call (tracemalloc), in a fresh client each run.
"""

from __future__ import annotations

import asyncio
import statistics
import tracemalloc
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httpx

from trackwatch.adapters.clickpost import ClickpostClient, StaticCredentials
from trackwatch.errors import ClickpostResponseTooLargeError
from trackwatch.models.tracking import TrackCall
from trackwatch_cli.sandbox import DEFAULT_KEY, DEFAULT_USERNAME, FaultKind, SandboxServer

BODY_BYTES = 50_000_000
WAYBILL = "HOSTILE01"


@dataclass(frozen=True)
class PeakMemory:
    """Peak traced memory (MB) over repeated runs, for one way of reading the body."""

    what: str
    peaks_mb: tuple[float, ...]
    outcome: str

    @property
    def median_mb(self) -> float:
        """The median peak."""
        return statistics.median(self.peaks_mb)


def _peak(action: Callable[[], Coroutine[Any, Any, str]]) -> tuple[float, str]:
    tracemalloc.start()
    try:
        outcome: str = asyncio.run(action())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 1e6, outcome


def run(runs: int = 3) -> list[PeakMemory]:
    """Both ways of reading, `runs` times each, against the sandbox's 50 MB body."""
    with SandboxServer() as sandbox:
        sandbox.add_shipment(WAYBILL, 4, "delivered_smoothly")
        sandbox.set_fault(FaultKind.HUGE_BODY, count=None, waybill=WAYBILL, size_bytes=BODY_BYTES)
        call = TrackCall(cp_id=4, waybills=(WAYBILL,))
        params = {
            "key": DEFAULT_KEY,
            "username": DEFAULT_USERNAME,
            "waybill": WAYBILL,
            "cp_id": "4",
        }

        async def ours() -> str:
            client = ClickpostClient(
                sandbox.base_url, StaticCredentials(DEFAULT_KEY, DEFAULT_USERNAME)
            )
            async with client:
                try:
                    await client.track(call)
                except ClickpostResponseTooLargeError as exc:
                    return f"refused ({exc.kind})"
            return "read"

        async def uncapped() -> str:
            async with httpx.AsyncClient(base_url=sandbox.base_url, timeout=60) as client:
                response = await client.get("/api/v2/track-order/", params=params)
                return f"read {len(response.content) / 1e6:.0f} MB"

        results = []
        for what, action in (("trackwatch client (5 MB cap)", ours), ("httpx, no cap", uncapped)):
            measured = [_peak(action) for _ in range(runs)]
            results.append(PeakMemory(what, tuple(p for p, _ in measured), measured[-1][1]))
        return results
