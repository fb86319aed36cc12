"""The shipments table in DynamoDB: the only code that knows its item layout.

Item layout (one item per shipment), kept small because every change writes it
whole (write units are per KB) and every poll reads it (read units per 4 KB):
- ``pk`` "<cp_id>#<waybill>", ``cp_id`` (N), ``waybill`` (S)
- ``version`` (N): every write increments it, on the condition that it did not move
- ``state`` (B): the diff engine's state as JSON, compressed with a preset dictionary
  (adapters/packing.py), without ``seen``
- ``seen`` (B): the remembered checkpoints, 10 bytes each: the 6-byte digest the
  engine keys them by (`seen_key`), then the scan's epoch second (uint32, big-endian)
- ``registered_at``, ``contact`` (M), ``metadata`` (M)
- ``due_key`` (S): present only while tracked, which makes DueIndex sparse
- ``stop_reason``, ``stopped_at``, ``expires_at`` (TTL): set when tracking ends
- ``outbox`` (B, a JSON list of events, compressed the same way) and ``outbox_seq`` (N): the
  events of the write that changed the shipment; the stream carries them to the
  publisher, which logs and publishes them.

Items written before this layout (``state`` and ``outbox`` as JSON text, checkpoints
by their full ids, a ``timeline``) are still read; the next change rewrites them.
"""

from __future__ import annotations

import base64
import struct
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from trackwatch.adapters.batch_reads import BATCH_GET_LIMIT, batch_get
from trackwatch.adapters.packing import pack, unpack
from trackwatch.errors import (
    ItemTooLargeError,
    PoisonEventsError,
    StaleStateError,
    StorageError,
)
from trackwatch.logic.channels import contact_recipient
from trackwatch.logic.diff import seen_key
from trackwatch.models.clickpost import describe_validation
from trackwatch.models.events import EVENT_LIST_ADAPTER, ShipmentEvent
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.notification import Recipient
from trackwatch.models.record import Contact, Outbox, ShipmentRecord, StateChange
from trackwatch.models.state import ShipmentState

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from trackwatch.models.record import RegistrationWrite

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()
_BATCH_WRITE_LIMIT = 25
_BATCH_ATTEMPTS = 8


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    """Plain values to DynamoDB's attribute-value form."""
    return {k: _SERIALIZER.serialize(v) for k, v in values.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB's attribute-value form to plain values."""
    return {k: _DESERIALIZER.deserialize(v) for k, v in item.items()}


_SEEN_ENTRY = struct.Struct(">6sI")


def _raw(value: Any) -> bytes:
    """A binary attribute's bytes, however it arrives: bytes, boto3's Binary, or base64
    text (a Lambda event's JSON)."""
    if isinstance(value, Binary):
        raw: bytes = value.value  # type: ignore[attr-defined]
        return raw
    if isinstance(value, str):
        return base64.b64decode(value)
    return bytes(value)


def encode_state(state: ShipmentState) -> dict[str, bytes]:
    """The `state` and `seen` attributes of `state`."""
    body = state.model_dump_json(exclude_defaults=True, exclude={"seen"}).encode()
    values = {"state": pack(body)}
    if state.seen:
        values["seen"] = b"".join(
            _SEEN_ENTRY.pack(base64.urlsafe_b64decode(key), max(0, min(epoch, 2**32 - 1)))
            for key, epoch in state.seen.items()
        )
    return values


def decode_state(plain: dict[str, Any]) -> ShipmentState:
    """The state of a (deserialized) item, in either layout."""
    stored = plain.get("state")
    if stored is None:
        return ShipmentState()
    if isinstance(stored, str):
        # The earlier layout: JSON text, checkpoints by their full ids.
        old = ShipmentState.model_validate_json(stored)
        return old.model_copy(update={"seen": {seen_key(k): v for k, v in old.seen.items()}})
    state = ShipmentState.model_validate_json(unpack(_raw(stored)))
    packed = _raw(plain["seen"]) if plain.get("seen") is not None else b""
    seen = {
        base64.urlsafe_b64encode(digest).decode(): epoch
        for digest, epoch in _SEEN_ENTRY.iter_unpack(packed)
    }
    if not seen:
        return state
    # Set on the state just built, which no one else holds yet: what model_copy(update=...)
    # does, without copying the model (a third of decoding a record, on every poll).
    state.__dict__["seen"] = seen
    state.__pydantic_fields_set__.add("seen")
    return state


def state_of_image(image: Mapping[str, Any]) -> ShipmentState:
    """The state in a stream image (attribute-value form, as the event carries it), without
    `seen` (the checkpoints are the poller's business only); PoisonEventsError when it does
    not decode."""
    typed = image.get("state") or {}
    try:
        if "B" in typed:
            return ShipmentState.model_validate_json(unpack(_raw(typed["B"])))
        if "S" in typed:
            return ShipmentState.model_validate_json(typed["S"])
    except (ValueError, TypeError, zlib.error) as exc:  # ValidationError too
        reason = "the state does not decode"
        if isinstance(exc, ValidationError):
            reason += ": " + describe_validation(exc)
        raise PoisonEventsError(reason, _as_text(typed.get("B", typed.get("S")))) from None
    return ShipmentState()


def encode_outbox(events: Sequence[ShipmentEvent]) -> bytes:
    """The `outbox` attribute: the events as JSON, compressed (adapters/packing.py)."""
    return pack(EVENT_LIST_ADAPTER.dump_json(list(events)))


def _contact(contact: Mapping[str, Any]) -> Contact:
    """The `contact` map, deserialized."""
    return Contact(
        phone=contact.get("phone"),
        email=contact.get("email"),
        language=contact.get("language") or "en",
        channels=(tuple(contact["channels"]) if "channels" in contact else Contact().channels),
        opt_out=frozenset(contact.get("opt_out") or ()),
    )


def record_from_item(item: dict[str, Any]) -> ShipmentRecord:
    """Decode one stored item (in attribute-value form)."""
    plain = from_item(item)
    return ShipmentRecord(
        key=ShipmentKey.from_pk(plain["pk"]),
        version=int(plain["version"]),
        state=decode_state(plain),
        registered_at=plain["registered_at"],
        contact=_contact(plain.get("contact") or {}),
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
        # A list in the customer's order of preference (WhatsApp, then SMS, ...).
        "channels": list(contact.channels),
        "opt_out": sorted(contact.opt_out),
    }
    # An empty channel list is meaningful ("tell them nothing"); an empty opt-out is not.
    return {k: v for k, v in value.items() if v is not None and not (k == "opt_out" and not v)}


#: DynamoDB's item size limit (names and values, UTF-8).
ITEM_LIMIT_BYTES = 400 * 1024
#: Room kept for the attributes a write does not carry (contact, metadata, the notifiers').
_OTHER_ATTRIBUTES_BYTES = 16 * 1024


def check_item_size(key: ShipmentKey, values: dict[str, Any]) -> None:
    """Refuse a write whose large attributes alone would pass the item limit."""
    size = _OTHER_ATTRIBUTES_BYTES + sum(
        len(name.encode()) + len(value.encode() if isinstance(value, str) else value)
        for name, value in values.items()
        if isinstance(value, str | bytes)
    )
    if size > ITEM_LIMIT_BYTES:
        raise ItemTooLargeError(
            f"shipment {key}: a write of about {size // 1024} KB passes DynamoDB's "
            f"{ITEM_LIMIT_BYTES // 1024} KB item limit"
        )


class StreamImages:
    """Implements trackwatch.ports.OutboxReader for the table's stream images, in their
    attribute-value form (as the event carries them: the type tells a compressed outbox,
    `B`, from the earlier JSON text, `S`)."""

    def outbox(self, image: Mapping[str, Any] | None) -> Outbox:
        """The outbox sequence number and events of one image."""
        if not image or "outbox_seq" not in image:
            return Outbox()
        typed = image.get("outbox") or {}
        raw = typed.get("B", typed.get("S"))
        try:
            seq = int(image["outbox_seq"]["N"])
            if "B" in typed:
                events = EVENT_LIST_ADAPTER.validate_json(unpack(_raw(raw)))
            else:
                events = EVENT_LIST_ADAPTER.validate_json(raw or "[]")
        except (ValueError, TypeError, KeyError, zlib.error) as exc:  # ValidationError too
            reason = "the outbox does not decode as events"
            if isinstance(exc, ValidationError):
                reason += ": " + describe_validation(exc)
            raise PoisonEventsError(reason, _as_text(raw)) from None
        return Outbox(seq=seq, events=tuple(events))

    def recipient(self, image: Mapping[str, Any] | None) -> Recipient | None:
        """The customer as the image's contact tells (no channel's memory); None without one."""
        if not image or "pk" not in image or "contact" not in image:
            return None
        plain = from_item({"pk": image["pk"], "contact": image["contact"]})
        return contact_recipient(ShipmentKey.from_pk(plain["pk"]), _contact(plain["contact"]))


def _as_text(raw: Any) -> str:
    """An outbox that does not decode, as text for a human: inflated if it can be."""
    if raw is None:
        return "(no outbox)"
    try:
        return unpack(_raw(raw)).decode(errors="replace")
    except (zlib.error, ValueError, TypeError):
        return raw if isinstance(raw, str) else base64.b64encode(_raw(raw)).decode()


def _new_item(write: RegistrationWrite) -> dict[str, Any]:
    """The item a registration creates, in attribute-value form."""
    return to_item(
        {
            "pk": write.key.pk,
            "cp_id": write.key.cp_id,
            "waybill": write.key.waybill,
            "version": 1,
            **encode_state(write.state or ShipmentState()),
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
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            chunk = wanted[start : start + BATCH_GET_LIMIT]
            request = {
                self._table: {
                    "Keys": [{"pk": {"S": k.pk}} for k in chunk],
                    "ConsistentRead": consistent,
                }
            }
            for item in batch_get(self.client, request, _storage_error)[self._table]:
                record = record_from_item(item)
                found[record.key] = record
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
                encoded = encode_state(write.state)
                sets.append("#state = :state")
                names["#state"] = "state"
                values[":state"] = encoded["state"]
                if "seen" in encoded:
                    sets.append("seen = :seen")
                    values[":seen"] = encoded["seen"]
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
        encoded = encode_state(change.state)
        values: dict[str, Any] = {
            ":state": encoded["state"],
            ":expected": change.expected_version,
            ":next": change.expected_version + 1,
        }
        sets = ["#state = :state", "#version = :next"]
        removes: list[str] = []
        if "seen" in encoded:
            sets.append("seen = :seen")
            values[":seen"] = encoded["seen"]
        else:
            removes.append("seen")
        if change.events:
            sets += ["outbox = :outbox", "outbox_seq = if_not_exists(outbox_seq, :zero) + :one"]
            values[":outbox"] = encode_outbox(change.events)
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
        check_item_size(change.key, values)
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

    def has_active(self) -> bool:
        """Whether the DueIndex holds any shipment: a Scan of one key (half a read unit)."""
        try:
            answer = self.client.scan(
                TableName=self._table, IndexName=self._index, Limit=1, ProjectionExpression="pk"
            )
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error("Scan", exc) from exc
        return bool(answer.get("Items")) or bool(answer.get("LastEvaluatedKey"))

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
