"""notify_email: EmailQueue consumer; tells each shipment's customer the news by e-mail."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.typing import LambdaContext

from trackwatch.notify_batch import handle_batch
from trackwatch.observability import logger, tracer

# A batch that fails whole is reported as such rather than raised: the queue retries the
# same records either way, and no traceback (with whatever it quotes) reaches the logs.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@logger.inject_lambda_context
# No @metrics.log_metrics: the batch's counts go out as single metrics (by outcome),
# and an empty flush would warn on every batch.
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Send the e-mail each event calls for; report the records that failed."""
    return handle_batch("email", event, context, processor)
