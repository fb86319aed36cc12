"""Our own stuck and late checks through the stack in moto, on the local runtime's clock.

The sandbox's delay demos follow the clock (a step shows once its hours have passed), so
the poller's checks measure real (simulated) business hours: one shipment sits 40 hours
in transit and moves again, one sits past its carrier's date and stays put, one misses
the promise it was registered with. The daily digest is then sent from the events they
produced, the daily threshold job learns from the event log they left, and `trackwatch
delays thresholds` reads its table back.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from moto.ses.models import ses_backends
from typer.testing import CliRunner

from tests.integration.conftest import REGION, ROOT, Pipeline, open_pipeline
from trackwatch.models.events import DelayPredicted, ShipmentEvent, SlaBreached, Stuck, Unstuck
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.registration import Registration
from trackwatch_cli.deployment import SimulatedClock
from trackwatch_cli.main import app
from trackwatch_cli.sandbox import SandboxServer
from trackwatch_cli.timeline import event_line

INDIA = ZoneInfo("Asia/Kolkata")
#: Friday 27 November 2026, 11:30 in India: no Sunday or holiday in the next two days.
START = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
OPS = "ops@example.com"
DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account
STUCK = ShipmentKey.of(4, "DLSTUCK01")  # stuck_in_transit
LOST = ShipmentKey.of(5, "DLLOST01")  # lost_in_transit
PROMISE = ShipmentKey.of(6, "DLPROMISE01")  # missed_promise
JOURNEYS = {STUCK: "stuck_in_transit", LOST: "lost_in_transit", PROMISE: "missed_promise"}
HOURS = 30
DELAY_TYPES = {
    "shipment.stuck",
    "shipment.unstuck",
    "shipment.sla_breached",
    "shipment.delay_predicted",
}


@pytest.fixture
def delays() -> Iterator[Pipeline]:
    """The stack with the checks on, polling a sandbox that follows its clock."""
    clock = SimulatedClock(START)
    sandbox = SandboxServer(clock=clock).start()
    try:
        with open_pipeline(
            ROOT / "template.yaml",
            sandbox,
            clock=clock,
            # One sample is enough here: the job learns from three shipments.
            parameters={"OpsDigestEmail": OPS, "DelayMinSamples": "1"},
            settings={"DELAY_CHECKS": "true"},
        ) as pipeline:
            environment = pipeline.stack.functions["SendOpsDigestFunction"].environment
            pipeline.clients.ses.verify_email_identity(EmailAddress=environment["EMAIL_FROM"])
            yield pipeline
    finally:
        sandbox.stop()


def play(pipeline: Pipeline) -> list[ShipmentEvent]:
    """Register the three demos (one with a promise for today) and poll them every hour for
    HOURS hours; the events AllEventsQueue got."""
    today = START.astimezone(INDIA).date()
    for key, journey in JOURNEYS.items():
        pipeline.sandbox.add_shipment(key.waybill, key.cp_id, journey)
    results = pipeline.container().registration_service.register(
        [
            Registration(waybill=STUCK.waybill, cp_id=STUCK.cp_id),
            Registration(waybill=LOST.waybill, cp_id=LOST.cp_id),
            Registration(
                waybill=PROMISE.waybill, cp_id=PROMISE.cp_id, promised_delivery_date=today
            ),
        ]
    )
    assert all(r.error is None and r.rejected is None for r in results), results
    for _ in range(HOURS):
        pipeline.cycle(advance=timedelta(hours=1))
    return pipeline.events()


def of(events: list[ShipmentEvent], key: ShipmentKey) -> list[ShipmentEvent]:
    """`key`'s delay events, in the order they were detected (repeats dropped)."""
    unique = {e.event_id: e for e in events if (e.cp_id, e.waybill) == (key.cp_id, key.waybill)}
    return sorted(
        (e for e in unique.values() if e.event_type in DELAY_TYPES),
        key=lambda e: (e.detected_at, e.event_type),
    )


def test_shipments_that_sit_or_miss_their_promise_are_reported_once_each(
    delays: Pipeline,
) -> None:
    # Given / When the three demos are polled every hour for 30 hours
    events = play(delays)

    # Then the one that sat 40 hours is stuck at once, for no scan, and unstuck once when
    # it moves six hours later
    stuck, unstuck = of(events, STUCK)
    assert isinstance(stuck, Stuck) and isinstance(unstuck, Unstuck)
    assert stuck.reason == "no_scan_for" and stuck.threshold_source == "rule"
    assert stuck.no_scan_for_hours is not None and stuck.threshold_hours is not None
    assert stuck.no_scan_for_hours > stuck.threshold_hours == 36
    assert stuck.detected_at == START
    assert unstuck.reason == "moved"
    assert unstuck.detected_at == START + timedelta(hours=6)

    # the one past its carrier's date breaches it at the first poll, and is stuck once it
    # has sat 36 business hours; it does not move again within the 30 hours
    breached, lost = of(events, LOST)
    assert isinstance(breached, SlaBreached) and isinstance(lost, Stuck)
    assert breached.promise_source == "courier_partner_edd"
    assert breached.promised_delivery_date == START.astimezone(INDIA).date() - timedelta(days=1)
    assert breached.detected_at == START
    assert lost.reason == "no_scan_for"
    assert lost.no_scan_for_hours is not None and 36 < lost.no_scan_for_hours <= 37

    # and the one promised today breaches its promise once, at the first poll after
    # midnight in India, though it was polled every hour after
    (missed,) = of(events, PROMISE)
    assert isinstance(missed, SlaBreached)
    assert missed.promise_source == "registration"
    assert missed.promised_delivery_date == START.astimezone(INDIA).date()
    midnight = datetime(2026, 11, 28, tzinfo=INDIA)
    assert midnight <= missed.detected_at < midnight + timedelta(hours=1)
    delivered = delays.records()[PROMISE].state.current
    assert delivered is not None and delivered.clickpost_status_code == 8
    counts = Counter(e.event_type for e in {e.event_id: e for e in events}.values())
    assert counts["shipment.sla_breached"] == 2
    assert not [e for e in events if isinstance(e, DelayPredicted)]  # nothing learned yet

    # and each shows in the local timeline with why
    lines = {
        e.event_id: event_line(e.model_dump(mode="json"), "--:--")
        for e in (stuck, unstuck, breached, missed)
    }
    assert "no scan for" in str(lines[stuck.event_id])
    assert "moved again" in str(lines[unstuck.event_id])
    assert "missed its promise" in str(lines[missed.event_id])


def test_the_daily_digest_and_thresholds_come_from_what_happened(delays: Pipeline) -> None:
    # Given the three demos' 30 hours
    play(delays)

    # When the digest's schedule fires (18:00 in India)
    delays.clock = datetime(2026, 11, 28, 12, 30, tzinfo=UTC)
    delays.runtime.tick(delays.clock)

    # Then operations get one e-mail, with the counts per carrier and the open cases
    sent = [
        m
        for m in ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
        if m.destinations["ToAddresses"] == [OPS]
    ]
    assert len(sent) == 1
    mail = sent[0]
    assert (
        mail.subject
        == "trackwatch delays 28 Nov 2026: 1 stuck, 2 missed their promise, 0 predicted late"
    )
    body = mail.body
    assert re.search(r"cp_id 4\)?\s+0\s+1\s+0\s+0", body)  # stuck, moved again
    assert re.search(r"cp_id 5\)?\s+1\s+0\s+1\s+0", body)
    assert re.search(r"cp_id 6\)?\s+0\s+0\s+1\s+0", body)
    assert re.search(r"all carriers\s+1\s+1\s+2\s+0", body)
    assert f"{LOST.waybill}" in body and "no scan for" in body
    assert f"{PROMISE.waybill}" in body and "(registration)" in body
    assert STUCK.waybill not in body  # it moved again: counted, not listed
    # and the queue it read is empty: a second run the same day sends nothing more
    before = len(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)
    delays.runtime.invoke("SendOpsDigestFunction", {})
    assert len(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages) == before

    # When the threshold job's schedule fires (02:00 in India)
    delays.clock = datetime(2026, 11, 28, 20, 30, tzinfo=UTC)
    delays.runtime.tick(delays.clock)

    # Then it learned from the event log: the delivered shipments sat three hours at the
    # destination hub and three out for delivery (the sandbox's hours, to the minute)
    table = delays.local.container("LearnThresholdsFunction").thresholds.load()
    assert table is not None and table.complete
    assert table.dwell_hours(4, 1004) == 3.0
    assert table.dwell_hours(6, 6) == 4.0
    assert table.remaining_hours(4, 1004) == 6.0

    # and `trackwatch delays thresholds` shows it, and which threshold a poller uses
    runner = CliRunner()
    command = ["delays", "thresholds", "--stack", delays.stack.name, "--region", REGION]
    shown = runner.invoke(app, command)
    assert shown.exit_code == 0, shown.output
    assert "p90 of the business hours between scans" in shown.output
    assert "Delay thresholds (business hours)" in shown.output
    answer = runner.invoke(app, [*command, "--carrier", "4", "--json"])
    assert answer.exit_code == 0, answer.output
    # (stdout alone: the emulator's warnings go to stderr)
    lines = json.loads(answer.stdout)["lines"]
    hub = next(x for x in lines if (x["cp_id"], x["clickpost_status_code"]) == (4, 1004))
    assert (hub["learned_hours"], hub["rule_hours"]) == (3.0, 24)
    assert (hub["in_effect_hours"], hub["source"]) == (3.0, "learned")
    assert {x["cp_id"] for x in lines} == {4, None}

    # When a shipment is registered at 02:00 on a Sunday with a promise for that day, at a
    # status (picked up) from which this carrier took a day and more to deliver
    late = ShipmentKey.of(6, "DLPREDICT01")
    delays.sandbox.add_shipment(late.waybill, late.cp_id, "missed_promise")
    sunday = delays.clock.astimezone(INDIA).date()
    results = delays.container().registration_service.register(
        [Registration(waybill=late.waybill, cp_id=late.cp_id, promised_delivery_date=sunday)]
    )
    assert all(r.error is None and r.rejected is None for r in results), results
    delays.cycle()

    # Then the poller, reading the learned table, predicts the delay at once, and once
    (predicted,) = [e for e in of(delays.events(), late) if isinstance(e, DelayPredicted)]
    assert predicted.promised_delivery_date == sunday
    # (the event carries it to a tenth of an hour)
    assert predicted.expected_remaining_hours == round(table.remaining_hours(6, 4) or 0, 1)
    # Sunday does not count: the business hours start on Monday
    assert predicted.predicted_delivery_date > sunday + timedelta(days=1)
