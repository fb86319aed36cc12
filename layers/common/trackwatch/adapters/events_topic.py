"""Publishing events to the SNS topic, ten at a time, with routing attributes."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from trackwatch.errors import PoisonEventsError, PublishError
from trackwatch.models.events import (
    TOPIC_EVENT_ADAPTER,
    TOPIC_EVENT_LIST_ADAPTER,
    TopicEvent,
    routing_attributes,
)

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

_BATCH = 10
_ATTEMPTS = 3


def message_attributes(event: TopicEvent) -> dict[str, dict[str, str]]:
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


def message_body(event: TopicEvent) -> str:
    """The event exactly as subscribers receive it."""
    return TOPIC_EVENT_ADAPTER.dump_json(event).decode()


class EventsTopic:
    """Implements trackwatch.ports.EventPublisher (shipment events) and OrderEventPublisher
    (order events, on the same topic) on SNS PublishBatch."""

    def __init__(
        self,
        topic_arn: str,
        client: SNSClient,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._arn = topic_arn
        self._client = client
        self._sleep = sleep

    def publish(self, events: Sequence[TopicEvent]) -> None:
        """Publish all events; entries that fail are retried, then PublishError.

        Entries SNS refuses as the sender's fault (their content) are not retried: the
        others are published, then PoisonEventsError carries the refused ones.
        """
        client = self._client
        pending = list(events)
        refused: list[TopicEvent] = []
        refused_codes: set[str] = set()
        for attempt in range(_ATTEMPTS):
            failed: list[TopicEvent] = []
            codes: set[str] = set()
            for start in range(0, len(pending), _BATCH):
                chunk = pending[start : start + _BATCH]
                for failure in self._publish_chunk(client, chunk):
                    event = chunk[int(failure["Id"])]
                    code = failure.get("Code", "unknown")
                    if failure.get("SenderFault"):
                        refused.append(event)
                        refused_codes.add(code)
                    else:
                        failed.append(event)
                        codes.add(code)
            if not failed:
                break
            pending = failed
            if attempt + 1 < _ATTEMPTS:
                self._sleep(0.2 * 2**attempt)
        else:
            raise PublishError(
                f"{len(pending)} of {len(events)} events not published to SNS "
                f"after {_ATTEMPTS} attempts ({', '.join(sorted(codes))})"
            )
        if refused:
            raise PoisonEventsError(
                f"SNS refused {len(refused)} event(s) for their content "
                f"({', '.join(sorted(refused_codes))})",
                TOPIC_EVENT_LIST_ADAPTER.dump_json(refused).decode(),
                event_ids=tuple(e.event_id for e in refused),
                events=len(refused),
            )

    def _publish_chunk(self, client: SNSClient, chunk: list[TopicEvent]) -> list[Any]:
        """PublishBatch of up to ten events; the failed entries (a whole failed request
        counts as every entry failed, not by the sender's fault)."""
        entries: list[Any] = [
            {
                "Id": str(i),
                "Message": message_body(event),
                "MessageAttributes": message_attributes(event),
            }
            for i, event in enumerate(chunk)
        ]
        try:
            answer = client.publish_batch(TopicArn=self._arn, PublishBatchRequestEntries=entries)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            return [{"Id": str(i), "Code": code, "SenderFault": False} for i in range(len(chunk))]
        except BotoCoreError as exc:
            code = type(exc).__name__
            return [{"Id": str(i), "Code": code, "SenderFault": False} for i in range(len(chunk))]
        return list(answer.get("Failed", []))
