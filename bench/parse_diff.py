"""Parse and diff: AWB results per second on one core, beside the floor of json.loads alone.

The bodies are what the sandbox sends for one full call (five AWBs of one carrier):
each AWB at the end of an 8-scan journey (the sandbox's `edd_change`), or of a
50-scan long-haul journey built here from in-transit hops. Two diffs are timed:
the steady state (the stored state already holds every scan: the common case, no
events), also with the stored record decoded as a poll decodes it, and first sight (an
empty state: every scan is new).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from trackwatch.adapters.shipments_table import decode_state, encode_state
from trackwatch.data import load_catalogue
from trackwatch.logic.diff import diff
from trackwatch.models.clickpost import DEFAULT_SOURCE_TIMEZONE, parse_track_order
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.policy import zone
from trackwatch.models.state import ShipmentState
from trackwatch_cli.sandbox import load_journeys
from trackwatch_cli.sandbox.journey import (
    Journey,
    JourneyStep,
    ScanSpec,
    ShipmentIdentity,
    render_awb,
)

AWBS_PER_CALL = 5
_HUBS = (
    "Delhi_Bilaspur_HB (Haryana)",
    "Jaipur_Hub (Rajasthan)",
    "Ahmedabad_Hub (Gujarat)",
    "Mumbai_Bhiwandi_HB (Maharashtra)",
    "Pune_Hub (Maharashtra)",
    "Hyderabad_Shamshabad_HB (Telangana)",
    "Bengaluru_Nelamangala_H (Karnataka)",
)


def long_haul(scans: int = 50) -> Journey:
    """A journey of `scans` scans: manifested, picked up, in-transit hops, out for delivery."""
    specs: list[ScanSpec] = [
        ScanSpec(
            checkpoint_id=1,
            status="Manifested",
            clickpost_status_code=1,
            clickpost_status_description="OrderPlaced",
            clickpost_status_bucket=1,
            clickpost_status_bucket_description="Order Placed",
            location=_HUBS[0],
            remark="Shipment details manifested",
        ),
        ScanSpec(
            checkpoint_id=2,
            status="Picked Up",
            clickpost_status_code=4,
            clickpost_status_description="PickedUp",
            clickpost_status_bucket=2,
            clickpost_status_bucket_description="Shipped",
            location=_HUBS[0],
            remark="Shipment picked up from seller",
        ),
    ]
    for n in range(3, scans + 1):
        hub = _HUBS[(n // 2) % len(_HUBS)]
        specs.append(
            ScanSpec(
                checkpoint_id=n,
                status="In Transit",
                clickpost_status_code=5,
                clickpost_status_description="InTransit",
                clickpost_status_bucket=3,
                clickpost_status_bucket_description="In transit",
                location=hub,
                remark="Bag added to trip" if n % 2 else "Bag received at facility",
            )
        )
    steps = tuple(JourneyStep(at_hours=float(i * 3), scans=(spec,)) for i, spec in enumerate(specs))
    return Journey(name="long_haul", description="A 50-scan long haul.", steps=steps)


def call_body(journey: Journey, cp_id: int = 4) -> tuple[bytes, list[ShipmentKey]]:
    """One track-order response body with five AWBs at the end of `journey`."""
    start = datetime(2025, 1, 6, 9, 0, 0)
    keys = [ShipmentKey.of(cp_id, f"PD{cp_id:02d}{i:08d}") for i in range(AWBS_PER_CALL)]
    result = {
        k.waybill: render_awb(
            journey,
            journey.last_step,
            ShipmentIdentity(
                waybill=k.waybill,
                cp_id=cp_id,
                courier_name="Delhivery",
                order_id=f"ORD{k.waybill}",
                start=start,
            ),
        )
        for k in keys
    }
    body = {"meta": {"status": 200, "success": True, "message": "SUCCESS"}, "result": result}
    return json.dumps(body).encode(), keys


@dataclass(frozen=True)
class ParseDiffResult:
    """AWB results per second on one core, for one response shape, per repetition."""

    shape: str
    scans: int
    body_bytes: int
    #: Per repetition: AWBs per second of each path (the best single call of many).
    json_floor: list[float]
    parse_only: list[float]
    steady: list[float]
    #: The steady path as a poll runs it: the stored record decoded too (encode_state's form).
    steady_stored: list[float]
    first_sight: list[float]

    @staticmethod
    def _ratios(floor: list[float], rates: list[float]) -> list[float]:
        return [f / r for f, r in zip(floor, rates, strict=True)]

    @property
    def steady_ratio(self) -> list[float]:
        """Per repetition: how many times json.loads' time the steady parse + diff takes."""
        return self._ratios(self.json_floor, self.steady)

    @property
    def stored_ratio(self) -> list[float]:
        """The same, with the stored record's decoding counted."""
        return self._ratios(self.json_floor, self.steady_stored)

    @property
    def parse_ratio(self) -> list[float]:
        """The same, for the parse alone."""
        return self._ratios(self.json_floor, self.parse_only)


def _best_rates(
    works: dict[str, Callable[[], object]], awbs: int, min_time_s: float
) -> dict[str, float]:
    """AWBs per second of each work, from its fastest single call.

    The works take turns, call by call, for at least `min_time_s`: a busy moment of this
    shared machine falls on all of them alike, and the fastest call of each is what the
    code costs when nothing else runs (the machine's noise only ever adds time).
    """
    for work in works.values():
        work()  # warm caches (catalogue, pydantic validators)
    best = dict.fromkeys(works, float("inf"))
    started = time.perf_counter()
    while time.perf_counter() - started < min_time_s:
        for name, work in works.items():
            begun = time.perf_counter()
            work()
            best[name] = min(best[name], time.perf_counter() - begun)
    return {name: awbs / seconds for name, seconds in best.items()}


def measure(
    journey: Journey, shape: str, min_time_s: float, repetitions: int = 3
) -> ParseDiffResult:
    """Time json.loads, parse_track_order, and parse + diff, on one call's body."""
    body, keys = call_body(journey)
    tz = zone(DEFAULT_SOURCE_TIMEZONE)
    catalogue = load_catalogue()
    now = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    parsed = parse_track_order(body, tz)
    stored: dict[str, ShipmentState] = {
        k.waybill: diff(None, k, parsed.result[k.waybill], now, catalogue).state for k in keys
    }
    items = {waybill: encode_state(state) for waybill, state in stored.items()}

    def steady() -> None:
        response = parse_track_order(body, tz)
        for key in keys:
            outcome = diff(stored[key.waybill], key, response.result[key.waybill], now, catalogue)
            assert not outcome.changed

    def steady_stored() -> None:
        response = parse_track_order(body, tz)
        for key in keys:
            state = decode_state(items[key.waybill])
            outcome = diff(state, key, response.result[key.waybill], now, catalogue)
            assert not outcome.changed

    def first_sight() -> None:
        response = parse_track_order(body, tz)
        for key in keys:
            diff(None, key, response.result[key.waybill], now, catalogue)

    works: dict[str, Callable[[], object]] = {
        "json_floor": lambda: json.loads(body),
        "parse_only": lambda: parse_track_order(body, tz),
        "steady": steady,
        "steady_stored": steady_stored,
        "first_sight": first_sight,
    }
    runs = [_best_rates(works, AWBS_PER_CALL, min_time_s) for _ in range(repetitions)]
    return ParseDiffResult(
        shape=shape,
        scans=len(parsed.result[keys[0].waybill].scans),
        body_bytes=len(body),
        **{name: [run[name] for run in runs] for name in works},
    )


def run(min_time_s: float = 1.0, repetitions: int = 3) -> list[ParseDiffResult]:
    """Both shapes: the 8-scan sandbox journey and the 50-scan long haul."""
    return [
        measure(load_journeys()["edd_change"], "8-scan", min_time_s, repetitions),
        measure(long_haul(50), "50-scan", min_time_s, repetitions),
    ]
