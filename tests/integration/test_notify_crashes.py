"""The delivery promise, measured: a crash injected at each boundary of the notify path.

A crash is the process dying: a BaseException that no `except Exception` catches, so a
notification record written by the dead invocation stays `pending` (held by it until its
Lambda timeout), the batch is neither reported nor deleted, and the queue hands the message
out again after its visibility timeout (played here by making it visible and letting the
dead invocation's time run out). Every case runs one event for a customer whose WhatsApp
messages fail: a WhatsApp message, the SMS that takes over, and an e-mail.

What it shows (docs/architecture.md, "The delivery promise"):
- no message is lost, whatever the boundary;
- a message is sent twice only when the process dies after the provider accepted it and
  before the notification record says `sent`; one duplicate per such crash, on that channel;
- that window holds exactly one request: the record's own conditional PutItem.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import pytest

import trackwatch.notify_batch
import trackwatch.whatsapp_batch
from tests.integration.test_notify import Notify, notify
from tests.notify_samples import PHONE, status_changed
from trackwatch.adapters.notifications_table import NotificationsTable
from trackwatch.adapters.notify_queue import ChannelQueues
from trackwatch.adapters.notify_table import NotifyTable
from trackwatch.adapters.senders import SesEmailSender
from trackwatch.errors import StaleStateError
from trackwatch.models.notification import Channel, DeliveryState
from trackwatch.services.notify import Notifier

__all__ = ["notify"]  # the fixture, for pytest

pytestmark = pytest.mark.slow


class Killed(BaseException):
    """The process died (out of memory, a timeout, the host gone): nothing catches it."""


@dataclass(frozen=True)
class Boundary:
    """Where the crash is injected: which call, before or after it, for which channel."""

    name: str
    #: (object or class, attribute) to wrap; a callable gets the Notify for live objects.
    target: Callable[[Notify], tuple[Any, str]]
    when: str  # "before" or "after"
    #: Whether a call is on the path under test (its arguments).
    applies: Callable[..., bool]
    channel: str
    duplicates: int = 0


def _channel_of(*args: Any, **kwargs: Any) -> str | None:
    """The channel a wrapped call is about, from its arguments."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, str) and value in ("sms", "whatsapp", "email"):
            return value
        channel = getattr(value, "channel", None)
        if isinstance(channel, str):
            return channel
    return None


def on(channel: str) -> Callable[..., bool]:
    return lambda *args, **kwargs: _channel_of(*args, **kwargs) == channel


def _report_is_failure(*args: Any, **kwargs: Any) -> bool:
    """The consumer recording a failed report (not yet handed over on the record)."""
    delivery = args[-1]
    return bool(delivery.state is DeliveryState.FAILED and delivery.fallback is None)


def _noting_the_fallback(*args: Any, **kwargs: Any) -> bool:
    """The SMS notifier noting on WhatsApp's record that it took over."""
    delivery = args[-1]
    return bool(delivery.channel == "whatsapp" and delivery.fallback is not None)


def _handover_reason(*args: Any, **kwargs: Any) -> str | None:
    # hand_over(event, to_channel, fallback, not_before=None)
    fallback = args[2] if len(args) > 2 else kwargs.get("fallback")
    return None if fallback is None else str(fallback.reason)


def _timeout_check(*args: Any, **kwargs: Any) -> bool:
    return _handover_reason(*args, **kwargs) == "timeout"


def _failure_handover(*args: Any, **kwargs: Any) -> bool:
    return _handover_reason(*args, **kwargs) == "failed"


def _sender(channel: str) -> Callable[[Notify], tuple[Any, str]]:
    return lambda n: (getattr(n.local.senders, channel), "send")


def _class(cls: type, name: str) -> Callable[[Notify], tuple[Any, str]]:
    return lambda _: (cls, name)


def _batch_of(channel: str) -> Callable[..., bool]:
    return lambda notifier, *_rest, **_kw: notifier.channel == channel


def path(
    channel: str, *, sender: Callable[[Notify], tuple[Any, str]], in_window: int = 1
) -> list[Boundary]:
    """The boundaries of one notifier's path, in the order it crosses them; `in_window`: the
    duplicates a crash in the window makes on this channel."""
    return [
        Boundary(
            "before the claim on the channel's memory",
            _class(NotifyTable, "claim"),
            "before",
            on(channel),
            channel,
        ),
        Boundary(
            "before the notification record",
            _class(NotificationsTable, "begin"),
            "before",
            on(channel),
            channel,
        ),
        Boundary("before the provider is called", sender, "before", lambda *a, **k: True, channel),
        Boundary(
            "after the provider accepted, before the record says sent",
            sender,
            "after",
            lambda *a, **k: True,
            channel,
            duplicates=in_window,
        ),
        Boundary(
            "after the record says sent, before the message is deleted",
            lambda _: (trackwatch.notify_batch, "handle_batch"),
            "after",
            _batch_of(channel),
            channel,
        ),
    ]


BOUNDARIES = [
    # WhatsApp's own report of the message (here: failed) moves its record past `pending`
    # before the queue hands the message out again, which closes the window: none sent twice.
    # (A retry that came before any report would send it again, as SMS and e-mail do.)
    *path("whatsapp", sender=_sender("whatsapp"), in_window=0),
    Boundary(
        "before the delivery check is queued",
        _class(ChannelQueues, "hand_over"),
        "before",
        _timeout_check,
        "whatsapp",
    ),
    *path("sms", sender=_sender("sms")),
    Boundary(
        "before the first channel's record is noted",
        _class(NotificationsTable, "update"),
        "before",
        _noting_the_fallback,
        "sms",
    ),
    Boundary(
        "events consumer: after handing over to SMS, before the report is recorded",
        _class(NotificationsTable, "update"),
        "before",
        _report_is_failure,
        "consumer",
    ),
    Boundary(
        "events consumer: before handing over to SMS",
        _class(ChannelQueues, "hand_over"),
        "before",
        _failure_handover,
        "consumer",
    ),
    Boundary(
        "events consumer: after the batch, before its messages are deleted",
        lambda _: (trackwatch.whatsapp_batch, "handle_whatsapp_events"),
        "after",
        lambda *a, **k: True,
        "consumer",
    ),
    *path("email", sender=_class(SesEmailSender, "send")),
]


def inject(monkeypatch: pytest.MonkeyPatch, notify: Notify, boundary: Boundary) -> list[str]:
    """Wrap the boundary's call so that the first call on the path dies there; the list
    records each crash."""
    owner, name = boundary.target(notify)
    original = getattr(owner, name)
    crashed: list[str] = []
    bound = not isinstance(owner, type)
    # The local runtime works batches of one queue in threads of their own: the first call
    # on the path is chosen under a lock, so two batches crossing at once crash only one.
    chosen = threading.Lock()
    taken: list[bool] = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        call_args = args if bound else args[1:]
        with chosen:
            armed = not taken and boundary.applies(*call_args, **kwargs)
            if armed:
                taken.append(True)
        if armed and boundary.when == "before":
            crashed.append(boundary.name)
            raise Killed(boundary.name)
        result = original(*args, **kwargs)
        if armed:
            crashed.append(boundary.name)
            raise Killed(boundary.name)
        return result

    monkeypatch.setattr(owner, name, wrapper)
    return crashed


def expire_in_progress(notify: Notify) -> None:
    """Let the time of every attempt holding a record run out (move each `pending` record's
    `attempt_until` into the past), as Lambda's timeout does for a dead invocation: the
    next attempt then takes the record over."""
    dynamodb = notify.clients.dynamodb
    name = notify.stack.physical_ids["NotificationsTable"]
    table = NotificationsTable(name, dynamodb, 3600)
    for page in dynamodb.get_paginator("scan").paginate(TableName=name):
        for item in page["Items"]:
            pk = item["pk"]["S"]
            if not pk.startswith("delivery#") or item["state"]["S"] != DeliveryState.PENDING:
                continue
            event_id, channel = pk.removeprefix("delivery#").rsplit("#", 1)
            expire(table, event_id, cast(Channel, channel))


def expire(table: NotificationsTable, event_id: str, channel: Channel) -> None:
    """Expire one record's hold. The runtime's other consumers may still be at work when a
    crash surfaces (a WhatsApp report moving the same record on): a record changed meanwhile
    is read again, and left alone once it is no longer `pending`."""
    for _ in range(10):
        record = table.delivery(event_id, channel)
        assert record is not None
        if record.state != DeliveryState.PENDING:
            return
        assert record.attempt_until is not None
        try:
            table.update(
                record.model_copy(
                    update={
                        "attempt_until": record.attempt_until - timedelta(days=1),
                        "version": record.version + 1,
                    }
                )
            )
            return
        except StaleStateError:
            continue
    raise AssertionError(f"notification {event_id} on {channel} never held still")


def revive(notify: Notify) -> None:
    """After a crash: Lambda's timeout passes (the records the dead invocation held are
    free) and the visibility timeout with it (the unfinished batch is visible again).
    The invocations still running when the crash surfaced finish first: a batch made
    visible under a running one would be worked twice at once, which Lambda never does."""
    activity = notify.runtime.activity
    assert activity.wait(lambda: activity.in_flight == 0, 60), "invocations never ended"
    expire_in_progress(notify)
    for logical_id in ("WhatsAppQueue", "SmsQueue", "EmailQueue", "WhatsAppEventsQueue"):
        for message in notify.queue(logical_id)._messages:
            if not message.visible:
                message.visible_at = 0


def run_until_settled(notify: Notify) -> int:
    """Settle, reviving after each crash; the crashes seen."""
    crashes = 0
    for _ in range(20):
        try:
            notify.settle()
            notify.later(timedelta(minutes=31))
            return crashes
        except Killed:
            crashes += 1
            revive(notify)
    raise AssertionError("the stack never settled")


def sent(notify: Notify) -> dict[str, int]:
    return {
        "whatsapp": len(notify.whatsapp()),
        "sms": len(notify.sms()),
        "email": len(notify.emails()),
    }


@pytest.mark.parametrize("boundary", BOUNDARIES, ids=lambda b: f"{b.channel}: {b.name}")
def test_a_crash_at_each_boundary_loses_nothing_and_duplicates_only_in_the_window(
    notify: Notify, monkeypatch: pytest.MonkeyPatch, boundary: Boundary
) -> None:
    # Given a customer whose WhatsApp messages fail, and a crash waiting at the boundary
    notify.local.senders.whatsapp.outcome(PHONE, "failed")
    notify.shipment()
    crashed = inject(monkeypatch, notify, boundary)
    notify.publish(status_changed(6))

    # When the stack runs to the end, retrying whatever died
    crashes = run_until_settled(notify)

    # Then the crash happened once, nothing was lost, and duplicates only where stated
    assert crashed == [boundary.name]
    assert crashes == 1
    expected = {"whatsapp": 1, "sms": 1, "email": 1}
    if boundary.channel in expected:
        expected[boundary.channel] += boundary.duplicates
    assert sent(notify) == expected
    assert notify.runtime.crashes == []
    for name, url in notify.stack.outputs.items():
        if name.endswith("DeadLetterQueueUrl"):
            depth = notify.clients.sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
            assert depth == "0", name


def test_three_crashes_in_the_window_are_three_duplicates(
    notify: Notify, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an SMS customer, and a process that dies after each of the first three sends
    notify.shipment(channels=["sms"])
    sender = notify.local.senders.sms
    original = sender.send
    deaths = iter(range(3))

    def send_then_die(message: Any) -> Any:
        answer = original(message)
        if next(deaths, None) is not None:
            raise Killed("after the provider accepted")
        return answer

    monkeypatch.setattr(sender, "send", send_then_die)
    notify.publish(status_changed(6))

    # When
    crashes = run_until_settled(notify)

    # Then the promise as stated: one message, plus one per crash in the window
    assert crashes == 3
    assert len(notify.sms()) == 1 + 3


def test_the_window_is_one_request_long(notify: Notify, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given every AWS request counted, per thread (the runtime invokes functions side by
    # side, and a window is one invocation's), from the moment a provider accepts a message
    notify.local.senders.whatsapp.outcome(PHONE, "failed")
    notify.shipment()
    requests: dict[int, list[str]] = {}
    window: list[list[str]] = []
    clients = notify.clients

    def count(event_name: str, parsed: dict[str, Any], **_: Any) -> None:
        mine = requests.get(threading.get_ident())
        if mine is not None:
            error = parsed.get("Error", {}).get("Code")
            name = event_name.removeprefix("after-call.")
            mine.append(f"{name}: {error}" if error else name)

    for client in (clients.dynamodb, clients.sqs, clients.sns):
        client.meta.events.register("after-call", count)
    for channel in ("whatsapp", "sms"):
        sender = getattr(notify.local.senders, channel)
        original = sender.send

        def send(message: Any, original: Any = original) -> Any:
            answer = original(message)
            requests[threading.get_ident()] = []
            return answer

        monkeypatch.setattr(sender, "send", send)
    note_sent = Notifier._note_sent

    def noted(self: Notifier, **kwargs: Any) -> None:
        note_sent(self, **kwargs)
        mine = requests.pop(threading.get_ident(), None)
        if mine is not None:
            window.append(mine)

    monkeypatch.setattr(Notifier, "_note_sent", noted)
    notify.publish(status_changed(6))

    # When
    notify.settle()
    notify.later(timedelta(minutes=31))

    # Then between the provider's acceptance and the record saying `sent`, for the WhatsApp
    # message and the SMS that took over: the record's conditional PutItem, nothing else.
    # Unless WhatsApp's own report reached the record first (the runtime works its events
    # queue side by side): that report closed the window, the put's condition fails, and
    # the one read after it finds the record past `pending` and writes nothing.
    lost_to_the_report = ["dynamodb.PutItem: ConditionalCheckFailedException", "dynamodb.GetItem"]
    assert len(window) == 2
    assert all(w in (["dynamodb.PutItem"], lost_to_the_report) for w in window)
    assert ["dynamodb.PutItem"] in window  # the SMS's: no report comes for it
