"""Logger, Metrics and Tracer: created once, shared by every function."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from trackwatch.services.poll import PollSummary

SERVICE = "trackwatch"
NAMESPACE = "Trackwatch"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)


def count_by(name: str, dimension: str, counts: Mapping[str, int]) -> None:
    """One EMF metric per value of a low-cardinality dimension (error kind, event type)."""
    for value, count in counts.items():
        if count <= 0:
            continue
        with single_metric(
            name=name,
            unit=MetricUnit.Count,
            value=count,
            namespace=NAMESPACE,
            default_dimensions={"service": SERVICE},
        ) as metric:
            metric.add_dimension(name=dimension, value=value)


def record_poll(summary: PollSummary) -> None:
    """The poller's metrics: ShipmentsPolled, ClickpostCalls, ClickpostErrors by kind, ..."""
    metrics.add_metric("ShipmentsPolled", MetricUnit.Count, sum(summary.awbs.values()))
    metrics.add_metric("ClickpostCalls", MetricUnit.Count, summary.calls)
    metrics.add_metric("ClickpostRequests", MetricUnit.Count, summary.http_requests)
    metrics.add_metric("ShipmentsWritten", MetricUnit.Count, summary.written)
    metrics.add_metric("ShipmentsStopped", MetricUnit.Count, summary.stopped)
    metrics.add_metric("WriteConflicts", MetricUnit.Count, summary.conflicts)
    metrics.add_metric(
        "UnknownStatusCodes", MetricUnit.Count, sum(summary.unknown_status_codes.values())
    )
    count_by("ClickpostErrors", "kind", summary.errors)
    count_by("AwbOutcomes", "outcome", summary.awbs)
    count_by("EventsDetected", "event_type", summary.events)
