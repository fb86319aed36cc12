"""A whole trackwatch stack in moto, driven in-process, polling the sandbox over loopback."""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from trackwatch import wiring
from trackwatch.adapters import aws
from trackwatch.config import cadence_settings
from trackwatch.models.events import EVENT_ADAPTER, ShipmentEvent
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.record import ShipmentRecord
from trackwatch.models.registration import Registration
from trackwatch.services.registration import register_all
from trackwatch_cli.runtime import LocalRuntime
from trackwatch_cli.sandbox import SandboxServer
from trackwatch_cli.stack import DeployedStack, deploy

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = {"PollShipmentsFunction", "PublishEventsFunction"}


@dataclass
class Pipeline:
    """The stack, the runtime driving it, the sandbox it polls, and what subscribers got."""

    stack: DeployedStack
    runtime: LocalRuntime
    sandbox: SandboxServer
    received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    clock: datetime = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)

    def register(self, *keys: ShipmentKey) -> None:
        results = register_all(
            [Registration(waybill=k.waybill, cp_id=k.cp_id) for k in keys],
            wiring.shipments_table(),
            self.clock,
            cadence_settings(),
        )
        assert all(r.error is None and r.rejected is None for r in results), results

    def cycle(self, *, advance: timedelta = timedelta(minutes=1)) -> None:
        """Poll every active shipment once and let every consequence settle."""
        self.runtime.tick(self.clock, scope="all")
        self.runtime.settle(only=PIPELINE)
        self.clock += advance

    def drain(self, queue: str) -> list[dict[str, Any]]:
        """The messages now on a subscriber queue, removed from it (and kept in `received`)."""
        sqs = boto3.client("sqs", region_name=self.stack.region)
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
        table = wiring.shipments_table()
        return table.get_many(table.active() + list(self._all_keys()), consistent=True)

    def _all_keys(self) -> list[ShipmentKey]:
        client = boto3.client("dynamodb", region_name=self.stack.region)
        name = self.stack.outputs["ShipmentsTableName"]
        items = client.scan(TableName=name, ProjectionExpression="pk")["Items"]
        return [ShipmentKey.from_pk(i["pk"]["S"]) for i in items]

    def queue_depth(self, output: str) -> int:
        sqs = boto3.client("sqs", region_name=self.stack.region)
        attributes = sqs.get_queue_attributes(
            QueueUrl=self.stack.outputs[output],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


def _atomic_conditional_writes() -> None:
    """DynamoDB applies a conditional write atomically; in-process moto does not across
    threads (two writers can both pass `version = :v`). Serialise writes, as DynamoDB does."""
    client = aws.dynamodb()
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
def open_pipeline(template: Path, sandbox: SandboxServer) -> Iterator[Pipeline]:
    """Deploy `template` into in-process moto and drive it with the local runtime."""
    saved = dict(os.environ)
    os.environ.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
    )
    wiring.reset()
    try:
        with mock_aws(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not supported by moto.*")
            stack = deploy(template, stack_name="trackwatch-it")
            secret_name = stack.functions["PollShipmentsFunction"].environment[
                "CLICKPOST_SECRET_NAME"
            ]
            boto3.client("secretsmanager").create_secret(
                Name=secret_name,
                SecretString=json.dumps({"key": "sandbox-key", "username": "sandbox-user"}),
            )
            runtime = LocalRuntime(
                stack,
                environment={
                    "CLICKPOST_BASE_URL": sandbox.base_url,
                    # Fail fast in tests: a short budget and small back-offs.
                    "CLICKPOST_RETRY_BUDGET_S": "3",
                    "CLICKPOST_BACKOFF_BASE_S": "0.01",
                    "CLICKPOST_BACKOFF_CAP_S": "0.05",
                    "CLICKPOST_READ_TIMEOUT_S": "0.5",
                },
            )
            wiring.reset()
            _atomic_conditional_writes()
            yield Pipeline(stack=stack, runtime=runtime, sandbox=sandbox)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        wiring.reset()
