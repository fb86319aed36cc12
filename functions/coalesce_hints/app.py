"""coalesce_hints: every minute, take HintQueue's change hints and poll each waybill once."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from trackwatch.bootstrap import Container, Handler, deadline_of, lambda_entry
from trackwatch.observability import count_by, logger, metrics, tracer

#: Receiving stops this long before Lambda's timeout, leaving time to poll and delete.
DEADLINE_MARGIN_S = 20.0


def handler(container: Container) -> Handler:
    """The handler over `container`'s coalescer."""
    service = container.hint_service

    @logger.inject_lambda_context
    @metrics.log_metrics
    @tracer.capture_lambda_handler
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
        """Drain the window's hints into PollQueue (the scheduled time does not matter: a
        late run takes what is there)."""
        deadline = deadline_of(context, DEADLINE_MARGIN_S, 1 / 2)
        summary = service.drain(deadline=deadline)
        metrics.add_metric("HintWaybills", MetricUnit.Count, summary.waybills)
        metrics.add_metric("HintPolls", MetricUnit.Count, summary.polled)
        metrics.add_metric("HintsAlreadySeen", MetricUnit.Count, summary.already_seen)
        count_by("HintsReceived", "source", summary.hints)
        count_by("HintsUntracked", "source", summary.untracked)
        count_by("HintsRegistered", "source", {"webhook": summary.registered})
        logger.info("hint window", extra=summary.as_log())
        return summary.as_log()

    return lambda_handler


lambda_handler = lambda_entry(handler)
