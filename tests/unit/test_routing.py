"""Routing events to the notifier queues: the channels an event is news for on one shipment
(the `notify` attribute the notifiers' subscriptions filter on), as the publisher and a
replay compute it."""

from __future__ import annotations

import zlib
from typing import Any

import pytest

from tests.factories import NOW
from tests.fakes import MemoryEventLog, MemoryPublisher, MemoryRejects
from tests.notify_samples import EMAIL, KEY, PHONE, RULES, ndr_raised, status_changed, stuck
from trackwatch.adapters.events_topic import message_attributes
from trackwatch.adapters.shipments_table import StreamImages, to_item
from trackwatch.logic.channels import Routing, contact_recipient, routed
from trackwatch.models.events import EVENT_LIST_ADAPTER, ShipmentEvent
from trackwatch.models.notification import CHANNELS, NOTIFY_ATTRIBUTE
from trackwatch.models.record import Contact, StreamChange
from trackwatch.services.publish import PublishService

EVERY = Routing(RULES, frozenset(CHANNELS))


def audience(
    routing: Routing = EVERY, event: ShipmentEvent | None = None, **contact: Any
) -> tuple[str, ...]:
    fields = {"phone": PHONE, "email": EMAIL, **contact}
    recipient = contact_recipient(KEY, Contact.model_validate(fields))
    return routing.audience(event or status_changed(6), recipient)


def test_whatsapp_first_and_email_besides_by_default() -> None:
    # SMS stands by: it takes over through its own queue, never from the topic.
    assert audience() == ("whatsapp", "email")


@pytest.mark.parametrize(
    ("contact", "expected"),
    [
        ({"channels": ["email"]}, ("email",)),
        ({"channels": ["sms", "whatsapp"]}, ("sms",)),
        ({"channels": ["sms", "email"]}, ("sms", "email")),
        ({"opt_out": ["whatsapp"]}, ("sms", "email")),
        ({"phone": None}, ("email",)),
        ({"email": None, "channels": ["email", "sms"]}, ("sms",)),
        ({"channels": [], "phone": None}, ()),
    ],
)
def test_the_contacts_channels_and_addresses_decide(
    contact: dict[str, Any], expected: tuple[str, ...]
) -> None:
    assert audience(**contact) == expected


def test_whatsapp_off_in_this_deployment_routes_to_sms() -> None:
    routing = Routing(RULES, frozenset({"sms", "email"}))
    assert audience(routing) == ("sms", "email")


def test_only_events_that_make_a_message_are_routed() -> None:
    # an in-transit status change is no customer news
    assert audience(event=status_changed(3)) == ()
    assert audience(event=ndr_raised()) == ("whatsapp", "email")
    assert audience(event=stuck()) == ("whatsapp", "email")


def test_the_attribute_is_a_string_array_and_absent_when_no_channel_takes_the_event() -> None:
    event = status_changed(6)
    attributes = message_attributes(event, ("whatsapp", "email"))
    assert attributes[NOTIFY_ATTRIBUTE] == {
        "DataType": "String.Array",
        "StringValue": '["email", "whatsapp"]',
    }
    assert NOTIFY_ATTRIBUTE not in message_attributes(event)
    assert NOTIFY_ATTRIBUTE not in message_attributes(event, ())


def test_a_queue_message_tells_which_channels_the_topic_gave_it_to() -> None:
    names = routed({NOTIFY_ATTRIBUTE: ("String.Array", '["email", "whatsapp"]')})
    assert names == frozenset({"email", "whatsapp"})
    # published before routing (or by hand): every channel had it
    assert routed({}) is None


def test_the_publisher_routes_each_event_by_the_shipments_contact() -> None:
    # Given a stream record of an e-mail-only shipment with a notifiable and a silent event
    events = [status_changed(6), status_changed(3, "x")]
    image = to_item({"pk": KEY.pk, "contact": {"email": EMAIL, "channels": ["email"]}})
    image |= {
        "outbox_seq": {"N": "1"},
        "outbox": {"B": zlib.compress(EVENT_LIST_ADAPTER.dump_json(events))},
    }
    topic = MemoryPublisher()
    service = PublishService(
        StreamImages(), topic, MemoryEventLog(), MemoryRejects(), lambda: NOW, EVERY
    )

    # When it is published
    service.publish([StreamChange(record_id="r1", new_image=image, old_image=None)])

    # Then the out-for-delivery goes to e-mail alone, the in-transit change to no notifier
    assert topic.audiences == {events[0].event_id: ("email",), events[1].event_id: ()}


def test_an_image_without_a_contact_routes_nothing() -> None:
    assert StreamImages().recipient({"pk": {"S": KEY.pk}}) is None
    assert StreamImages().recipient(None) is None
