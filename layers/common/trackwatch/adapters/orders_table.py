"""The orders table in DynamoDB, and what a write of the shipments table means for orders.

Item layout (one small item per order, written whole by one conditional PutItem):
- ``pk`` (S): the order_id, exactly as the shipments carry it
- ``version`` (N): every write increments it, on the condition that it did not move
- ``state`` (B): the order's members and their steps, what was told, as JSON,
  zlib-compressed (models/orders.py `OrderState`)
- ``member_count`` (N): shipments in the order now (what a notifier reads, alone)
- ``settle_at`` (S): the end of the open window a settle tick was queued for
- ``pending`` (B): events settled with this write and not yet known to be published
- ``expires_at`` (N, TTL): `ORDER_RETENTION_DAYS` after the last change
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import TypeAdapter

from trackwatch.adapters.batch_reads import BATCH_GET_LIMIT, batch_get
from trackwatch.adapters.shipments_table import (
    ITEM_LIMIT_BYTES,
    StreamImages,
    from_item,
    state_of_image,
    to_item,
)
from trackwatch.errors import (
    ItemTooLargeError,
    PoisonEventsError,
    StaleStateError,
    StorageError,
)
from trackwatch.models.events import OrderEvent
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.orders import MemberChange, MemberStatus, OrderRecord, OrderState
from trackwatch.models.record import StreamChange

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_PENDING = TypeAdapter(tuple[OrderEvent, ...])


def _error(action: str, exc: Exception) -> StorageError:
    code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
    return StorageError(f"DynamoDB {action} on the orders table failed: {code}")


def record_from_item(item: dict[str, Any]) -> OrderRecord:
    """One stored order (attribute-value form)."""
    plain = from_item(item)
    pending = plain.get("pending")
    return OrderRecord(
        state=OrderState.model_validate_json(zlib.decompress(bytes(plain["state"]))),
        version=int(plain["version"]),
        settle_at=plain.get("settle_at"),
        member_count=int(plain.get("member_count", 0)),
        pending=_PENDING.validate_json(zlib.decompress(bytes(pending))) if pending else (),
        expires_at=int(plain["expires_at"]) if "expires_at" in plain else None,
    )


def item_of(record: OrderRecord) -> dict[str, Any]:
    """An order as its item (attribute-value form)."""
    state = record.state
    values: dict[str, Any] = {
        "pk": state.order_id,
        "version": record.version,
        "state": zlib.compress(state.model_dump_json(exclude_defaults=True).encode()),
        "member_count": record.member_count,
        "settle_at": record.settle_at.isoformat() if record.settle_at else None,
        "pending": zlib.compress(_PENDING.dump_json(record.pending)) if record.pending else None,
        "expires_at": record.expires_at,
    }
    size = sum(
        len(name) + (len(value) if isinstance(value, bytes | str) else 8)
        for name, value in values.items()
        if value is not None
    )
    if size > ITEM_LIMIT_BYTES:
        raise ItemTooLargeError(
            f"order {state.order_id}: a write of about {size // 1024} KB passes DynamoDB's "
            f"{ITEM_LIMIT_BYTES // 1024} KB item limit"
        )
    return to_item(values)


class OrdersTable:
    """Implements trackwatch.ports.OrderStore (the notifiers read `member_count` with their
    recipient: adapters/notify_table.py)."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self._table = table_name
        self._client = client

    def get(self, order_id: str) -> OrderRecord | None:
        """The order's item, read consistently."""
        try:
            answer = self._client.get_item(
                TableName=self._table, Key={"pk": {"S": order_id}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise _error("GetItem", exc) from exc
        item = answer.get("Item")
        return record_from_item(item) if item else None

    def get_many(self, order_ids: Iterable[str]) -> dict[str, OrderRecord]:
        """The items of those orders that have one, read consistently: BatchGetItem, a
        hundred keys a request."""
        wanted = list(dict.fromkeys(order_ids))
        found: dict[str, OrderRecord] = {}
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            chunk = wanted[start : start + BATCH_GET_LIMIT]
            request = {
                self._table: {"Keys": [{"pk": {"S": o}} for o in chunk], "ConsistentRead": True}
            }
            for item in batch_get(self._client, request, _error)[self._table]:
                record = record_from_item(item)
                found[record.state.order_id] = record
        return found

    def save(self, record: OrderRecord, expected_version: int | None) -> None:
        """One conditional PutItem: the whole item, if nobody wrote it since we read it."""
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if expected_version is None
            else {
                "ConditionExpression": "#version = :expected",
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
            }
        )
        try:
            self._client.put_item(TableName=self._table, Item=item_of(record), **condition)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise StaleStateError(
                    f"order {record.state.order_id} changed since version {expected_version}"
                ) from exc
            raise _error("PutItem", exc) from exc
        except BotoCoreError as exc:
            raise _error("PutItem", exc) from exc

    def published(self, order_id: str, version: int) -> None:
        """Remove the pending events, if the item is still at `version`."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": order_id}},
                UpdateExpression="REMOVE pending",
                ConditionExpression="#version = :version",
                ExpressionAttributeNames={"#version": "version"},
                ExpressionAttributeValues={":version": {"N": str(version)}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return  # written since: its writer publishes what is pending
            raise _error("UpdateItem", exc) from exc
        except BotoCoreError as exc:
            raise _error("UpdateItem", exc) from exc


class StreamMemberChanges:
    """Implements trackwatch.ports.MemberChanges for the shipments table's stream records."""

    def __init__(self) -> None:
        self._outboxes = StreamImages()

    def change(self, record: StreamChange, now: datetime) -> MemberChange | None:
        """The member change of one write (its images in attribute-value form)."""
        new = record.new_image
        if not new or "pk" not in new or "version" not in new:
            return None
        old = record.old_image
        state = state_of_image(new)
        previous = state_of_image(old) if old else None
        current = state.current
        return MemberChange(
            key=ShipmentKey.from_pk(new["pk"]["S"]),
            version=int(new["version"]["N"]),
            at=self._when(new, old, now),
            order_id=state.order_id,
            previous_order_id=previous.order_id if previous is not None else None,
            status=(
                MemberStatus(
                    clickpost_status_code=current.clickpost_status_code,
                    clickpost_status_description=current.clickpost_status_description,
                    clickpost_status_bucket=current.clickpost_status_bucket,
                    clickpost_status_bucket_description=current.clickpost_status_bucket_description,
                    is_terminal=current.is_terminal,
                )
                if current is not None
                else None
            ),
        )

    def _when(
        self, new: Mapping[str, Any], old: Mapping[str, Any] | None, now: datetime
    ) -> datetime:
        """When the write happened: the poll that made it (its events' detected_at), the
        registration that created the shipment, or else now (a registration's update, a
        stop: the roll-up reads them within moments of the write)."""
        outbox = self._outboxes.outbox(new)
        try:
            old_seq: int | None = self._outboxes.outbox(old).seq
        except PoisonEventsError:
            old_seq = None  # the publisher set that one aside; this write is news either way
        if outbox.events and outbox.seq != old_seq:
            return max(event.detected_at for event in outbox.events)
        if old is None and "registered_at" in new:
            return datetime.fromisoformat(new["registered_at"]["S"])
        return now
