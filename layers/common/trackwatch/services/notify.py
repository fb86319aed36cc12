"""Tell a customer about one event on one channel: once, in their language, at a decent hour,
by the channel they prefer, and by the next one if it does not deliver.

For each queue message: is this event news for the customer on this channel (the rules);
can this channel reach them (shipment, channels accepted, opt-outs including a WhatsApp
STOP, a failed address); does another channel come first (then this one waits to be asked
to take over); for a delivery check, did the first channel's message arrive; is it quiet
hours where they are (then a delayed copy goes back to the queue, and nothing is recorded
as sent); pacing (once-only kinds, older news, repeats, daily cap); render; a conditional
claim on the channel's log (an item of its own: a send never writes the shipment); the
notification record, which keeps it to one message per event and channel (written
`pending` on the condition that none is there, or that the attempt holding it died before
saying `sent`: a fallback is recorded on the same record, marked as one); for WhatsApp a
delivery check queued for the next channel; send; the record says `sent`.

A retryable provider error undoes the claim and fails the message (the queue retries it,
then its DLQ); a rejected address is recorded in the channel's memory of the shipment, the
next channel takes over, and the message succeeds. The only step between the provider
accepting a message and the record saying so is that record's own write: see
docs/architecture.md, "The delivery promise".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from trackwatch.errors import RecipientRejectedError, StaleStateError, TrackwatchError
from trackwatch.logic.addresses import e164, mailbox
from trackwatch.logic.channels import (
    next_after,
    passes_on,
    routed,
    unreachable,
    waits_for_fallback,
)
from trackwatch.logic.delivery import advance, settled, with_fallback
from trackwatch.logic.notify_rules import NotifyRules, order_news
from trackwatch.logic.pacing import Admission, admit, hold, quiet_until
from trackwatch.logic.render import Renderer, context_for, language_of
from trackwatch.models.events import OrderStatusChanged, StatusChanged, TopicEvent, is_order_event
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.notification import (
    ARRIVED,
    PHONE_CHANNELS,
    Channel,
    ContactFailure,
    Delivery,
    DeliveryState,
    Fallback,
    FallbackReason,
    Message,
    NotificationRequest,
    Outcome,
    Recipient,
)
from trackwatch.models.policy import NotifyPolicy, zone
from trackwatch.ports import (
    Deferrer,
    DeliveryLedger,
    Handover,
    RecipientStore,
    Sender,
)
from trackwatch.services.conflicts import retry_on_conflict

#: The most messages one order can send on one channel: each stage first reached and
#: reached by every box (3 x 2), and the partial delivery.
ORDER_MESSAGES_MOST = 7
#: Channels whose provider reports delivery: a message on them gets a delivery check.
REPORTING_CHANNELS: frozenset[Channel] = frozenset({"whatsapp"})
#: Channels a customer can opt out of by replying STOP (the opt-out is kept by number).
STOP_CHANNELS: tuple[Channel, ...] = ("whatsapp",)
#: Lambda's longest timeout: an attempt given no invocation's context holds its record this
#: long, as no invocation can still be running after it.
LONGEST_INVOCATION = timedelta(minutes=15)


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


@dataclass(frozen=True)
class Chain:
    """How the phone channels stand in for each other in this deployment."""

    #: The channels this deployment sends on.
    enabled: frozenset[str]
    #: How long a WhatsApp message may go unreported as delivered before SMS takes over.
    delivery_window: timedelta
    handover: Handover | None = None


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
        ledger: DeliveryLedger,
        renderer: Renderer,
        clock: Callable[[], datetime],
        chain: Chain,
    ) -> None:
        self.channel = channel
        self._rules = rules
        self._policy = policy
        self._recipients = recipients
        self._sender = sender
        self._deferrer = deferrer
        self._ledger = ledger
        self._renderer = renderer
        self._clock = clock
        self._chain = chain
        self._languages = renderer.languages(channel)
        # What this notifier reads of the channels' memory: its own log and failure, and for a
        # phone channel the other's too (which comes first, which takes over, and how recent
        # the news it told is, for a fallback).
        self._memory: tuple[Channel, ...] = (
            PHONE_CHANNELS if channel in PHONE_CHANNELS else (channel,)
        )
        if channel in PHONE_CHANNELS and chain.handover is None:
            raise ValueError(f"the {channel} notifier needs the other phone channel's queue")

    def attempt_until(self, context: Any) -> datetime:
        """Until when an invocation may still send: its Lambda timeout, on this clock."""
        remaining = timedelta(milliseconds=context.get_remaining_time_in_millis())
        return self._clock() + remaining

    def handle(
        self, request: NotificationRequest, until: datetime | None = None
    ) -> tuple[Outcome, str | None]:
        """Decide and act on one message; returns the outcome and the message kind. `until`:
        the end of the invocation (`attempt_until`; without it, Lambda's longest)."""
        event = request.event
        kind = self._rules.kind_of(event, self.channel)
        if kind is None or (is_order_event(event) and event.total < 2):
            # A lone shipment's order says nothing its own messages did not.
            return Outcome.NOT_NOTIFIED, None
        recipient = self._reached(request, kind)
        if not isinstance(recipient, Recipient):
            return recipient, kind
        now = self._clock()
        customer_zone = zone(recipient.timezone or self._policy.customer_timezone)
        # Checked before holding a message for quiet hours too: a repeat is not worth the wait.
        admission = self._admission(recipient, kind, request, now, customer_zone)
        if admission.refused is not None:
            return admission.refused, kind
        if self._held(request, kind, now, customer_zone):
            return Outcome.DEFERRED, kind
        attempt_until = until if until is not None else now + LONGEST_INVOCATION
        return self._deliver(recipient, kind, request, admission, now, attempt_until), kind

    # ------------------------------------------------------------------ deciding

    def _reached(self, request: NotificationRequest, kind: str) -> Recipient | Outcome:
        """The customer this channel tells about the event now, or why it tells no one."""
        if self._delivered_elsewhere(request):
            return Outcome.DELIVERED_ELSEWHERE
        event = request.event
        order_id = self._order_to_count(event, kind)
        recipient = self._recipient_of(event, order_id)
        if recipient is None:
            return Outcome.NO_SHIPMENT
        if order_id is not None and recipient.order_size > 1:
            # One of an order of several: the order's own message says this.
            return Outcome.ORDER_LEVEL
        recipient = self._with_stops(recipient)
        skipped = self._skipped(recipient, request, kind)
        if skipped is not None:
            self._pass_on(recipient, request)
            return skipped
        return recipient

    def _order_to_count(self, event: TopicEvent, kind: str) -> str | None:
        """The order whose size decides whether this box's own message says `kind`, or the
        order's message does (once for the siblings that reach the same stage together)."""
        if isinstance(event, StatusChanged) and self._rules.said_per_order(kind):
            return event.order_id
        return None

    def _recipient_of(self, event: TopicEvent, order_id: str | None) -> Recipient | None:
        """The shipment's customer (with `order_id`'s size, in the same read); for an order,
        the customer of its first member on file (an order's shipments are registered for
        one customer)."""
        if not is_order_event(event):
            key = ShipmentKey.of(event.cp_id, event.waybill)
            return self._recipients.recipient(key, self._memory, order_id)
        for member in event.members:
            key = ShipmentKey.of(member.cp_id, member.waybill)
            recipient = self._recipients.recipient(key, self._memory)
            if recipient is not None:
                return recipient
        return None

    def _with_stops(self, recipient: Recipient) -> Recipient:
        """The customer with their STOP replies counted as opt-outs (a phone channel's
        concern: e-mail goes besides them, whatever they do, and looks none up)."""
        ledger = self._ledger
        if self.channel not in PHONE_CHANNELS or not recipient.phone:
            return recipient
        stopped = {
            channel
            for channel in STOP_CHANNELS
            if channel in self._chain.enabled and ledger.opted_out(channel, recipient.phone)
        }
        if not stopped:
            return recipient
        return recipient.model_copy(update={"opt_out": recipient.opt_out | stopped})

    def _skipped(
        self, recipient: Recipient, request: NotificationRequest, kind: str
    ) -> Outcome | None:
        """Why this channel does not send this event (now), or None."""
        enabled = self._chain.enabled
        why = unreachable(recipient, self.channel, enabled)
        if why is not None:
            return why
        event = request.event
        if isinstance(event, OrderStatusChanged) and not order_news(
            event, kind, recipient.log(self.channel)
        ):
            # An order's count in between its first and its last is not news enough.
            return Outcome.REPEAT
        fallback = request.fallback
        if fallback is None:
            if waits_for_fallback(recipient, self.channel, enabled):
                return Outcome.STANDBY
            return None
        # Older news than the first channel has told since is not worth a fallback.
        told = recipient.log(fallback.from_channel).last_occurred_at
        if told is not None and request.event.occurred_at < told:
            return Outcome.SUPERSEDED
        return None

    def _delivered_elsewhere(self, request: NotificationRequest) -> bool:
        """Whether this is a delivery check whose first channel's message arrived. Asked
        before anything else is read: most checks end here, with one read of the record."""
        fallback = request.fallback
        if fallback is None or fallback.reason != "timeout":
            return False
        first = self._ledger.delivery(request.event.event_id, fallback.from_channel)
        return first is not None and first.state in ARRIVED

    def _pass_on(self, recipient: Recipient, request: NotificationRequest) -> None:
        """The publisher's first choice that cannot reach the customer now (a STOP reply, a
        failed number) gives the event to the next channel, which the topic did not."""
        handover = self._chain.handover
        if request.fallback is not None or handover is None:
            return
        successor = passes_on(
            recipient, self.channel, self._chain.enabled, routed(request.attributes)
        )
        if successor is not None:
            handover.pass_on(request, successor)

    def _held(
        self, request: NotificationRequest, kind: str, now: datetime, customer_zone: ZoneInfo
    ) -> bool:
        """Hold the message back for quiet hours (or a delivery check's time); whether it was."""
        bypass = self._rules.bypasses_quiet_hours(kind, self.channel)
        quiet_end = (
            None
            if bypass
            else quiet_until(
                now, customer_zone, self._policy.quiet_hours_start, self._policy.quiet_hours_end
            )
        )
        deferral = hold(now, quiet_end, request.not_before)
        if deferral is None:
            return False
        # Outside the guard: a held message is not "sent", so its return is not a repeat.
        self._deferrer.defer(request, deferral)
        return True

    def _admission(
        self,
        recipient: Recipient,
        kind: str,
        request: NotificationRequest,
        now: datetime,
        customer_zone: ZoneInfo,
    ) -> Admission:
        # An order's messages are told on one of its boxes' channel log: they count towards
        # its day, but may go beyond the cap by as many as an order can ever send.
        order_kind = self._rules.is_order_kind(kind)
        return admit(
            recipient.log(self.channel),
            kind=kind,
            once=self._rules.once(kind),
            event_id=request.event.event_id,
            occurred_at=request.event.occurred_at,
            now=now,
            today=now.astimezone(customer_zone).date(),
            repeat_window=(
                timedelta(0) if self._rules.is_order_stage(kind) else self._policy.repeat_window
            ),
            daily_cap=self._policy.daily_cap + (ORDER_MESSAGES_MOST if order_kind else 0),
        )

    # ------------------------------------------------------------------ sending

    def _deliver(
        self,
        recipient: Recipient,
        kind: str,
        request: NotificationRequest,
        admission: Admission,
        now: datetime,
        attempt_until: datetime,
    ) -> Outcome:
        """Send what `admission` let go, claimed on the channel's log and recorded first."""
        key = recipient.key
        try:
            message = self._message(recipient, kind, request)
        except RecipientRejectedError as exc:
            self._reject(recipient, request, exc, now)
            return Outcome.REJECTED
        seen = recipient.log(self.channel)
        claimed = admission.log

        def unclaim() -> None:
            if claimed != seen:
                self._recipients.release(key, self.channel, claimed, seen)

        if claimed != seen:
            # Conditional: of two messages racing for one shipment, one retries and re-decides.
            self._recipients.claim(key, self.channel, seen, claimed)
        record: Delivery | None = None
        try:
            record = self._record(recipient, message, request, now, attempt_until)
            if record is None:
                unclaim()
                return Outcome.DUPLICATE
            provider_message_id = self._sender.send(message)
        except RecipientRejectedError as exc:
            unclaim()
            if record is not None:
                self._let_go(record, state=DeliveryState.UNDELIVERABLE, state_at=now)
            self._reject(recipient, request, exc, now)
            return Outcome.REJECTED
        except Exception:
            unclaim()
            if record is not None:
                self._let_go(record)
            raise
        # The provider took it: from here on, a crash before the record says so is the one
        # way a message goes twice (docs/architecture.md, "The delivery promise").
        self._note_sent(
            event_id=request.event.event_id, provider_message_id=provider_message_id, written=record
        )
        return Outcome.SENT if request.fallback is None else Outcome.FALLBACK_SENT

    def _record(
        self,
        recipient: Recipient,
        message: Message,
        request: NotificationRequest,
        now: datetime,
        attempt_until: datetime,
    ) -> Delivery | None:
        """Before the provider is called: the notification record (this attempt's), the note
        on the channel this one takes over from, and for a reporting channel the next
        channel's delivery check. None if this event already went on this channel, either
        way (as first choice, or as a fallback): one message per event and channel."""
        event = request.event
        mine = Delivery(
            event_id=event.event_id,
            channel=self.channel,
            key=recipient.key,
            kind=message.kind,
            language=message.language,
            event=event,
            state_at=now,
            fallback_of=request.fallback,
        )
        recorded = self._ledger.begin(mine, attempt_until)
        if settled(recorded, mine):
            return None
        if request.fallback is not None:
            self._note_fallback(event.event_id, request.fallback, now)
        handover = self._chain.handover
        successor = next_after(recipient, self.channel, self._chain.enabled)
        if self.channel in REPORTING_CHANNELS and successor is not None and handover is not None:
            # Queued before sending: if this message never arrives (or never goes), the
            # next channel still asks after the window.
            handover.hand_over(
                event,
                successor,
                Fallback(from_channel=self.channel, reason="timeout"),
                not_before=now + self._chain.delivery_window,
            )
        return recorded

    def _let_go(self, record: Delivery, **changes: Any) -> None:
        """This attempt holds `record` no longer (`attempt_until` cleared, `changes` made),
        so a retry need not wait for this invocation's time. Best effort: if the write fails,
        the record stays held and a retry waits for that time instead.

        After a failed send (the provider did not take the message) the queue's retry then
        sends at once; after a refusal for the recipient's own reason, the record says
        `undeliverable` rather than `pending`, which told an operator nothing."""
        try:
            self._ledger.update(
                record.model_copy(
                    update={**changes, "attempt_until": None, "version": record.version + 1}
                )
            )
        except TrackwatchError:
            return

    def _reject(
        self,
        recipient: Recipient,
        request: NotificationRequest,
        exc: RecipientRejectedError,
        now: datetime,
    ) -> None:
        """The address cannot be reached on this channel: remember it, and hand the message
        to the next channel if there is one."""
        self._recipients.record_failure(
            recipient.key, self.channel, ContactFailure(reason=exc.reason, at=now)
        )
        handover = self._chain.handover
        if handover is None:
            return
        successor = next_after(recipient, self.channel, self._chain.enabled)
        if successor is not None:
            reason: FallbackReason = "undeliverable"
            handover.hand_over(
                request.event, successor, Fallback(from_channel=self.channel, reason=reason)
            )

    def _note_fallback(self, event_id: str, fallback: Fallback, now: datetime) -> None:
        """Note on the first channel's record that this one took over, and why."""
        ledger = self._ledger

        def attempt(_: int) -> None:
            first = ledger.delivery(event_id, fallback.from_channel)
            if first is None or first.fallback is not None:
                return
            noted = with_fallback(first, self.channel, fallback.reason, now)
            ledger.update(noted.model_copy(update={"version": first.version + 1}))

        retry_on_conflict(attempt, event_id)

    def _note_sent(
        self, *, event_id: str, provider_message_id: str | None, written: Delivery
    ) -> None:
        """The provider took the message: at least `sent` on the record, and its id. Until
        this write (or a report) the record is `pending`, and a retry after this attempt's
        time would send again.

        `written` is the record as it stood before the send: the first attempt writes on
        the condition that it is still so (a report that came in between, or a note of a
        fallback, makes it re-read), which spares a read of the record per message."""
        ledger = self._ledger

        def attempt(n: int) -> None:
            record = written if n == 0 else ledger.delivery(event_id, self.channel)
            if record is None:
                return
            state = advance(record.state, DeliveryState.SENT)
            if state == record.state and record.provider_message_id:
                return
            ledger.update(
                record.model_copy(
                    update={
                        "state": state,
                        "state_at": self._clock() if state != record.state else record.state_at,
                        "provider_message_id": record.provider_message_id or provider_message_id,
                        "version": record.version + 1,
                    }
                )
            )

        try:
            retry_on_conflict(attempt, event_id)
        except StaleStateError:
            # Lost every race for the record to reports and notes (which a sent message
            # causes): the message went. Left `pending`, the record would let this event go
            # again only if it came back after this attempt's time, as after a crash.
            return

    def _message(self, recipient: Recipient, kind: str, request: NotificationRequest) -> Message:
        address = recipient.address(self.channel) or ""
        to = (
            mailbox(address)
            if self.channel == "email"
            else e164(address, self._policy.default_phone_region)
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
            kind=kind,
            language=language,
            dlt_template_id=text.dlt_template_id,
            encoding=text.encoding,
            segments=text.segments,
            whatsapp=text.whatsapp,
            fallback=request.fallback,
        )
