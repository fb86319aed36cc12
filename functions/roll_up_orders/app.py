"""roll_up_orders: the shipments table's stream → each order's item → order events; and the
settle ticks on its own queue, which close an order's window when no change did."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from trackwatch.bootstrap import Container, Handler, lambda_entry
from trackwatch.models.orders import SettleRequest
from trackwatch.models.record import StreamChange
from trackwatch.observability import count_by, logger, tracer


def handler(container: Container) -> Handler:
    """The handler over `container`'s roll-up."""
    service = container.order_roll_up
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    def roll_up(event: dict[str, Any]) -> dict[str, Any]:
        """A stream batch: one conditional write per order it touches; the records of an
        order that failed are retried."""
        records = [
            StreamChange(
                record_id=record.dynamodb.sequence_number or "",
                new_image=record.dynamodb.raw_event.get("NewImage"),
                old_image=record.dynamodb.raw_event.get("OldImage"),
            )
            for record in DynamoDBStreamEvent(event).records
            if record.dynamodb is not None
        ]
        report = service.roll_up(records)
        count_by("OrderEvents", "event_type", report.events)
        count_by("OrderChangesSkipped", "reason", report.skipped)
        count_by("OrderRollUpErrors", "kind", report.errors)
        logger.info("roll-up batch", extra={"records": len(records), **report.as_log()})
        return {"batchItemFailures": [{"itemIdentifier": i} for i in report.failed]}

    def settle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        """Settle ticks: each closes its order's ended windows; a failed one is retried."""
        outcomes: dict[str, int] = {}

        def tick(record: SQSRecord) -> None:
            outcome = service.settle_tick(SettleRequest.model_validate_json(record.body))
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

        response = process_partial_response(
            event=event, record_handler=tick, processor=processor, context=context
        )
        count_by("OrderSettleTicks", "outcome", outcomes)
        logger.info(
            "settle batch",
            extra={
                "records": len(event.get("Records", [])),
                "failed": len(response.get("batchItemFailures", [])),
                "outcomes": outcomes,
            },
        )
        return dict(response)

    @logger.inject_lambda_context
    # No @metrics.log_metrics: the counts go out as single metrics, and an empty flush would
    # warn on every batch.
    @tracer.capture_lambda_handler
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        """Two event sources, told apart by their records: the stream, or the settle queue."""
        records = event.get("Records") or [{}]
        if records[0].get("eventSource") == "aws:sqs":
            return settle(event, context)
        return roll_up(event)

    return lambda_handler


lambda_handler = lambda_entry(handler)
