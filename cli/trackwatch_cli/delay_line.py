"""Delayed SQS messages held by the local runtime, not by the emulator.

A notifier delays a message (SendMessage's DelaySeconds) for quiet hours or for
WhatsApp's delivery window: at a user's scale that is one message per shipment, held
for a whole simulated cycle. moto keeps a delayed message in its queue, and its work on
that queue (every receive, send, delete and attribute read) grows with every message
held there, delayed or not (`event_sources`): 2,000 delayed fallbacks on the SMS queue
made each of its receives walk 2,000 messages, many times over. So the functions' SQS
client hands a delayed message to this line instead; the line sends it to its queue,
undelayed, when its delay has passed in real time (as the emulator would release it) or
when the runtime releases delayed messages early (`LocalStack.release_delayed`: the
simulated clock moved), as fast as the queue takes them.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from trackwatch.adapters.aws import AwsClients

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True)
class _Held:
    due: float
    request: dict[str, Any]


#: SendMessageBatch takes at most this many entries.
_BATCH = 10


def _unlimited(_queue_url: str) -> int:
    return 1 << 30


class DelayLine:
    """Delayed sends, in the order they were made, until due or released; then sent to their
    queues as fast as the queues take them.

    A release can make thousands of messages due at once (quiet hours ending for every
    customer, each cycle's delivery checks), and moto's work on a queue grows with every
    message in it: sending them all at once made each send, and then each receive, walk
    the whole queue. So a message made due waits here until its queue has room (`room`:
    how many more it may take now, the runtime's backlog limit less the messages it
    holds), and goes in batches of ten. The runtime is not quiet while any is waiting.
    """

    def __init__(self, sqs: SQSClient, room: Callable[[str], int] = _unlimited) -> None:
        self._sqs = sqs
        self._room = room
        self._held: list[_Held] = []
        #: Per queue, the messages due and not yet sent, oldest first.
        self._due: dict[str, deque[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._pumping = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._held) + sum(len(q) for q in self._due.values())

    @property
    def waiting(self) -> int:
        """Messages due and not yet sent (their queue was full)."""
        with self._lock:
            return sum(len(q) for q in self._due.values())

    def hold(self, request: dict[str, Any]) -> dict[str, Any]:
        """Keep a SendMessage request with a delay; answer as SendMessage would."""
        delay_s = int(request.pop("DelaySeconds"))
        with self._lock:
            self._held.append(_Held(time.monotonic() + delay_s, request))
        body = str(request["MessageBody"])
        return {
            "MessageId": str(uuid.uuid4()),
            "MD5OfMessageBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        }

    def release(self, *, due_only: bool = False) -> int:
        """Make the held messages due (with `due_only`, those whose delay has passed) and
        send what their queues take now; returns how many were made due."""
        now = time.monotonic()
        with self._lock:
            going = [h for h in self._held if not due_only or h.due <= now]
            self._held = [h for h in self._held if due_only and h.due > now]
            for held in going:
                self._due.setdefault(str(held.request["QueueUrl"]), deque()).append(held.request)
        self.pump()
        return len(going)

    def pump(self) -> int:
        """Send the due messages their queues have room for; returns how many were sent.
        One pump at a time (the monitor's thread and the runtime's both call it)."""
        if not self._pumping.acquire(blocking=False):
            return 0
        try:
            sent = 0
            with self._lock:
                queues = [url for url, waiting in self._due.items() if waiting]
            for url in queues:
                sent += self._send(url, self._room(url))
            return sent
        finally:
            self._pumping.release()

    def _send(self, url: str, room: int) -> int:
        with self._lock:
            waiting = self._due[url]
            taken = [waiting.popleft() for _ in range(min(room, len(waiting)))]
        for start in range(0, len(taken), _BATCH):
            chunk = taken[start : start + _BATCH]
            entries = [
                {"Id": str(i), **{k: v for k, v in request.items() if k != "QueueUrl"}}
                for i, request in enumerate(chunk)
            ]
            answer = self._sqs.send_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]
            failed = [chunk[int(f["Id"])] for f in answer.get("Failed", [])]
            if failed:
                # Kept, first in line: the next pump sends them again.
                with self._lock:
                    self._due[url].extendleft(reversed(failed))
                return start + len(chunk) - len(failed)
        return len(taken)


class _DelayingSqs:
    """An SQS client whose delayed sends go to a delay line; everything else as is."""

    def __init__(self, client: SQSClient, line: DelayLine) -> None:
        self._client = client
        self._line = line

    def send_message(self, **request: Any) -> dict[str, Any]:
        """SendMessage; a delayed one is held by the line."""
        if int(request.get("DelaySeconds") or 0) > 0:
            return self._line.hold(request)
        return cast(dict[str, Any], self._client.send_message(**request))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class DelayingClients(AwsClients):
    """The runtime's clients for the functions: the same clients (one session, each built
    once), but SQS hands delayed messages to `line`."""

    def __init__(self, base: AwsClients, line: DelayLine) -> None:
        # No session of its own: every client is the base's, taken now (building two at
        # once from one session, as the functions' threads would, is not safe).
        self.region = base.region
        self.endpoint_url = base.endpoint_url
        self._base = base
        for name in ("dynamodb", "sns", "ses", "secretsmanager", "sms_voice", "socialmessaging"):
            self.__dict__[name] = getattr(base, name)
        self.__dict__["sqs"] = _DelayingSqs(base.sqs, line)

    def client(self, service: str, endpoint_url: str | None = None) -> Any:
        """The base's."""
        return self._base.client(service, endpoint_url)
