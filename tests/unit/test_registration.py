"""Registration rules, the registration plan, and the shipments use cases over fakes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta

import pytest

from tests.factories import NOW
from tests.fakes import MemoryEventLog, MemoryPublisher, MemoryQueue, MemoryRejects, MemoryStore
from trackwatch.bootstrap import bootstrap
from trackwatch.config import Settings
from trackwatch.errors import (
    ConflictError,
    InvalidInputError,
    MalformedInputError,
    NotFoundError,
    StorageError,
)
from trackwatch.logic.cadence import CadenceClass, due_key
from trackwatch.logic.registration import plan_registration
from trackwatch.models.events import Invalid, NdrRaised, event_id
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.policy import Cadence
from trackwatch.models.record import ShipmentRecord
from trackwatch.models.registration import Outcome, Registration, Rejected, parse_body, parse_entry
from trackwatch.services.ingest import IngestService
from trackwatch.services.registration import register, register_all
from trackwatch.services.shipments import STOPPED_BY_REQUEST, ShipmentsService

CADENCE = Cadence()
LANGUAGES = frozenset({"en", "hi"})


def entry(**fields: object) -> Registration:
    parsed = parse_entry({"waybill": "AWB1", "cp_id": 4, **fields}, LANGUAGES)
    assert isinstance(parsed, Registration), parsed
    return parsed


def problems(raw: object) -> list[str]:
    parsed = parse_entry(raw, LANGUAGES)
    assert isinstance(parsed, Rejected), parsed
    return [str(p) for p in parsed.problems]


# --- the rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"waybill": ""}, "waybill: must not be empty"),
        ({"waybill": "A" * 101}, "waybill: must be at most 100 characters, got 101"),
        (
            {"waybill": "A,B"},
            "waybill: must not contain a comma (Clickpost separates AWBs by commas)",
        ),
        ({"waybill": "A B"}, "waybill: must not contain whitespace"),
        ({"waybill": "A\tB"}, "waybill: must not contain whitespace"),
        ({"waybill": 12}, "waybill: must be a string, not int"),
        ({"cp_id": 0}, "cp_id: must be a positive integer, got 0"),
        ({"cp_id": -3}, "cp_id: must be a positive integer, got -3"),
        ({"cp_id": "four"}, "cp_id: must be a positive integer, got 'four'"),
        ({"cp_id": 4.5}, "cp_id: must be a positive integer, got 4.5"),
        ({"cp_id": True}, "cp_id: must be a positive integer, not a boolean"),
        ({"cp_id": 2**40}, "cp_id: must be a positive integer of at most 2147483647"),
        ({"phone": "12345"}, "phone: not a valid phone number"),
        ({"phone": "not a number"}, "phone: not a valid phone number"),
        ({"phone": "+1 555 0100"}, "phone: not a valid phone number"),
        ({"email": "nobody"}, "email: not a valid e-mail address"),
        ({"email": "a@b@c.com"}, "email: not a valid e-mail address"),
        ({"language": "fr"}, "language: must be one of en, hi"),
        ({"channels": ["fax"]}, "channels[0]: must be one of whatsapp, sms or email"),
        ({"channels": ["sms", "sms"]}, "channels: must not repeat a channel"),
        ({"opt_out": ["pigeon"]}, "opt_out[0]: must be one of whatsapp, sms or email"),
        ({"metadata": {"k": 1}}, "metadata: value of 'k' must be a string"),
        ({"metadata": {f"k{i}": "v" for i in range(21)}}, "metadata: must have at most 20 entries"),
        ({"metadata": {"k": "v" * 257}}, "metadata: value of 'k' must be at most 256 characters"),
        ({"order_id": ""}, "order_id: must be at least 1 characters"),
        ({"phone_number": "x"}, "phone_number: is not a known field"),
        (
            {"promised_delivery_date": "9999-12-31"},
            "promised_delivery_date: must be a date from 2000-01-01 to 2099-12-31",
        ),
        (
            {"promised_delivery_date": "0001-01-01"},
            "promised_delivery_date: must be a date from 2000-01-01 to 2099-12-31",
        ),
        ({"promised_delivery_date": "2026-02-30"}, "promised_delivery_date: must be a date"),
        ({"promised_delivery_date": "2026-12-01T00:00"}, "promised_delivery_date: must be a date"),
        ({"promised_delivery_date": 1795820709}, "promised_delivery_date: must be a date"),
    ],
)
def test_a_broken_rule_names_the_field_and_the_rule(
    fields: dict[str, object], expected: str
) -> None:
    # Given an otherwise good registration with one bad field
    raw = {"waybill": "AWB1", "cp_id": 4, **fields}

    # When it is parsed
    found = problems(raw)

    # Then the problem says which field and which rule
    assert len(found) == 1
    assert found[0].startswith(expected), found


def test_missing_fields_are_named() -> None:
    assert problems({}) == ["waybill: is required", "cp_id: is required"]
    assert problems([1, 2]) == ["body: must be an object"]


def test_contacts_are_normalised() -> None:
    # Given a national Indian number with spaces, a +91 one, and a mixed-case address
    national = entry(phone="98765 43210", email="Someone@Example.COM")
    international = entry(phone="+91-98765-43210")

    # Then phones are E.164 and the e-mail's domain is lower-cased
    assert national.phone == international.phone == "+919876543210"
    assert national.email == "Someone@example.com"
    assert entry(cp_id="7").cp_id == 7


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{not json", "body: not valid JSON"),
        ("", "body: is required: a JSON object or a list of them"),
        ("42", "body: must be a JSON object or a list of objects"),
        ('"text"', "body: must be a JSON object or a list of objects"),
        ("[]", "body: a batch must hold at least one shipment"),
        (json.dumps([{}] * 101), "body: a batch holds at most 100 shipments, got 101"),
    ],
)
def test_a_whole_body_problem_refuses_the_body(body: str, expected: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        parse_body(body)
    assert str(raised.value) == expected
    assert isinstance(raised.value, MalformedInputError) == (
        expected.startswith("body: not valid") or "is required" in expected
    )


# --- the plan --------------------------------------------------------------------


def test_a_new_shipment_starts_in_the_new_cadence_class() -> None:
    registration = entry(order_id="ORD-9", phone="9876543210")

    write = plan_registration(None, registration, NOW, CADENCE)

    assert write is not None and write.creates
    assert write.due_key == due_key("4#AWB1", CadenceClass.NEW, CADENCE)
    assert write.state is not None and write.state.order_id == "ORD-9"
    # Every channel, WhatsApp first: the order is the customer's preference
    assert write.contact.channels == ("whatsapp", "sms", "email")


def test_the_channels_keep_the_order_they_were_given_in() -> None:
    write = plan_registration(None, entry(channels=["sms", "whatsapp"]), NOW, CADENCE)
    assert write is not None and write.contact.channels == ("sms", "whatsapp")


def test_registering_again_merges_what_was_sent_and_keeps_the_rest() -> None:
    # Given a stored shipment with a phone, an e-mail and metadata
    store = MemoryStore()
    register(
        entry(phone="9876543210", email="a@example.com", metadata={"k": "v"}), store, NOW, CADENCE
    )
    record = store.get(ShipmentKey.of(4, "AWB1"))

    # When it is registered with only a new language, then with the e-mail cleared
    language = plan_registration(record, entry(language="hi"), NOW, CADENCE)
    cleared = plan_registration(record, entry(email=None), NOW, CADENCE)

    # Then only what was sent changes
    assert language is not None and language.expected_version == 1
    assert language.contact.phone == "+919876543210"
    assert language.contact.email == "a@example.com"
    assert language.contact.language == "hi"
    assert language.metadata == {"k": "v"}
    assert cleared is not None and cleared.contact.email is None
    # and the same registration again plans no write at all
    assert plan_registration(record, entry(phone="+919876543210"), NOW, CADENCE) is None


# --- the services ------------------------------------------------------------------


def test_registering_the_same_shipment_twice_writes_once() -> None:
    store = MemoryStore()

    first = register(entry(phone="9876543210"), store, NOW, CADENCE)
    second = register(entry(phone="9876543210"), store, NOW, CADENCE)
    third = register(entry(opt_out=["sms"]), store, NOW, CADENCE)

    assert first == (Outcome.CREATED, True)
    assert second == (Outcome.UNCHANGED, True)
    assert third == (Outcome.UPDATED, True)
    assert store.writes == 2
    assert len(store.records) == 1
    assert store.records[ShipmentKey.of(4, "AWB1")].version == 2


def test_a_batch_stores_the_good_entries_and_reports_each_bad_one() -> None:
    store = MemoryStore()
    entries = [
        parse_entry(raw, LANGUAGES)
        for raw in (
            {"waybill": "A1", "cp_id": 4},
            {"waybill": "A 2", "cp_id": 4},
            {"waybill": "A3", "cp_id": 4, "email": "x"},
            {"waybill": "A1", "cp_id": 4, "language": "hi"},
        )
    ]

    results = register_all(entries, store, NOW, CADENCE)

    assert [r.outcome for r in results] == [
        Outcome.CREATED,
        Outcome.REJECTED,
        Outcome.REJECTED,
        Outcome.UPDATED,
    ]
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert set(store.records) == {ShipmentKey.of(4, "A1")}
    assert store.records[ShipmentKey.of(4, "A1")].contact.language == "hi"


def test_an_exclusive_load_creates_new_shipments_in_batches_and_overwrites_none() -> None:
    # Given one shipment already stored, with a contact and a polled state
    store = MemoryStore()
    register(entry(waybill="OLD1", phone="9876543210"), store, NOW, CADENCE)
    old = store.records[ShipmentKey.of(4, "OLD1")]
    entries = [
        parse_entry(raw, LANGUAGES)
        for raw in (
            {"waybill": "NEW1", "cp_id": 4},
            {"waybill": "OLD1", "cp_id": 4},
            {"waybill": "NEW2", "cp_id": 5, "order_id": "O-2"},
            {"waybill": "NEW1", "cp_id": 4, "language": "hi"},
        )
    ]

    # When a fresh stack's loader registers them as the table's only writer
    results = register_all(entries, store, NOW, CADENCE, exclusive=True)

    # Then the two new ones were created by the batch, the later row of one updated it,
    # and the stored one went through the conditional path untouched (nothing to change)
    assert [r.outcome for r in results] == [
        Outcome.CREATED,
        Outcome.UNCHANGED,
        Outcome.CREATED,
        Outcome.UPDATED,
    ]
    assert store.bulk_writes == 2
    assert store.records[ShipmentKey.of(4, "OLD1")] == old
    assert store.records[ShipmentKey.of(4, "NEW1")].contact.language == "hi"
    assert store.records[ShipmentKey.of(5, "NEW2")].state.order_id == "O-2"


def test_without_exclusive_use_every_create_is_conditional() -> None:
    store = MemoryStore()

    register_all([entry(waybill="N1"), entry(waybill="N2")], store, NOW, CADENCE)

    assert store.bulk_writes == 0
    assert len(store.records) == 2


def test_a_stopped_shipment_registered_again_stays_stopped() -> None:
    store = MemoryStore()
    service = new_service(store)
    key = ShipmentKey.of(4, "AWB1")
    register(entry(), store, NOW, CADENCE)
    service.stop(key)

    outcome = register(entry(email="a@example.com"), store, NOW, CADENCE)

    assert outcome == (Outcome.UPDATED, False)
    assert store.records[key].due_key is None


def new_service(
    store: MemoryStore,
    queue: MemoryQueue | None = None,
    log: MemoryEventLog | None = None,
    publisher: MemoryPublisher | None = None,
) -> ShipmentsService:
    container = bootstrap(
        Settings({}),
        clock=lambda: NOW,
        shipments=store,
        poll_queue=queue or MemoryQueue(),
        event_log=log or MemoryEventLog(),
        publisher=publisher or MemoryPublisher(),
    )
    return container.shipments_service


def test_stop_leaves_the_due_index_and_sets_a_ttl_once() -> None:
    store = MemoryStore()
    key = ShipmentKey.of(4, "AWB1")
    register(entry(), store, NOW, CADENCE)
    service = new_service(store)

    first = service.stop(key)
    writes = store.writes
    again = service.stop(key)

    record = store.records[key]
    assert record.due_key is None
    assert record.stop_reason == STOPPED_BY_REQUEST
    assert first.stopped is not None and first.stopped.reason == STOPPED_BY_REQUEST
    assert again.stopped == first.stopped
    assert store.writes == writes  # stopping again writes nothing
    with pytest.raises(NotFoundError):
        service.stop(ShipmentKey.of(4, "UNKNOWN"))


def test_refresh_goes_through_the_dispatch_path_unless_tracking_stopped() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    key = ShipmentKey.of(4, "AWB1")
    register(entry(), store, NOW, CADENCE)
    service = new_service(store, queue)

    view = service.refresh(key)

    assert (view.calls, view.messages) == (1, 1)
    (request,) = queue.sent
    assert request.reason == "refresh"
    assert request.calls[0].keys == (key,)
    service.stop(key)
    with pytest.raises(ConflictError):
        service.refresh(key)
    with pytest.raises(NotFoundError):
        service.refresh(ShipmentKey.of(4, "UNKNOWN"))


def test_replay_republishes_the_logged_events_with_their_ids() -> None:
    # Given a shipment with two logged events, one of them an NDR
    store, log, publisher = MemoryStore(), MemoryEventLog(), MemoryPublisher()
    key = ShipmentKey.of(4, "AWB1")
    register(entry(), store, NOW, CADENCE)
    early = Invalid(
        event_id=event_id(4, "AWB1", "shipment.invalid", "1"),
        waybill="AWB1",
        cp_id=4,
        order_id=None,
        courier_name=None,
        occurred_at=NOW - timedelta(days=2),
        detected_at=NOW - timedelta(days=2),
    )
    ndr = NdrRaised(
        event_id=event_id(4, "AWB1", "shipment.ndr_raised", "2"),
        waybill="AWB1",
        cp_id=4,
        order_id=None,
        courier_name=None,
        occurred_at=NOW - timedelta(days=1),
        detected_at=NOW,
        checkpoint_id=7,
        attempt=1,
        ndr_bucket_code=1,
        ndr_description="Customer unavailable",
        location="Delhi",
        remark=None,
    )
    log.append([[ndr], [early]])
    service = new_service(store, log=log, publisher=publisher)

    # When everything, then only the last day, is replayed
    everything = service.replay(key)
    recent = service.replay(key, since=NOW - timedelta(days=1, hours=1))

    # Then the same events go out again, oldest first, with their ids
    assert everything.event_ids == [early.event_id, ndr.event_id]
    assert recent.event_ids == [ndr.event_id]
    assert [e.event_id for e in publisher.published] == [early.event_id, ndr.event_id, ndr.event_id]
    # and show reports the last NDR from the log
    shown = service.show(key)
    assert shown.ndr.last is not None and shown.ndr.last.ndr_description == "Customer unavailable"
    with pytest.raises(NotFoundError):
        service.replay(ShipmentKey.of(4, "UNKNOWN"))


# --- IngestQueue ---------------------------------------------------------------------


def ingest_into(store: MemoryStore, rejects: MemoryRejects, body: str) -> dict[str, int]:
    service = IngestService(
        lambda entries: register_all(entries, store, NOW, CADENCE), rejects, LANGUAGES
    )
    return dict(service.ingest(body))


def test_ingest_sets_aside_what_can_never_be_accepted_at_once() -> None:
    store, rejects = MemoryStore(), MemoryRejects()

    not_json = ingest_into(store, rejects, "{nope")
    mixed = ingest_into(
        store,
        rejects,
        json.dumps([{"waybill": "A1", "cp_id": 4}, {"waybill": "A2", "cp_id": 4, "phone": "1"}]),
    )

    assert not_json == {"rejected": 1}
    assert mixed == {"created": 1, "rejected": 1}
    assert set(store.records) == {ShipmentKey.of(4, "A1")}
    assert rejects.rejected[0] == ("{nope", "body: not valid JSON")
    assert json.loads(rejects.rejected[1][0]) == {"waybill": "A2", "cp_id": 4, "phone": "1"}
    assert rejects.rejected[1][1] == "phone: not a valid phone number"


def test_ingest_raises_a_storage_failure_so_the_message_is_retried() -> None:
    class BrokenStore(MemoryStore):
        def get(self, key: ShipmentKey) -> None:
            raise StorageError("DynamoDB GetItem failed: ThrottlingException")

        def get_many(
            self, keys: Iterable[ShipmentKey], *, consistent: bool = False
        ) -> dict[ShipmentKey, ShipmentRecord]:
            raise StorageError("DynamoDB BatchGetItem failed: ThrottlingException")

    rejects = MemoryRejects()
    with pytest.raises(StorageError):
        ingest_into(BrokenStore(), rejects, json.dumps([{"waybill": "A1", "cp_id": 4}, {}]))
    # nothing was set aside: the retry will decide again
    assert rejects.rejected == []
