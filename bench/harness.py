"""The stack under measurement: template.yaml deployed into the counting emulator.

One `Bench` is the product (deployed from template.yaml, driven by the local
Lambda runtime), the naive baseline's own table and topic in the same emulator,
and the Clickpost sandbox both of them poll. Shipments are seeded straight into
the tables with BatchWriteItem, already in the steady state a poll of the
sandbox's current answer would leave, so a poll finds nothing new unless the
benchmark moves a shipment on.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from bench.calls import carrier_mix
from bench.emulator import CountingMotoServer
from bench.naive import NaivePoller, against_sandbox
from trackwatch.adapters.aws import AwsClients
from trackwatch.adapters.shipments_table import (
    contact_value,
    encode_state,
    stored_time,
    to_item,
)
from trackwatch.data import load_catalogue
from trackwatch.logic.cadence import cadence_class, due_key
from trackwatch.logic.diff import diff
from trackwatch.models.clickpost import DEFAULT_SOURCE_TIMEZONE, AwbResult
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.policy import Cadence, zone
from trackwatch.models.record import Contact
from trackwatch_cli.deployment import LocalStack, OverLocalStack, SimulatedClock, start_stack
from trackwatch_cli.sandbox import DEFAULT_KEY, DEFAULT_USERNAME, SandboxServer
from trackwatch_cli.sandbox.journey import ShipmentIdentity, render_awb

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
REGION = "us-east-1"
PIPELINE = {"PollShipmentsFunction", "PublishEventsFunction"}
#: Carriers and their shares of the shipments: uneven, so part-filled calls happen.
CARRIER_WEIGHTS = {4: 35, 5: 25, 6: 15, 7: 10, 8: 8, 9: 5, 10: 2}
#: The sandbox's journeys a benchmark shipment may follow (the invalid one has no scans).
JOURNEYS = (
    "delivered_smoothly",
    "edd_change",
    "failed_then_delivered",
    "late_scan_after_delivery",
    "rto",
    "stuck",
)
#: Never advance a journey on a poll: the benchmark moves shipments on itself.
NEVER = 10**12
START = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Shipment:
    """One benchmark shipment: who it is, which journey it follows, where it stands."""

    key: ShipmentKey
    journey: str
    step: int


def shipments(count: int) -> list[Shipment]:
    """`count` shipments over uneven carriers, each mid-way along one of the journeys."""
    from trackwatch_cli.sandbox import load_journeys

    journeys = load_journeys()
    made = []
    for i, cp_id in enumerate(carrier_mix(count, CARRIER_WEIGHTS)):
        name = JOURNEYS[i % len(JOURNEYS)]
        made.append(
            Shipment(
                key=ShipmentKey.of(cp_id, f"BW{cp_id:02d}{i:08d}"),
                journey=name,
                step=journeys[name].last_step // 2,
            )
        )
    return made


def _steady_item(shipment: Shipment, sandbox: SandboxServer, now: datetime) -> dict[str, Any]:
    """The item a poll of the sandbox's current answer would have left behind."""
    key = shipment.key
    identity = ShipmentIdentity(
        waybill=key.waybill,
        cp_id=key.cp_id,
        courier_name=sandbox.carriers.get(key.cp_id, f"Carrier {key.cp_id}"),
        order_id=f"ORD{key.cp_id:03d}{key.waybill[-6:]}",
        start=sandbox.journey_start,
    )
    rendered = render_awb(sandbox.journeys[shipment.journey], shipment.step, identity)
    result = AwbResult.model_validate(
        rendered, context={"source_tz": zone(DEFAULT_SOURCE_TIMEZONE)}
    )
    catalogue = load_catalogue()
    state = diff(None, key, result, now, catalogue).state
    return to_item(
        {
            "pk": key.pk,
            "version": 2,
            **encode_state(state),
            "registered_at": stored_time(now - timedelta(hours=1)),
            "contact": contact_value(contact_of(key)),
            "due_key": due_key(key.pk, cadence_class(state, catalogue), Cadence()),
        }
    )


#: The bench's customers get messages on one channel: half by WhatsApp (SMS behind it),
#: half by SMS; a phone number each (the number itself is never used).
BENCH_PHONE = "+919800000000"


def contact_of(key: ShipmentKey) -> Contact:
    """A shipment's contact: WhatsApp first or SMS alone, alternately by waybill."""
    whatsapp = zlib.crc32(key.pk.encode()) % 2 == 0
    return Contact(phone=BENCH_PHONE, channels=("whatsapp", "sms") if whatsapp else ("sms",))


def batch_write(
    clients: AwsClients, table: str, items: Sequence[dict[str, Any]], workers: int = 4
) -> None:
    """BatchWriteItem in chunks of 25 (unprocessed items retried), a few chunks at once."""
    client = clients.dynamodb

    def write(chunk: Sequence[dict[str, Any]]) -> None:
        request: dict[str, Any] = {table: [{"PutRequest": {"Item": i}} for i in chunk]}
        while request:
            answer = client.batch_write_item(RequestItems=request)
            request = dict(answer.get("UnprocessedItems") or {})

    chunks = [items[i : i + 25] for i in range(0, len(items), 25)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(write, chunks))


@dataclass
class Bench(OverLocalStack):
    """The deployed product, the naive baseline's resources, the sandbox, one clock."""

    server: CountingMotoServer
    sandbox: SandboxServer
    local: LocalStack
    naive: NaivePoller
    naive_table: str
    naive_topic: str
    seeded: list[Shipment] = field(default_factory=list)

    @property
    def clock(self) -> datetime:
        """The simulated time every function reads."""
        return self.local.clock.now

    # ------------------------------------------------------------------ seeding

    def seed(self, batch: list[Shipment], *, naive: bool = True) -> None:
        """Put `batch` in the sandbox at their steps and in the tables, steady."""
        for s in batch:
            self.sandbox.add_shipment(s.key.waybill, s.key.cp_id, s.journey)
            if s.step:
                self.sandbox.advance(s.key.waybill, s.key.cp_id, s.step)
        items = [_steady_item(s, self.sandbox, self.clock) for s in batch]
        with self.server.log.during("seed"):
            batch_write(self.clients, self.stack.outputs["ShipmentsTableName"], items)
            if naive:
                # The naive design has no due index: the same items without due_key.
                batch_write(
                    self.clients,
                    self.naive_table,
                    [{k: v for k, v in i.items() if k != "due_key"} for i in items],
                )
            # The seed's own stream records (inserts, no outbox) are consumed here, not
            # counted against the first cycle.
            self.runtime.settle(only=PIPELINE)
        self.seeded.extend(batch)

    def advance(self, batch: Sequence[Shipment]) -> None:
        """Move each shipment of `batch` one step on its journey."""
        for s in batch:
            self.sandbox.advance(s.key.waybill, s.key.cp_id)

    # ------------------------------------------------------------------ cycles

    def cycle(self, phase: str) -> None:
        """One poll of every active shipment, as `trackwatch local --cycles` runs it."""
        with self.server.log.during(phase):
            self.runtime.tick(self.clock, scope="all")
            self.runtime.settle(only=PIPELINE)

    def naive_cycle(self, phase: str, limit: int | None = None) -> None:
        """One cycle of the naive poller."""
        with self.server.log.during(phase):
            self.naive.cycle(limit)

    def tick(self, minutes: int = 1) -> None:
        """Move the shared clock on."""
        self.local.clock.advance(timedelta(minutes=minutes))

    def events(self, phase: str) -> list[tuple[str, str]]:
        """(event_type, event_id) of every event published to SNS during `phase`."""
        return [(kind, event_id) for kind, event_id, _ in self.routed(phase)]

    def routed(self, phase: str) -> list[tuple[str, str, tuple[str, ...]]]:
        """(event_type, event_id, notifier channels routed to) of every event published to
        SNS during `phase`."""
        published = [e.split(" ") for r in self.server.log.of(phase) for e in r.events]
        return [
            (parts[0], parts[1], tuple(parts[2].split(",")) if len(parts) > 2 else ())
            for parts in published
        ]


def _quiet_topic(clients: AwsClients, topic_arn: str) -> None:
    """Take the subscriber queues off the topic: the benchmark measures up to the publish.

    Nothing consumes those queues here, and moto's SQS does work in proportion to a
    queue's length on every delivery, which would make a long run quadratic. Deliveries
    to SQS carry no SNS charge, and moto makes them without a request to count.
    """
    sns = clients.sns
    pages = sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn)
    for page in pages:
        for subscription in page.get("Subscriptions", []):
            sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])


@contextmanager
def open_bench(server: CountingMotoServer, sandbox: SandboxServer, log: IO[str]) -> Iterator[Bench]:
    """A fresh stack in a freshly reset emulator, polling `sandbox`; the clock starts at START."""
    server.empty()
    sandbox.advance_every = NEVER
    sandbox.carriers.update({cp: f"Carrier {cp}" for cp in CARRIER_WEIGHTS})
    clients = AwsClients.emulator(server.endpoint, REGION)
    with server.log.during("setup"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = start_stack(
            TEMPLATE,
            clients,
            SimulatedClock(START),
            stack_name="trackwatch-bench",
            clickpost_credentials=(DEFAULT_KEY, DEFAULT_USERNAME),
            # The sandbox's journeys are dated January 2025 and advance a step per poll: the
            # delay checks would find every shipment a year overdue (tests/integration too).
            # With them off, the dispatcher sends no check-only visits either: the bill prices
            # those on their own line (bench/cost.py), not inside the measured poll units.
            settings={
                "CLICKPOST_BASE_URL": sandbox.base_url,
                "DELAY_CHECKS": "false",
                "DELAY_CHECK_MINUTES": "0",
            },
            log=log,
        )
        dynamodb = clients.dynamodb
        naive_table = "naive-shipments"
        dynamodb.create_table(
            TableName=naive_table,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        sns = clients.sns
        naive_topic = sns.create_topic(Name="naive-events")["TopicArn"]
        _quiet_topic(clients, local.stack.outputs["ShipmentEventsTopicArn"])
    naive = against_sandbox(
        table=naive_table,
        topic_arn=naive_topic,
        base_url=sandbox.base_url,
        clients=clients,
        clock=local.clock,
    )
    yield Bench(
        server=server,
        sandbox=sandbox,
        local=local,
        naive=naive,
        naive_table=naive_table,
        naive_topic=naive_topic,
    )
