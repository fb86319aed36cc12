"""The shipments API and IngestQueue over moto, given input that is not plain text.

Control characters, invisible look-alikes, lone surrogates and dates at the ends of
the calendar: each is a 4xx naming the rule (or, in a batch or on IngestQueue, that
entry set aside), never a 500, and never a 500 after the good entries were stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from tests.integration.shipments_stack import (
    STACK_NAME,
    HttpAnswer,
    ShipmentsStack,
    shipments_stack,
)
from trackwatch.models.events import Invalid, ScanAdded, StatusFields, event_id
from trackwatch.models.record import StateChange
from trackwatch.models.state import CurrentStatus
from trackwatch_cli import shipments_cli
from trackwatch_cli.main import app

__all__ = ["shipments_stack"]  # the fixture, for pytest

CHARACTER_SET = "must be visible ASCII (U+0021 to U+007E"


def call(
    stack: ShipmentsStack,
    method: str,
    path: str,
    body: Any = None,
    query: dict[str, str] | None = None,
) -> HttpAnswer:
    """One request; the function must answer it (a crash is Lambda's 500)."""
    crashes = len(stack.runtime.crashes)
    answer = stack.http(method, path, body, query)
    assert stack.runtime.crashes[crashes:] == [], "the function crashed: a 500"
    assert answer.status < 500, answer.body
    return answer


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        ('{"waybill": "AB\\u0000CD", "cp_id": 4}', f"{CHARACTER_SET}: letters"),
        ('{"waybill": "AB\\u001b[31mCD", "cp_id": 4}', "U+001B (a control character)"),
        ('{"waybill": "AB\\u200bCD", "cp_id": 4}', "U+200B (ZERO WIDTH SPACE)"),
        ('{"waybill": "\\u0410B12", "cp_id": 4}', "U+0410 (CYRILLIC CAPITAL LETTER A)"),
        ('{"waybill": "AB\\ud800CD", "cp_id": 4}', "must be valid Unicode text: U+D800"),
        ('{"waybill": "\\udfff", "cp_id": 4}', "must be valid Unicode text: U+DFFF"),
    ],
)
def test_a_waybill_that_is_not_plain_text_is_a_422_naming_the_rule(
    shipments_stack: ShipmentsStack, body: str, rule: str
) -> None:
    # When one shipment whose waybill is not plain text is posted
    answer = call(shipments_stack, "POST", "/shipments", body)

    # Then 422 names the waybill and the rule, and nothing is stored
    assert answer.status == 422
    (problem,) = answer.body["errors"]
    assert problem["field"] == "waybill"
    assert rule in problem["rule"]
    assert shipments_stack.item_count() == 0


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ('{"waybill": "B-9", "cp_id": 4, "order_id": "\\ud800"}', "order_id"),
        ('{"waybill": "B-9", "cp_id": 4, "metadata": {"k": "\\ud800"}}', "metadata.k"),
        ('{"waybill": "B-9", "cp_id": 4, "\\ud800": 1}', "\\ud800"),
        ('{"waybill": "B-9", "cp_id": 4, "email": "a\\udc00@example.com"}', "email"),
        ('{"waybill": "AB\\ud800", "cp_id": 4}', "waybill"),
    ],
)
def test_a_lone_surrogate_in_a_batch_rejects_its_entry_and_stores_the_rest(
    shipments_stack: ShipmentsStack, entry: str, field: str
) -> None:
    # Given a batch: a good entry, one with a lone surrogate somewhere, another good one
    body = f'[{{"waybill": "B-1", "cp_id": 4}}, {entry}, {{"waybill": "B-2", "cp_id": 4}}]'

    # When it is posted
    answer = call(shipments_stack, "POST", "/shipments", body)

    # Then 207: the good ones stored and reported, the bad one rejected naming where
    assert answer.status == 207
    assert [r["outcome"] for r in answer.body["results"]] == ["created", "rejected", "created"]
    (problem,) = answer.body["results"][1]["errors"]
    assert problem["field"] == field
    assert "valid Unicode text" in problem["rule"]
    assert shipments_stack.item_count() == 2


def test_a_look_alike_of_a_registered_waybill_is_refused_or_is_the_same_shipment(
    shipments_stack: ShipmentsStack,
) -> None:
    # Given a registered shipment
    api = shipments_stack
    call(api, "POST", "/shipments", {"waybill": "AB12", "cp_id": 4})

    # When its zero-width look-alike, its full-width form and a padded form are posted
    zero_width = call(api, "POST", "/shipments", {"waybill": "AB\u200b12", "cp_id": 4})
    full_width = call(
        api, "POST", "/shipments", {"waybill": "\uff21\uff22\uff11\uff12", "cp_id": 4}
    )
    padded = call(api, "POST", "/shipments", {"waybill": " AB12 ", "cp_id": 4})

    # Then the look-alike is refused, the others are the same shipment; one item in all
    assert zero_width.status == 422
    assert (full_width.status, full_width.body["outcome"]) == (200, "unchanged")
    assert full_width.body["waybill"] == padded.body["waybill"] == "AB12"
    assert api.item_count() == 1
    # and the normalised form finds it by path too
    assert call(api, "GET", "/shipments/4/%EF%BC%A1%EF%BC%A2%EF%BC%91%EF%BC%92").status == 200


@pytest.mark.parametrize(
    ("waybill", "rule"),
    [
        ("A%00B", "U+0000"),
        ("A%1B%5B2JB", "U+001B"),
        ("A%E2%80%8BB", "U+200B"),
        ("A%ED%A0%80B", "U+FFFD"),  # not UTF-8: decoded with replacement characters
        ("%C2%A0", "must not be empty"),
    ],
)
def test_a_path_waybill_that_is_not_plain_text_is_a_422(
    shipments_stack: ShipmentsStack, waybill: str, rule: str
) -> None:
    for method, suffix in (("GET", ""), ("DELETE", ""), ("POST", "/refresh"), ("POST", "/replay")):
        answer = call(shipments_stack, method, f"/shipments/4/{waybill}{suffix}")
        assert answer.status == 422, (method, suffix, answer.body)
        (problem,) = answer.body["errors"]
        assert problem["field"] == "waybill"
        assert rule in problem["rule"]


def log_one_event(stack: ShipmentsStack, occurred_at: datetime) -> str:
    """Register AWB-1 and put one event of it through the publisher (so in the log)."""
    stack.http("POST", "/shipments", {"waybill": "AWB-1", "cp_id": 4})
    record = stack.record(4, "AWB-1")
    assert record is not None
    event = Invalid(
        event_id=event_id(4, "AWB-1", "shipment.invalid", "x"),
        waybill="AWB-1",
        cp_id=4,
        order_id=None,
        courier_name=None,
        occurred_at=occurred_at,
        detected_at=occurred_at,
    )
    stack.local.container().shipments.commit(
        StateChange(
            key=record.key,
            expected_version=record.version,
            state=record.state,
            events=(event,),
            due_key=record.due_key,
        )
    )
    stack.runtime.settle(only={"PublishEventsFunction"})
    return event.event_id


@pytest.mark.parametrize(
    "since",
    [
        "0001-01-01T00:00:00+05:30",
        "0001-01-01T00:00:00+23:59",
        "9999-12-31T23:59:59-05:00",
        "9999-12-31T23:59:59.999999-00:01",
    ],
)
def test_a_replay_since_outside_the_calendar_in_utc_is_a_422(
    shipments_stack: ShipmentsStack, since: str
) -> None:
    log_one_event(shipments_stack, datetime(2026, 11, 27, 6, 0, tzinfo=UTC))

    answer = call(shipments_stack, "POST", "/shipments/4/AWB-1/replay", query={"since": since})

    assert answer.status == 422
    (problem,) = answer.body["errors"]
    assert problem["field"] == "since"
    assert problem["rule"].startswith("must be between 0001-01-01"), problem


@pytest.mark.parametrize(
    ("since", "replayed"),
    [
        ("0001-01-01T00:00:00+00:00", 1),
        ("0999-06-01T00:00:00+00:00", 1),  # a year of three digits sorts after 2026 as text
        ("1970-01-01T00:00:00-12:00", 1),
        ("9999-12-31T23:59:59+14:00", 0),
    ],
)
def test_a_replay_since_an_early_or_late_date_replays_what_happened_from_then_on(
    shipments_stack: ShipmentsStack, since: str, replayed: int
) -> None:
    occurred = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    logged = log_one_event(shipments_stack, occurred)

    answer = call(shipments_stack, "POST", "/shipments/4/AWB-1/replay", query={"since": since})

    assert answer.status == 200, answer.body
    assert answer.body["event_ids"] == [logged][:replayed]


def test_ingest_dead_letters_what_is_not_plain_text_and_stores_the_rest(
    shipments_stack: ShipmentsStack,
) -> None:
    # Given messages with a NUL waybill, a lone surrogate, and a batch mixing both with good
    api = shipments_stack
    api.send_to_ingest('{"waybill": "I\\u0000-1", "cp_id": 4}')
    api.send_to_ingest('{"waybill": "I\\ud800-2", "cp_id": 4}')
    api.send_to_ingest(
        '[{"waybill": "I-3", "cp_id": 4}, {"waybill": "I-4", "cp_id": 4, '
        '"metadata": {"\\u001b[2J": "x"}}, {"waybill": "I-5", "cp_id": 4, "order_id": "\\udfff"}]'
    )

    # When the ingest function consumes the queue
    crashes = len(api.runtime.crashes)
    delivered = api.ingest()

    # Then nothing crashed, the good entry is stored, each bad one dead-lettered with its rule
    assert api.runtime.crashes[crashes:] == []
    assert delivered == 3
    assert api.item_count() == 1 and api.record(4, "I-3") is not None
    reasons = sorted(
        m["attributes"]["rejected_because"] for m in api.messages("IngestDeadLetterQueueUrl")
    )
    assert len(reasons) == 4
    assert reasons[0].startswith("metadata: must be printable text: U+001B")
    assert reasons[1] == "order_id: must be valid Unicode text: U+DFFF (a lone surrogate) is not"
    assert reasons[2] == "waybill: must be valid Unicode text: U+D800 (a lone surrogate) is not"
    assert reasons[3].startswith(f"waybill: {CHARACTER_SET}")
    assert api.messages("IngestQueueUrl") == []


# --- the command line, over the same stack -------------------------------------------------


def test_shipments_show_prints_clickpost_text_as_text(
    shipments_stack: ShipmentsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a shipment whose waybill and Clickpost statuses hold markup and escape codes
    api = shipments_stack
    call(api, "POST", "/shipments", {"waybill": "AB[/]12", "cp_id": 4, "order_id": "[bold]O-1"})
    record = api.record(4, "AB[/]12")
    assert record is not None
    esc = "\x1b"
    when = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    location = f"Pune{esc}]0;pwned\x07"
    remark = "[link=https://example.com]click[/link]\rDelivered"
    state = record.state.model_copy(
        update={
            "current": CurrentStatus(
                clickpost_status_code=4,
                clickpost_status_description="Shipped [/]",
                clickpost_status_bucket=2,
                clickpost_status_bucket_description=f"{esc}[31mShipped{esc}[0m",
                status="Shipped [/]",
                location=location,
                remark=remark,
                timestamp=when,
            ),
            "courier_name": "[/]",
        }
    )
    # (The timeline comes from the event log: one logged scan.)
    scan = ScanAdded(
        event_id="e-hostile-1",
        waybill="AB[/]12",
        cp_id=4,
        order_id="[bold]O-1",
        courier_name="[/]",
        occurred_at=when,
        detected_at=when,
        checkpoint_id=1,
        tracking_id=None,
        scan=StatusFields(
            clickpost_status_code=4,
            clickpost_status_description="Shipped [/]",
            clickpost_status_bucket=2,
            clickpost_status_bucket_description=None,
            status="Shipped [/]",
            location=location,
            remark=remark,
        ),
        is_terminal=False,
    )
    api.local.container().event_log.append([[scan]])
    api.local.container().shipments.commit(
        StateChange(
            key=record.key,
            expected_version=record.version,
            state=state,
            events=(),
            due_key=record.due_key,
        )
    )
    monkeypatch.setattr(shipments_cli, "console", Console(width=250, color_system=None))

    # When `trackwatch shipments show` prints it
    result = CliRunner().invoke(
        app,
        ["shipments", "show", "4", "AB[/]12", "--stack", STACK_NAME, "--region", "us-east-1"],
        terminal_width=250,
    )

    # Then it is shown as written, with the escape codes escaped and nothing raised
    assert result.exit_code == 0, result.output
    assert result.exception is None, result.exception
    for shown in ("AB[/]12", "Shipped [/]", "\\x1b[31mShipped\\x1b[0m", "[bold]O-1"):
        assert shown in result.output
    assert "Pune\\x1b]0;pwned\\x07" in result.output
    assert "[link=https://example.com]click[/link]\\x0dDelivered" in result.output
    assert esc not in result.output and "\r" not in result.output


@pytest.mark.parametrize(
    ("endpoint", "says"),
    [
        ("http://user:password@127.0.0.1:9", "http://***@127.0.0.1:9"),
        ("http://user:password@127.0.0.1:99999", "AWS_ENDPOINT_URL"),
        ("not a url", "AWS_ENDPOINT_URL"),
    ],
)
def test_an_endpoint_url_with_credentials_is_reported_redacted(
    monkeypatch: pytest.MonkeyPatch, endpoint: str, says: str
) -> None:
    # Given an emulator endpoint that cannot be used, with credentials in it
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)

    # When a command needs the stack
    result = CliRunner().invoke(app, ["shipments", "show", "4", "AWB-1", "--local"])

    # Then exit 2 with the URL redacted, and no traceback
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert says in result.output
    assert "password" not in result.output
