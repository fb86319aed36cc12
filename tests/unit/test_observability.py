"""The poller's metrics carry the names and dimensions the template's alarms watch."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from trackwatch.observability import metrics, record_poll
from trackwatch.services.poll import PollSummary


def _emf(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]


def test_poll_metrics_are_emitted_with_their_dimensions(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a batch that polled 7 AWBs over 2 calls, one of which failed authentication
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    # The Metrics object is process-wide; start from what this test records.
    metrics.clear_metrics()
    summary = PollSummary(
        calls=2,
        awbs=Counter({"found": 6, "invalid": 1}),
        errors=Counter({"auth": 1}),
        events=Counter({"shipment.status_changed": 2}),
    )

    # When its metrics are recorded and flushed
    record_poll(summary)
    metrics.flush_metrics()

    # Then the counts are there, and ClickpostErrors has the dimensions the alarm filters on
    blobs = _emf(capsys.readouterr().out)
    by_name = {
        metric["Name"]: blob
        for blob in blobs
        for directive in blob["_aws"]["CloudWatchMetrics"]  # type: ignore[index]
        for metric in directive["Metrics"]
    }
    assert by_name["ShipmentsPolled"]["ShipmentsPolled"] == [7.0]
    assert by_name["ClickpostCalls"]["ClickpostCalls"] == [2.0]
    errors = by_name["ClickpostErrors"]
    assert errors["kind"] == "auth"
    assert errors["service"] == "trackwatch"
    assert errors["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Trackwatch"  # type: ignore[index]
    assert by_name["EventsDetected"]["event_type"] == "shipment.status_changed"
