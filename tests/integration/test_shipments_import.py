"""`trackwatch shipments import` against the stack in moto: 10,000 rows, then the same again."""

from __future__ import annotations

import csv
import re
import time
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from tests.integration.shipments_stack import STACK_NAME, ShipmentsStack, shipments_stack
from trackwatch_cli.main import app

__all__ = ["shipments_stack"]  # the fixture, for pytest

ROWS = 10_000
#: (cell overrides, the field named, the start of the rule) for the rows that must be rejected.
BAD_ROWS = [
    ({"waybill": ""}, "waybill", "is required"),
    ({"waybill": "HAS SPACE"}, "waybill", "must not contain whitespace"),
    ({"waybill": "A,B"}, "waybill", "must not contain a comma"),
    ({"waybill": "W" * 101}, "waybill", "must be at most 100 characters"),
    ({"cp_id": "0"}, "cp_id", "must be a positive integer"),
    ({"cp_id": "four"}, "cp_id", "must be a positive integer"),
    ({"phone": "12345"}, "phone", "not a valid phone number"),
    ({"email": "nobody@"}, "email", "not a valid e-mail address"),
    ({"language": "xx"}, "language", "must be one of en, hi"),
    ({"channels": "sms;fax"}, "channels[1]", "must be one of whatsapp, sms or email"),
]
BAD_EVERY = 100  # one bad row in each hundred


def write_csv(path: Path) -> dict[int, tuple[str, str]]:
    """10,000 rows, one in a hundred bad; returns line → (field, rule) of the bad ones."""
    expected: dict[int, tuple[str, str]] = {}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        columns = ["waybill", "cp_id", "order_id", "phone", "email", "language", "channels"]
        writer.writerow(columns)
        for i in range(ROWS):
            row = {
                "waybill": f"AWB{i:06d}",
                "cp_id": str(1 + i % 7),
                "order_id": f"ORD-{i}" if i % 2 else "",
                "phone": f"98{i:08d}" if i % 3 else "",
                "email": f"buyer{i}@example.com" if i % 5 else "",
                "language": "hi" if i % 4 == 0 else "",
                "channels": "sms" if i % 9 == 0 else "",
            }
            if i % BAD_EVERY == 0:
                overrides, field, rule = BAD_ROWS[(i // BAD_EVERY) % len(BAD_ROWS)]
                row.update(overrides)
                expected[i + 2] = (field, rule)  # line 1 is the header
            writer.writerow([row[c] for c in columns])
    return expected


def versions(stack: ShipmentsStack) -> dict[str, int]:
    client = boto3.client("dynamodb", region_name=stack.stack.region)
    found: dict[str, int] = {}
    for page in client.get_paginator("scan").paginate(
        TableName=stack.stack.outputs["ShipmentsTableName"], ProjectionExpression="pk, version"
    ):
        found.update({i["pk"]["S"]: int(i["version"]["N"]) for i in page["Items"]})
    return found


def summary_counts(output: str) -> dict[str, int]:
    return {
        name: int(count)
        for name, count in re.findall(
            r"│\s*(created|updated|unchanged|rejected|failed)\s*│\s*(\d+)", output
        )
    }


def rejected_lines(output: str) -> dict[int, tuple[str, str]]:
    found: dict[int, tuple[str, str]] = {}
    for line, field, rule in re.findall(r"│\s*(\d+)\s*│\s*(\S+)\s*│\s*([^│]+?)\s*│", output):
        found[int(line)] = (field, rule)
    return found


@pytest.mark.slow
def test_importing_10000_rows_twice_stores_them_once(
    shipments_stack: ShipmentsStack, tmp_path: Path
) -> None:
    # Given a CSV of 10,000 shipments, 100 of them breaking a rule
    path = tmp_path / "shipments.csv"
    expected_rejects = write_csv(path)
    runner = CliRunner()
    command = [
        "shipments",
        "import",
        str(path),
        "--stack",
        STACK_NAME,
        "--region",
        "us-east-1",
        "--workers",
        "16",
    ]

    # When it is imported
    started = time.monotonic()
    first = runner.invoke(app, command, terminal_width=200)
    first_s = time.monotonic() - started

    # Then every good row is stored and every bad one listed with its field and rule
    assert first.exit_code == 0, first.output
    assert summary_counts(first.output) == {
        "created": ROWS - len(expected_rejects),
        "updated": 0,
        "unchanged": 0,
        "rejected": len(expected_rejects),
        "failed": 0,
    }
    listed = rejected_lines(first.output)
    assert set(listed) == set(expected_rejects)
    for line, (field, rule) in expected_rejects.items():
        assert listed[line][0] == field, (line, listed[line])
        assert listed[line][1].startswith(rule), (line, listed[line])
    stored = versions(shipments_stack)
    assert len(stored) == ROWS - len(expected_rejects)
    assert set(stored.values()) == {1}

    # When the same file is imported again
    started = time.monotonic()
    second = runner.invoke(app, command, terminal_width=200)
    second_s = time.monotonic() - started

    # Then nothing changes: every good row is unchanged, no item was rewritten
    assert second.exit_code == 0, second.output
    assert summary_counts(second.output) == {
        "created": 0,
        "updated": 0,
        "unchanged": ROWS - len(expected_rejects),
        "rejected": len(expected_rejects),
        "failed": 0,
    }
    assert versions(shipments_stack) == stored
    print(f"import of {ROWS} rows: first {first_s:.1f} s, again {second_s:.1f} s")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("waybil,cp_id\nA,4\n", "bad header"),
        ("waybill,cp_id,whatever\nA,4,x\n", "bad header"),
        ("", "bad header"),
    ],
)
def test_a_file_that_is_not_a_shipments_csv_exits_2(
    shipments_stack: ShipmentsStack, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")

    result = CliRunner().invoke(
        app, ["shipments", "import", str(path), "--stack", STACK_NAME, "--region", "us-east-1"]
    )

    assert result.exit_code == 2
    assert message in result.output
    assert shipments_stack.item_count() == 0


def test_a_missing_file_or_stack_exits_2(shipments_stack: ShipmentsStack, tmp_path: Path) -> None:
    missing = CliRunner().invoke(
        app,
        [
            "shipments",
            "import",
            str(tmp_path / "none.csv"),
            "--stack",
            STACK_NAME,
            "--region",
            "us-east-1",
        ],
    )
    no_stack = CliRunner().invoke(
        app,
        [
            "shipments",
            "import",
            str(tmp_path / "none.csv"),
            "--stack",
            "no-such-stack",
            "--region",
            "us-east-1",
        ],
    )

    assert missing.exit_code == 2 and "cannot read" in missing.output
    assert no_stack.exit_code == 2 and "no-such-stack" in no_stack.output


def test_show_refresh_replay_stop_from_the_command_line(
    shipments_stack: ShipmentsStack, tmp_path: Path
) -> None:
    # Given one registered shipment
    shipments_stack.http("POST", "/shipments", {"waybill": "CLI-1", "cp_id": 4})
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(
            app,
            ["shipments", *args, "--stack", STACK_NAME, "--region", "us-east-1"],
            terminal_width=200,
        )
        assert result.exit_code == 0, result.output
        return result.output

    # When each command runs against it, Then each does what it says
    assert "tracked" in run("show", "4", "CLI-1")
    assert '"tracked": true' in run("show", "4", "CLI-1", "--json")
    assert "queued a poll" in run("refresh", "4", "CLI-1")
    assert "replayed 0 events" in run("replay", "4", "CLI-1")
    assert "stopped by request" in run("stop", "4", "CLI-1")
    refused = runner.invoke(
        app, ["shipments", "refresh", "4", "CLI-1", "--stack", STACK_NAME, "--region", "us-east-1"]
    )
    assert refused.exit_code == 1 and "tracking stopped" in refused.output
    unknown = runner.invoke(
        app, ["shipments", "show", "4", "NOPE", "--stack", STACK_NAME, "--region", "us-east-1"]
    )
    assert unknown.exit_code == 1 and "not registered" in unknown.output
    bad = runner.invoke(
        app, ["shipments", "show", "0", "X", "--stack", STACK_NAME, "--region", "us-east-1"]
    )
    assert bad.exit_code == 2 and "cp_id: must be a positive integer" in bad.output
