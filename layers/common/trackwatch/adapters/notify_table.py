"""The notifiers' memory: contact details from the shipments table, what each channel has
told (and whether it can reach the customer) in small items of their own.

A send never writes the shipment item. Each (channel, shipment) has one item in
NotificationsTable, ``pk = "channel#<channel>#<cp_id>#<waybill>"``:
- ``log`` (M): the channel's ChannelLog (repeat window, daily cap, once-only kinds, the
  newest news told); every claim is conditional on its ``seq``
- ``contact_failure`` (M): {reason, at} of a permanent delivery failure (a rejected
  number, a number not on WhatsApp); the channel is skipped from then on
- ``expires_at`` (TTL): each write pushes it to `ttl_s` ahead, longer than a shipment is
  tracked, so the memory outlives every message its shipment can cause

Why its own item, and why in NotificationsTable: a claim used to rewrite the whole
shipment item (its state, contact, checkpoints: 1.5 KB and more, so 2 write units and a
stream record the publisher had to filter out) for ~300 bytes of news; here it is one
write unit on an item no poll reads. NotificationsTable already holds the notifiers' own
items (records, opt-outs), keyed and expired the same way.

The shipment's contact is read in the same BatchGetItem as the channels' items, all
consistently (claims are conditional: a stale read would only fail and be retried). Items
written before this layout kept ``notified_<channel>`` and ``contact_failure_<channel>``
on the shipment: they are still read, as the channel's memory until its own item has one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from trackwatch.adapters.batch_reads import batch_get
from trackwatch.adapters.shipments_table import from_item, record_from_item, to_item
from trackwatch.errors import StaleStateError, StorageError
from trackwatch.logic.channels import contact_recipient
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.notification import (
    CHANNELS,
    Channel,
    ChannelLog,
    ContactFailure,
    Recipient,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: The metadata key a registration may use to give the customer's IANA time zone.
TIMEZONE_METADATA_KEY = "timezone"
_LOG = "log"
_FAILURE = "contact_failure"


def channel_pk(channel: Channel, key: ShipmentKey) -> str:
    """The key of one channel's memory of one shipment."""
    return f"channel#{channel}#{key.pk}"


def _error(action: str, exc: Exception) -> StorageError:
    code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
    return StorageError(f"DynamoDB {action} failed: {code}")


def recipient_from_items(
    shipment: dict[str, Any], channels: dict[Channel, dict[str, Any]]
) -> Recipient:
    """Decode what the notifiers need from the shipment item and the channels' items
    (attribute-value form)."""
    record = record_from_item(shipment)
    legacy = from_item(shipment)
    memory = {channel: from_item(item) for channel, item in channels.items()}
    edd = record.state.edd.courier_partner_edd if record.state.edd else None

    def remembered(channel: Channel, attribute: str, legacy_prefix: str) -> Any:
        return memory.get(channel, {}).get(attribute) or legacy.get(f"{legacy_prefix}_{channel}")

    logs = {c: log for c in CHANNELS if (log := remembered(c, _LOG, "notified"))}
    failures = {c: f for c in CHANNELS if (f := remembered(c, _FAILURE, "contact_failure"))}
    return contact_recipient(record.key, record.contact).model_copy(
        update={
            "timezone": record.metadata.get(TIMEZONE_METADATA_KEY),
            "order_id": record.state.order_id,
            "courier_name": record.state.courier_name,
            "expected_delivery": _date(edd),
            "logs": {c: ChannelLog.model_validate(v) for c, v in logs.items()},
            "failures": {c: ContactFailure.model_validate(v) for c, v in failures.items()},
        }
    )


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


class NotifyTable:
    """Implements trackwatch.ports.RecipientStore: contact on the shipments table, the
    channels' memory on the notifications table."""

    def __init__(
        self,
        shipments_table: str,
        notifications_table: str,
        client: DynamoDBClient,
        *,
        ttl_s: int,
        clock: Callable[[], datetime],
        orders_table: str | None = None,
    ) -> None:
        """`orders_table`: where an order's size is read with its box's recipient (the
        notifiers'; None: this store is not asked)."""
        self._shipments = shipments_table
        self._notifications = notifications_table
        self._orders = orders_table
        self._client = client
        self._ttl = timedelta(seconds=ttl_s)
        self._clock = clock

    @property
    def client(self) -> DynamoDBClient:
        """The DynamoDB client."""
        return self._client

    def recipient(
        self, key: ShipmentKey, channels: Collection[Channel], order_id: str | None = None
    ) -> Recipient | None:
        """The shipment's contact and what `channels` remember of it, read consistently, and
        with `order_id` that order's size (read as the GetItem it replaces did: eventually
        consistent, one attribute), in one BatchGetItem; None if the shipment is unknown."""
        wanted = {channel_pk(c, key): c for c in channels}
        request: dict[str, Any] = {
            self._shipments: {"Keys": [{"pk": {"S": key.pk}}], "ConsistentRead": True},
        }
        if wanted:
            request[self._notifications] = {
                "Keys": [{"pk": {"S": pk}} for pk in wanted],
                "ConsistentRead": True,
            }
        if order_id is not None:
            if self._orders is None:
                raise ValueError("this recipient store was given no orders table")
            request[self._orders] = {
                "Keys": [{"pk": {"S": order_id}}],
                "ProjectionExpression": "member_count",
            }
        answer = batch_get(self.client, request, _error)
        shipment = next(iter(answer[self._shipments]), None)
        if shipment is None:
            return None
        found = {wanted[item["pk"]["S"]]: item for item in answer.get(self._notifications, [])}
        recipient = recipient_from_items(shipment, found)
        order = next(iter(answer.get(self._orders or "", [])), None)
        if order is None or "member_count" not in order:
            return recipient
        return recipient.model_copy(update={"order_size": int(order["member_count"]["N"])})

    def claim(self, key: ShipmentKey, channel: Channel, seen: ChannelLog, new: ChannelLog) -> None:
        """Store `new` if the channel's log is still `seen`; else StaleStateError."""
        # No log yet passes too: a log is only ever replaced, never removed (but by its TTL),
        # so "none" can only mean none was claimed since `seen` was read from an earlier layout.
        self._update(
            key,
            channel,
            f"SET #log = :new, {_EXPIRES}",
            "attribute_not_exists(#log) OR #log.seq = :seen",
            {"#log": _LOG},
            {":new": new.model_dump(mode="json"), ":seen": seen.seq},
            "claim",
        )

    def release(
        self, key: ShipmentKey, channel: Channel, claimed: ChannelLog, seen: ChannelLog
    ) -> None:
        """Put the log back to `seen` if it is still `claimed` (a send that did not happen)."""
        try:
            self._update(
                key,
                channel,
                f"SET #log = :old, {_EXPIRES}",
                "#log.seq = :claimed",
                {"#log": _LOG},
                {":old": seen.model_dump(mode="json"), ":claimed": claimed.seq},
                "release",
            )
        except StaleStateError:
            # Another message claimed the channel since: its claim stands.
            return

    def record_failure(self, key: ShipmentKey, channel: Channel, failure: ContactFailure) -> None:
        """Remember that `channel` cannot reach this customer."""
        self._update(
            key,
            channel,
            f"SET #failure = :failure, {_EXPIRES}",
            None,
            {"#failure": _FAILURE},
            {":failure": failure.model_dump(mode="json")},
            "record_failure",
        )

    def _update(
        self,
        key: ShipmentKey,
        channel: Channel,
        expression: str,
        condition: str | None,
        names: dict[str, str],
        values: dict[str, Any],
        action: str,
    ) -> None:
        values = {**values, ":expires": int((self._clock() + self._ttl).timestamp())}
        request: dict[str, Any] = {
            "TableName": self._notifications,
            "Key": {"pk": {"S": channel_pk(channel, key)}},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": to_item(values),
        }
        if condition is not None:
            request["ConditionExpression"] = condition
        try:
            self.client.update_item(**request)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise StaleStateError(f"shipment {key}: notification {action} lost a race") from exc
            raise _error("UpdateItem", exc) from exc
        except BotoCoreError as exc:
            raise _error("UpdateItem", exc) from exc


_EXPIRES = "expires_at = :expires"
