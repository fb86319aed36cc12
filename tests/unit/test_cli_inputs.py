"""The command line given bad numbers, markup, escape codes and credentials (issue 14).

Every one of these is refused (exit 2, a line naming the option or rule, no traceback)
before anything starts, so sockets stay blocked; text from outside is printed as text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from trackwatch.models.keys import ShipmentKey
from trackwatch.models.order_views import OrderMemberView, OrderTimelineEntry, OrderView
from trackwatch.models.policy import Cadence
from trackwatch.models.record import ShipmentRecord
from trackwatch.models.state import CurrentStatus, ShipmentState
from trackwatch_cli.display import redact, redact_url, text
from trackwatch_cli.main import app
from trackwatch_cli.orders_cli import order_tables
from trackwatch_cli.summary import by_order, shipments_table
from trackwatch_cli.timeline import event_line, notification_line

NOW = datetime(2026, 11, 27, 6, 30, tzinfo=UTC)
ESC = "\x1b"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), terminal_width=200)
    output = result.output
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    return result.exit_code, output


def rendered(renderable: object, width: int = 200) -> str:
    out = StringIO()
    Console(file=out, width=width, color_system=None, soft_wrap=True).print(renderable)
    return out.getvalue()


# --- numbers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--api-port", "70000", "--api-port"),
        ("--api-port", "-1", "--api-port"),
        ("--hours", "-1", "--hours"),
        ("--hours", "0", "--hours"),
        ("--hours", "nan", "--hours"),
        ("--hours", "inf", "--hours"),
        ("--speed", "nan", "--speed"),
        ("--speed", "0", "--speed"),
        ("--speed", "-3", "--speed"),
        ("--speed", "inf", "--speed"),
        ("--cycles", "0", "--cycles"),
        ("--cycles", "-1", "--cycles"),
    ],
)
def test_a_number_out_of_range_for_local_is_exit_2_naming_the_option(
    option: str, value: str, says: str
) -> None:
    # When `trackwatch local` gets a number it cannot use
    code, output = run("local", option, value)

    # Then it stops before starting anything, with exit 2 and a line naming the option
    assert code == 2, output
    assert says in output


@pytest.mark.parametrize("workers", ["0", "-1", "65", "nan"])
def test_import_workers_out_of_range_is_exit_2(workers: str, tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("waybill,cp_id\nA1,4\n")
    code, output = run("shipments", "import", str(path), "--local", "--workers", workers)
    assert code == 2, output
    assert "--workers" in output


@pytest.mark.parametrize(
    ("since", "says"),
    [
        ("0001-01-01T00:00:00+05:30", "since: must be between 0001-01-01"),
        ("9999-12-31T23:59:59-05:00", "since: must be between 0001-01-01"),
        ("yesterday", "--since"),
    ],
)
def test_replay_since_outside_the_calendar_is_exit_2(since: str, says: str) -> None:
    code, output = run("shipments", "replay", "4", "AWB-1", "--local", "--since", since)
    assert code == 2, output
    assert says in output


# --- waybills and cp_ids as arguments ----------------------------------------------------


@pytest.mark.parametrize(
    ("cp_id", "waybill", "says"),
    [
        ("4", "AB\x00CD", "waybill: must be visible ASCII"),
        ("4", f"AB{ESC}[2JCD", "U+001B"),
        ("4", "AB\u200bCD", "U+200B (ZERO WIDTH SPACE)"),
        ("[/]", "AB12", "cp_id: must be a positive integer, got '[/]'"),
        ("[bold]4", "AB12", "got '[bold]4'"),
        ("99999999999", "AB12", "cp_id: must be a positive integer of at most"),
    ],
)
def test_a_bad_key_argument_is_exit_2_printed_as_text(cp_id: str, waybill: str, says: str) -> None:
    for command in ("show", "refresh", "replay", "stop"):
        code, output = run("shipments", command, cp_id, waybill, "--local")
        assert code == 2, (command, output)
        assert says in output
        assert ESC not in output


# --- the local runtime's CSV -------------------------------------------------------------


def test_a_csv_row_with_markup_and_escape_codes_is_reported_as_text(tmp_path: Path) -> None:
    # Given a CSV whose bad cells hold rich markup and a terminal escape code
    path = tmp_path / "hostile.csv"
    path.write_text(f"waybill,cp_id\nAB{ESC}[31m12,4\nAB12,[/]\nAB[/]13,[bold]\n", encoding="utf-8")

    # When `trackwatch local` reads it
    code, output = run("local", "--shipments", str(path), "--cycles", "1")

    # Then each bad row is named, the markup shown as written, the escape code escaped
    assert code == 2, output
    assert "line 2: waybill: must be visible ASCII" in output
    assert "line 3: cp_id: must be a positive integer, got '[/]'" in output
    assert "line 4: cp_id: must be a positive integer, got '[bold]'" in output
    assert ESC not in output


# --- credentials in a URL ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://user:password@127.0.0.1:99999", "port"),
        ("ftp://user:password@clickpost.example", "http"),
        ("user:password@clickpost.example", "http"),
        ("https://user:password@", "host"),
        ("https://user:password@[bad", "--clickpost-url"),
    ],
)
def test_a_bad_clickpost_url_is_exit_2_without_its_credentials(url: str, says: str) -> None:
    path = Path(__file__).with_name("unused.csv")
    code, output = run(
        "local",
        "--clickpost-url",
        url,
        "--clickpost-key",
        "k",
        "--clickpost-username",
        "u",
        "--shipments",
        str(path),
    )
    assert code == 2, output
    assert says in output
    assert "password" not in output


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:password@clickpost.example/x?y=1", "https://***@clickpost.example/x?y=1"),
        ("http://token@127.0.0.1:8080", "http://***@127.0.0.1:8080"),
        ("https://clickpost.example", "https://clickpost.example"),
        ("user:password@host", "***@host"),
        ("https://u:p@[bad", "https://***@[bad"),
        (
            "https://clickpost.example/?key=secret&username=me",
            "https://clickpost.example/?key=***&username=***",
        ),
    ],
)
def test_credentials_in_a_url_are_redacted(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert redact(f"cannot reach {url}: refused", url) == f"cannot reach {shown}: refused"
    assert redact("nothing to hide", "") == "nothing to hide"


# --- text from outside, on the terminal ----------------------------------------------------


HOSTILE_STATUS = "Shipped [/]"
HOSTILE_REMARK = f"{ESC}[31mred{ESC}[0m{ESC}]0;pwned\x07\rDelivered"


def test_the_summary_prints_waybills_and_statuses_as_text() -> None:
    # Given a shipment whose waybill holds markup and whose status holds markup and escapes
    key = ShipmentKey.of(4, "AB[/]12")
    record = ShipmentRecord(
        key=key,
        version=2,
        registered_at=NOW,
        state=ShipmentState(
            current=CurrentStatus(
                clickpost_status_code=4,
                clickpost_status_description=HOSTILE_STATUS,
                clickpost_status_bucket_description=HOSTILE_REMARK,
            )
        ),
        stop_reason="[red]stopped",
    )

    # When the summary table is printed
    shown = rendered(shipments_table([key], {key: record}, Cadence()))

    # Then every value is shown as written, escape codes escaped
    assert "AB[/]12" in shown and HOSTILE_STATUS in shown and "[red]stopped" in shown
    assert "\\x1b[31mred\\x1b[0m\\x1b]0;pwned\\x07\\x0dDelivered" in shown
    assert ESC not in shown and "\r" not in shown


def test_the_timeline_prints_events_and_messages_as_text() -> None:
    # Given an event and notifications whose Clickpost text holds markup and escape codes
    event = {
        "event_type": "shipment.status_changed",
        "waybill": "AB[/]12",
        "from_bucket_description": "[bold]",
        "to_bucket_description": HOSTILE_STATUS,
        "is_terminal": False,
    }
    ndr = {
        "event_type": "shipment.ndr_raised",
        "waybill": "AB[/]12",
        "attempt": 1,
        "ndr_description": HOSTILE_REMARK,
    }

    # When they are printed as timeline lines
    lines = [
        rendered(event_line(event, "27 Nov 12:00")),
        rendered(event_line(ndr, "27 Nov 12:00")),
        rendered(notification_line("sms", "+919876543210", f"{HOSTILE_STATUS} {ESC}[2J", "t")),
        rendered(notification_line("email", "a[/]@example.com", HOSTILE_REMARK, "t")),
    ]

    # Then each is one line with the values as written and no escape code left raw
    assert "AB[/]12 [bold] → Shipped [/]" in lines[0]
    assert "\\x1b[31mred" in lines[1]
    assert "Shipped [/] \\x1b[2J" in lines[2]
    assert "a***@example.com" in lines[3] and "\\x1b]0;pwned" in lines[3]
    for line in lines:
        assert ESC not in line and "\r" not in line and "\x07" not in line
        assert line.count("\n") == 1


def test_text_escapes_control_characters_and_never_reads_markup() -> None:
    shown = rendered(text(f"[bold]{ESC}[1mX[/]"))
    assert shown == "[bold]\\x1b[1mX[/]\n"


@pytest.mark.parametrize(
    ("order_id", "says"),
    [("ORD\u200b1", "ZERO WIDTH SPACE"), ("O" * 101, "1 to 100 characters")],
)
def test_a_bad_order_id_is_exit_2_printed_as_text(order_id: str, says: str) -> None:
    code, output = run("orders", "show", order_id, "--local")
    assert code == 2
    assert says in output


def test_an_order_prints_waybills_and_statuses_as_text() -> None:
    # Given an order whose waybill and status hold markup and escape codes
    view = OrderView(
        order_id="[bold]ORD-1",
        total=2,
        milestone="shipped",
        complete=False,
        counts={"shipped": 1, "out_for_delivery": 1},
        members=[
            OrderMemberView(
                cp_id=4,
                waybill="AB[/]12",
                standing="shipped",
                stage="shipped",
                clickpost_status_code=4,
                clickpost_status_description=HOSTILE_REMARK,
                clickpost_status_bucket=2,
                clickpost_status_bucket_description=None,
                is_terminal=False,
                joined_at=NOW,
            )
        ],
        told_until=NOW,
        timeline=[
            OrderTimelineEntry(
                at=NOW,
                what="status",
                cp_id=4,
                waybill="AB[/]12",
                clickpost_status_description=HOSTILE_STATUS,
            ),
            OrderTimelineEntry(
                at=NOW, what="order.status_changed", stage="shipped", reached=1, total=2
            ),
        ],
    )

    # When its tables are printed
    shown = "".join(rendered(table) for table in order_tables(view))

    # Then every value is shown as written, escape codes escaped
    assert "[bold]ORD-1" in shown and "AB[/]12" in shown and "1 of 2 shipped" in shown
    assert HOSTILE_STATUS in shown and "\\x1b[31mred\\x1b[0m" in shown
    assert ESC not in shown


def test_the_summary_groups_the_boxes_of_an_order_together() -> None:
    # Given a lone shipment between two boxes of one order
    def record(key: ShipmentKey, order_id: str | None) -> ShipmentRecord:
        return ShipmentRecord(
            key=key, version=1, registered_at=NOW, state=ShipmentState(order_id=order_id)
        )

    boxes = [ShipmentKey.of(4, "BOX1"), ShipmentKey.of(5, "LONE"), ShipmentKey.of(6, "BOX2")]
    records = {
        boxes[0]: record(boxes[0], "[b]ORD-2"),
        boxes[1]: record(boxes[1], None),
        boxes[2]: record(boxes[2], "[b]ORD-2"),
    }

    # When
    groups = by_order(boxes, records)
    shown = rendered(shipments_table(boxes, records, Cadence()))

    # Then the order's boxes are one group, where its first box was, its id shown as text
    assert groups == [("[b]ORD-2", [boxes[0], boxes[2]]), (None, [boxes[1]])]
    assert "[b]ORD-2 (2 boxes)" in shown
    assert shown.index("BOX2") < shown.index("LONE")


def test_the_timeline_prints_order_events_with_their_counts() -> None:
    event = {
        "event_type": "order.status_changed",
        "order_id": "[b]ORD-2",
        "stage": "delivered",
        "reached": 2,
        "total": 3,
    }
    completed = {"event_type": "order.completed", "order_id": "O", "counts": {"delivered": 3}}
    line = event_line(event, "12:00")
    other = event_line(completed, "12:10")
    assert line is not None and other is not None
    assert "[b]ORD-2" in rendered(line) and "2 of 3 delivered" in rendered(line)
    assert "3 delivered" in rendered(other)
