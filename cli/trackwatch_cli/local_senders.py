"""Local sender adapters: they keep each message instead of handing it to a provider.

The local runtime and the tests use them where the emulator has no service to send through:
moto has neither End User Messaging SMS (pinpoint-sms-voice-v2) nor End User Messaging
Social (socialmessaging). Each implements trackwatch.ports.Sender.

`LocalWhatsApp` also plays Meta's part: after each message it publishes the status reports
End User Messaging Social would (sent, then delivered and read, or failed) onto the stack's
WhatsApp events topic, in the service's own envelope, so the events consumer, the
notification records and the fallback to SMS run as deployed. What a number's messages come
to is switchable per number (`outcome`); `reply` plays a customer writing back ("STOP").
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from trackwatch.errors import RecipientRejectedError
from trackwatch.logic.delivery import callback_data
from trackwatch.models.notification import Channel, Message

#: What a number's WhatsApp messages come to: delivered (then read), failed (Meta's 131049,
#: "not delivered to maintain healthy ecosystem engagement"), undeliverable (131026: not on
#: WhatsApp), or silence (no report after "sent": the delivery window runs out).
WhatsAppOutcome = Literal["read", "delivered", "failed", "undeliverable", "silent"]
WHATSAPP_OUTCOMES: tuple[WhatsAppOutcome, ...] = get_args(WhatsAppOutcome)
LOCAL_WABA = "local-waba"
LOCAL_PHONE_NUMBER_ID = "phone-number-id-00000000000000000000000000000001"
_ERRORS = {"failed": (131049, "Not delivered"), "undeliverable": (131026, "Undeliverable")}


def social_event(value: dict[str, Any], at: datetime, account: str = "123456789012") -> str:
    """An SNS message as End User Messaging Social publishes it: its envelope around Meta's
    webhook entry (a JSON string)."""
    entry = {
        "id": LOCAL_WABA,
        "changes": [
            {
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"phone_number_id": LOCAL_PHONE_NUMBER_ID},
                    **value,
                },
                "field": "messages",
            }
        ],
    }
    return json.dumps(
        {
            "context": {
                "MetaWabaIds": [{"wabaId": LOCAL_WABA}],
                "MetaPhoneNumberIds": [{"metaPhoneNumberId": LOCAL_PHONE_NUMBER_ID}],
            },
            "whatsAppWebhookEntry": json.dumps(entry),
            "aws_account_id": account,
            "message_timestamp": at.isoformat(),
            "messageId": str(uuid.uuid4()),
        }
    )


def status_event(
    message_id: str,
    status: str,
    phone: str,
    event_id: str | None,
    at: datetime,
    error_code: int | None = None,
) -> str:
    """A status report on one of our messages ("sent", "delivered", "read", "failed")."""
    report: dict[str, Any] = {
        "id": message_id,
        "status": status,
        "timestamp": str(int(at.timestamp())),
        "recipient_id": phone.lstrip("+"),
    }
    if event_id is not None:
        report["biz_opaque_callback_data"] = callback_data(event_id)
    if error_code is not None:
        report["errors"] = [{"code": error_code, "title": "error"}]
    return social_event({"statuses": [report]}, at)


def reply_event(phone: str, text: str, at: datetime) -> str:
    """A customer's text message to us."""
    message = {
        "from": phone.lstrip("+"),
        "id": f"wamid.in-{uuid.uuid4().hex[:12]}",
        "timestamp": str(int(at.timestamp())),
        "type": "text",
        "text": {"body": text},
    }
    return social_event({"messages": [message]}, at)


class RecordingSender:
    """Keeps every message it is given, in order; thread-safe. Numbers in `rejected` are
    refused as the recipient's fault (an SMS number opted out at the carrier); while
    `failure` is set, every send raises it (a provider throttling or down)."""

    def __init__(self, channel: Channel, rejected: Iterable[str] = ()) -> None:
        self.channel = channel
        self.rejected = set(rejected)
        self.failure: Exception | None = None
        self._messages: list[Message] = []
        self._lock = threading.Lock()

    def send(self, message: Message) -> str | None:
        """Keep the message; its id."""
        if self.failure is not None:
            raise self.failure
        if message.to in self.rejected:
            raise RecipientRejectedError(f"{self.channel}_local_rejected")
        with self._lock:
            self._messages.append(message)
            return f"local-{self.channel}-{len(self._messages)}"

    @property
    def messages(self) -> list[Message]:
        """Every message sent so far."""
        with self._lock:
            return list(self._messages)

    def take(self) -> list[Message]:
        """Every message kept so far, forgotten here (a long run keeps none)."""
        with self._lock:
            taken, self._messages = self._messages, []
            return taken


@dataclass(frozen=True)
class Report:
    """A status report the local WhatsApp played back (for the timeline)."""

    event_id: str
    to: str
    status: str
    error_code: int | None = None


class LocalWhatsApp(RecordingSender):
    """End User Messaging Social and Meta, locally: keeps each message and publishes its
    status reports (through `publish`, onto the WhatsApp events topic)."""

    def __init__(
        self,
        publish: Callable[[str], None] | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        default: WhatsAppOutcome = "read",
    ) -> None:
        super().__init__("whatsapp")
        #: Messages sent so far (ids count them; `take()` empties the list they are kept in).
        self._sent = 0
        self._publish = publish or (lambda _: None)
        self._clock = clock
        self.default: WhatsAppOutcome = default
        self.outcomes: dict[str, WhatsAppOutcome] = {}
        self._reports: list[Report] = []

    def outcome(self, phone: str, outcome: WhatsAppOutcome) -> None:
        """From now on, messages to `phone` come to `outcome`."""
        with self._lock:
            self.outcomes[phone] = outcome

    def send(self, message: Message) -> str | None:
        """Keep the message and play back its reports; its id (a wamid)."""
        super().send(message)
        with self._lock:
            self._sent += 1
            message_id = f"wamid.local-{self._sent}"
            outcome = self.outcomes.get(message.to, self.default)
        statuses: list[tuple[str, int | None]] = [("sent", None)]
        if outcome in ("failed", "undeliverable"):
            statuses = [("failed", _ERRORS[outcome][0])]
        elif outcome == "delivered":
            statuses.append(("delivered", None))
        elif outcome == "read":
            statuses += [("delivered", None), ("read", None)]
        for status, code in statuses:
            self._report(message_id, message, status, code)
        return message_id

    def _report(self, message_id: str, message: Message, status: str, code: int | None) -> None:
        self._publish(
            status_event(message_id, status, message.to, message.event_id, self._clock(), code)
        )
        with self._lock:
            self._reports.append(Report(message.event_id, message.to, status, code))

    def reply(self, phone: str, text: str) -> None:
        """A customer writes back."""
        self._publish(reply_event(phone, text, self._clock()))

    def take_reports(self) -> list[Report]:
        """Every report played back so far, forgotten here (a long run keeps none)."""
        with self._lock:
            taken, self._reports = self._reports, []
            return taken
