"""`trackwatch local` given text that is not plain: markup in a waybill, escape codes and
markup in Clickpost's answers, credentials in the Clickpost URL (issue 14)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
ESC = "\x1b"
#: What a carrier (or someone who owns one's data) may put in Clickpost's text fields.
STATUS = "Shipped [/]"
BUCKET = f"[bold]In transit{ESC}[31m [/]"
LOCATION = f"Pune{ESC}]0;pwned{chr(7)}"
REMARK = f"{ESC}[2J\rDelivered"


def trackwatch(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trackwatch_cli", *args, "--api-port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def scan(checkpoint_id: int, code: int, day: int) -> dict[str, Any]:
    return {
        "timestamp": f"2026-11-{day:02d} 10:00:00",
        "location": LOCATION,
        "remark": REMARK,
        "status": STATUS,
        "clickpost_status_code": code,
        "clickpost_status_description": STATUS,
        "clickpost_status_bucket": 3,
        "clickpost_status_bucket_description": BUCKET,
        "checkpoint_id": checkpoint_id,
        "tracking_id": 1,
        "created_at": f"2026-11-{day:02d} 10:00:00",
    }


class _Clickpost(BaseHTTPRequestHandler):
    """A Clickpost-compatible track-order endpoint whose every text field is hostile."""

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        scans = [scan(2, 5, 26), scan(1, 4, 25)]
        result = {
            waybill: {
                "latest_status": {k: v for k, v in scans[0].items() if k != "checkpoint_id"},
                "scans": scans,
                "valid": True,
                "additional": {"order_id": "[/]", "courier_name": f"[red]{ESC}[5m"},
            }
            for waybill in query["waybill"][0].split(",")
        }
        body = json.dumps(
            {"meta": {"status": 200, "success": True, "message": "SUCCESS"}, "result": result}
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def clickpost() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Clickpost)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_markup_and_escape_codes_from_a_csv_and_clickpost_are_printed_as_text(
    tmp_path: Path, clickpost: str
) -> None:
    # Given a waybill with markup in it, and a Clickpost (behind user:password@) whose text
    # holds markup, terminal escape codes and a carriage return
    shipments = tmp_path / "shipments.csv"
    shipments.write_text("waybill,cp_id,email\nAB[/]12,4,a@example.com\n[bold]X,4,\n")

    # When the local runtime polls it
    done = trackwatch(
        "local",
        "--cycles",
        "1",
        "--shipments",
        str(shipments),
        "--clickpost-url",
        f"http://user:password@{clickpost}",
        "--clickpost-key",
        "k",
        "--clickpost-username",
        "u",
    )

    # Then it runs to the end, and shows each value as written, escape codes escaped
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Traceback" not in output and "MarkupError" not in output
    for shown in ("AB[/]12", "[bold]X", STATUS, "\\x1b[31m [/]", "In transit"):
        assert shown in done.stdout, shown
    assert ESC not in output and "\r" not in output and chr(7) not in output
    # and the URL's credentials are nowhere
    assert f"Clickpost at http://***@{clickpost}" in done.stdout
    assert "password" not in output


def test_an_unreachable_clickpost_url_with_credentials_is_reported_redacted(
    tmp_path: Path,
) -> None:
    shipments = tmp_path / "s.csv"
    shipments.write_text("waybill,cp_id\nA1,4\n")
    done = trackwatch(
        "local",
        "--cycles",
        "1",
        "--shipments",
        str(shipments),
        "--clickpost-url",
        "http://user:password@127.0.0.1:9/?key=secret-key",
        "--clickpost-key",
        "k",
        "--clickpost-username",
        "u",
        timeout=60,
    )
    assert done.returncode == 2
    assert "cannot poll Clickpost at http://***@127.0.0.1:9/?key=***" in done.stderr
    assert "password" not in done.stdout + done.stderr
    assert "secret-key" not in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
