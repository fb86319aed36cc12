"""Logger, Metrics and the tracing decorator: created once, shared by every function."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

if TYPE_CHECKING:
    from trackwatch.services.poll import PollSummary

SERVICE = "trackwatch"
NAMESPACE = "Trackwatch"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def tracing_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether X-Ray traces this process: in Lambda (which gives every function the daemon's
    address, traced or not) unless POWERTOOLS_TRACE_DISABLED, which the template sets from
    its TracingMode."""
    disabled = environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in ("1", "true")
    return "AWS_XRAY_DAEMON_ADDRESS" in environ and not disabled


class LazyTracer:
    """powertools' Tracer, built only where tracing is on.

    Building a Tracer imports the X-Ray SDK and opens its UDP emitter (a tenth of a
    cold start); a function without active tracing, a test or the local runtime pays
    nothing and gets its handler back unchanged.
    """

    def capture_lambda_handler[F: Callable[..., Any]](self, handler: F) -> F:
        """powertools' capture_lambda_handler when tracing is on; else `handler` itself."""
        if not tracing_enabled():
            return handler
        from aws_lambda_powertools import Tracer

        return cast(F, Tracer(service=SERVICE).capture_lambda_handler(handler))

    def carried[**P, R](self, work: Callable[P, R]) -> Callable[P, R]:
        """`work`, to run in another thread inside the trace of the thread that calls this
        (X-Ray keeps the current trace per thread: without it, the SDK calls a worker
        thread makes would be traced nowhere and log an error each). `work` itself when
        tracing is off."""
        if not tracing_enabled():
            return work
        from aws_xray_sdk.core import xray_recorder

        entity = xray_recorder.get_trace_entity()

        def in_trace(*args: P.args, **kwargs: P.kwargs) -> R:
            xray_recorder.set_trace_entity(entity)
            try:
                return work(*args, **kwargs)
            finally:
                xray_recorder.clear_trace_entities()

        return in_trace


tracer = LazyTracer()


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


def record_values(name: str, dimension: str, values: Mapping[str, list[float]]) -> None:
    """A distribution per value of a low-cardinality dimension (a lag by event type): every
    value goes out, up to a hundred to an EMF line, so CloudWatch can take percentiles."""
    for value, samples in values.items():
        if not samples:
            continue
        line = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
        line.add_dimension(name=dimension, value=value)
        for sample in samples:
            line.add_metric(name=name, unit=MetricUnit.Seconds, value=max(0.0, sample))
        line.flush_metrics()


def record_poll(summary: PollSummary) -> None:
    """The poller's metrics: ShipmentsPolled, ClickpostCalls, ClickpostErrors by kind, ..."""
    metrics.add_metric("ShipmentsPolled", MetricUnit.Count, sum(summary.awbs.values()))
    metrics.add_metric("ClickpostCalls", MetricUnit.Count, summary.calls)
    metrics.add_metric("ClickpostRequests", MetricUnit.Count, summary.http_requests)
    metrics.add_metric("ShipmentsWritten", MetricUnit.Count, summary.written)
    # Check-only visits (the delay checks alone): no Clickpost call behind them.
    metrics.add_metric("ShipmentsChecked", MetricUnit.Count, summary.checked)
    metrics.add_metric("ShipmentsStopped", MetricUnit.Count, summary.stopped)
    metrics.add_metric("WriteConflicts", MetricUnit.Count, summary.conflicts)
    metrics.add_metric(
        "UnknownStatusCodes", MetricUnit.Count, sum(summary.unknown_status_codes.values())
    )
    count_by("ClickpostErrors", "kind", summary.errors)
    count_by("AwbOutcomes", "outcome", summary.awbs)
    count_by("EventsDetected", "event_type", summary.events)
    count_by("UnreadableAwbs", "field", summary.unreadable)
