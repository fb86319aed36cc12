"""Notifiers' queues as places to put work: a delayed copy of a message held for quiet hours
(the notifier's own queue), and a message handed to the next channel (that channel's queue).

Both send the event exactly as the topic delivers it (raw), with message attributes that
say when it may go at the earliest (`not_before`) and, for a fallback, which channel did not
deliver and why (`fallback_from`, `fallback_reason`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from trackwatch.errors import ConfigurationError, StorageError
from trackwatch.logic.pacing import MAX_SQS_DELAY_S
from trackwatch.models.events import TOPIC_EVENT_ADAPTER, TopicEvent
from trackwatch.models.notification import (
    FALLBACK_FROM_ATTRIBUTE,
    FALLBACK_REASON_ATTRIBUTE,
    NOT_BEFORE_ATTRIBUTE,
    Channel,
    Deferral,
    Fallback,
    NotificationRequest,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

_OURS = frozenset({NOT_BEFORE_ATTRIBUTE, FALLBACK_FROM_ATTRIBUTE, FALLBACK_REASON_ATTRIBUTE})


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def _send(
    client: SQSClient,
    url: str,
    event: TopicEvent,
    delay_s: int,
    attributes: Mapping[str, Any],
) -> None:
    try:
        client.send_message(
            QueueUrl=url,
            MessageBody=TOPIC_EVENT_ADAPTER.dump_json(event).decode(),
            DelaySeconds=delay_s,
            MessageAttributes=dict(attributes),
        )
    except ClientError as exc:
        raise StorageError(f"SQS SendMessage failed: {exc.response['Error']['Code']}") from exc
    except BotoCoreError as exc:
        raise StorageError(f"SQS SendMessage failed: {type(exc).__name__}") from exc


def fallback_attributes(fallback: Fallback, not_before: datetime | None) -> dict[str, Any]:
    """The message attributes of a fallback request."""
    attributes: dict[str, Any] = {
        FALLBACK_FROM_ATTRIBUTE: _string(fallback.from_channel),
        FALLBACK_REASON_ATTRIBUTE: _string(fallback.reason),
    }
    if not_before is not None:
        attributes[NOT_BEFORE_ATTRIBUTE] = _string(not_before.isoformat())
    return attributes


class NotifyQueue:
    """Implements trackwatch.ports.Deferrer on SQS SendMessage with DelaySeconds."""

    def __init__(self, queue_url: str, client: SQSClient) -> None:
        self._url = queue_url
        self._client = client

    def defer(self, request: NotificationRequest, deferral: Deferral) -> None:
        """Send the event back to the queue, invisible for `deferral.delay_s`, marked not_before
        (and still marked as a fallback, if it is one)."""
        attributes: dict[str, Any] = {
            name: {"DataType": data_type, "StringValue": value}
            for name, (data_type, value) in request.attributes.items()
            if name not in _OURS
        }
        if request.fallback is not None:
            attributes.update(fallback_attributes(request.fallback, None))
        attributes[NOT_BEFORE_ATTRIBUTE] = _string(deferral.not_before.isoformat())
        _send(self._client, self._url, request.event, deferral.delay_s, attributes)


class ChannelQueues:
    """Implements trackwatch.ports.Handover: the next channel's notifier queue."""

    def __init__(self, urls: Mapping[Channel, str], client: SQSClient, clock: Any) -> None:
        self._urls = dict(urls)
        self._client = client
        self._clock = clock

    def hand_over(
        self,
        event: TopicEvent,
        to_channel: Channel,
        fallback: Fallback,
        not_before: datetime | None = None,
    ) -> None:
        """Send `event` to `to_channel`'s queue as a fallback request (delayed up to SQS's 15
        minutes towards `not_before`; the notifier holds it the rest of the way)."""
        url = self._urls.get(to_channel)
        if url is None:
            raise ConfigurationError(f"no queue to hand {to_channel} messages to")
        delay = 0
        if not_before is not None:
            remaining = (not_before - self._clock()).total_seconds()
            delay = max(0, min(MAX_SQS_DELAY_S, math.ceil(remaining)))
        _send(self._client, url, event, delay, fallback_attributes(fallback, not_before))
