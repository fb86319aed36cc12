"""A three-box order end to end through the local stack: the sandbox's answers, the poller,
the publisher, the roll-up (stream and settle ticks), the topic's filters and the notifiers.

The customer hears each milestone once per channel for the whole order, a failed attempt
and a return of the box that fails per box, and that the order was only partly delivered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from rich.console import Console
from typer.testing import CliRunner

from tests.integration.conftest import ROOT, START, emulated_aws
from tests.notify_samples import EMAIL, PHONE
from trackwatch.bootstrap import Overrides
from trackwatch.models.events import (
    TOPIC_EVENT_ADAPTER,
    OrderCompleted,
    OrderStatusChanged,
    TopicEvent,
    is_order_event,
)
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.notification import Message
from trackwatch.models.registration import Registration
from trackwatch_cli import orders_cli
from trackwatch_cli.deployment import LocalStack, SimulatedClock, start_stack
from trackwatch_cli.local_senders import RecordingSender
from trackwatch_cli.main import app
from trackwatch_cli.sandbox import SandboxServer

ORDER = "ORD-3BOX"
#: Two boxes delivered smoothly; the third fails twice and goes back (the sandbox's "rto").
BOXES = {
    ShipmentKey.of(4, "SBXORD000001"): "delivered_smoothly",
    ShipmentKey.of(4, "SBXORD000002"): "delivered_smoothly",
    ShipmentKey.of(4, "SBXORD000003"): "rto",
}
FAILING = ShipmentKey.of(4, "SBXORD000003")
#: Journeys' steps, one per cycle: the rto journey has ten.
CYCLES = 10
#: Longer than the order window (10 minutes): each cycle's changes settle on their own.
BETWEEN_CYCLES = timedelta(minutes=15)


class Order:
    """The stack, the sandbox it polls, and what the customer and subscribers received."""

    def __init__(self, local: LocalStack, sandbox: SandboxServer, email: RecordingSender) -> None:
        self.local = local
        self.sandbox = sandbox
        self.email = email

    def register(self) -> None:
        results = self.local.container().registration_service.register(
            [
                Registration(
                    waybill=key.waybill,
                    cp_id=key.cp_id,
                    order_id=ORDER,
                    phone=PHONE,
                    email=EMAIL,
                    channels=("sms", "email"),
                )
                for key in BOXES
            ]
        )
        assert all(r.error is None and r.rejected is None for r in results), results

    def run(self, cycles: int = CYCLES) -> None:
        """Each cycle: poll everything, let it flow, then let the order's window close."""
        runtime = self.local.runtime
        for _ in range(cycles):
            runtime.tick(self.local.clock.now, scope="all")
            runtime.settle()
            self.local.clock.advance(BETWEEN_CYCLES)
            self.local.release_delayed()
            runtime.settle()
            self.sandbox.advance_all()

    def messages(self) -> list[Message]:
        return [*self.local.senders.sms.messages, *self.email.messages]

    def events(self) -> list[tuple[TopicEvent, dict[str, str]]]:
        """Every event on the topic (AllEventsQueue), drained, with its message attributes."""
        sqs = self.local.clients.sqs
        url = self.local.stack.outputs["AllEventsQueueUrl"]
        found: list[tuple[TopicEvent, dict[str, str]]] = []
        while messages := sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", []):
            found.extend(
                (
                    TOPIC_EVENT_ADAPTER.validate_json(m["Body"]),
                    {k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()},
                )
                for m in messages
            )
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
        return found


@pytest.fixture
def order() -> Iterator[Order]:
    sandbox = SandboxServer(advance_every=10**9).start()
    try:
        for key, journey in BOXES.items():
            sandbox.add_shipment(key.waybill, key.cp_id, journey, order_id=ORDER)
        email = RecordingSender("email")
        with emulated_aws() as clients:
            local = start_stack(
                ROOT / "template.yaml",
                clients,
                SimulatedClock(START),
                stack_name="trackwatch-orders",
                real_time_waits=False,
                settings={
                    "CLICKPOST_BASE_URL": sandbox.base_url,
                    "CLICKPOST_RETRY_BUDGET_S": "3",
                    "CLICKPOST_BACKOFF_BASE_S": "0.01",
                    "CLICKPOST_BACKOFF_CAP_S": "0.05",
                },
                overrides={"NotifyEmailFunction": Overrides(senders={"email": email})},
            )
            yield Order(local, sandbox, email)
    finally:
        sandbox.stop()


def test_a_three_box_order_says_each_milestone_once_per_channel_and_the_partial_delivery(
    order: Order, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three boxes of one order, two that will be delivered and one that will fail
    order.register()

    # When their journeys run through the stack, one window per step
    order.run()

    # Then per channel: each milestone once for the order, the partial delivery once
    messages = order.messages()
    by_channel = {
        channel: Counter(m.kind for m in messages if m.channel == channel)
        for channel in ("sms", "email")
    }
    for channel, kinds in by_channel.items():
        assert kinds["order_shipped"] == 1, (channel, kinds)
        assert kinds["order_out_for_delivery"] == 1, (channel, kinds)
        assert kinds["order_delivered"] == 1, (channel, kinds)
        assert kinds["order_partially_delivered"] == 1, (channel, kinds)
        # No box's own shipped / out for delivery / delivered: the order said them
        assert kinds["shipped"] == kinds["out_for_delivery"] == kinds["delivered"] == 0, kinds
        # The failing box's attempt and return are its own
        assert kinds["failed_delivery"] >= 1, (channel, kinds)
        assert kinds["rto_started"] == 1, (channel, kinds)
    bodies = [m.body for m in messages if m.channel == "sms"]
    assert any("3 of 3 parcels have been shipped" in b for b in bodies), bodies
    assert any("2 of 3 parcels have been delivered" in b for b in bodies), bodies

    # And the failed attempts and the return were the failing box's own events
    with_attributes = order.events()
    events = [event for event, _ in with_attributes]
    per_box = {m.event_id for m in messages if m.kind in ("failed_delivery", "rto_started")}
    waybills = {e.waybill for e in events if e.event_id in per_box and not is_order_event(e)}
    assert waybills == {FAILING.waybill}

    # And the topic carried the order's events: completed once, with each box's outcome
    completed = [e for e in events if isinstance(e, OrderCompleted)]
    assert len(completed) == 1
    outcome = {(m.waybill, m.standing) for m in completed[0].members}
    assert outcome == {
        ("SBXORD000001", "delivered"),
        ("SBXORD000002", "delivered"),
        ("SBXORD000003", "returned"),
    }
    stages = [(e.stage, e.reached) for e in events if isinstance(e, OrderStatusChanged)]
    assert stages == [("shipped", 3), ("out_for_delivery", 3), ("delivered", 2)]
    # (a subscriber tells them apart by their attributes: no cp_id, an order's size)
    for event, attributes in with_attributes:
        if is_order_event(event):
            assert attributes["event_type"].startswith("order."), attributes
            assert attributes["order_members"] == "3" and "cp_id" not in attributes
        else:
            assert attributes["event_type"].startswith("shipment."), attributes

    # And the order reads as it stands
    shown = order.local.container().orders_service.show(ORDER)
    assert (shown.total, shown.complete, shown.milestone) == (3, True, "delivered")
    assert shown.counts == {"delivered": 2, "returned": 1}

    # And `trackwatch orders show` reads it from the stack
    monkeypatch.setattr(orders_cli, "console", Console(width=200, color_system=None))
    result = CliRunner().invoke(
        app, ["orders", "show", ORDER, "--stack", "trackwatch-orders", "--region", "us-east-1"]
    )
    assert result.exit_code == 0, result.output
    assert "SBXORD000003" in result.output and "returned" in result.output
    assert "2 of 3 delivered" in result.output
