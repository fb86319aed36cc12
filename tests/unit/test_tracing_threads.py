"""A notifier's worker threads stay inside the invocation's X-Ray trace (observability)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from aws_xray_sdk.core import xray_recorder

from trackwatch.observability import LazyTracer


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # As in a Lambda function with active tracing: the daemon's address is set; no daemon
    # is needed, nothing is sent while the segment is open
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:2000")
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    xray_recorder.configure(context_missing="RUNTIME_ERROR", sampling=False)
    xray_recorder.begin_segment("invocation")
    try:
        yield
    finally:
        xray_recorder.clear_trace_entities()
        xray_recorder.configure(context_missing="LOG_ERROR", sampling=True)  # the defaults


def in_thread(work: object) -> object:
    found: list[object] = []
    thread = threading.Thread(target=lambda: found.append(work()))  # type: ignore[operator]
    thread.start()
    thread.join()
    return found[0] if found else None


def test_work_carried_to_another_thread_runs_in_the_invocations_trace(traced: None) -> None:
    segment = xray_recorder.get_trace_entity()

    seen = in_thread(LazyTracer().carried(xray_recorder.get_trace_entity))

    # The thread saw the invocation's segment; this thread still has it
    assert seen is segment
    assert xray_recorder.get_trace_entity() is segment


def test_work_not_carried_finds_no_trace_in_another_thread(traced: None) -> None:
    # (Why it is carried: X-Ray keeps the trace per thread)
    def entity() -> object:
        try:
            return xray_recorder.get_trace_entity()
        except Exception as exc:
            return type(exc).__name__

    assert in_thread(entity) == "SegmentNotFoundException"


def test_without_tracing_the_work_is_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_XRAY_DAEMON_ADDRESS", raising=False)

    def work() -> int:
        return 1

    assert LazyTracer().carried(work) is work
