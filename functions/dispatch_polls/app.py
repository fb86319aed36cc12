"""dispatch_polls: every minute, enqueue the Clickpost calls for the shipments due now."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from trackwatch.bootstrap import Container, Handler, lambda_entry
from trackwatch.models.messages import ScheduleTick
from trackwatch.observability import logger, metrics, tracer


def handler(container: Container) -> Handler:
    """The handler over `container`'s dispatcher."""
    service = container.dispatch_service

    @logger.inject_lambda_context
    @metrics.log_metrics
    @tracer.capture_lambda_handler
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
        """Read the due shipments of the scheduled minute and send their poll requests."""
        summary = service.dispatch(ScheduleTick.model_validate(event))
        metrics.add_metric("ShipmentsDispatched", MetricUnit.Count, summary.due)
        metrics.add_metric("PollMessagesSent", MetricUnit.Count, summary.messages)
        # Check-only visits: the delay checks of shipments the sweep leaves alone (no call).
        metrics.add_metric("ShipmentsCheckVisited", MetricUnit.Count, summary.checks)
        # 1 while the change feed is enabled but the full cadence stands in for it (alarmed).
        if summary.health not in (None, "disabled"):
            metrics.add_metric("ChangeFeedFallback", MetricUnit.Count, int(summary.fallback))
        logger.info("dispatched", extra=summary.as_log())
        return summary.as_log()

    return lambda_handler


lambda_handler = lambda_entry(handler)
