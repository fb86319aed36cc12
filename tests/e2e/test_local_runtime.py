"""`trackwatch local`: the documented contract, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from bench import cost, metric_series
from trackwatch.models.events import EVENT_ADAPTER
from trackwatch_cli.sandbox import SandboxServer

ROOT = Path(__file__).resolve().parents[2]
CUSTOMER_FACING = {"shipment.status_changed", "shipment.ndr_raised", "shipment.stuck"}


def trackwatch(
    *args: str, timeout: float = 300, tmp: Path | None = None
) -> subprocess.CompletedProcess[str]:
    # Any free port for the API: a developer's own `trackwatch local` may hold 8787.
    port = ["--api-port", "0"] if args[:1] == ("local",) else []
    # `tmp`: the run's temporary files (its log among them) there, not in the shared one.
    env = None if tmp is None else {**os.environ, "TMPDIR": str(tmp)}
    return subprocess.run(
        [sys.executable, "-m", "trackwatch_cli", *args, *port],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


@pytest.mark.slow
def test_cycles_against_the_sandbox_write_events_and_notifications(tmp_path: Path) -> None:
    # Given shipments in a CSV, with contacts: two on WhatsApp first (the default), one who
    # prefers SMS, and one whose WhatsApp messages fail (SMS takes over)
    shipments = tmp_path / "shipments.csv"
    shipments.write_text(
        "waybill,cp_id,order_id,phone,email,language,channels\n"
        "LOC0001,4,ORD-1,+919876543210,asha@example.com,en,\n"
        "LOC0002,4,ORD-2,+919876543211,ravi@example.com,hi,\n"
        "LOC0003,5,ORD-3,+919876543212,meera@example.com,en,sms;email\n"
        "LOC0004,6,ORD-4,,kiran@example.com,en,\n"
        "LOC0005,5,ORD-5,+919876543213,,en,\n"
    )
    events_out, notifications_out = tmp_path / "events.jsonl", tmp_path / "notifications.jsonl"

    # When the local runtime polls them for 8 complete cycles
    done = trackwatch(
        "local",
        "--cycles",
        "8",
        "--shipments",
        str(shipments),
        "--events-out",
        str(events_out),
        "--notifications-out",
        str(notifications_out),
        "--whatsapp",
        "+919876543213=failed",
    )

    # Then it exits 0, and every event is in the file exactly as subscribers receive it
    assert done.returncode == 0, done.stderr + done.stdout
    events = [EVENT_ADAPTER.validate_json(line) for line in events_out.read_text().splitlines()]
    assert {e.waybill for e in events} == {"LOC0001", "LOC0002", "LOC0003", "LOC0004", "LOC0005"}
    assert len({e.event_id for e in events}) == len(events)
    types = Counter(e.event_type for e in events)
    assert types["shipment.scan_added"] >= 4
    assert types["shipment.status_changed"] >= 4
    # and the customers heard about it: on WhatsApp, by SMS (the one who prefers it, and in
    # place of the failed WhatsApp messages) and by e-mail
    notes = [json.loads(line) for line in notifications_out.read_text().splitlines()]
    channels = Counter(n["channel"] for n in notes)
    assert channels["whatsapp"] >= 3
    assert channels["sms"] >= 2
    assert channels["email"] >= 4
    whatsapp = {n["to"] for n in notes if n["channel"] == "whatsapp"}
    assert whatsapp == {"+919876543210", "+919876543211", "+919876543213"}
    sms = [n for n in notes if n["channel"] == "sms"]
    assert {n["to"] for n in sms} == {"+919876543212", "+919876543213"}
    assert all(
        n.get("fallback_of") == "whatsapp" and n["fallback_reason"] == "failed"
        for n in sms
        if n["to"] == "+919876543213"
    )
    assert all(n["dlt_template_id"] and n["segments"] >= 1 for n in sms)
    assert all(n["template"].startswith("trackwatch_") for n in notes if n["channel"] == "whatsapp")
    assert any("ORD-1" in n["body"] for n in notes)
    # the terminal shows the journey and a summary
    assert "Shipments" in done.stdout
    assert "Totals" in done.stdout
    assert "shipments API at http://127.0.0.1:" in done.stdout


@pytest.mark.slow
def test_the_demo_runs_with_its_own_shipments(tmp_path: Path) -> None:
    # Given no shipments of ours: the sandbox's demo journeys, customers in English and Hindi
    notifications_out = tmp_path / "notifications.jsonl"

    # When two cycles run
    done = trackwatch(
        "local", "--cycles", "2", "--notifications-out", str(notifications_out), tmp=tmp_path
    )

    # Then all seven demo shipments were tracked and some customers heard in Hindi
    assert done.returncode == 0, done.stderr + done.stdout
    for waybill in ("SBXDL0000001", "SBXBD0000001", "SBXEE0000002"):
        assert waybill in done.stdout
    bodies = [json.loads(line)["body"] for line in notifications_out.read_text().splitlines()]
    assert any("ऑर्डर" in body for body in bodies)
    # And its functions' metrics make no more series than the bill counts (each is billed)
    with (tmp_path / "trackwatch-local.log").open(encoding="utf-8") as log:
        emitted = metric_series.series(log)
    assert {name for _, name, _ in emitted} >= {"ShipmentsPolled", "EventsPublished"}
    assert len(emitted) <= cost.ASSUMED["metric_series"], sorted(emitted)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flags", "said", "feed_used", "webhooks_used"),
    [
        ((), "the sandbox's updated-order feed every 5 min", True, True),
        (("--no-webhooks",), "webhooks off (--no-webhooks)", True, False),
        (
            ("--no-change-feed", "--no-webhooks"),
            "the updated-order feed off (--no-change-feed)",
            False,
            False,
        ),
    ],
    ids=["feed and webhooks by default", "no webhooks", "neither"],
)
def test_the_simulated_day_uses_change_capture_unless_told_not_to(
    flags: tuple[str, ...], said: str, feed_used: bool, webhooks_used: bool
) -> None:
    # When the demo's first simulated hours run, with change capture or without
    done = trackwatch("local", "--hours", "3", "--speed", "600", *flags)

    # Then the timeline says what change capture does, and the totals show it did (or not)
    assert done.returncode == 0, done.stderr + done.stdout
    assert said in done.stdout
    totals = next(line for line in done.stdout.splitlines() if " feed requests" in line)
    feed_requests = int(totals.split(" feed requests")[0].rsplit(" ", 1)[-1])
    assert (feed_requests > 0) is feed_used
    assert ("webhooks (" in totals) is webhooks_used
    if webhooks_used:
        assert "0 webhooks" not in totals
    # and the cadence says which mode it is in, and why
    assert ("cadence sweep (reconciliation)" in done.stdout) is feed_used


@pytest.mark.slow
def test_a_users_own_clickpost_gets_the_feed_read_and_no_webhooks(tmp_path: Path) -> None:
    # Given a Clickpost-compatible server of the user's (the sandbox, in this process)
    shipments = tmp_path / "s.csv"
    shipments.write_text("waybill,cp_id\nOWN0001,4\n")
    with SandboxServer(any_waybill=True) as clickpost:
        # When a short simulated day runs against it
        done = trackwatch(
            "local",
            "--hours",
            "1",
            "--speed",
            "600",
            "--shipments",
            str(shipments),
            "--clickpost-url",
            clickpost.base_url,
            "--clickpost-key",
            "sandbox-key",
            "--clickpost-username",
            "sandbox-user",
        )
        feed_requests = clickpost.feed_requests

    # Then its updated-order feed was read, and the timeline says webhooks cannot come
    assert done.returncode == 0, done.stderr + done.stdout
    assert "Clickpost's updated-order feed every 5 min" in done.stdout
    assert "no webhooks (Clickpost cannot reach this machine)" in done.stdout
    assert feed_requests >= 10


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [
        ("waybill,cp_id\nA 1,4\n", "line 2: waybill: must not contain whitespace"),
        ("waybill,cp_id\nA1,zero\n", "line 2: cp_id: must be a positive integer"),
        ("waybill\nA1\n", "bad header waybill"),
        ("waybill,cp_id,colour\nA1,4,red\n", "bad header waybill,cp_id,colour"),
        ("waybill,cp_id,phone\nA1,4,12\n", "line 2: phone:"),
        ("waybill,cp_id\n", "no shipments"),
    ],
)
def test_a_bad_csv_is_a_clear_error_with_exit_code_2(
    tmp_path: Path, csv_text: str, message: str
) -> None:
    shipments = tmp_path / "bad.csv"
    shipments.write_text(csv_text)
    done = trackwatch("local", "--cycles", "1", "--shipments", str(shipments), timeout=60)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_an_unreadable_csv_is_a_clear_error(tmp_path: Path) -> None:
    done = trackwatch("local", "--shipments", str(tmp_path / "missing.csv"), timeout=60)
    assert done.returncode == 2
    assert "cannot read" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_an_unreachable_clickpost_is_a_clear_error(tmp_path: Path) -> None:
    shipments = tmp_path / "s.csv"
    shipments.write_text("waybill,cp_id\nA1,4\n")
    done = trackwatch(
        "local",
        "--cycles",
        "1",
        "--shipments",
        str(shipments),
        "--clickpost-url",
        "http://127.0.0.1:9",
        "--clickpost-key",
        "k",
        "--clickpost-username",
        "u",
        timeout=60,
    )
    assert done.returncode == 2
    assert "cannot poll Clickpost at http://127.0.0.1:9" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_wrong_clickpost_credentials_are_a_clear_error(tmp_path: Path) -> None:
    shipments = tmp_path / "s.csv"
    shipments.write_text("waybill,cp_id\nA1,4\n")
    with SandboxServer() as sandbox:
        done = trackwatch(
            "local",
            "--cycles",
            "1",
            "--shipments",
            str(shipments),
            "--clickpost-url",
            sandbox.base_url,
            "--clickpost-key",
            "not-the-key",
            "--clickpost-username",
            "sandbox-user",
            timeout=60,
        )
    assert done.returncode == 2
    assert "rejected the key or username" in done.stderr
    assert "not-the-key" not in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
