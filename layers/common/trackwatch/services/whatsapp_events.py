"""The WhatsApp events consumer: Meta's reports on our messages, and customers' replies.

A status report (sent, delivered, read, failed) moves the notification record of its event
forward (logic/delivery.py); one that says the message will not arrive hands the event to
the next channel (the SMS notifier sends it in its place, once, and notes why on both
records), and one that says the number is not on WhatsApp also records that on the
shipment, so later messages go by SMS first. A reply that is only "STOP" (or another
opt-out keyword of the registry) opts that number out of WhatsApp.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from trackwatch.logic.delivery import (
    apply_report,
    event_of_callback,
    is_opt_out,
    state_of_report,
)
from trackwatch.models.notification import Channel, ContactFailure, DeliveryState, Fallback
from trackwatch.models.whatsapp import InboundMessage, StatusReport, WhatsAppEvent
from trackwatch.ports import DeliveryLedger, Handover, RecipientStore
from trackwatch.services.conflicts import retry_on_conflict

#: The channel that takes over from WhatsApp (its notifier decides whether it can).
NEXT_CHANNEL: Channel = "sms"


@dataclass
class EventsSummary:
    """What one batch did, by outcome; no personal data."""

    outcomes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def as_log(self) -> dict[str, object]:
        """The batch's summary log line."""
        return {"outcomes": dict(self.outcomes), "errors": dict(self.errors)}


class WhatsAppEvents:
    """Applies End User Messaging Social's events to the notification records."""

    def __init__(
        self,
        *,
        ledger: DeliveryLedger,
        handover: Handover,
        recipients: RecipientStore,
        opt_out_keywords: frozenset[str],
        clock: Callable[[], datetime],
    ) -> None:
        self._ledger = ledger
        self._handover = handover
        self._recipients = recipients
        self._keywords = opt_out_keywords
        self._clock = clock

    def handle(self, event: WhatsAppEvent) -> Counter[str]:
        """Apply every report and reply in one event; outcomes by name."""
        outcomes: Counter[str] = Counter()
        for report in event.statuses:
            outcomes[self.report(report)] += 1
        for message in event.messages:
            outcomes[self.reply(message)] += 1
        return outcomes

    def report(self, report: StatusReport) -> str:
        """Apply one status report; what it did."""
        event_id = event_of_callback(report.biz_opaque_callback_data)
        if event_id is None:
            return "not_ours"
        reported = state_of_report(report.status, report.error_codes)
        if reported is None:
            return "unknown_status"

        def attempt(_: int) -> str:
            record = self._ledger.delivery(event_id, "whatsapp")
            if record is None:
                # Records are written before sending: only one past its expiry gets here.
                return "unknown_message"
            updated, reason = apply_report(
                record,
                reported,
                provider_message_id=report.id,
                error_code=report.error_codes[0] if report.error_codes else None,
                at=report.timestamp,
                # A WhatsApp message that itself stood in for an SMS hands nothing back.
                next_channel_open=record.fallback_of is None,
            )
            if reason is not None:
                # Before the record: if we die in between, the report comes again and the
                # fallback's notification record on SMS keeps it to one message.
                self._handover.hand_over(
                    record.event, NEXT_CHANNEL, Fallback(from_channel="whatsapp", reason=reason)
                )
            if updated.state is DeliveryState.UNDELIVERABLE and record.state != updated.state:
                self._recipients.record_failure(
                    record.key,
                    "whatsapp",
                    ContactFailure(reason=f"whatsapp_{updated.error_code}", at=report.timestamp),
                )
            if updated == record:
                return "unchanged"
            self._ledger.update(updated.model_copy(update={"version": record.version + 1}))
            return f"fallback_{reason}" if reason else updated.state.value

        return retry_on_conflict(attempt, event_id)

    def reply(self, message: InboundMessage) -> str:
        """Apply one customer message; what it did."""
        if not is_opt_out(message.words, self._keywords):
            return "reply_ignored"
        self._ledger.opt_out("whatsapp", message.phone, message.timestamp)
        return "opted_out"
