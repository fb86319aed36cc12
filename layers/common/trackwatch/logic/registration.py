"""What registering a shipment writes: a new item, an update of its contact, or nothing."""

from __future__ import annotations

from datetime import datetime

from trackwatch.logic.cadence import CadenceClass, due_key
from trackwatch.models.policy import Cadence
from trackwatch.models.record import Contact, RegistrationWrite, ShipmentRecord
from trackwatch.models.registration import DEFAULT_LANGUAGE, Registration
from trackwatch.models.state import ShipmentState


def merged_contact(current: Contact | None, registration: Registration) -> Contact:
    """The contact after `registration`: what it sent replaces, what it left out stays."""
    base = current or Contact()
    sent = registration.given
    return Contact(
        phone=registration.phone if sent("phone") else base.phone,
        email=registration.email if sent("email") else base.email,
        language=(registration.language or DEFAULT_LANGUAGE) if sent("language") else base.language,
        # In the order given: it is the customer's preference.
        channels=(
            (registration.channels if registration.channels is not None else Contact().channels)
            if sent("channels")
            else base.channels
        ),
        opt_out=frozenset(registration.opt_out or ()) if sent("opt_out") else base.opt_out,
    )


def plan_registration(
    record: ShipmentRecord | None,
    registration: Registration,
    now: datetime,
    cadence: Cadence,
) -> RegistrationWrite | None:
    """The write `registration` needs against the stored `record`, or None if it changes nothing.

    A new shipment starts in the NEW cadence class. A known one keeps its state,
    its place in the due index and any stop: only its contact, metadata, order_id
    and promised delivery date can change.
    """
    key = registration.key
    metadata = (
        dict(registration.metadata or {})
        if registration.given("metadata")
        else dict(record.metadata if record else {})
    )
    contact = merged_contact(record.contact if record else None, registration)
    if record is None:
        return RegistrationWrite(
            key=key,
            expected_version=None,
            contact=contact,
            metadata=metadata,
            state=ShipmentState(
                order_id=registration.order_id,
                promised_delivery_date=registration.promised_delivery_date,
            ),
            due_key=due_key(key.pk, CadenceClass.NEW, cadence),
            registered_at=now,
        )
    state: ShipmentState | None = None
    changes = {
        name: getattr(registration, name)
        for name in ("order_id", "promised_delivery_date")
        if registration.given(name) and getattr(registration, name) != getattr(record.state, name)
    }
    if changes:
        state = record.state.model_copy(update=changes)
    if contact == record.contact and metadata == record.metadata and state is None:
        return None
    return RegistrationWrite(
        key=key,
        expected_version=record.version,
        contact=contact,
        metadata=metadata,
        state=state,
    )
