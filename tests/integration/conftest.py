"""A whole trackwatch stack in moto, driven in-process, polling the sandbox over loopback."""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from trackwatch.adapters.aws import AwsClients
from trackwatch.bootstrap import Container
from trackwatch.models.events import EVENT_ADAPTER, ShipmentEvent
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.record import ShipmentRecord
from trackwatch.models.registration import Registration
from trackwatch_cli.deployment import LocalStack, OverLocalStack, SimulatedClock, start_stack
from trackwatch_cli.sandbox import SandboxServer

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = {"PollShipmentsFunction", "PublishEventsFunction"}
REGION = "us-east-1"
START = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


@dataclass
class Pipeline(OverLocalStack):
    """The stack, the runtime driving it, the sandbox it polls, and what subscribers got."""

    local: LocalStack
    sandbox: SandboxServer
    received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def clock(self) -> datetime:
        return self.local.clock.now

    @clock.setter
    def clock(self, value: datetime) -> None:
        self.local.clock.now = value

    def container(self) -> Container:
        """A container over the stack's resources (the shipments API function's)."""
        return self.local.container()

    def register(self, *keys: ShipmentKey, **contact: Any) -> None:
        """Register `keys`, each with `contact` (phone, email, channels) if given."""
        results = self.container().registration_service.register(
            [Registration(waybill=k.waybill, cp_id=k.cp_id, **contact) for k in keys]
        )
        assert all(r.error is None and r.rejected is None for r in results), results

    def cycle(self, *, advance: timedelta = timedelta(minutes=1)) -> None:
        """Poll every active shipment once and let every consequence settle."""
        self.runtime.tick(self.clock, scope="all")
        self.runtime.settle(only=PIPELINE)
        self.clock += advance

    def drain(self, queue: str) -> list[dict[str, Any]]:
        """The messages now on a subscriber queue, removed from it (and kept in `received`)."""
        sqs = self.clients.sqs
        url = self.stack.outputs[f"{queue}Url"]
        got: list[dict[str, Any]] = []
        while True:
            answer = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
            )
            messages = answer.get("Messages", [])
            if not messages:
                self.received.setdefault(queue, []).extend(got)
                return got
            for message in messages:
                got.append(
                    {
                        "body": json.loads(message["Body"]),
                        "attributes": {
                            k: v.get("StringValue")
                            for k, v in message.get("MessageAttributes", {}).items()
                        },
                    }
                )
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )

    def events(self, queue: str = "AllEventsQueue") -> list[ShipmentEvent]:
        return [EVENT_ADAPTER.validate_python(m["body"]) for m in self.drain(queue)]

    def records(self) -> dict[ShipmentKey, ShipmentRecord]:
        table = self.container().shipments
        return table.get_many(table.active() + list(self._all_keys()), consistent=True)

    def _all_keys(self) -> list[ShipmentKey]:
        client = self.clients.dynamodb
        name = self.stack.outputs["ShipmentsTableName"]
        items = client.scan(TableName=name, ProjectionExpression="pk")["Items"]
        return [ShipmentKey.from_pk(i["pk"]["S"]) for i in items]

    def queue_depth(self, output: str) -> int:
        sqs = self.clients.sqs
        attributes = sqs.get_queue_attributes(
            QueueUrl=self.stack.outputs[output],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


def atomic_conditional_writes(clients: AwsClients) -> None:
    """DynamoDB applies a conditional write atomically; in-process moto does not across
    threads (two writers can both pass `version = :v`). Serialise writes, as DynamoDB does."""
    client = clients.dynamodb
    lock = threading.Lock()
    update_item = client.update_item

    def atomic(**kwargs: Any) -> Any:
        with lock:
            return update_item(**kwargs)

    client.update_item = atomic  # type: ignore[method-assign]


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    server = SandboxServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pipeline(sandbox: SandboxServer) -> Iterator[Pipeline]:
    """The stack of template.yaml, polling the sandbox."""
    with open_pipeline(ROOT / "template.yaml", sandbox) as running:
        yield running


@contextmanager
def emulated_aws() -> Iterator[AwsClients]:
    """In-process moto, and clients for it (moto supplies fake credentials itself)."""
    with mock_aws(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not supported by moto.*")
        yield AwsClients(region=REGION)


def create_keyed_table(clients: AwsClients, name: str) -> None:
    """An on-demand table keyed on `pk` alone, as the stack's orders, notifications and
    shipments tables are."""
    clients.dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )


@contextmanager
def open_pipeline(
    template: Path,
    sandbox: SandboxServer,
    *,
    clock: SimulatedClock | None = None,
    parameters: dict[str, str] | None = None,
    settings: dict[str, str] | None = None,
) -> Iterator[Pipeline]:
    """Deploy `template` into in-process moto and drive it with the local runtime (on
    `clock`, `parameters` and `settings` given over the defaults)."""
    with emulated_aws() as clients:
        local = start_stack(
            template,
            clients,
            clock or SimulatedClock(START),
            stack_name="trackwatch-it",
            real_time_waits=False,
            parameters=parameters,
            settings={
                "CLICKPOST_BASE_URL": sandbox.base_url,
                # Fail fast in tests: a short budget and small back-offs.
                "CLICKPOST_RETRY_BUDGET_S": "3",
                "CLICKPOST_BACKOFF_BASE_S": "0.01",
                "CLICKPOST_BACKOFF_CAP_S": "0.05",
                "CLICKPOST_READ_TIMEOUT_S": "0.5",
                # The sandbox's journeys advance a step per poll and are dated January 2025:
                # to this clock every shipment would look a year overdue. The delay checks
                # are tested with a sandbox whose times follow the clock (test_delays.py).
                "DELAY_CHECKS": "false",
                **(settings or {}),
            },
        )
        atomic_conditional_writes(clients)
        yield Pipeline(local=local, sandbox=sandbox)
