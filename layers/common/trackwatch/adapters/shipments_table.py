"""The shipments table in DynamoDB: the only code that knows its item layout.

Item layout (one item per shipment), kept small because every change writes it
whole (write units are per KB) and every poll reads it (read units per 4 KB):
- ``pk`` "<cp_id>#<waybill>"
- ``version`` (N): every write increments it, on the condition that it did not move
- ``state`` (B): the diff engine's state as JSON, compressed with a preset dictionary
  (adapters/packing.py), without ``seen``
- ``ckpts`` (B): the remembered checkpoints (`ShipmentState.seen`), oldest first: a format
  byte (1) and their count, then the 6-byte digests the engine keys them by (`seen_key`),
  then each one's epoch second as the difference from the one before (unsigned LEB128
  varints: two bytes for scans up to 4.5 hours apart, where a fixed uint32 took four).
  About 8 bytes a checkpoint, so a 60-scan shipment's item stays under 1 KB, one write unit
- ``registered_at`` (UTC, to the second), ``contact`` (M), ``metadata`` (M, only when
  there is any); the key's parts are not repeated beside ``pk``
- ``due_key`` (S): present only while tracked, which makes DueIndex sparse
- ``stop_reason``, ``stopped_at``, ``expires_at`` (TTL): set when tracking ends
- ``outbox`` (B, a JSON list of events, compressed the same way) and ``outbox_seq`` (N): the
  events of the write that changed the shipment; the stream carries them to the
  publisher, which logs and publishes them.

Items written before this layout are still read, and the next change rewrites them: the
checkpoints in ``seen`` (10 bytes each: the digest, then the epoch as a big-endian uint32),
``cp_id`` and ``waybill`` beside ``pk``; before that ``state`` and ``outbox`` as JSON text,
checkpoints by their full ids, a ``timeline``.
"""

from __future__ import annotations

import base64
import struct
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
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


#: A checkpoint in the layout before `ckpts` (``seen``): the digest, the epoch as a uint32.
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


_CHECKPOINTS_FORMAT = 1


def _varint(value: int, out: bytearray) -> None:
    """Append `value` (>= 0) as an unsigned LEB128 varint."""
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)


def encode_checkpoints(seen: Mapping[str, int]) -> bytes:
    """The `ckpts` attribute: `seen` oldest first, the digests together, then the epochs."""
    entries = sorted((max(0, epoch), key) for key, epoch in seen.items())
    if any(len(key) != 8 for _, key in entries):
        # Joined, a key of another length would shift every digest after it.
        raise ValueError("a checkpoint key is not a seen_key (8 base64 characters)")
    out = bytearray((_CHECKPOINTS_FORMAT,))
    _varint(len(entries), out)
    out += base64.urlsafe_b64decode("".join(key for _, key in entries))
    previous = 0
    for epoch, _ in entries:
        _varint(epoch - previous, out)
        previous = epoch
    return bytes(out)


def decode_checkpoints(packed: bytes) -> dict[str, int]:
    """`encode_checkpoints` read back; ValueError when `packed` is not in its format."""
    if not packed:
        return {}
    if packed[0] != _CHECKPOINTS_FORMAT:
        raise ValueError(f"checkpoints in an unknown format: {packed[0]}")
    # Hand-written: varints have no struct format, and this runs on every poll. The digests
    # are stored together because six bytes are eight base64 characters without padding:
    # one encode gives every key. The epochs' varints are read inline below, not with
    # `_read_varint`: a call per checkpoint made decoding half again as slow (34 us against
    # 23 for 60 checkpoints).
    count, at = _read_varint(packed, 1)
    digests_end = at + 6 * count
    if digests_end > len(packed):
        raise ValueError("checkpoints cut short")
    text = base64.urlsafe_b64encode(packed[at:digests_end]).decode()
    at = digests_end
    seen: dict[str, int] = {}
    epoch = 0
    try:
        for start in range(0, 8 * count, 8):
            byte = packed[at]
            at += 1
            delta = byte & 0x7F
            shift = 7
            while byte >= 0x80:
                byte = packed[at]
                at += 1
                delta |= (byte & 0x7F) << shift
                shift += 7
            epoch += delta
            seen[text[start : start + 8]] = epoch
    except IndexError:
        raise ValueError("checkpoints cut short") from None
    if at != len(packed):
        raise ValueError("checkpoints run past their count")
    return seen


def _read_varint(packed: bytes, at: int) -> tuple[int, int]:
    """The varint at `at`, and where the next begins."""
    value = shift = 0
    while True:
        if at >= len(packed):
            raise ValueError("checkpoints cut short")
        byte = packed[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def encode_state(state: ShipmentState) -> dict[str, bytes]:
    """The `state` and `ckpts` attributes of `state`."""
    body = state.model_dump_json(exclude_defaults=True, exclude={"seen"}).encode()
    values = {"state": pack(body)}
    if state.seen:
        values["ckpts"] = encode_checkpoints(state.seen)
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
    if plain.get("ckpts") is not None:
        seen = decode_checkpoints(_raw(plain["ckpts"]))
    else:
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


def stored_time(at: datetime) -> str:
    """A time as the item keeps it: UTC, to the second (20 bytes, where `isoformat` of a
    local time with microseconds takes 32). `isoformat`, not strftime: its year has four
    digits whatever the year (strftime writes year 1 as "1")."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def _new_item(write: RegistrationWrite) -> dict[str, Any]:
    """The item a registration creates, in attribute-value form."""
    return to_item(
        {
            "pk": write.key.pk,
            "version": 1,
            **encode_state(write.state or ShipmentState()),
            "registered_at": stored_time(write.registered_at or datetime.now(UTC)),
            "contact": contact_value(write.contact),
            "metadata": write.metadata or None,
            "due_key": write.due_key,
        }
    )


def _set_state(state: ShipmentState, sets: list[str], values: dict[str, Any]) -> list[str]:
    """Add `state`'s attributes to an update (`#state` names ``state``); the attributes the
    update removes: the checkpoints' earlier layout, and ``ckpts`` when nothing is seen."""
    encoded = encode_state(state)
    values[":state"] = encoded["state"]
    if "ckpts" in encoded:
        sets.append("ckpts = :ckpts")
        values[":ckpts"] = encoded["ckpts"]
        return ["seen"]
    return ["seen", "ckpts"]


def _update_expression(sets: Sequence[str], removes: Sequence[str]) -> str:
    expression = "SET " + ", ".join(sets)
    return expression + (" REMOVE " + ", ".join(removes) if removes else "")


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
            sets = ["contact = :contact", "#version = :next"]
            removes: list[str] = []
            values: dict[str, Any] = {
                ":contact": contact_value(write.contact),
                ":expected": write.expected_version,
                ":next": (write.expected_version or 0) + 1,
            }
            if write.metadata:
                sets.append("metadata = :metadata")
                values[":metadata"] = write.metadata
            else:
                removes.append("metadata")
            names = {"#version": "version"}
            if write.state is not None:
                sets.append("#state = :state")
                names["#state"] = "state"
                removes += _set_state(write.state, sets, values)
            self.client.update_item(
                TableName=self._table,
                Key={"pk": {"S": write.key.pk}},
                UpdateExpression=_update_expression(sets, removes),
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
            ":expected": change.expected_version,
            ":next": change.expected_version + 1,
        }
        sets = ["#state = :state", "#version = :next"]
        removes = _set_state(change.state, sets, values)
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
            values[":stopped"] = stored_time(change.stopped_at or datetime.now(UTC))
            if change.expires_at is not None:
                sets.append("expires_at = :expires")
                values[":expires"] = change.expires_at
        check_item_size(change.key, values)
        try:
            self.client.update_item(
                TableName=self._table,
                Key={"pk": {"S": change.key.pk}},
                UpdateExpression=_update_expression(sets, removes),
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
