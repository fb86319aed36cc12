"""The WhatsApp events consumer's handler: what End User Messaging Social reports on our
messages, and customers' replies, in an SQS batch; partial failures out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trackwatch.batches import SqsMessage, counted, each_message
from trackwatch.bootstrap import Container, Handler
from trackwatch.models.whatsapp import WhatsAppEvent
from trackwatch.observability import count_by, logger, tracer
from trackwatch.services.whatsapp_events import EventsSummary, WhatsAppEvents

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


def handle_whatsapp_events(
    service: WhatsAppEvents, event: dict[str, Any], context: LambdaContext
) -> dict[str, Any]:
    """Apply every WhatsApp event; a record that raises is reported as a batch item failure."""
    summary = EventsSummary()

    def apply(record: SqsMessage) -> None:
        summary.outcomes.update(service.handle(WhatsAppEvent.from_sns_message(record.body)))

    response, records = each_message(event, counted(apply, summary.errors))
    count_by("WhatsAppEvents", "outcome", summary.outcomes)
    count_by("WhatsAppEventErrors", "kind", summary.errors)
    logger.info(
        "whatsapp events batch",
        extra={
            "records": records,
            "failed": len(response["batchItemFailures"]),
            **summary.as_log(),
        },
    )
    return response


def whatsapp_events_handler(container: Container) -> Handler:
    """The handler of the WhatsApp events consumer (WhatsAppEventsQueue)."""
    service = container.whatsapp_events

    @logger.inject_lambda_context
    @tracer.capture_lambda_handler
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        """Record what Meta reports and what customers reply; report the records that failed."""
        return handle_whatsapp_events(service, event, context)

    return lambda_handler
