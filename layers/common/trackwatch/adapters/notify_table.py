"""The notifiers' view of the shipments table: contact details in, notification state out.

The notifiers write only their own attributes, never `version` (the poller's and
registration's conditional writes depend on it, and a notification must not make
them conflict):
- ``notified_<channel>`` (M; whatsapp, sms, email): the channel's ChannelLog; every
  claim is conditional on its ``seq``
- ``contact_failure_<channel>`` (M): {reason, at} of a permanent delivery failure
  (a rejected number, a number not on WhatsApp); the channel is skipped from then on
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from trackwatch.adapters.shipments_table import from_item, record_from_item, to_item
from trackwatch.errors import StaleStateError, StorageError
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


def _log_attribute(channel: Channel) -> str:
    return f"notified_{channel}"


def _failure_attribute(channel: Channel) -> str:
    return f"contact_failure_{channel}"


def _error(action: str, exc: Exception) -> StorageError:
    code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
    return StorageError(f"DynamoDB {action} failed: {code}")


def recipient_from_item(item: dict[str, Any]) -> Recipient:
    """Decode what the notifiers need from one stored item (attribute-value form)."""
    record = record_from_item(item)
    plain = from_item(item)
    edd = record.state.edd.courier_partner_edd if record.state.edd else None
    opted_out = set(record.contact.opt_out)
    # The channels the customer accepts, in their order of preference; the others count as
    # opted out.
    wanted = tuple(c for c in record.contact.channels if c in CHANNELS)
    opted_out |= {c for c in CHANNELS if c not in wanted}
    return Recipient(
        key=record.key,
        phone=record.contact.phone,
        email=record.contact.email,
        language=record.contact.language,
        channels=wanted,
        timezone=record.metadata.get(TIMEZONE_METADATA_KEY),
        opt_out=frozenset(opted_out),
        order_id=record.state.order_id,
        courier_name=record.state.courier_name,
        expected_delivery=_date(edd),
        logs={
            channel: ChannelLog.model_validate(plain[_log_attribute(channel)])
            for channel in CHANNELS
            if plain.get(_log_attribute(channel))
        },
        failures={
            channel: ContactFailure.model_validate(plain[_failure_attribute(channel)])
            for channel in CHANNELS
            if plain.get(_failure_attribute(channel))
        },
    )


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


class NotifyTable:
    """Implements trackwatch.ports.RecipientStore on the shipments table."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self._table = table_name
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        """The DynamoDB client (built on first use)."""
        return self._client

    def recipient(self, key: ShipmentKey) -> Recipient | None:
        """The shipment's contact and notification state, read consistently; None if unknown."""
        try:
            answer = self.client.get_item(
                TableName=self._table, Key={"pk": {"S": key.pk}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise _error("GetItem", exc) from exc
        item = answer.get("Item")
        return recipient_from_item(item) if item else None

    def claim(self, key: ShipmentKey, channel: Channel, seen: ChannelLog, new: ChannelLog) -> None:
        """Store `new` if the channel's log is still `seen`; else StaleStateError."""
        attribute = _log_attribute(channel)
        condition = "attribute_exists(pk) AND "
        values: dict[str, Any] = {":new": new.model_dump(mode="json")}
        if seen.seq == 0:
            condition += "(attribute_not_exists(#log) OR #log.seq = :seen)"
        else:
            condition += "#log.seq = :seen"
        values[":seen"] = seen.seq
        self._update(key, "SET #log = :new", condition, {"#log": attribute}, values, "claim")

    def release(
        self, key: ShipmentKey, channel: Channel, claimed: ChannelLog, seen: ChannelLog
    ) -> None:
        """Put the log back to `seen` if it is still `claimed` (a send that did not happen)."""
        attribute = _log_attribute(channel)
        values = {":old": seen.model_dump(mode="json"), ":claimed": claimed.seq}
        try:
            self._update(
                key,
                "SET #log = :old",
                "#log.seq = :claimed",
                {"#log": attribute},
                values,
                "release",
            )
        except StaleStateError:
            # Another message claimed the channel since: its claim stands.
            return

    def record_failure(self, key: ShipmentKey, channel: Channel, failure: ContactFailure) -> None:
        """Remember that `channel` cannot reach this customer."""
        self._update(
            key,
            "SET #failure = :failure",
            "attribute_exists(pk)",
            {"#failure": _failure_attribute(channel)},
            {":failure": failure.model_dump(mode="json")},
            "record_failure",
        )

    def _update(
        self,
        key: ShipmentKey,
        expression: str,
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
        action: str,
    ) -> None:
        try:
            self.client.update_item(
                TableName=self._table,
                Key={"pk": {"S": key.pk}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item(values),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise StaleStateError(f"shipment {key}: notification {action} lost a race") from exc
            raise _error("UpdateItem", exc) from exc
        except BotoCoreError as exc:
            raise _error("UpdateItem", exc) from exc
