"""Input that is not plain text: the waybill's character set and normalisation, lone
surrogates, control and invisible characters, extreme dates (issue 14, "Inputs")."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.factories import NOW
from tests.fakes import MemoryRejects, MemoryStore
from trackwatch.errors import InvalidInputError
from trackwatch.models.inputs import check_since, visible
from trackwatch.models.keys import ShipmentKey, check_waybill
from trackwatch.models.policy import Cadence
from trackwatch.models.registration import Outcome, Registration, Rejected, parse_entry
from trackwatch.services.ingest import IngestService
from trackwatch.services.registration import register_all

CADENCE = Cadence()
LANGUAGES = frozenset({"en", "hi"})
CHARACTER_SET = "must be visible ASCII (U+0021 to U+007E"


def rejected(raw: object) -> Rejected:
    parsed = parse_entry(raw, LANGUAGES)
    assert isinstance(parsed, Rejected), parsed
    # Whatever was refused, the answer that says so can be serialised and stored.
    parsed.model_dump_json().encode("utf-8")
    str(parsed).encode("utf-8")
    return parsed


# --- the waybill's character set -------------------------------------------------------


@pytest.mark.parametrize(
    ("waybill", "rule"),
    [
        ("AB\x00CD", f"{CHARACTER_SET}: letters, digits, punctuation): U+0000"),
        ("AB\x1bCD", "U+001B (a control character) at position 3 is not"),
        ("AB\x1b[31mCD", "U+001B"),
        ("AB\x7fCD", "U+007F"),
        ("AB\u200bCD", "U+200B (ZERO WIDTH SPACE)"),
        ("AB\u200dCD", "U+200D (ZERO WIDTH JOINER)"),
        ("\ufeffABCD", "U+FEFF (ZERO WIDTH NO-BREAK SPACE) at position 1"),
        ("AB\u2060CD", "U+2060 (WORD JOINER)"),
        ("AB\u202eDC", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
        ("\u0410B12", "U+0410 (CYRILLIC CAPITAL LETTER A) at position 1"),
        ("AB\u00e912", "U+00E9 (LATIN SMALL LETTER E WITH ACUTE)"),
        ("AB\ue000", "U+E000"),
        ("AB\U000e0041", "U+E0041 (TAG LATIN CAPITAL LETTER A)"),
    ],
)
def test_a_waybill_with_a_control_invisible_or_look_alike_character_is_refused(
    waybill: str, rule: str
) -> None:
    # Given a waybill with one character outside the set, When it is registered
    found = rejected({"waybill": waybill, "cp_id": 4})

    # Then it is refused, naming the rule and the character (never echoing it raw)
    (problem,) = found.problems
    assert problem.field == "waybill"
    assert problem.rule.startswith(CHARACTER_SET), problem.rule
    assert rule in problem.rule
    assert problem.rule.isprintable() and problem.rule.isascii()


@pytest.mark.parametrize(
    ("waybill", "rule"),
    [
        ("AB\u00a0CD", "must not contain whitespace"),  # NFKC: a no-break space is a space
        ("AB\u3000CD", "must not contain whitespace"),
        ("AB\x85CD", "must not contain whitespace"),  # NEL is a line break
        ("AB\uff0cCD", "must not contain a comma"),  # a full-width comma is a comma
        ("   ", "must not be empty"),
        ("\u3000", "must not be empty"),
        ("A" * 98 + "\u3392", "must be at most 100 characters, got 101"),  # MHz: 3 letters
    ],
)
def test_the_rules_apply_to_the_normalised_waybill(waybill: str, rule: str) -> None:
    (problem,) = rejected({"waybill": waybill, "cp_id": 4}).problems
    assert problem.field == "waybill"
    assert problem.rule.startswith(rule), problem.rule


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("AB12", "AB12"),
        ("  AB12\t", "AB12"),
        ("\uff21\uff22\uff11\uff12", "AB12"),  # full-width letters and digits
        ("AB-12/X_9.Z#[/]", "AB-12/X_9.Z#[/]"),  # punctuation is part of the set
        ("\u2460", "1"),  # a circled one is a 1
    ],
)
def test_a_waybill_is_normalised_before_it_becomes_a_key(typed: str, key: str) -> None:
    parsed = parse_entry({"waybill": typed, "cp_id": 4}, LANGUAGES)
    assert isinstance(parsed, Registration), parsed
    assert parsed.waybill == key
    assert parsed.key.pk == f"4#{key}"
    assert ShipmentKey.parse("4", typed) == parsed.key
    assert check_waybill(typed) == key


def test_a_look_alike_of_a_registered_waybill_is_the_same_shipment_or_refused() -> None:
    # Given a registered shipment
    store = MemoryStore()
    register_all([parse_entry({"waybill": "AB12", "cp_id": 4}, LANGUAGES)], store, NOW, CADENCE)

    # When its full-width form and a zero-width look-alike are registered
    results = register_all(
        [
            parse_entry({"waybill": "\uff21\uff22\uff11\uff12", "cp_id": 4}, LANGUAGES),
            parse_entry({"waybill": "AB\u200b12", "cp_id": 4}, LANGUAGES),
        ],
        store,
        NOW,
        CADENCE,
    )

    # Then the first is the same shipment, unchanged, the second refused: still one item
    assert [r.outcome for r in results] == [Outcome.UNCHANGED, Outcome.REJECTED]
    assert set(store.records) == {ShipmentKey.of(4, "AB12")}


def test_a_key_stored_before_the_character_set_rule_is_still_read() -> None:
    # Keys the API stored before this rule must stay pollable and stoppable.
    key = ShipmentKey.from_pk("4#AB\x00CD")
    assert key.waybill == "AB\x00CD"
    with pytest.raises(InvalidInputError, match="U\\+0000"):
        ShipmentKey.parse(4, key.waybill)


def test_a_key_from_a_caller_names_the_rule() -> None:
    with pytest.raises(InvalidInputError) as caught:
        ShipmentKey.parse("4", "AB\u200b12")
    assert caught.value.field == "waybill"
    with pytest.raises(InvalidInputError, match="at most 2147483647") as too_big:
        ShipmentKey.parse(2**40, "AB12")
    assert too_big.value.field == "cp_id"


@pytest.mark.parametrize(
    ("cp_id", "rule"),
    [
        ("\u00b2x", "must be a positive integer, got"),
        ("9" * 5000, "must be a positive integer of at most 2147483647"),
        ("99999999999", "must be a positive integer of at most 2147483647"),
        ("\u0664", "must be a positive integer, got"),  # an Arabic-Indic four
        ("4\x00", "must be a positive integer, got '4\\x00'"),
    ],
)
def test_a_cp_id_that_is_not_ascii_digits_is_refused_naming_the_rule(cp_id: str, rule: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        ShipmentKey.parse(cp_id, "AB12")
    assert caught.value.field == "cp_id"
    assert caught.value.rule.startswith(rule), caught.value.rule
    (problem,) = rejected({"waybill": "AB12", "cp_id": cp_id}).problems
    assert (problem.field, problem.rule) == ("cp_id", caught.value.rule)


def test_a_cp_id_in_another_form_of_the_same_digits_is_read() -> None:
    assert ShipmentKey.parse("\uff14", "AB12").cp_id == 4  # full-width 4, as NFKC reads it
    assert ShipmentKey.parse(" 7 ", "AB12").cp_id == 7


# --- lone surrogates, anywhere ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"waybill": "AB\ud800CD", "cp_id": 4}, "waybill"),
        ({"waybill": "\udcff", "cp_id": 4}, "waybill"),
        ({"waybill": "A1", "cp_id": 4, "order_id": "O\ud800"}, "order_id"),
        ({"waybill": "A1", "cp_id": 4, "metadata": {"k": "\udfff"}}, "metadata.k"),
        ({"waybill": "A1", "cp_id": 4, "metadata": {"\ud800": "v"}}, "metadata.\\ud800"),
        ({"waybill": "A1", "cp_id": 4, "\ud800": 1}, "\\ud800"),
        ({"waybill": "A1", "cp_id": 4, "email": "a\ud800@example.com"}, "email"),
        ({"waybill": "A1", "cp_id": 4, "phone": "98765\ud80043210"}, "phone"),
        ({"waybill": "A1", "cp_id": 4, "channels": ["sms", "\ud800"]}, "channels[1]"),
        ({"waybill": "A1", "cp_id": "\ud800"}, "cp_id"),
    ],
)
def test_a_lone_surrogate_anywhere_rejects_the_entry_naming_where(
    raw: dict[str, object], field: str
) -> None:
    # When an entry with a lone surrogate (JSON's "\ud800") is read
    found = rejected(raw)

    # Then it is refused, naming where, and nothing in the answer holds the surrogate
    assert [p.field for p in found.problems] == [field]
    assert "valid Unicode text" in found.problems[0].rule
    assert found.waybill is None or found.waybill.isascii()


def test_a_lone_surrogate_in_a_batch_rejects_that_entry_and_stores_the_rest() -> None:
    # Given a batch of two good entries around one with a lone surrogate in its waybill
    store = MemoryStore()
    raw = [
        {"waybill": "G1", "cp_id": 4},
        {"waybill": "AB\ud800", "cp_id": 4},
        {"waybill": "G2", "cp_id": 4, "metadata": {"note": "ok"}},
    ]

    # When it is registered
    results = register_all([parse_entry(r, LANGUAGES) for r in raw], store, NOW, CADENCE)

    # Then the good ones are stored, the bad one rejected, and nothing raised
    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.REJECTED, Outcome.CREATED]
    assert set(store.records) == {ShipmentKey.of(4, "G1"), ShipmentKey.of(4, "G2")}


# --- the other text fields --------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"order_id": "ORD\x00"}, "order_id", "must be printable text: U+0000"),
        ({"order_id": "ORD\x1b[2J"}, "order_id", "must be printable text: U+001B"),
        ({"order_id": "ORD\u202e1"}, "order_id", "must be printable text: U+202E"),
        ({"metadata": {"k\x1b": "v"}}, "metadata", "must be printable text: U+001B"),
    ],
)
def test_text_fields_refuse_control_and_invisible_characters(
    fields: dict[str, object], field: str, rule: str
) -> None:
    (problem,) = rejected({"waybill": "A1", "cp_id": 4, **fields}).problems
    assert problem.field == field
    assert problem.rule.startswith(rule), problem.rule


def test_an_unknown_field_is_named_with_its_control_characters_escaped() -> None:
    (problem,) = rejected({"waybill": "A1", "cp_id": 4, "\x1b[31mred": 1}).problems
    assert problem.field == "\\x1b[31mred"
    assert problem.rule == "is not a known field"


# --- IngestQueue -----------------------------------------------------------------------


def test_ingest_dead_letters_control_characters_and_surrogates_and_stores_the_rest() -> None:
    # Given a message: a good entry, a NUL waybill, a lone surrogate (as JSON sends it)
    store, rejects = MemoryStore(), MemoryRejects()
    service = IngestService(
        lambda entries: register_all(entries, store, NOW, CADENCE), rejects, LANGUAGES
    )
    body = '[{"waybill": "G1", "cp_id": 4}, {"waybill": "A\\u0000B", "cp_id": 4},' + (
        ' {"waybill": "A\\ud800B", "cp_id": 4}]'
    )

    # When it is ingested
    counts = service.ingest(body)

    # Then the good one is stored; each bad one is set aside with its rule, as valid text
    assert dict(counts) == {"created": 1, "rejected": 2}
    assert set(store.records) == {ShipmentKey.of(4, "G1")}
    reasons = [reason for _, reason in rejects.rejected]
    assert reasons[0].startswith("waybill: must be visible ASCII")
    assert reasons[1] == "waybill: must be valid Unicode text: U+D800 (a lone surrogate) is not"
    for sent, reason in rejects.rejected:
        sent.encode("utf-8")
        reason.encode("utf-8")
    assert json.loads(rejects.rejected[1][0]) == {"waybill": "A\ud800B", "cp_id": 4}


# --- dates at the ends of the calendar ----------------------------------------------------


@pytest.mark.parametrize(
    "since",
    [
        datetime.fromisoformat("0001-01-01T00:00:00+05:30"),
        datetime.fromisoformat("9999-12-31T23:59:59-05:00"),
        datetime.fromisoformat("0001-01-01T00:00:00+23:59"),
    ],
)
def test_a_since_outside_the_calendar_in_utc_is_refused(since: datetime) -> None:
    with pytest.raises(InvalidInputError, match="must be between 0001-01-01") as caught:
        check_since("since", since)
    assert caught.value.field == "since"


def test_a_since_is_read_in_utc_and_must_carry_an_offset() -> None:
    assert check_since("since", datetime.fromisoformat("2026-11-27T12:00:00+05:30")) == datetime(
        2026, 11, 27, 6, 30, tzinfo=UTC
    )
    assert check_since("since", datetime.fromisoformat("0001-01-01T00:00:00Z")).year == 1
    with pytest.raises(InvalidInputError, match="offset"):
        check_since("since", datetime(2026, 11, 27))


# --- showing text from outside -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Shipped [/]", "Shipped [/]"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("Delivered\rHACKED", "Delivered\\x0dHACKED"),
        ("two\nlines", "two\\x0alines"),
        ("\x07bell\x00", "\\x07bell\\x00"),
        ("abc\u202edcba", "abc\\u202edcba"),
        ("lone \ud800", "lone \\ud800"),
        ("\u0915\u094d\u200d\u0937", "\u0915\u094d\u200d\u0937"),  # Devanagari keeps its ZWJ
        ("plain text, 12 \u20b9", "plain text, 12 \u20b9"),
    ],
)
def test_visible_escapes_what_a_terminal_would_act_on(text: str, shown: str) -> None:
    assert visible(text) == shown
