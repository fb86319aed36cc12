"""The sandbox's faults without a socket: their contract, how they are drawn, how bodies are built.

What each fault puts on the wire is tested over a real socket in
tests/integration/test_sandbox_data_faults.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from trackwatch_cli.sandbox import DEFAULT_KEY, DEFAULT_USERNAME, Fault, FaultKind, SandboxServer
from trackwatch_cli.sandbox.body import CHUNK_BYTES, Piece, Repeat, Splicer, body_chunks
from trackwatch_cli.sandbox.faults import DELIVERY_FAULTS, FaultBoard

CP_ID = 4


def _params(*waybills: str) -> dict[str, str]:
    return {
        "key": DEFAULT_KEY,
        "username": DEFAULT_USERNAME,
        "waybill": ",".join(waybills),
        "cp_id": str(CP_ID),
    }


def _sandbox(*waybills: str) -> SandboxServer:
    sandbox = SandboxServer()
    for waybill in waybills:
        sandbox.add_shipment(waybill, CP_ID, "delivered_smoothly")
    return sandbox


def _result(sandbox: SandboxServer, *waybills: str) -> dict[str, Any]:
    answer = sandbox.handle_track_order(_params(*waybills))
    assert answer.status == 200
    result: dict[str, Any] = json.loads(answer.body)["result"]
    return result


def test_every_fault_kind_says_what_it_stands_for() -> None:
    # Given / When
    docs = {kind: kind.__doc__ or "" for kind in FaultKind}

    # Then every member has its own docstring, and members still round-trip by value
    assert all(len(doc) > 30 and doc != FaultKind.__doc__ for doc in docs.values())
    assert len(set(docs.values())) == len(docs)
    assert all(FaultKind(kind.value) is kind for kind in FaultKind)
    assert isinstance(FaultKind.HANG, str) and FaultKind.HANG.value == "hang"


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"count": 0}, "count"),
        ({"delay_s": -1.0}, "delay_s"),
        ({"size_bytes": 0}, "size_bytes"),
        ({"scans": 0}, "scans"),
        ({"depth": 0}, "depth"),
        ({"days_ahead": 0.0}, "days_ahead"),
        ({"raw": b'say "hi"'}, "raw"),
        ({"raw": b"back\\slash"}, "raw"),
        ({"raw": b"new\nline"}, "raw"),
        ({"extra_waybill": ""}, "extra_waybill"),
        ({"extra_waybill": "A,B"}, "extra_waybill"),
    ],
)
def test_nonsense_fault_parameters_are_refused(kwargs: dict[str, Any], names: str) -> None:
    with pytest.raises(ValueError, match=names):
        Fault(FaultKind.INVALID_UTF8, **kwargs)


def test_kind_defaults() -> None:
    assert Fault(FaultKind.DRIP).wait_s() == 2.0
    assert Fault(FaultKind.SLOW).wait_s() == 0.0
    assert Fault(FaultKind.SLOW, delay_s=0.5).wait_s() == 0.5
    assert Fault(FaultKind.HUGE_REMARK).size() == 300_000
    assert Fault(FaultKind.HUGE_BODY).size() == 50_000_000
    assert Fault(FaultKind.LONG_HISTORY).scans == 2_000
    assert Fault(FaultKind.DEEP_NESTING).depth == 100_000
    assert Fault(FaultKind.FUTURE_SCAN).days_ahead == 30.0


def test_an_answer_fault_spares_data_faults_but_not_delivery() -> None:
    # Given a rejection, a data fault and a drip for the same request
    board = FaultBoard()
    board.push(Fault(FaultKind.REJECTED))
    board.push(Fault(FaultKind.TIMESTAMP_ZEROS, waybill="A1"))
    board.push(Fault(FaultKind.DRIP, delay_s=0.1))

    # When two requests draw
    first = board.draw(CP_ID, ("A1", "A2"))
    second = board.draw(CP_ID, ("A1", "A2"))

    # Then the rejected request never reached its AWBs but was still dripped;
    # the data fault waited for the next request
    assert first.kinds == (FaultKind.REJECTED, FaultKind.DRIP)
    assert second.kinds == (FaultKind.TIMESTAMP_ZEROS,)
    assert board.pending() == []


def test_data_fault_scoped_to_a_waybill_skips_requests_without_it() -> None:
    # Given
    board = FaultBoard()
    board.push(Fault(FaultKind.DEEP_NESTING, waybill="A1", count=None))

    # When / Then
    assert board.draw(CP_ID, ("A2",)).awb_faults == ()
    assert [f.kind for f in board.draw(CP_ID, ("A2", "A1")).awb_faults] == [FaultKind.DEEP_NESTING]
    assert len(board.pending()) == 1


def test_delivery_faults_first_pushed_wins() -> None:
    # Given
    board = FaultBoard()
    board.push(Fault(FaultKind.HANG))
    board.push(Fault(FaultKind.DRIP))

    # When
    plan = board.draw(CP_ID, ("A1",))

    # Then
    assert plan.delivery is not None and plan.delivery.kind is FaultKind.HANG
    assert [f.kind for f in board.pending()] == [FaultKind.DRIP]
    assert {FaultKind.HANG, FaultKind.DRIP} == DELIVERY_FAULTS


def test_request_log_records_every_fault_drawn() -> None:
    # Given two data faults on different AWBs and a drip
    sandbox = _sandbox("A1", "A2")
    sandbox.set_fault(FaultKind.TIMESTAMP_ZEROS, waybill="A1")
    sandbox.set_fault(FaultKind.INVALID_UTF8, waybill="A2")
    sandbox.set_fault(FaultKind.DRIP, delay_s=0.01)

    # When
    answer = sandbox.handle_track_order(_params("A1", "A2"))

    # Then the answer is to be dripped, and the log names every fault
    assert answer.drip_s == 0.01 and not answer.hang
    (request,) = sandbox.requests
    assert request.fault is FaultKind.TIMESTAMP_ZEROS
    assert request.faults == (FaultKind.TIMESTAMP_ZEROS, FaultKind.INVALID_UTF8, FaultKind.DRIP)


def test_existing_awb_faults_still_apply_per_waybill() -> None:
    # Given
    sandbox = _sandbox("A1", "A2", "A3")
    sandbox.set_fault(FaultKind.MISSING_AWB, waybill="A1")
    sandbox.set_fault(FaultKind.INVALID_AWB, waybill="A2")

    # When
    result = _result(sandbox, "A1", "A2", "A3")

    # Then
    assert set(result) == {"A2", "A3"}
    assert result["A2"]["valid"] is False
    assert result["A3"]["valid"] is True


def test_long_history_is_added_once_per_shipment() -> None:
    # Given a long-history fault that applies to two polls
    sandbox = _sandbox("A1")
    sandbox.set_fault(FaultKind.LONG_HISTORY, waybill="A1", scans=10, count=2)

    # When
    first, second = _result(sandbox, "A1"), _result(sandbox, "A1")

    # Then the history is there once, the journey goes on above it
    assert len(first["A1"]["scans"]) == 10 + 1
    assert len(second["A1"]["scans"]) == 10 + 2


def test_huge_body_is_never_built_to_be_sent() -> None:
    # Given
    sandbox = _sandbox("A1")
    sandbox.set_fault(FaultKind.HUGE_BODY, waybill="A1")

    # When
    answer = sandbox.handle_track_order(_params("A1"))

    # Then the 50 MB are a Repeat piece, produced only while sending, in bounded chunks
    held = sum(len(piece) for piece in answer.pieces if isinstance(piece, bytes))
    assert held < 10_000
    assert answer.content_length > 50_000_000
    repeat = next(piece for piece in answer.pieces if isinstance(piece, Repeat))
    assert max(len(chunk) for chunk in repeat.chunks()) <= CHUNK_BYTES


def test_splicer_puts_raw_bytes_where_values_and_keys_go() -> None:
    # Given
    splicer = Splicer()
    value = splicer.splice(b'"caf\xe9"')
    key = splicer.splice(b'"A1"')
    nested = splicer.splice(Repeat(b"[", 3), Repeat(b"]", 3))

    # When
    pieces = splicer.encode({"A1": {"remark": value}, key: {"deep": nested}})

    # Then
    body = b"".join(body_chunks(pieces))
    assert body == b'{"A1": {"remark": "caf\xe9"}, "A1": {"deep": [[[]]]}}'


def test_without_splices_a_body_is_plain_json() -> None:
    assert Splicer().encode({"a": [1, "é"]}) == (json.dumps({"a": [1, "é"]}).encode(),)


def test_body_chunks_join_small_pieces_and_keep_order() -> None:
    # Given many small pieces and a long run
    pieces: tuple[Piece, ...] = (*(b"x" for _ in range(1000)), Repeat(b"ab", CHUNK_BYTES), b"end")

    # When
    chunks = list(body_chunks(pieces))

    # Then
    assert b"".join(chunks) == b"x" * 1000 + b"ab" * CHUNK_BYTES + b"end"
    assert len(chunks) <= 5
    assert all(len(chunk) <= CHUNK_BYTES for chunk in chunks)


def test_repeat_refuses_an_empty_unit() -> None:
    with pytest.raises(ValueError, match="non-empty unit"):
        Repeat(b"", 3)
