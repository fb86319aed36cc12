"""The notifiers' handlers (SMS, WhatsApp, e-mail: they differ only in their channel) and the
WhatsApp events consumer's: an SQS batch in, partial failures out."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from trackwatch.batches import SqsMessage, each_message
from trackwatch.bootstrap import Container, Handler
from trackwatch.errors import TrackwatchError
from trackwatch.models.events import EVENT_ADAPTER
from trackwatch.models.notification import (
    FALLBACK_FROM_ATTRIBUTE,
    FALLBACK_REASON_ATTRIBUTE,
    NOT_BEFORE_ATTRIBUTE,
    Channel,
    Fallback,
    NotificationRequest,
)
from trackwatch.models.whatsapp import WhatsAppEvent
from trackwatch.observability import count_by, logger, tracer
from trackwatch.services.notify import Notifier, NotifySummary
from trackwatch.services.whatsapp_events import EventsSummary, WhatsAppEvents

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# The SDK's debug logs print request parameters, and here those are phone numbers and
# e-mail addresses: whatever level the function runs at, they stay out.
for _name in ("botocore", "boto3", "urllib3"):
    logging.getLogger(_name).setLevel(max(logging.INFO, logging.getLogger(_name).level))


#: The channel's part of its metrics' names (PascalCase): SmsNotifications, ...
METRIC_PREFIX: dict[Channel, str] = {"sms": "Sms", "email": "Email", "whatsapp": "WhatsApp"}


def request_of(record: SqsMessage) -> NotificationRequest:
    """The event in a queue message (raw SNS delivery), with its not_before marker if held,
    and the channel it stands in for if it is a fallback."""
    attributes = dict(record.attributes)
    not_before = attributes.get(NOT_BEFORE_ATTRIBUTE)
    from_channel = attributes.get(FALLBACK_FROM_ATTRIBUTE)
    reason = attributes.get(FALLBACK_REASON_ATTRIBUTE)
    fallback = (
        Fallback.model_validate({"from_channel": from_channel[1], "reason": reason[1]})
        if from_channel and reason
        else None
    )
    return NotificationRequest(
        event=EVENT_ADAPTER.validate_json(record.body),
        not_before=datetime.fromisoformat(not_before[1]) if not_before else None,
        fallback=fallback,
        attributes=attributes,
    )


def _counted(
    handle: Callable[[SqsMessage], None], errors: Counter[str]
) -> Callable[[SqsMessage], None]:
    """`handle`, counting what each failure was (by its kind) before it fails the record."""

    def counted(record: SqsMessage) -> None:
        try:
            handle(record)
        except TrackwatchError as exc:
            errors[exc.kind] += 1
            raise
        except Exception as exc:
            errors[type(exc).__name__] += 1
            raise

    return counted


def handle_batch(
    notifier: Notifier, event: dict[str, Any], context: LambdaContext
) -> dict[str, Any]:
    """Notify for every record; a record that raises is reported as a batch item failure."""
    channel: Channel = notifier.channel
    notifier.begin(context)
    summary = NotifySummary()

    def notify(record: SqsMessage) -> None:
        outcome, kind = notifier.handle(request_of(record))
        summary.outcomes[outcome.value] += 1
        if kind is not None:
            summary.kinds[kind] += 1

    response, records = each_message(event, _counted(notify, summary.errors))
    prefix = METRIC_PREFIX[channel]
    count_by(f"{prefix}Notifications", "outcome", summary.outcomes)
    count_by(f"{prefix}NotifyErrors", "kind", summary.errors)
    logger.info(
        f"{channel} batch",
        extra={
            "channel": channel,
            "records": records,
            "failed": len(response["batchItemFailures"]),
            **summary.as_log(),
        },
    )
    return response


def notify_handler(channel: Channel) -> Callable[[Container], Handler]:
    """The handler factory of one channel's notifier function."""

    def handler(container: Container) -> Handler:
        notifier = container.notifier(channel)

        # A batch that fails whole is reported as such rather than raised: the queue retries the
        # same records either way, and no traceback (with what it quotes) reaches the logs.
        @logger.inject_lambda_context
        # No @metrics.log_metrics: the batch's counts go out as single metrics (by outcome),
        # and an empty flush would warn on every batch.
        @tracer.capture_lambda_handler
        def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
            """Send the message each event calls for; report the records that failed."""
            return handle_batch(notifier, event, context)

        return lambda_handler

    return handler


def handle_whatsapp_events(
    service: WhatsAppEvents, event: dict[str, Any], context: LambdaContext
) -> dict[str, Any]:
    """Apply every WhatsApp event; a record that raises is reported as a batch item failure."""
    summary = EventsSummary()

    def apply(record: SqsMessage) -> None:
        summary.outcomes.update(service.handle(WhatsAppEvent.from_sns_message(record.body)))

    response, records = each_message(event, _counted(apply, summary.errors))
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
