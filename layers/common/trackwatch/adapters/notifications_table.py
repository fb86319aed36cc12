"""The notification records and the opt-outs, on NotificationsTable (one item each).

- ``pk = "delivery#<event_id>#<channel>"``: the notification record of one event on one
  channel (trackwatch.models.notification.Delivery, stored as compressed JSON in
  ``record``, with ``state`` and ``version`` beside it for conditions and reading),
  written (``pending``) before the provider is called, marked ``sent`` when it took the
  message, and moved on by the provider's reports; no personal data. It is also the
  once-guard: a record past ``pending`` means the message went, and a ``pending`` one is
  held by the attempt that wrote it until its invocation's time is up (then the next
  attempt takes it over and sends). That costs no write of its own: the guard's two
  writes are the record's own (a separate idempotency table, as powertools keeps it, cost
  two more write units a message). Compressed because the record carries its event: as
  JSON text it is just over 1 KB, so each of its writes (the record, `sent` and the
  provider's id, every report) cost 2 write units; compressed, 1. Records written as text
  (``S``) are still read.
- ``pk = "optout#<channel>#<sha256 of the E.164 number>"``: that number's holder asked for no
  more messages on that channel. The hash keeps phone numbers out of the key (the table is
  not a list of numbers); it is a lookup key, not protection (the space of numbers is small).

Every item expires (``expires_at``, DynamoDB TTL): records after the idempotency window,
opt-outs after a year, so a number that changes hands is not silenced for ever.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from trackwatch.adapters.packing import pack, unpack
from trackwatch.errors import StaleStateError, StorageError
from trackwatch.logic.delivery import take_over
from trackwatch.models.notification import Channel, Delivery

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: How long an opt-out holds: a year, then the number may be told again.
OPT_OUT_DAYS = 365


def delivery_pk(event_id: str, channel: Channel) -> str:
    """The key of a notification record."""
    return f"delivery#{event_id}#{channel}"


def opt_out_pk(channel: Channel, phone: str) -> str:
    """The key of an opt-out: the channel and a hash of the number."""
    digest = hashlib.sha256(phone.encode("utf-8")).hexdigest()
    return f"optout#{channel}#{digest}"


def _decode(item: dict[str, Any]) -> Delivery:
    """The notification record of a stored item (packed, or JSON text as written before)."""
    stored = item["record"]
    if "S" in stored:
        return Delivery.model_validate_json(stored["S"])
    return Delivery.model_validate_json(unpack(stored["B"]))


def _error(action: str, exc: Exception) -> StorageError:
    code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
    return StorageError(f"DynamoDB {action} on the notifications table failed: {code}")


class NotificationsTable:
    """Implements trackwatch.ports.DeliveryLedger on DynamoDB."""

    def __init__(self, table_name: str, client: DynamoDBClient, record_ttl_s: int) -> None:
        self._table = table_name
        self._client = client
        self._record_ttl_s = record_ttl_s

    def _delivery_item(self, delivery: Delivery) -> dict[str, Any]:
        expires = delivery.state_at + timedelta(seconds=self._record_ttl_s)
        return {
            "pk": {"S": delivery_pk(delivery.event_id, delivery.channel)},
            "record": {"B": pack(delivery.model_dump_json().encode())},
            "state": {"S": delivery.state.value},
            "version": {"N": str(delivery.version)},
            "expires_at": {"N": str(int(expires.timestamp()))},
        }

    def begin(self, delivery: Delivery, until: datetime | None) -> Delivery:
        """Record a message about to go, held by this attempt `until`; see
        trackwatch.ports.DeliveryLedger.begin. One conditional PutItem, which returns the
        record already there if there is one (no read); a conditional take-over after it
        when that record's attempt died."""
        mine = delivery.model_copy(update={"attempt_until": until})
        try:
            self._client.put_item(
                TableName=self._table,
                Item=self._delivery_item(mine),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise _error("PutItem", exc) from exc
            # botocore's error shape does not declare the item a failed condition returns.
            found: dict[str, Any] | None = cast(dict[str, Any], exc.response).get("Item")
        except BotoCoreError as exc:
            raise _error("PutItem", exc) from exc
        else:
            return mine
        existing = _decode(found) if found else self.delivery(delivery.event_id, delivery.channel)
        if existing is None:
            # Expired by its TTL between the put and the read: as good as none.
            raise StaleStateError(f"notification {delivery.event_id} on {delivery.channel} moved")
        taken = take_over(existing, mine)
        if taken is not existing:
            self.update(taken)
        return taken

    def delivery(self, event_id: str, channel: Channel) -> Delivery | None:
        """The record of `event_id` on `channel`, read consistently; None if there is none."""
        try:
            answer = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": delivery_pk(event_id, channel)}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise _error("GetItem", exc) from exc
        item = answer.get("Item")
        return _decode(item) if item else None

    def update(self, delivery: Delivery) -> None:
        """Store `delivery` if the stored one is still at `delivery.version - 1`."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=self._delivery_item(delivery),
                ConditionExpression="#version = :seen",
                ExpressionAttributeNames={"#version": "version"},
                ExpressionAttributeValues={":seen": {"N": str(delivery.version - 1)}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise StaleStateError(
                    f"notification {delivery.event_id} on {delivery.channel} changed meanwhile"
                ) from exc
            raise _error("PutItem", exc) from exc
        except BotoCoreError as exc:
            raise _error("PutItem", exc) from exc

    def opt_out(self, channel: Channel, phone: str, at: datetime) -> None:
        """Remember that the holder of `phone` wants no more messages on `channel`."""
        expires = at + timedelta(days=OPT_OUT_DAYS)
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": opt_out_pk(channel, phone)},
                    "at": {"S": at.isoformat()},
                    "expires_at": {"N": str(int(expires.timestamp()))},
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise _error("PutItem", exc) from exc

    def opted_out(self, channel: Channel, phone: str) -> bool:
        """Whether the holder of `phone` opted out of `channel`."""
        try:
            answer = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": opt_out_pk(channel, phone)}},
                ProjectionExpression="pk",
            )
        except (ClientError, BotoCoreError) as exc:
            raise _error("GetItem", exc) from exc
        return bool(answer.get("Item"))
