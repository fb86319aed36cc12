"""Publishing events to the SNS topic, ten at a time, with routing attributes."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from trackwatch.errors import PublishError
from trackwatch.models.events import EVENT_ADAPTER, ShipmentEvent, routing_attributes

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

_BATCH = 10
_ATTEMPTS = 3


def message_attributes(event: ShipmentEvent) -> dict[str, dict[str, str]]:
    """SNS message attributes: numbers as Number, booleans as 'true'/'false' strings."""
    attributes: dict[str, dict[str, str]] = {}
    for name, value in routing_attributes(event).items():
        if isinstance(value, bool):
            attributes[name] = {"DataType": "String", "StringValue": str(value).lower()}
        elif isinstance(value, int):
            attributes[name] = {"DataType": "Number", "StringValue": str(value)}
        else:
            attributes[name] = {"DataType": "String", "StringValue": value}
    return attributes


def message_body(event: ShipmentEvent) -> str:
    """The event exactly as subscribers receive it."""
    return EVENT_ADAPTER.dump_json(event).decode()


class EventsTopic:
    """Implements trackwatch.ports.EventPublisher on SNS PublishBatch."""

    def __init__(
        self,
        topic_arn: str,
        client: SNSClient,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._arn = topic_arn
        self._client = client
        self._sleep = sleep

    def publish(self, events: Sequence[ShipmentEvent]) -> None:
        """Publish all events; entries that fail are retried, then PublishError."""
        client = self._client
        pending = list(events)
        for attempt in range(_ATTEMPTS):
            failed: list[ShipmentEvent] = []
            codes: set[str] = set()
            for start in range(0, len(pending), _BATCH):
                chunk = pending[start : start + _BATCH]
                entries: list[Any] = [
                    {
                        "Id": str(i),
                        "Message": message_body(event),
                        "MessageAttributes": message_attributes(event),
                    }
                    for i, event in enumerate(chunk)
                ]
                try:
                    answer = client.publish_batch(
                        TopicArn=self._arn, PublishBatchRequestEntries=entries
                    )
                except ClientError as exc:
                    codes.add(exc.response["Error"]["Code"])
                    failed.extend(chunk)
                    continue
                except BotoCoreError as exc:
                    codes.add(type(exc).__name__)
                    failed.extend(chunk)
                    continue
                for failure in answer.get("Failed", []):
                    codes.add(failure.get("Code", "unknown"))
                    failed.append(chunk[int(failure["Id"])])
            if not failed:
                return
            pending = failed
            if attempt + 1 < _ATTEMPTS:
                self._sleep(0.2 * 2**attempt)
        raise PublishError(
            f"{len(pending)} of {len(events)} events not published to SNS "
            f"after {_ATTEMPTS} attempts ({', '.join(sorted(codes))})"
        )
