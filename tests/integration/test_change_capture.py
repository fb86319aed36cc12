"""Change capture end to end: template.yaml in moto, the sandbox's journeys moving with the
simulated clock, its updated-order feed and webhooks (over the local API), the real handlers.

Journeys run fifty times faster than the packaged ones, and the cadence and sweep are
short (parameters), so that a whole journey plays in about a simulated hour.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.integration.conftest import ROOT, START, Pipeline, open_pipeline
from trackwatch.models.events import ShipmentEvent
from trackwatch.models.keys import ShipmentKey
from trackwatch_cli.api_gateway import ApiGateway
from trackwatch_cli.sandbox import SandboxServer, load_journeys
from trackwatch_cli.sandbox.timed import FeedFaultKind, WebhookFaultKind, scaled

#: The happy path, fifty times faster: steps at 0, 24, 36, 65 and 72 minutes (each
#: recorded by Clickpost seven minutes later).
QUICK = scaled(load_journeys()["delivered_smoothly"], 0.02)
#: The whole journey and a sweep period after it.
JOURNEY_MINUTES = 90
#: Short periods, each sweep a whole multiple of its cadence.
PARAMETERS = {
    "DueShards": "1",
    "CadenceOutForDeliveryMinutes": "5",
    "SweepOutForDeliveryMinutes": "20",
    "CadenceTransitMinutes": "10",
    "SweepTransitMinutes": "40",
    "CadenceNewMinutes": "15",
    "SweepNewMinutes": "60",
    "CadenceGraceMinutes": "30",
    "SweepGraceMinutes": "120",
    "CadenceInvalidMinutes": "30",
    "SweepInvalidMinutes": "120",
    "ChangeFeedStaleMinutes": "15",
    # A handful of shipments may rightly be quiet for long: no silence fallback here.
    "ChangeFeedSilenceMinutes": "10000",
}
CHANGE_CAPTURE = {"PollShipmentsFunction", "PublishEventsFunction"}


@dataclass
class World:
    """A stack, a sandbox on its clock, the local API (for webhooks), and what happened."""

    pipeline: Pipeline
    sandbox: SandboxServer
    keys: list[ShipmentKey]
    modes: list[str] = field(default_factory=list)
    #: Each coalescer run's summary, by the minute it ran.
    windows: dict[datetime, dict[str, Any]] = field(default_factory=dict)
    events: list[ShipmentEvent] = field(default_factory=list)

    @property
    def now(self) -> datetime:
        return self.pipeline.clock

    def run(self, minutes: int) -> None:
        """Play `minutes` of the simulated clock: webhooks, schedules, queues and streams."""
        runtime = self.pipeline.runtime
        for _ in range(minutes):
            self.sandbox.deliver_webhooks()
            for result in runtime.tick(self.now):
                if isinstance(result, dict) and "mode" in result:
                    self.modes.append(str(result["mode"]))
                if isinstance(result, dict) and "already_seen" in result:
                    self.windows[self.now] = result
            runtime.settle()
            self.pipeline.clock = self.now + timedelta(minutes=1)
        self.events.extend(self.pipeline.events())

    def polls_of(self, key: ShipmentKey) -> int:
        """Track-order requests that asked about `key`."""
        return sum(
            1 for r in self.sandbox.requests if r.cp_id == key.cp_id and key.waybill in r.waybills
        )

    def event_ids(self) -> set[str]:
        return {e.event_id for e in self.events}

    def scans_published(self) -> set[int | str]:
        return {e.checkpoint_id for e in self.events if e.event_type == "shipment.scan_added"}

    def assert_nothing_missed(self, settle: timedelta = timedelta(minutes=10)) -> None:
        """Every scan revealed `settle` before now was published once; nothing else was."""
        published = self.scans_published()
        due = {s.checkpoint_id for s in self.sandbox.ground_truth(self.now - settle)}
        revealed = {s.checkpoint_id for s in self.sandbox.ground_truth(self.now)}
        assert due, "nothing was revealed"
        assert due <= published <= revealed
        assert len(self.event_ids()) == len(self.events)


@contextmanager
def world(
    *,
    webhooks: bool = True,
    shipments: int = 3,
    parameters: dict[str, str] | None = None,
) -> Iterator[World]:
    """`shipments` on the quick journey, starting a few minutes apart, from START."""
    holder: dict[str, Pipeline] = {}
    sandbox = SandboxServer(
        journeys={"quick": QUICK}, journey_clock=lambda: holder["p"].clock
    ).start()
    try:
        with open_pipeline(
            ROOT / "template.yaml", sandbox, parameters={**PARAMETERS, **(parameters or {})}
        ) as pipeline:
            holder["p"] = pipeline
            keys = [ShipmentKey.of(4, f"CC{i:04d}") for i in range(shipments)]
            for i, key in enumerate(keys):
                sandbox.add_shipment_at(
                    key.waybill, key.cp_id, "quick", START + timedelta(minutes=3 * i)
                )
            pipeline.register(*keys)
            gateway = ApiGateway(pipeline.runtime, pipeline.stack.routes).start()
            # The event sources run throughout (each minute then waits for quiet): starting
            # and stopping them every simulated minute would cost real seconds each.
            pipeline.runtime.start(only=CHANGE_CAPTURE)
            try:
                if webhooks:
                    sandbox.send_webhooks_to(
                        f"{gateway.base_url}/webhooks/clickpost", pipeline.local.webhook_key
                    )
                yield World(pipeline, sandbox, keys)
            finally:
                pipeline.runtime.stop()
                gateway.stop()
                if sandbox.webhooks is not None:
                    sandbox.webhooks.close()
    finally:
        sandbox.stop()


def _published_lag(world: World) -> list[float]:
    return [
        (e.published_at - e.recorded_at).total_seconds()
        for e in world.events
        if e.recorded_at is not None and e.published_at is not None
    ]


def test_every_change_is_published_once_with_its_freshness() -> None:
    with world(webhooks=True) as w:
        w.run(JOURNEY_MINUTES)

    # Every scan the sandbox revealed became one scan_added, recorded and published times set
    w.assert_nothing_missed()
    lags = _published_lag(w)
    assert lags and min(lags) >= 0
    # Webhooks and a one-minute window: published within two minutes of Clickpost's record
    assert max(lags) <= 120
    assert "sweep" in w.modes


def test_a_hinted_waybill_is_polled_once_per_window_however_many_hints_arrive() -> None:
    # Given webhooks sent twice over (a re-sending Clickpost), and the feed as well
    with world(webhooks=True, shipments=1) as w:
        assert w.sandbox.webhooks is not None
        w.sandbox.webhooks.set_fault(WebhookFaultKind.DUPLICATE, count=None)
        (key,) = w.keys
        # When the first step is revealed (06:07): its webhooks and this minute's window
        w.run(7)
        before = w.polls_of(key)
        w.run(1)
        polled_in_window = w.polls_of(key) - before
        # and the feed lists the same update at 06:10, drained in that minute's window
        w.run(5)

    # Then one poll for two webhooks; the feed's listing is known to be seen: no poll
    assert [s.status for s in w.sandbox.webhooks.sent] == [200, 200]
    assert polled_in_window == 1
    at_0607 = w.windows[START + timedelta(minutes=7)]
    assert (at_0607["hints"], at_0607["polled"]) == ({"webhook": 2}, 1)
    feed_window = next(r for r in w.windows.values() if r["hints"].get("feed"))
    assert (feed_window["already_seen"], feed_window["polled"]) == (1, 0)


def test_duplicate_and_reordered_webhooks_make_exactly_the_events_of_a_clean_run() -> None:
    with world(webhooks=True) as clean:
        clean.run(JOURNEY_MINUTES)
    with world(webhooks=True) as messy:
        assert messy.sandbox.webhooks is not None
        messy.sandbox.webhooks.set_fault(WebhookFaultKind.DUPLICATE, count=None)
        messy.sandbox.webhooks.set_fault(WebhookFaultKind.OUT_OF_ORDER, count=None)
        messy.run(JOURNEY_MINUTES)

    assert clean.event_ids() and messy.event_ids() == clean.event_ids()
    assert len(messy.events) == len(clean.events)


def test_a_wrong_key_is_401_and_enqueues_nothing_and_the_feed_still_carries_the_change() -> None:
    with world(webhooks=True, shipments=1) as w:
        assert w.sandbox.webhooks is not None
        w.sandbox.webhooks.set_fault(WebhookFaultKind.WRONG_KEY, count=None)
        # Before any schedule runs: deliver the first step's webhook alone
        w.pipeline.clock = START + timedelta(minutes=8)
        w.sandbox.deliver_webhooks()
        depth_after_webhooks = w.pipeline.queue_depth("HintQueueUrl")
        w.run(JOURNEY_MINUTES)

    sent = w.sandbox.webhooks.sent
    assert sent and {s.status for s in sent} == {401}
    assert depth_after_webhooks == 0
    w.assert_nothing_missed()


def test_a_change_the_feed_leaves_out_is_caught_by_the_sweep_within_its_period() -> None:
    # Given the feed healthy (other shipments keep it busy) and no webhooks
    with world(webhooks=False, shipments=4) as w:
        w.run(40)
        quiet = w.keys[0]
        # When the feed leaves out the shipment's next update (its third step, at 06:44,
        # while it is in transit: swept every 40 minutes)
        (hidden,) = w.sandbox.leave_out(quiet.waybill, quiet.cp_id, steps=1)
        w.run(50)

    # Then it is published all the same, within the transit sweep's period of its reveal
    scans = [
        s for s in w.sandbox.ground_truth(w.now) if s.waybill == quiet.waybill and s.step == hidden
    ]
    assert scans
    published = {
        e.checkpoint_id: e
        for e in w.events
        if e.event_type == "shipment.scan_added" and e.waybill == quiet.waybill
    }
    for scan in scans:
        event = published[scan.checkpoint_id]
        assert event.published_at is not None
        assert event.published_at - scan.recorded_at <= timedelta(minutes=40)
    # (The first minutes were at the full cadence: the feed had listed nothing yet.)
    assert set(w.modes[15:]) == {"sweep"}


def test_feed_failure_switches_to_the_full_cadence_and_back() -> None:
    with world(webhooks=False, shipments=3) as w:
        w.run(20)
        healthy = list(w.modes)
        w.sandbox.set_feed_fault(FeedFaultKind.DOWN, count=None)
        w.modes.clear()
        w.run(30)
        while_down = list(w.modes)
        w.sandbox.feed.clear()
        w.modes.clear()
        w.run(40)
        recovered = list(w.modes)
        state = w.pipeline.local.runtime.container("DispatchPollsFunction").feed_state.load()

    assert healthy[-1] == "sweep"
    # Down from 06:20 (last read at 06:15): past 15 minutes behind, the full cadence is back
    assert while_down[:10] == ["sweep"] * 10
    assert while_down[-1] == "full"
    # Once the feed answers, it catches up and the sweep returns
    assert recovered[-1] == "sweep"
    assert state is not None and state.last_error is None
    # Nothing was missed meanwhile
    w.assert_nothing_missed()


def test_the_feed_survives_429_a_second_page_and_an_empty_window() -> None:
    with world(webhooks=False, shipments=6) as w:
        w.run(20)
        w.sandbox.set_feed_fault(FeedFaultKind.RATE_LIMITED, count=1, retry_after="0")
        w.sandbox.set_feed_fault(FeedFaultKind.SECOND_PAGE, count=3)
        w.sandbox.set_feed_fault(FeedFaultKind.EMPTY, count=1)
        w.run(JOURNEY_MINUTES)

    w.assert_nothing_missed()
    assert "full" not in w.modes[20:]
    assert w.sandbox.feed.calls > JOURNEY_MINUTES // 5


pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
