"""publish_events: the shipments table's stream → SNS, for the events each write carried."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trackwatch.batches import failures_response, records
from trackwatch.bootstrap import Container, Handler, lambda_entry
from trackwatch.models.record import StreamChange
from trackwatch.observability import count_by, logger, record_values, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


def handler(container: Container) -> Handler:
    """The handler over `container`'s publisher."""
    service = container.publish_service

    @logger.inject_lambda_context
    # No @metrics.log_metrics: EventsPublished goes out as single metrics (one per event
    # type), and an empty flush would warn on every batch that publishes nothing.
    @tracer.capture_lambda_handler
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        """Publish the batch's outboxes together; report the records to retry.

        Not powertools' BatchProcessor, which handles one record at a time: the events of
        the whole batch are logged and published together (fewer requests), so success and
        failure are the batch's, reported record by record.
        """
        changes = [
            # The images as the event carries them (attribute-value form): their types
            # matter to the outbox's decoding, and the rest of the item is never needed.
            StreamChange(
                record_id=str(record["dynamodb"].get("SequenceNumber") or ""),
                new_image=record["dynamodb"].get("NewImage"),
                old_image=record["dynamodb"].get("OldImage"),
            )
            for record in records(event)
            if record.get("dynamodb") is not None
        ]
        report = service.publish(changes)
        count_by("EventsPublished", "event_type", report.published)
        count_by("EventsSetAside", "reason", {"poison": report.poisoned})
        # Freshness: from Clickpost's record of the scan to our publish, per event type.
        record_values("EventLag", "event_type", report.lags)
        logger.info(
            "publish batch",
            extra={
                "records": len(changes),
                "failed": len(report.failed),
                "error": report.error,
                "events": dict(report.published),
                "set_aside": report.poisoned,
            },
        )
        return failures_response(report.failed)

    return lambda_handler


lambda_handler = lambda_entry(handler)
