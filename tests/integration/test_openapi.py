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
from trackwatch.api.openapi import render_openapi

__all__ = ["shipments_stack"]  # the fixture, for pytest

ROOT = Path(__file__).resolve().parents[2]
OPENAPI_PATH = ROOT / "docs" / "openapi.json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

#: Text that is not plain text: control characters, terminal escape codes, invisible and
#: look-alike characters, markup; each goes into a body, a path or a query.
HOSTILE_TEXT = (
    "AB\x00CD",
    "AB\x1b[31mCD",
    "\x1b]0;title\x07",
    "AB\rCD",
    "AB\x7f",
    "\x85",
    "AB\u200bCD",
    "\ufeffAB12",
    "AB\u202eDC",
    "\u0410B12",
    "\uff21\uff22\uff11\uff12",
    "\uff0c",
    " AB12 ",
    "\u3000",
    "AB[/]12",
    "[bold]Shipped [/]",
    "A" * 99 + "\u3392",
    "%00",
)
#: Lone surrogates: JSON can carry them (as \\ud800 escapes), UTF-8 cannot.
SURROGATES = ("\ud800", "AB\udc00CD", "\udfff", "\ud83d")
#: Valid ISO 8601 at the ends of the calendar, and some that are not valid at all.
EXTREME_DATES = (
    "0001-01-01T00:00:00+05:30",
    "0001-01-01T00:00:00+23:59",
    "0001-01-01T00:00:00Z",
    "0999-06-01T00:00:00+00:00",
    "9999-12-31T23:59:59-05:00",
    "9999-12-31T23:59:59.999999+14:00",
    "9999-12-31T23:59:59.999999-00:01",
    "1970-01-01T00:00:00-23:59",
    "2026-02-30T00:00:00Z",
    "2026-11-27T12:00:00+99:00",
    "+12026-01-01T00:00:00Z",
    "2026-11-27T12:00:00\x00Z",
)
_TEXT = st.sampled_from(HOSTILE_TEXT) | st.text(
    st.characters(categories=["Cc", "Cf", "Co", "Zl", "Zp", "Zs"]), min_size=1, max_size=4
).map(lambda odd: f"AB{odd}12")
_ANY_TEXT = _TEXT | st.sampled_from(SURROGATES)


def _poisoned(value: Any, draw: st.DrawFn) -> Any:
    """`value` (a JSON body) with one string, key or entry replaced by hostile text."""
    if isinstance(value, list) and value:
        index = draw(st.integers(0, len(value) - 1))
        return [_poisoned(v, draw) if i == index else v for i, v in enumerate(value)]
    if isinstance(value, dict):
        fields = [*sorted(value), "waybill", "order_id", "metadata", "(key)"]
        field = draw(st.sampled_from(fields))
        poisoned = dict(value)
        if field == "(key)":
            poisoned[draw(_ANY_TEXT)] = "x"
        elif field == "metadata":
            poisoned["metadata"] = {draw(_ANY_TEXT): draw(_ANY_TEXT)}
        else:
            poisoned[field] = draw(_ANY_TEXT)
        return poisoned
    return [{"waybill": draw(_ANY_TEXT), "cp_id": 4}, {"waybill": "OK-1", "cp_id": 4}]


@st.composite
def hostile(draw: st.DrawFn, cases: st.SearchStrategy[Any]) -> Any:
    """A case from `cases` with one of its inputs replaced by hostile text or an extreme date."""
    case = draw(cases)
    targets = ["body"] if case.method.upper() == "POST" and case.path == "/shipments" else []
    if "waybill" in (case.path_parameters or {}):
        targets.append("waybill")
    if "order_id" in (case.path_parameters or {}):
        targets.append("order_id")
    if case.path.endswith("/replay"):
        targets.append("since")
    if not targets:
        return case
    target = draw(st.sampled_from(targets))
    body, path_parameters, query = case.body, dict(case.path_parameters or {}), case.query
    if target == "body":
        body = _poisoned(case.body, draw)
    elif target in ("waybill", "order_id"):
        # A path is sent as UTF-8: no surrogates (the gateway could not have decoded them).
        path_parameters[target] = draw(_TEXT)
    else:
        query = {**(case.query or {}), "since": draw(st.sampled_from(EXTREME_DATES))}
    # A new case, not the generated one edited: schemathesis would check the edited one
    # against the schema again, and its validator cannot read a lone surrogate.
    return case.operation.Case(
        method=case.method,
        path_parameters=path_parameters,
        headers=dict(case.headers or {}),
        query=query,
        body=body,
        media_type=case.media_type or "application/json",
    )


def corpus(operations: list[Any]) -> list[Any]:
    """Each hostile text in a body, an entry of a batch, a path; each extreme date in `since`."""
    cases = []
    for operation in operations:
        if operation.path == "/shipments":
            for text in (*HOSTILE_TEXT, *SURROGATES):
                for body in (
                    {"waybill": text, "cp_id": 4},
                    [
                        {"waybill": "OK-1", "cp_id": 4},
                        {"waybill": "OK-2", "cp_id": 4, "order_id": text},
                    ],
                    [{"waybill": "OK-3", "cp_id": 4, "metadata": {text: text}, text: 1}],
                ):
                    cases.append(operation.Case(body=body, media_type="application/json"))
            continue
        if operation.path.startswith("/orders/"):
            for text in HOSTILE_TEXT:
                cases.append(operation.Case(path_parameters={"order_id": text}))
            continue
        for text in HOSTILE_TEXT:
            cases.append(operation.Case(path_parameters={"cp_id": 1, "waybill": text}))
        if operation.path.endswith("/replay"):
            for since in EXTREME_DATES:
                cases.append(
                    operation.Case(
                        path_parameters={"cp_id": 1, "waybill": "A"}, query={"since": since}
                    )
                )
    return cases


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
        if "statusCode" not in answer:
            # The function raised: API Gateway answers 500, as here.
            answer = {"statusCode": 500, "body": '{"message": "Internal Server Error"}'}
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
    assert len(strategies) == 12
    # and the same with hostile text or an extreme date in a body, a path or a query
    strategies += [hostile(strategy) for strategy in strategies]

    # When each case is sent through the gateway to the function
    @settings(
        max_examples=600,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=st.one_of(strategies))
    def call(case: schemathesis.Case[Any]) -> None:
        # Then no answer is a 5xx, and each is documented and matches its schema
        case.call_and_validate(base_url=base_url, checks=CHECKS)

    # (every hostile shape once, in each place it can go, before the generated ones)
    for case in corpus(operations):
        case.call_and_validate(base_url=base_url, checks=CHECKS)
    call()
