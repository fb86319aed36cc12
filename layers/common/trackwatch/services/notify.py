"""Tell a customer about one event on one channel: once, in their language, at a decent hour.

For each queue message: is this event news for the customer on this channel
(the rules); can we reach them (shipment, opt-out, a failed address); is it quiet
hours where they are (then a delayed copy goes back to the queue, and nothing is
recorded as sent); then, at most once per event and channel (the idempotency
guard): pacing (once-only kinds, older news, repeats, daily cap), a conditional
claim on the shipment's channel log, render, send. A retryable provider error
undoes the claim and fails the message (the queue retries it, then its DLQ); a
rejected address is recorded on the shipment and the message succeeds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from trackwatch.errors import RecipientRejectedError
from trackwatch.logic.addresses import e164, mailbox
from trackwatch.logic.notify_rules import NotifyRules
from trackwatch.logic.pacing import Admission, admit, hold, quiet_until
from trackwatch.logic.render import Renderer, context_for, language_of
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.notification import (
    Channel,
    ContactFailure,
    Message,
    NotificationRequest,
    Outcome,
    Recipient,
)
from trackwatch.models.policy import NotifyPolicy, zone
from trackwatch.ports import Deferrer, OnceGuard, RecipientStore, Sender


@dataclass
class NotifySummary:
    """What one batch did: outcomes by kind of result, and the errors that failed records."""

    outcomes: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def as_log(self) -> dict[str, object]:
        """The batch's summary log line (no personal data)."""
        return {
            "outcomes": dict(self.outcomes),
            "kinds": dict(self.kinds),
            "errors": dict(self.errors),
        }


class Notifier:
    """One channel's notifier, over its ports."""

    def __init__(
        self,
        channel: Channel,
        *,
        rules: NotifyRules,
        policy: NotifyPolicy,
        recipients: RecipientStore,
        sender: Sender,
        deferrer: Deferrer,
        guard: OnceGuard,
        renderer: Renderer,
        clock: Callable[[], datetime],
    ) -> None:
        self.channel = channel
        self._rules = rules
        self._policy = policy
        self._recipients = recipients
        self._sender = sender
        self._deferrer = deferrer
        self._guard = guard
        self._renderer = renderer
        self._clock = clock
        self._languages = renderer.languages(channel)

    def begin(self, context: Any) -> None:
        """An invocation starts (Lambda's context: what is in progress expires with it)."""
        self._guard.begin(context)

    def handle(self, request: NotificationRequest) -> tuple[Outcome, str | None]:
        """Decide and act on one message; returns the outcome and the message kind."""
        event = request.event
        kind = self._rules.kind_of(event, self.channel)
        if kind is None:
            return Outcome.NOT_NOTIFIED, None
        recipient = self._recipients.recipient(ShipmentKey.of(event.cp_id, event.waybill))
        if recipient is None:
            return Outcome.NO_SHIPMENT, kind
        unreachable = self._unreachable(recipient)
        if unreachable is not None:
            return unreachable, kind
        now = self._clock()
        customer_zone = zone(recipient.timezone or self._policy.customer_timezone)
        # Checked before holding a message for quiet hours too: a repeat is not worth the wait.
        refused = self._admission(recipient, kind, request, now, customer_zone).refused
        if refused is not None:
            return refused, kind
        if not self._rules.bypasses_quiet_hours(kind, self.channel):
            quiet_end = quiet_until(
                now, customer_zone, self._policy.quiet_hours_start, self._policy.quiet_hours_end
            )
            deferral = hold(now, quiet_end, request.not_before)
            if deferral is not None:
                # Outside the guard: a held message is not "sent", so its return is not a repeat.
                self._deferrer.defer(request, deferral)
                return Outcome.DEFERRED, kind

        ran = False

        def deliver() -> str:
            nonlocal ran
            ran = True
            return self._deliver(recipient, kind, request, now, customer_zone).value

        result = self._guard.once(event.event_id, self.channel, deliver)
        return (Outcome(result) if ran else Outcome.DUPLICATE), kind

    def _unreachable(self, recipient: Recipient) -> Outcome | None:
        if self.channel in recipient.opt_out:
            return Outcome.OPTED_OUT
        if self.channel in recipient.failures:
            return Outcome.ADDRESS_FAILED
        if not recipient.address(self.channel):
            return Outcome.NO_ADDRESS
        return None

    def _admission(
        self,
        recipient: Recipient,
        kind: str,
        request: NotificationRequest,
        now: datetime,
        customer_zone: ZoneInfo,
    ) -> Admission:
        return admit(
            recipient.log(self.channel),
            kind=kind,
            once=self._rules.once(kind),
            event_id=request.event.event_id,
            occurred_at=request.event.occurred_at,
            now=now,
            today=now.astimezone(customer_zone).date(),
            repeat_window=self._policy.repeat_window,
            daily_cap=self._policy.daily_cap,
        )

    def _deliver(
        self,
        recipient: Recipient,
        kind: str,
        request: NotificationRequest,
        now: datetime,
        customer_zone: ZoneInfo,
    ) -> Outcome:
        admission = self._admission(recipient, kind, request, now, customer_zone)
        if admission.refused is not None:
            return admission.refused
        key = recipient.key
        try:
            message = self._message(recipient, kind, request)
        except RecipientRejectedError as exc:
            self._recipients.record_failure(
                key, self.channel, ContactFailure(reason=exc.reason, at=now)
            )
            return Outcome.REJECTED
        seen = recipient.log(self.channel)
        claimed = admission.log
        if claimed != seen:
            # Conditional: of two messages racing for one shipment, one retries and re-decides.
            self._recipients.claim(key, self.channel, seen, claimed)
        try:
            self._sender.send(message)
        except RecipientRejectedError as exc:
            self._recipients.release(key, self.channel, claimed, seen)
            self._recipients.record_failure(
                key, self.channel, ContactFailure(reason=exc.reason, at=now)
            )
            return Outcome.REJECTED
        except Exception:
            self._recipients.release(key, self.channel, claimed, seen)
            raise
        return Outcome.SENT

    def _message(self, recipient: Recipient, kind: str, request: NotificationRequest) -> Message:
        address = recipient.address(self.channel) or ""
        to = (
            e164(address, self._policy.default_phone_region)
            if self.channel == "sms"
            else mailbox(address)
        )
        language = language_of(recipient.language, self._languages)
        text = self._renderer.render(
            self.channel, language, context_for(request.event, kind, recipient, language)
        )
        return Message(
            channel=self.channel,
            to=to,
            subject=text.subject,
            body=text.body,
            event_id=request.event.event_id,
        )
