"""What End User Messaging Social publishes to the WhatsApp events topic.

Each SNS message is AWS's envelope (`context` with the account's WABA and phone number ids,
`aws_account_id`, `message_timestamp`, `messageId`) around `whatsAppWebhookEntry`: Meta's
webhook entry as a JSON *string*, with `changes[].value.statuses` (reports on messages we
sent: sent, delivered, read, failed with `errors`) and `changes[].value.messages` (what
customers wrote to us). Only the fields trackwatch reads are modelled; the rest is ignored,
so Meta adding fields breaks nothing. Customers' numbers appear here (`recipient_id`,
`from`): they are never logged.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _from_epoch(value: object) -> object:
    # Meta sends epoch seconds as a string.
    if isinstance(value, str) and value.isdigit():
        return datetime.fromtimestamp(int(value), UTC)
    return value


EpochTime = Annotated[datetime, BeforeValidator(_from_epoch)]


class _Meta(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class MetaError(_Meta):
    """One error of a failed status."""

    code: int | str

    @property
    def text_code(self) -> str:
        """The code as text."""
        return str(self.code)


class StatusReport(_Meta):
    """A report on a message we sent."""

    id: str
    status: str
    timestamp: EpochTime
    recipient_id: str | None = Field(default=None, repr=False)
    biz_opaque_callback_data: str | None = None
    errors: tuple[MetaError, ...] = ()

    @property
    def error_codes(self) -> tuple[str, ...]:
        """The errors' codes, as text."""
        return tuple(e.text_code for e in self.errors)


class TextBody(_Meta):
    """A text message's body."""

    body: str = Field(repr=False)


class ButtonReply(_Meta):
    """A quick-reply button the customer pressed."""

    text: str | None = Field(default=None, repr=False)
    payload: str | None = Field(default=None, repr=False)


class InboundMessage(_Meta):
    """Something a customer wrote to us."""

    id: str
    from_: str = Field(alias="from", repr=False)
    type: str
    timestamp: EpochTime
    text: TextBody | None = None
    button: ButtonReply | None = None

    @property
    def words(self) -> str | None:
        """What the customer wrote or pressed, if it was text."""
        if self.text is not None:
            return self.text.body
        if self.button is not None:
            return self.button.text or self.button.payload
        return None

    @property
    def phone(self) -> str:
        """The sender's number in E.164 (Meta gives it without the +)."""
        digits = self.from_.lstrip("+")
        return f"+{digits}"


class ChangeValue(_Meta):
    """One change's value."""

    statuses: tuple[StatusReport, ...] = ()
    messages: tuple[InboundMessage, ...] = ()


class Change(_Meta):
    """One change of an entry."""

    value: ChangeValue
    field: str = "messages"


class WebhookEntry(_Meta):
    """Meta's webhook entry."""

    changes: tuple[Change, ...] = ()


class WhatsAppEvent(_Meta):
    """One event from the WhatsApp events topic."""

    entries: tuple[WebhookEntry, ...]

    @property
    def statuses(self) -> list[StatusReport]:
        """Every status report it carries."""
        return [s for e in self.entries for c in e.changes for s in c.value.statuses]

    @property
    def messages(self) -> list[InboundMessage]:
        """Every customer message it carries."""
        return [m for e in self.entries for c in e.changes for m in c.value.messages]

    @classmethod
    def from_sns_message(cls, body: str) -> WhatsAppEvent:
        """Parse one SNS message; ValueError (pydantic's) if it is not one of these."""
        envelope = json.loads(body)
        if not isinstance(envelope, dict) or "whatsAppWebhookEntry" not in envelope:
            raise ValueError("not an End User Messaging Social event")
        raw = envelope["whatsAppWebhookEntry"]
        entry = json.loads(raw) if isinstance(raw, str) else raw
        # The entry as Meta sends it, or the whole webhook payload around it.
        items = entry.get("entry", [entry]) if isinstance(entry, dict) else entry
        return cls(entries=tuple(WebhookEntry.model_validate(item) for item in items))
