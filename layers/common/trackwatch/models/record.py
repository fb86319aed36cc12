"""A tracked shipment as stored: identity, diff state, contact, and tracking lifecycle."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from trackwatch.models.events import ShipmentEvent
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.state import ShipmentState


class Contact(BaseModel):
    """How to reach the customer; personal data, never put in events or logs."""

    model_config = ConfigDict(frozen=True)

    phone: str | None = None
    email: str | None = None
    language: str = "en"
    #: Channels ("whatsapp", "sms", "email") the customer accepts, in order of preference.
    channels: tuple[str, ...] = ("whatsapp", "sms", "email")
    #: Channels the customer does not want messages on.
    opt_out: frozenset[str] = frozenset()


class ShipmentRecord(BaseModel):
    """One item of the shipments table."""

    model_config = ConfigDict(frozen=True)

    key: ShipmentKey
    #: Incremented by every write; conditional writes on it keep two pollers apart.
    version: int = Field(ge=0)
    state: ShipmentState
    registered_at: AwareDatetime
    contact: Contact = Field(default_factory=Contact)
    metadata: dict[str, str] = Field(default_factory=dict)
    #: Present while the shipment is tracked: its partition in the due index.
    due_key: str | None = None
    stop_reason: str | None = None
    stopped_at: AwareDatetime | None = None
    outbox_seq: int = 0

    @property
    def active(self) -> bool:
        """Whether the shipment is still being polled."""
        return self.stop_reason is None


class StateChange(BaseModel):
    """What a poll decided for one shipment: committed in one conditional write."""

    model_config = ConfigDict(frozen=True)

    key: ShipmentKey
    expected_version: int
    state: ShipmentState
    events: tuple[ShipmentEvent, ...] = ()
    #: The new due-index key; None stops tracking (the shipment leaves the index).
    due_key: str | None
    stop_reason: str | None = None
    stopped_at: AwareDatetime | None = None
    #: Epoch second at which DynamoDB may delete a stopped shipment.
    expires_at: int | None = None


class Outbox(BaseModel):
    """The events one write carried on a shipment item, with the write's sequence number."""

    model_config = ConfigDict(frozen=True)

    seq: int = 0
    events: tuple[ShipmentEvent, ...] = ()


class RegistrationWrite(BaseModel):
    """One conditional write: create (expected_version None) or update at a version."""

    model_config = ConfigDict(frozen=True)

    key: ShipmentKey
    expected_version: int | None
    contact: Contact
    metadata: dict[str, str]
    #: The new state when it changes (a new shipment, or a new order_id); else None.
    state: ShipmentState | None = None
    #: Only for a new shipment: its due-index key and registration time.
    due_key: str | None = None
    registered_at: AwareDatetime | None = None

    @property
    def creates(self) -> bool:
        """Whether this write creates the shipment."""
        return self.expected_version is None


class StreamChange(BaseModel):
    """One stream record, as the publisher needs it: its id and its two images."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    record_id: str
    new_image: Mapping[str, Any] | None
    old_image: Mapping[str, Any] | None
