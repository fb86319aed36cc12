"""The notifiers' handlers (SMS, WhatsApp, e-mail: they differ only in their channel): an SQS
batch in, partial failures out. The WhatsApp events consumer's is trackwatch.whatsapp_batch."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from trackwatch.batches import SqsMessage, counted, each_message
from trackwatch.bootstrap import Container, Handler
from trackwatch.models.events import TOPIC_EVENT_ADAPTER, is_order_event
from trackwatch.models.notification import (
    FALLBACK_FROM_ATTRIBUTE,
    FALLBACK_REASON_ATTRIBUTE,
    NOT_BEFORE_ATTRIBUTE,
    Channel,
    Fallback,
    NotificationRequest,
    Outcome,
)
from trackwatch.observability import count_by, logger, record_values, tracer
from trackwatch.services.notify import Notifier, NotifySummary

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# The SDK's debug logs print request parameters, and here those are phone numbers and
# e-mail addresses: whatever level the function runs at, they stay out.
for _name in ("botocore", "boto3", "urllib3"):
    logging.getLogger(_name).setLevel(max(logging.INFO, logging.getLogger(_name).level))


#: The outcomes that put a message in front of the customer (their lag is recorded).
_SENT = frozenset({Outcome.SENT, Outcome.FALLBACK_SENT})

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
        event=TOPIC_EVENT_ADAPTER.validate_json(record.body),
        not_before=datetime.fromisoformat(not_before[1]) if not_before else None,
        fallback=fallback,
        attributes=attributes,
    )


def shipment_of(record: SqsMessage) -> str:
    """Whose message a record is: its shipment ("<cp_id>#<waybill>"), or its order."""
    body = json.loads(record.body)
    if "waybill" in body:
        return f"{body['cp_id']}#{body['waybill']}"
    return f"order#{body['order_id']}"


def handle_batch(
    notifier: Notifier,
    event: dict[str, Any],
    context: LambdaContext,
    clock: Callable[[], datetime] | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Notify for every record; a record that raises is reported as a batch item failure.
    With a `clock`, each message sent records its lag from Clickpost's record time.

    Up to `workers` records are handled at once, one shipment's (or order's) in turn: a
    notifier's time is the provider's answer, and a batch handled one record after another
    waits for each in turn."""
    channel: Channel = notifier.channel
    # The messages' records are this invocation's until its time is up (a crash frees them).
    until = notifier.attempt_until(context)
    summary = NotifySummary()
    lags: dict[str, list[float]] = {}
    lock = threading.Lock()

    def notify(record: SqsMessage) -> None:
        request = request_of(record)
        outcome, kind = notifier.handle(request, until)
        event = request.event
        # An order's event sums up several scans: its lag is not one scan's.
        recorded = None if is_order_event(event) else event.recorded_at
        with lock:
            summary.outcomes[outcome.value] += 1
            if kind is not None:
                summary.kinds[kind] += 1
            if clock is not None and kind is not None and outcome in _SENT and recorded:
                lags.setdefault(kind, []).append((clock() - recorded).total_seconds())

    response, records = each_message(
        event,
        counted(notify, summary.errors),
        group=shipment_of,
        workers=workers,
        carried=tracer.carried,
    )
    prefix = METRIC_PREFIX[channel]
    count_by(f"{prefix}Notifications", "outcome", summary.outcomes)
    count_by(f"{prefix}NotifyErrors", "kind", summary.errors)
    record_values(f"{prefix}NotificationLag", "kind", lags)
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
        workers = container.settings.channels.notify_send_concurrency

        # A batch that fails whole is reported as such rather than raised: the queue retries the
        # same records either way, and no traceback (with what it quotes) reaches the logs.
        @logger.inject_lambda_context
        # No @metrics.log_metrics: the batch's counts go out as single metrics (by outcome),
        # and an empty flush would warn on every batch.
        @tracer.capture_lambda_handler
        def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
            """Send the message each event calls for; report the records that failed."""
            return handle_batch(notifier, event, context, container.clock, workers)

        return lambda_handler

    return handler
