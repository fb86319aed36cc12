"""The SMS and e-mail handlers' shared body: an SQS batch in, partial failures out."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from trackwatch import wiring
from trackwatch.adapters.notify_queue import NOT_BEFORE_ATTRIBUTE
from trackwatch.errors import TrackwatchError
from trackwatch.models.events import EVENT_ADAPTER
from trackwatch.models.notification import Channel, NotificationRequest
from trackwatch.observability import count_by, logger
from trackwatch.services.notify import NotifySummary

# The SDK's debug logs print request parameters, and here those are phone numbers and
# e-mail addresses: whatever level the function runs at, they stay out.
for _name in ("botocore", "boto3", "urllib3"):
    logging.getLogger(_name).setLevel(max(logging.INFO, logging.getLogger(_name).level))


def request_of(record: SQSRecord) -> NotificationRequest:
    """The event in a queue message (raw SNS delivery), with its not_before marker if held."""
    attributes = {
        name: (value.data_type, value.string_value)
        for name, value in record.message_attributes.items()
        if value.string_value is not None
    }
    not_before = attributes.get(NOT_BEFORE_ATTRIBUTE)
    return NotificationRequest(
        event=EVENT_ADAPTER.validate_json(record.body),
        not_before=datetime.fromisoformat(not_before[1]) if not_before else None,
        attributes=attributes,
    )


def handle_batch(
    channel: Channel, event: dict[str, Any], context: LambdaContext, processor: BatchProcessor
) -> dict[str, Any]:
    """Notify for every record; a record that raises is reported as a batch item failure."""
    notifier = wiring.notifier(channel)
    wiring.idempotency_guard().register(context)
    summary = NotifySummary()

    def notify(record: SQSRecord) -> None:
        try:
            outcome, kind = notifier.handle(request_of(record))
        except TrackwatchError as exc:
            summary.errors[exc.kind] += 1
            raise
        except Exception as exc:
            summary.errors[type(exc).__name__] += 1
            raise
        summary.outcomes[outcome.value] += 1
        if kind is not None:
            summary.kinds[kind] += 1

    response = process_partial_response(
        event=event, record_handler=notify, processor=processor, context=context
    )
    count_by(f"{channel.capitalize()}Notifications", "outcome", summary.outcomes)
    count_by(f"{channel.capitalize()}NotifyErrors", "kind", summary.errors)
    logger.info(
        f"{channel} batch",
        extra={
            "channel": channel,
            "records": len(event.get("Records", [])),
            "failed": len(response.get("batchItemFailures", [])),
            **summary.as_log(),
        },
    )
    return dict(response)
