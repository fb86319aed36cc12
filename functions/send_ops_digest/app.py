"""send_ops_digest: daily, e-mail operations the shipments reported stuck or late."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from trackwatch.bootstrap import Container, Handler, deadline_of, lambda_entry
from trackwatch.observability import logger, metrics, tracer

#: Receiving stops this long before Lambda's timeout: what was received is still sent.
DEADLINE_MARGIN_S = 30.0


def handler(container: Container) -> Handler:
    """The handler over `container`'s digest."""
    digest = container.ops_digest

    @logger.inject_lambda_context
    @metrics.log_metrics
    @tracer.capture_lambda_handler
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
        """Drain OpsDigestQueue, send the digest, delete what it covered."""
        deadline = deadline_of(context, DEADLINE_MARGIN_S, 1 / 2)
        summary = digest.send(deadline)
        metrics.add_metric("DigestEvents", MetricUnit.Count, summary.events)
        metrics.add_metric("DigestsSent", MetricUnit.Count, int(summary.sent))
        logger.info("ops digest", extra=summary.as_log())
        return summary.as_log()

    return lambda_handler


lambda_handler = lambda_entry(handler)
