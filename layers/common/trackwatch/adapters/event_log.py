"""The event log in DynamoDB: every published event, kept for replay.

Item layout (one item per event):
- ``pk`` "<cp_id>#<waybill>" (the shipment, as in the shipments table)
- ``sk`` "<occurred_at, UTC, ISO 8601>#<event_id>": a shipment's events in the order
  they happened; the event id makes the key unique, so writing an event twice
  (a retried stream batch) leaves one item
- ``event`` (S): the event's JSON exactly as published
- ``expires_at`` (N, TTL): `retention_days` after the event was detected
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from trackwatch.adapters.events_topic import message_body
from trackwatch.errors import StorageError
from trackwatch.models.events import EVENT_ADAPTER, ShipmentEvent
from trackwatch.models.keys import ShipmentKey

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_BATCH_WRITE_LIMIT = 25
_ATTEMPTS = 8


def sort_key(event: ShipmentEvent) -> str:
    """Events sort by when they happened (in UTC, so the text sorts like the time)."""
    return f"{_utc(event.occurred_at)}#{event.event_id}"


def _utc(moment: datetime) -> str:
    """`moment` in UTC as sortable text; a moment past what UTC can hold (year 1 in a zone
    east of Greenwich, year 9999 west of it) is clamped to the first or last one."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        utc = (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)
    # isoformat, not strftime: it always writes four digits of year, so the text sorts.
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


class EventLogTable:
    """Implements trackwatch.ports.EventLog."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient,
        retention_days: int = 90,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._table = table_name
        self._retention = timedelta(days=retention_days)
        self._client = client
        self._sleep = sleep

    @property
    def client(self) -> DynamoDBClient:
        """The DynamoDB client (built on first use)."""
        return self._client

    def append(self, events: Sequence[ShipmentEvent]) -> None:
        """Write every event (BatchWriteItem, 25 a request, unprocessed ones retried)."""
        # BatchWriteItem refuses a request that names one key twice.
        unique = {(e.cp_id, e.waybill, sort_key(e)): self._item(e) for e in events}
        pending = list(unique.values())
        for start in range(0, len(pending), _BATCH_WRITE_LIMIT):
            self._write(pending[start : start + _BATCH_WRITE_LIMIT])

    def _item(self, event: ShipmentEvent) -> dict[str, Any]:
        expires = int((event.detected_at + self._retention).timestamp())
        return {
            "PutRequest": {
                "Item": {
                    "pk": {"S": ShipmentKey.of(event.cp_id, event.waybill).pk},
                    "sk": {"S": sort_key(event)},
                    "event": {"S": message_body(event)},
                    "expires_at": {"N": str(expires)},
                }
            }
        }

    def _write(self, requests: list[dict[str, Any]]) -> None:
        pending: Any = {self._table: requests}
        for attempt in range(_ATTEMPTS):
            try:
                answer = self.client.batch_write_item(RequestItems=pending)
            except (ClientError, BotoCoreError) as exc:
                code = (
                    exc.response["Error"]["Code"]
                    if isinstance(exc, ClientError)
                    else type(exc).__name__
                )
                raise StorageError(f"DynamoDB BatchWriteItem failed: {code}") from exc
            pending = answer.get("UnprocessedItems") or {}
            if not pending:
                return
            self._sleep(min(1.0, 0.05 * 2**attempt))
        raise StorageError(f"DynamoDB BatchWriteItem left items unprocessed after {_ATTEMPTS}")

    def history(self, key: ShipmentKey, since: datetime | None = None) -> list[ShipmentEvent]:
        """The shipment's logged events, oldest first (from `since` on, if given)."""
        condition = "pk = :pk"
        values: dict[str, Any] = {":pk": {"S": key.pk}}
        if since is not None:
            condition += " AND sk >= :since"
            values[":since"] = {"S": _utc(since)}
        events: list[ShipmentEvent] = []
        paginator = self.client.get_paginator("query")
        try:
            for page in paginator.paginate(
                TableName=self._table,
                KeyConditionExpression=condition,
                ExpressionAttributeValues=values,
                ConsistentRead=True,
            ):
                events.extend(
                    EVENT_ADAPTER.validate_json(item["event"]["S"])
                    for item in page.get("Items", [])
                )
        except (ClientError, BotoCoreError) as exc:
            code = (
                exc.response["Error"]["Code"]
                if isinstance(exc, ClientError)
                else type(exc).__name__
            )
            raise StorageError(f"DynamoDB Query failed: {code}") from exc
        return events
