"""The committed OpenAPI document: no drift from the code, and no 5xx for anything it allows."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.shipments_stack import ShipmentsStack, http_event, shipments_stack
from trackwatch.api.shipments import render_openapi

__all__ = ["shipments_stack"]  # the fixture, for pytest

ROOT = Path(__file__).resolve().parents[2]
OPENAPI_PATH = ROOT / "docs" / "openapi.json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_the_committed_openapi_document_matches_the_code() -> None:
    # Given the document generated from the routes and models
    generated = render_openapi()

    # When it is compared with the committed one
    committed = OPENAPI_PATH.read_text(encoding="utf-8")

    # Then they agree; if not, run `trackwatch openapi` and review the diff
    assert committed == generated, "docs/openapi.json is stale: run `uv run trackwatch openapi`"


class _Gateway(BaseHTTPRequestHandler):
    """API Gateway's part: a request in, a payload-2.0 event to the function, its answer out."""

    stack: ShipmentsStack

    def _forward(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        event = http_event(
            self.command,
            url.path,
            None,
            query or None,
            headers={k.lower(): v for k, v in self.headers.items()},
        )
        event["rawQueryString"] = url.query
        if raw:
            try:
                event["body"] = raw.decode("utf-8")
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(raw).decode()
                event["isBase64Encoded"] = True
        answer = self.stack.runtime.invoke("ShipmentsApiFunction", event)
        body = (answer.get("body") or "").encode()
        self.send_response(int(answer["statusCode"]))
        for name, value in (answer.get("headers") or {}).items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _forward

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: schemathesis reports what matters."""


@pytest.fixture
def base_url(shipments_stack: ShipmentsStack) -> Iterator[str]:
    # A few shipments to find, so that not every case ends in a 404.
    for cp_id in range(1, 4):
        shipments_stack.http("POST", "/shipments", [{"waybill": w, "cp_id": cp_id} for w in "0AB"])
    handler = type("Gateway", (_Gateway,), {"stack": shipments_stack})
    # One request at a time: the emulator behind it is one process's memory.
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_no_request_the_document_allows_or_forbids_gets_a_5xx(base_url: str) -> None:
    # Given the committed document, with positive and negative cases for every operation
    schema = schemathesis.openapi.from_dict(json.loads(OPENAPI_PATH.read_text(encoding="utf-8")))
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    strategies = [
        schema.get_case_strategy(operation, generation_mode=mode)
        for operation in operations
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    ]
    assert len(strategies) == 10

    # When each case is sent through the gateway to the function
    @settings(
        max_examples=400,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=st.one_of(strategies))
    def call(case: schemathesis.Case[Any]) -> None:
        # Then no answer is a 5xx, and each is documented and matches its schema
        case.call_and_validate(base_url=base_url, checks=CHECKS)

    call()
