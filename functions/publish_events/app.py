"""publish_events: the shipments table's stream → SNS, for the events each write carried."""

from __future__ import annotations

from collections import Counter
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from trackwatch.bootstrap import Container, Handler, lambda_entry
from trackwatch.observability import count_by, logger, tracer


class HeldBack(Exception):
    """A record after a failed one: not published now, so the retry (which starts at the
    failed record) publishes it once, not again."""


def handler(container: Container) -> Handler:
    """The handler over `container`'s publisher."""
    service = container.publish_service
    # A batch that fails whole is reported record by record, not raised: the source retries
    # the same records either way, and no traceback (with what it quotes) reaches the logs.
    processor = BatchProcessor(
        event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False
    )

    @logger.inject_lambda_context
    # No @metrics.log_metrics: EventsPublished goes out as single metrics (one per event
    # type), and an empty flush would warn on every batch that publishes nothing.
    @tracer.capture_lambda_handler
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        """Publish each record's outbox; a failed record (and those after it) is retried."""
        published: Counter[str] = Counter()
        failed = False

        def publish(record: DynamoDBRecord) -> None:
            nonlocal failed
            if record.dynamodb is None:
                return
            if failed:
                raise HeldBack(record.dynamodb.sequence_number)
            try:
                events = service.publish_record(
                    record.dynamodb.new_image, record.dynamodb.old_image
                )
            except Exception:
                failed = True
                raise
            published.update(e.event_type for e in events)

        response = process_partial_response(
            event=event, record_handler=publish, processor=processor, context=context
        )
        count_by("EventsPublished", "event_type", published)
        logger.info(
            "publish batch",
            extra={
                "records": len(event.get("Records", [])),
                "failed": len(response.get("batchItemFailures", [])),
                "events": dict(published),
            },
        )
        return dict(response)

    return lambda_handler


lambda_handler = lambda_entry(handler)
