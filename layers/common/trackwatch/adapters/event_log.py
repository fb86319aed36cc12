"""The event log in DynamoDB: every published event, kept for replay.

Item layout (one item per change, that is per outbox: a write unit per change, not
per event):
- ``pk`` "<cp_id>#<waybill>" (the shipment, as in the shipments table)
- ``sk`` "<latest occurred_at of the change's events, UTC, ISO 8601>#<first event_id>":
  a shipment's changes in the order they happened; a retried stream batch writes the
  same key again, so the log never holds a change twice. Keyed on the latest time so
  that `history(since=...)` finds every change with an event from `since` on.
- ``events`` (B): the change's events, JSON exactly as published, packed (zlib with the
  preset dictionary of `trackwatch.adapters.packing`: a change of the bench's journeys is
  ~1.1-1.4 KB with zlib alone, two write units, and ~0.6-0.8 KB packed, one); items
  compressed with zlib alone (written before) are still read
- ``expires_at`` (N, TTL): `retention_days` after the change was detected
- ``learn_key`` (S) "<day the change was detected, UTC>#<shard>" and ``scans`` (S)
  "<epoch second>:<clickpost_status_code>,...": only on a change with scans whose
  carrier time could be used. They make the sparse ``LearnIndex`` (projecting ``scans``),
  from which the daily threshold job reads a window of days without reading the rest of
  the log; a shipment's entries all share one shard (a hash of ``pk``).

Items of the earlier layout (one per event, its JSON in ``event``) are still read.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from trackwatch.adapters.packing import pack, unpack
from trackwatch.errors import StorageError
from trackwatch.models.events import EVENT_ADAPTER, EVENT_LIST_ADAPTER, ScanAdded, ShipmentEvent
from trackwatch.models.keys import ShipmentKey
from trackwatch.ports import ScanPoints

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_BATCH_WRITE_LIMIT = 25
_ATTEMPTS = 8
#: Partitions of one day in LearnIndex: a day's writes spread over them, and the job reads
#: one shard of the whole window at a time (its memory is a shard's shipments).
LEARN_SHARDS = 16
LEARN_INDEX = "LearnIndex"


def learn_shard(pk: str) -> int:
    """The LearnIndex shard of a shipment: the same for every change it has."""
    return int.from_bytes(hashlib.blake2b(pk.encode(), digest_size=4).digest()) % LEARN_SHARDS


def learn_fields(change: Sequence[ShipmentEvent]) -> dict[str, str] | None:
    """The `learn_key` and `scans` attributes of a change (None: no scan to learn from)."""
    points = [
        f"{int(e.occurred_at.timestamp())}:{e.scan.clickpost_status_code}"
        for e in change
        if isinstance(e, ScanAdded)
        and e.time_quality == "carrier"
        and e.scan.clickpost_status_code is not None
    ]
    if not points:
        return None
    first = change[0]
    pk = ShipmentKey.of(first.cp_id, first.waybill).pk
    day = max(e.detected_at for e in change).astimezone(UTC).date()
    return {"learn_key": f"{day.isoformat()}#{learn_shard(pk)}", "scans": ",".join(points)}


def encode_change(change: Sequence[ShipmentEvent]) -> bytes:
    """The `events` attribute of a change: its events as published, packed."""
    return pack(EVENT_LIST_ADAPTER.dump_json(list(change)))


def parse_scans(text: str) -> ScanPoints:
    """The `scans` attribute as (epoch second, code) pairs; an entry that does not read is
    left out."""
    points: ScanPoints = []
    for entry in text.split(","):
        epoch, _, code = entry.partition(":")
        if epoch.lstrip("-").isdigit() and code.lstrip("-").isdigit():
            points.append((int(epoch), int(code)))
    return points


def sort_key(change: Sequence[ShipmentEvent]) -> str:
    """Changes sort by when their latest event happened (UTC text sorts like the time)."""
    latest = max(change, key=lambda e: _utc(e.occurred_at))
    return f"{_utc(latest.occurred_at)}#{change[0].event_id}"


def event_order(event: ShipmentEvent) -> str:
    """A shipment's events, oldest first (ties by id, so the order is always the same)."""
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
        retention_days: int = 30,
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

    def append(self, changes: Sequence[Sequence[ShipmentEvent]]) -> None:
        """Write each change as one item (BatchWriteItem, 25 a request, unprocessed ones
        retried)."""
        # BatchWriteItem refuses a request that names one key twice.
        unique = {
            (change[0].cp_id, change[0].waybill, sort_key(change)): self._item(change)
            for change in changes
            if change
        }
        pending = list(unique.values())
        for start in range(0, len(pending), _BATCH_WRITE_LIMIT):
            self._write(pending[start : start + _BATCH_WRITE_LIMIT])

    def _item(self, change: Sequence[ShipmentEvent]) -> dict[str, Any]:
        first = change[0]
        detected = max(e.detected_at for e in change)
        expires = int((detected + self._retention).timestamp())
        item: dict[str, Any] = {
            "pk": {"S": ShipmentKey.of(first.cp_id, first.waybill).pk},
            "sk": {"S": sort_key(change)},
            "events": {"B": encode_change(change)},
            "expires_at": {"N": str(expires)},
        }
        learn = learn_fields(change)
        if learn is not None:
            item.update({name: {"S": value} for name, value in learn.items()})
        return {"PutRequest": {"Item": item}}

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
                for item in page.get("Items", []):
                    events.extend(_events_of(item))
        except (ClientError, BotoCoreError) as exc:
            code = (
                exc.response["Error"]["Code"]
                if isinstance(exc, ClientError)
                else type(exc).__name__
            )
            raise StorageError(f"DynamoDB Query failed: {code}") from exc
        if since is not None:
            floor = _utc(since)  # compared as UTC text: year 1 in +05:30 must not overflow
            events = [e for e in events if _utc(e.occurred_at) >= floor]
        return sorted(events, key=event_order)

    def scan_sequences(
        self, days: Sequence[date]
    ) -> Iterator[list[tuple[ShipmentKey, ScanPoints]]]:
        """Implements trackwatch.ports.ScanLog: one batch per LearnIndex shard, holding every
        entry of `days` in it (a Query per day and shard; only the window is read)."""
        for shard in range(LEARN_SHARDS):
            batch: list[tuple[ShipmentKey, ScanPoints]] = []
            for day in days:
                batch.extend(self._learn_entries(f"{day.isoformat()}#{shard}"))
            yield batch

    def _learn_entries(self, learn_key: str) -> Iterator[tuple[ShipmentKey, ScanPoints]]:
        paginator = self.client.get_paginator("query")
        try:
            for page in paginator.paginate(
                TableName=self._table,
                IndexName=LEARN_INDEX,
                KeyConditionExpression="learn_key = :key",
                ExpressionAttributeValues={":key": {"S": learn_key}},
                ProjectionExpression="pk, scans",
            ):
                for item in page.get("Items", []):
                    yield ShipmentKey.from_pk(item["pk"]["S"]), parse_scans(item["scans"]["S"])
        except (ClientError, BotoCoreError) as exc:
            code = (
                exc.response["Error"]["Code"]
                if isinstance(exc, ClientError)
                else type(exc).__name__
            )
            raise StorageError(f"DynamoDB Query of {LEARN_INDEX} failed: {code}") from exc


def _events_of(item: dict[str, Any]) -> list[ShipmentEvent]:
    """The events of one stored change (or of one event, in the earlier layout)."""
    if "events" in item:
        return EVENT_LIST_ADAPTER.validate_json(unpack(item["events"]["B"]))
    return [EVENT_ADAPTER.validate_json(item["event"]["S"])]
