"""The stack in moto with the shipments API and IngestQueue, driven by the local runtime."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.integration.conftest import START, emulated_aws
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.record import ShipmentRecord
from trackwatch_cli.deployment import LocalStack, OverLocalStack, SimulatedClock, start_stack

ROOT = Path(__file__).resolve().parents[2]
STACK_NAME = "trackwatch-shipments-it"


@dataclass
class HttpAnswer:
    """An API Gateway proxy answer, decoded."""

    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class ShipmentsStack(OverLocalStack):
    """The deployed stack and the runtime that invokes its functions."""

    local: LocalStack

    def http(
        self,
        method: str,
        path: str,
        body: str | bytes | dict[str, Any] | list[Any] | None = None,
        query: dict[str, str] | None = None,
    ) -> HttpAnswer:
        """Invoke ShipmentsApiFunction with the event API Gateway's HTTP API (v2) sends."""
        result = self.runtime.invoke("ShipmentsApiFunction", http_event(method, path, body, query))
        text = result.get("body") or ""
        return HttpAnswer(
            status=int(result["statusCode"]),
            body=json.loads(text) if text else None,
            headers=dict(result.get("headers") or {}),
        )

    def send_to_ingest(self, body: str) -> None:
        self.clients.sqs.send_message(
            QueueUrl=self.stack.outputs["IngestQueueUrl"], MessageBody=body
        )

    def ingest(self) -> int:
        """Deliver IngestQueue's messages to IngestShipmentsFunction until it is empty."""
        (source,) = self.stack.sources_of("IngestShipmentsFunction")
        return self.runtime.drain_queue(source)

    def messages(self, output: str) -> list[dict[str, Any]]:
        """Every message on a queue (removed), with its attributes."""
        sqs = self.clients.sqs
        url = self.stack.outputs[output]
        got: list[dict[str, Any]] = []
        while True:
            answer = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            )
            messages = answer.get("Messages", [])
            if not messages:
                return got
            for message in messages:
                got.append(
                    {
                        "body": message["Body"],
                        "attributes": {
                            k: v.get("StringValue")
                            for k, v in message.get("MessageAttributes", {}).items()
                        },
                    }
                )
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def record(self, cp_id: int, waybill: str) -> ShipmentRecord | None:
        return self.local.container().shipments.get(ShipmentKey.of(cp_id, waybill))

    def item_count(self) -> int:
        return int(
            self.clients.dynamodb.scan(
                TableName=self.stack.outputs["ShipmentsTableName"], Select="COUNT"
            )["Count"]
        )


def http_event(
    method: str,
    path: str,
    body: str | bytes | dict[str, Any] | list[Any] | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The payload format 2.0 event of an HTTP API request (`path` already percent-encoded)."""
    if isinstance(body, dict | list):
        body = json.dumps(body)
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    raw_query = "&".join(f"{quote(k)}={quote(v)}" for k, v in (query or {}).items())
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": {"content-type": "application/json", **(headers or {})},
        "queryStringParameters": query or None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "local.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "pytest",
            },
            "requestId": "local",
            "routeKey": "$default",
            "stage": "$default",
            "time": "27/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1795694400000,
        },
        "body": body,
        "isBase64Encoded": False,
    }


@pytest.fixture
def shipments_stack() -> Iterator[ShipmentsStack]:
    with emulated_aws() as clients:
        local = start_stack(
            ROOT / "template.yaml",
            clients,
            SimulatedClock(START),
            stack_name=STACK_NAME,
            real_time_waits=False,
        )
        yield ShipmentsStack(local=local)
