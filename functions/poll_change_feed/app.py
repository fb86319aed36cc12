"""poll_change_feed: on its schedule, read Clickpost's updated-order feed forward and hint
every waybill it lists."""

from __future__ import annotations

import asyncio
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from trackwatch.bootstrap import Container, Handler, deadline_of, lambda_entry
from trackwatch.models.messages import ScheduleTick
from trackwatch.observability import count_by, logger, metrics, tracer

#: The run stops starting windows this long before Lambda's timeout.
DEADLINE_MARGIN_S = 10.0


def handler(container: Container) -> Handler:
    """The handler over `container`'s feed poller."""
    service = container.feed_service
    clock = container.clock

    @logger.inject_lambda_context
    @metrics.log_metrics
    @tracer.capture_lambda_handler
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
        """Read the windows due by the scheduled time; a failure is recorded, not raised."""
        deadline = deadline_of(context, DEADLINE_MARGIN_S, 1 / 4)
        tick = ScheduleTick.model_validate(event)
        summary = asyncio.run(service.run(tick.at(clock()), deadline=deadline))
        metrics.add_metric("ChangeFeedWindows", MetricUnit.Count, summary.windows)
        metrics.add_metric("ChangeFeedEntries", MetricUnit.Count, summary.entries)
        metrics.add_metric("HintsSent", MetricUnit.Count, summary.hinted)
        if summary.behind_s is not None:
            metrics.add_metric("ChangeFeedBehind", MetricUnit.Seconds, summary.behind_s)
        count_by("ChangeFeedErrors", "kind", {summary.error: 1} if summary.error else {})
        # The track-order alarm on bad credentials hears about the feed's too.
        count_by("ClickpostErrors", "kind", {"auth": 1} if summary.error == "auth" else {})
        count_by("ChangeFeedUnreadable", "field", summary.unreadable)
        if summary.error:
            logger.warning("change feed run stopped", extra=summary.as_log())
        else:
            logger.info("change feed run", extra=summary.as_log())
        return summary.as_log()

    return lambda_handler


lambda_handler = lambda_entry(handler)
