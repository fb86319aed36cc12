"""learn_thresholds: daily, learn each carrier's dwell thresholds from the event log."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from trackwatch.bootstrap import Container, Handler, deadline_of, lambda_entry
from trackwatch.observability import logger, metrics, tracer

#: No shard is started this close to Lambda's timeout: the table is still written.
DEADLINE_MARGIN_S = 60.0


def handler(container: Container) -> Handler:
    """The handler over `container`'s threshold job."""
    job = container.learn_thresholds

    @logger.inject_lambda_context
    @metrics.log_metrics
    @tracer.capture_lambda_handler
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
        """Read the window's scans, write the thresholds table (the event is the schedule's)."""
        deadline = deadline_of(context, DEADLINE_MARGIN_S, 1 / 2)
        _table, summary = job.run(deadline)
        metrics.add_metric("ThresholdEntriesRead", MetricUnit.Count, summary.items_read)
        # Under all of them: the window outgrew one run (the table is learned from a sample).
        metrics.add_metric("ThresholdShardsRead", MetricUnit.Count, summary.shards_read)
        metrics.add_metric("ThresholdsLearned", MetricUnit.Count, summary.learned_dwell)
        logger.info("thresholds learned", extra=summary.as_log())
        return summary.as_log()

    return lambda_handler


lambda_handler = lambda_entry(handler)
