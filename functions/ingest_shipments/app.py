"""ingest_shipments: IngestQueue consumer; registers the shipments other services send."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from trackwatch.batches import SqsMessage, each_message
from trackwatch.bootstrap import Container, Handler, lambda_entry
from trackwatch.observability import count_by, logger, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


def handler(container: Container) -> Handler:
    """The handler over `container`'s ingest service."""
    service = container.ingest_service

    # A batch that fails whole is reported record by record, not raised: the source retries
    # the same records either way, and no traceback (with what it quotes) reaches the logs.
    # Counts go out as single metrics (count_by); an empty log_metrics flush would only warn.
    @logger.inject_lambda_context
    @tracer.capture_lambda_handler
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        """Register each message's shipments; a message that hit a storage failure is retried."""
        outcomes: Counter[str] = Counter()

        def register(record: SqsMessage) -> None:
            outcomes.update(service.ingest(record.body))

        response, messages = each_message(event, register)
        count_by("ShipmentsRegistered", "outcome", outcomes)
        logger.info(
            "ingest batch",
            extra={
                "messages": messages,
                "failed": len(response["batchItemFailures"]),
                "outcomes": dict(outcomes),
            },
        )
        return response

    return lambda_handler


lambda_handler = lambda_entry(handler)
