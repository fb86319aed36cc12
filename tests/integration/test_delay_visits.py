"""Check-only visits through the stack in moto: with change capture healthy, a shipment that
sits in transit is polled once a day by the sweep, and is still reported stuck within
`DelayCheckMinutes` of passing its threshold, by a visit that calls no one.

The sandbox follows the local runtime's simulated clock (as in test_delays.py); the
dispatcher, the feed poller and the coalescer run on their schedules minute by minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.conftest import PIPELINE, ROOT, Pipeline, open_pipeline
from trackwatch.logic.cadence import CadenceClass, due_key, epoch_minute
from trackwatch.logic.change_capture import in_sweep
from trackwatch.models.change_feed import FeedState
from trackwatch.models.events import Stuck
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.policy import Cadence, Sweep
from trackwatch_cli.deployment import SimulatedClock
from trackwatch_cli.sandbox import SandboxServer, load_journeys

#: Friday 27 November 2026, 11:30 in India: a business day after a business day.
START = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
#: In transit (its threshold: 36 business hours) since about 35.5 hours before its first
#: poll (the sandbox dates a step a few minutes before the poll that shows it): the
#: lost_in_transit demo registered later, so it passes its threshold within half an hour.
_LOST = load_journeys()["lost_in_transit"]
SITS = _LOST.model_copy(
    update={"steps": (_LOST.steps[0].model_copy(update={"at_hours": 45.5}), *_LOST.steps[1:])}
)
PASSES_THRESHOLD = START + timedelta(minutes=30)
#: The template's defaults: transit polled every 120 minutes in full, once a day swept.
CADENCE, SWEEP = Cadence(), Sweep()
CHECK = timedelta(minutes=SWEEP.delay_check_minutes)
#: Minutes simulated: past the threshold, and a check period after it.
MINUTES = 30 + int(CHECK.total_seconds() // 60) + 5


def _not_swept_in_window() -> ShipmentKey:
    """A waybill whose one sweep poll of the day is not in the window (so that any report
    within it can only come from a check-only visit)."""
    start = epoch_minute(START)
    for n in range(100):
        key = ShipmentKey.of(4, f"DLSITS{n:02d}")
        slot = int(due_key(key.pk, CadenceClass.TRANSIT, CADENCE).split("#")[1])
        due = [m for m in range(start, start + MINUTES) if m % 120 == slot]
        if not any(in_sweep(key.pk, CadenceClass.TRANSIT, m, CADENCE, SWEEP) for m in due):
            return key
    raise AssertionError("no such waybill")  # pragma: no cover


def _next_sweep_poll(key: ShipmentKey) -> datetime:
    """When the sweep would poll `key` next after the window."""
    slot = int(due_key(key.pk, CadenceClass.TRANSIT, CADENCE).split("#")[1])
    minute = epoch_minute(START) + MINUTES
    while not (
        minute % 120 == slot and in_sweep(key.pk, CadenceClass.TRANSIT, minute, CADENCE, SWEEP)
    ):
        minute += 1
    return datetime.fromtimestamp(minute * 60, tz=UTC)


@pytest.fixture
def sitting() -> Iterator[tuple[Pipeline, SandboxServer]]:
    """The stack (template defaults but one due shard) with the checks on, change capture
    healthy throughout, polling a sandbox on its clock."""
    clock = SimulatedClock(START)
    sandbox = SandboxServer(clock=clock, journeys={"sits": SITS}).start()
    try:
        with open_pipeline(
            ROOT / "template.yaml",
            sandbox,
            clock=clock,
            # A lone quiet shipment: the feed lists nothing for hours and is still healthy.
            parameters={"DueShards": "1", "ChangeFeedSilenceMinutes": "10000"},
            settings={"DELAY_CHECKS": "true"},
        ) as pipeline:
            yield pipeline, sandbox
    finally:
        sandbox.stop()


def test_a_shipment_sitting_in_transit_is_reported_stuck_within_the_check_period(
    sitting: tuple[Pipeline, SandboxServer],
) -> None:
    pipeline, sandbox = sitting
    # Given a shipment in transit, first seen at START, whose sweep poll is hours away
    key = _not_swept_in_window()
    sandbox.add_shipment(key.waybill, key.cp_id, "sits")
    pipeline.register(key)
    pipeline.local.container("PollChangeFeedFunction").feed_state.save(
        FeedState(caught_up_to=START, last_entry_at=START)
    )
    pipeline.cycle(advance=timedelta(0))
    assert [r for r in sandbox.requests if key.waybill in r.waybills]
    calls_after_first_sight = len(sandbox.requests)

    # When the schedules run minute by minute past its threshold and a check period more
    summaries: list[dict[str, Any]] = []
    for _ in range(MINUTES):
        pipeline.clock += timedelta(minutes=1)
        for answer in pipeline.runtime.tick(pipeline.clock):
            if isinstance(answer, dict) and "checks" in answer:
                summaries.append(answer)
        pipeline.runtime.settle(only=PIPELINE)

    # Then the dispatcher stayed in the sweep and sent it check-only visits
    assert {s["mode"] for s in summaries} == {"sweep"}
    assert sum(s["checks"] for s in summaries) >= 1
    assert sum(s["due"] for s in summaries) == 0
    # and it is reported stuck, for no scan, within a check period of passing its
    # threshold, not at the sweep's poll hours later
    (stuck,) = [e for e in pipeline.events() if isinstance(e, Stuck)]
    assert stuck.reason == "no_scan_for" and stuck.waybill == key.waybill
    assert stuck.last_scan_at is not None and stuck.threshold_hours == 36
    # (Thursday and Friday: every hour a business hour)
    passed = stuck.last_scan_at + timedelta(hours=36)
    assert START < passed <= PASSES_THRESHOLD
    assert passed < stuck.detected_at <= passed + CHECK
    assert _next_sweep_poll(key) > passed + 2 * CHECK
    # and no Clickpost call was made for the visits
    assert len(sandbox.requests) == calls_after_first_sight
    record = pipeline.records()[key]
    assert record.state.stuck_open and record.state.stuck_reason == "no_scan_for"
