"""The shipments table in DynamoDB: the only code that knows its item layout.

Item layout (one item per shipment):
- ``pk`` "<cp_id>#<waybill>", ``cp_id`` (N), ``waybill`` (S)
- ``version`` (N): every write increments it, on the condition that it did not move
- ``state`` (S): the diff engine's state as JSON
- ``registered_at``, ``contact`` (M), ``metadata`` (M)
- ``due_key`` (S): present only while tracked, which makes DueIndex sparse
- ``stop_reason``, ``stopped_at``, ``expires_at`` (TTL): set when tracking ends
- ``outbox`` (S, JSON list of events) and ``outbox_seq`` (N): the events of the
  write that changed the shipment; the stream carries them to the publisher.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from trackwatch.errors import StaleStateError, StorageError
from trackwatch.models.events import EVENT_LIST_ADAPTER
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.record import Contact, Outbox, ShipmentRecord, StateChange
from trackwatch.models.state import ShipmentState

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from trackwatch.models.record import RegistrationWrite

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()
_BATCH_GET_LIMIT = 100
_BATCH_WRITE_LIMIT = 25
_BATCH_ATTEMPTS = 8


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    """Plain values to DynamoDB's attribute-value form."""
    return {k: _SERIALIZER.serialize(v) for k, v in values.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB's attribute-value form to plain values."""
    return {k: _DESERIALIZER.deserialize(v) for k, v in item.items()}


def record_from_item(item: dict[str, Any]) -> ShipmentRecord:
    """Decode one stored item (in attribute-value form)."""
    plain = from_item(item)
    contact = plain.get("contact") or {}
    return ShipmentRecord(
        key=ShipmentKey.from_pk(plain["pk"]),
        version=int(plain["version"]),
        state=ShipmentState.model_validate_json(plain.get("state") or "{}"),
        registered_at=plain["registered_at"],
        contact=Contact(
            phone=contact.get("phone"),
            email=contact.get("email"),
            language=contact.get("language") or "en",
            channels=(
                frozenset(contact["channels"]) if "channels" in contact else Contact().channels
            ),
            opt_out=frozenset(contact.get("opt_out") or ()),
        ),
        metadata={str(k): str(v) for k, v in (plain.get("metadata") or {}).items()},
        due_key=plain.get("due_key"),
        stop_reason=plain.get("stop_reason"),
        stopped_at=plain.get("stopped_at"),
        outbox_seq=int(plain.get("outbox_seq", 0)),
    )


def contact_value(contact: Contact) -> dict[str, Any]:
    """A contact as the item's `contact` map (absent values left out)."""
    value: dict[str, Any] = {
        "phone": contact.phone,
        "email": contact.email,
        "language": contact.language,
        "channels": sorted(contact.channels),
        "opt_out": sorted(contact.opt_out),
    }
    # An empty channel list is meaningful ("tell them nothing"); an empty opt-out is not.
    return {k: v for k, v in value.items() if v is not None and not (k == "opt_out" and not v)}


class StreamImages:
    """Implements trackwatch.ports.OutboxReader for the table's (deserialized) stream images."""

    def outbox(self, image: Mapping[str, Any] | None) -> Outbox:
        """The outbox sequence number and events of one image."""
        if not image or image.get("outbox_seq") is None:
            return Outbox()
        events = EVENT_LIST_ADAPTER.validate_json(image.get("outbox") or "[]")
        return Outbox(seq=int(image["outbox_seq"]), events=tuple(events))


def _new_item(write: RegistrationWrite) -> dict[str, Any]:
    """The item a registration creates, in attribute-value form."""
    return to_item(
        {
            "pk": write.key.pk,
            "cp_id": write.key.cp_id,
            "waybill": write.key.waybill,
            "version": 1,
            "state": (write.state or ShipmentState()).model_dump_json(exclude_defaults=True),
            "registered_at": (write.registered_at or datetime.now().astimezone()).isoformat(),
            "contact": contact_value(write.contact),
            "metadata": write.metadata,
            "due_key": write.due_key,
        }
    )


def _storage_error(action: str, exc: Exception) -> StorageError:
    code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
    return StorageError(f"DynamoDB {action} failed: {code}")


class ShipmentsTable:
    """Reads and writes shipments; implements trackwatch.ports.ShipmentStore."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient,
        due_index_name: str = "DueIndex",
    ) -> None:
        self._table = table_name
        self._index = due_index_name
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        """The DynamoDB client (built on first use)."""
        return self._client

    def get_many(
        self, keys: Iterable[ShipmentKey], *, consistent: bool = False
    ) -> dict[ShipmentKey, ShipmentRecord]:
        """BatchGetItem in chunks of 100, retrying unprocessed keys."""
        wanted = list(dict.fromkeys(keys))
        found: dict[ShipmentKey, ShipmentRecord] = {}
        for start in range(0, len(wanted), _BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self._table: {
                    "Keys": [{"pk": {"S": k.pk}} for k in wanted[start : start + _BATCH_GET_LIMIT]],
                    "ConsistentRead": consistent,
                }
            }
            for _attempt in range(8):
                try:
                    answer = self.client.batch_get_item(RequestItems=request)
                except (ClientError, BotoCoreError) as exc:
                    raise _storage_error("BatchGetItem", exc) from exc
                for item in answer.get("Responses", {}).get(self._table, []):
                    record = record_from_item(item)
                    found[record.key] = record
                request = dict(answer.get("UnprocessedKeys") or {})
                if not request:
                    break
            else:
                raise StorageError("DynamoDB BatchGetItem left keys unprocessed after 8 attempts")
        return found

    def get(self, key: ShipmentKey) -> ShipmentRecord | None:
        """One shipment, read consistently; None if it is not stored."""
        try:
            answer = self.client.get_item(
                TableName=self._table, Key={"pk": {"S": key.pk}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error("GetItem", exc) from exc
        item = answer.get("Item")
        return record_from_item(item) if item else None

    def save_registration(self, write: RegistrationWrite) -> None:
        """Create the shipment, or update its contact at the version read; else StaleStateError."""
        try:
            if write.creates:
                self.client.put_item(
                    TableName=self._table,
                    Item=_new_item(write),
                    ConditionExpression="attribute_not_exists(pk)",
                )
                return
            sets = ["contact = :contact", "metadata = :metadata", "#version = :next"]
            values: dict[str, Any] = {
                ":contact": contact_value(write.contact),
                ":metadata": write.metadata,
                ":expected": write.expected_version,
                ":next": (write.expected_version or 0) + 1,
            }
            names = {"#version": "version"}
            if write.state is not None:
                sets.append("#state = :state")
                names["#state"] = "state"
                values[":state"] = write.state.model_dump_json(exclude_defaults=True)
            self.client.update_item(
                TableName=self._table,
                Key={"pk": {"S": write.key.pk}},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="attribute_exists(pk) AND #version = :expected",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item(values),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise StaleStateError(f"shipment {write.key} changed while registering") from exc
            raise _storage_error("PutItem" if write.creates else "UpdateItem", exc) from exc
        except BotoCoreError as exc:
            raise _storage_error("PutItem" if write.creates else "UpdateItem", exc) from exc

    def bulk_create(self, writes: Sequence[RegistrationWrite]) -> None:
        """BatchWriteItem, 25 items a request, retrying unprocessed items; StorageError.

        Unconditional (BatchWriteItem takes no condition): see the port for when that is
        safe. TransactWriteItems would carry the condition, at twice the write units, and
        the local emulator copies the whole table for every transaction.
        """
        for start in range(0, len(writes), _BATCH_WRITE_LIMIT):
            chunk = writes[start : start + _BATCH_WRITE_LIMIT]
            request: dict[str, Any] = {
                self._table: [{"PutRequest": {"Item": _new_item(w)}} for w in chunk]
            }
            for attempt in range(_BATCH_ATTEMPTS):
                try:
                    answer = self.client.batch_write_item(RequestItems=request)
                except (ClientError, BotoCoreError) as exc:
                    raise _storage_error("BatchWriteItem", exc) from exc
                request = dict(answer.get("UnprocessedItems") or {})
                if not request:
                    break
                time.sleep(min(1.0, 0.05 * 2**attempt))
            else:
                raise StorageError(
                    f"DynamoDB BatchWriteItem left items unprocessed after {_BATCH_ATTEMPTS} "
                    "attempts"
                )

    def commit(self, change: StateChange) -> None:
        """One conditional UpdateItem: the new state, its events (the outbox), its due key."""
        names = {"#state": "state", "#version": "version"}
        values: dict[str, Any] = {
            ":state": change.state.model_dump_json(exclude_defaults=True),
            ":expected": change.expected_version,
            ":next": change.expected_version + 1,
        }
        sets = ["#state = :state", "#version = :next"]
        removes: list[str] = []
        if change.events:
            sets += ["outbox = :outbox", "outbox_seq = if_not_exists(outbox_seq, :zero) + :one"]
            values[":outbox"] = EVENT_LIST_ADAPTER.dump_json(list(change.events)).decode()
            values[":zero"], values[":one"] = 0, 1
        if change.due_key is not None:
            sets.append("due_key = :due")
            values[":due"] = change.due_key
        else:
            removes.append("due_key")
        if change.stop_reason is not None:
            sets += ["stop_reason = :reason", "stopped_at = :stopped"]
            values[":reason"] = change.stop_reason
            values[":stopped"] = (change.stopped_at or datetime.now().astimezone()).isoformat()
            if change.expires_at is not None:
                sets.append("expires_at = :expires")
                values[":expires"] = change.expires_at
        expression = "SET " + ", ".join(sets)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        try:
            self.client.update_item(
                TableName=self._table,
                Key={"pk": {"S": change.key.pk}},
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(pk) AND #version = :expected",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item(values),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise StaleStateError(
                    f"shipment {change.key} changed since version {change.expected_version}"
                ) from exc
            raise _storage_error("UpdateItem", exc) from exc
        except BotoCoreError as exc:
            raise _storage_error("UpdateItem", exc) from exc

    def due(self, due_keys: Sequence[str]) -> list[ShipmentKey]:
        """Every shipment in the given DueIndex partitions (queried concurrently)."""
        with ThreadPoolExecutor(max_workers=min(16, max(1, len(due_keys)))) as pool:
            pages = list(pool.map(self._query_due, due_keys))
        return [key for page in pages for key in page]

    def active(self, segments: int = 4) -> list[ShipmentKey]:
        """Every tracked shipment: a parallel scan of the sparse DueIndex (keys only)."""
        with ThreadPoolExecutor(max_workers=segments) as pool:
            pages = list(pool.map(lambda s: self._scan_due(s, segments), range(segments)))
        return [key for page in pages for key in page]

    def _scan_due(self, segment: int, segments: int) -> list[ShipmentKey]:
        keys: list[ShipmentKey] = []
        paginator = self.client.get_paginator("scan")
        try:
            for page in paginator.paginate(
                TableName=self._table,
                IndexName=self._index,
                Segment=segment,
                TotalSegments=segments,
                ProjectionExpression="pk",
            ):
                keys.extend(ShipmentKey.from_pk(item["pk"]["S"]) for item in page.get("Items", []))
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error("Scan", exc) from exc
        return keys

    def _query_due(self, due_key: str) -> list[ShipmentKey]:
        keys: list[ShipmentKey] = []
        paginator = self.client.get_paginator("query")
        try:
            for page in paginator.paginate(
                TableName=self._table,
                IndexName=self._index,
                KeyConditionExpression="due_key = :due",
                ExpressionAttributeValues={":due": {"S": due_key}},
                ProjectionExpression="pk",
            ):
                keys.extend(ShipmentKey.from_pk(item["pk"]["S"]) for item in page.get("Items", []))
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error("Query", exc) from exc
        return keys
