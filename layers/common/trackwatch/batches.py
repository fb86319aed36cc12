"""SQS and stream batches as the handlers read them, and Lambda's partial batch response.

What powertools' BatchProcessor and its event data classes do for these functions, without
importing them: their module brings in its asynchronous processor (asyncio), every event
source's data class and its parser's pydantic models (Kafka, CloudWatch, ...), a fifth of a
handler's cold start, for a loop of a few lines. The contract is the same: each record is
handled on its own; a record whose handler raises an Exception is reported in
`batchItemFailures` (its traceback is not logged: it can quote the record) and the others
succeed; a BaseException (the process dying) is not caught.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from trackwatch.errors import TrackwatchError


@dataclass(frozen=True)
class SqsMessage:
    """One SQS record of a Lambda event."""

    message_id: str
    body: str
    #: How many times SQS has handed this message out (1 the first time).
    receive_count: int
    #: Message attributes with a string value: name → (data type, value).
    attributes: Mapping[str, tuple[str, str]]

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> SqsMessage:
        """The message of one record of an SQS event."""
        system = record.get("attributes") or {}
        attributes = {
            name: (str(value.get("dataType", "String")), str(value["stringValue"]))
            for name, value in (record.get("messageAttributes") or {}).items()
            if value.get("stringValue") is not None
        }
        return cls(
            message_id=str(record["messageId"]),
            body=str(record.get("body") or ""),
            receive_count=int(system.get("ApproximateReceiveCount") or 1),
            attributes=attributes,
        )


def sqs_messages(event: Mapping[str, Any]) -> list[SqsMessage]:
    """Every message of an SQS event, in order."""
    return [SqsMessage.of(record) for record in records(event)]


def records(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The event's records; a ValueError if it is not a batch event."""
    found = event.get("Records")
    if not isinstance(found, list):
        raise ValueError("the event is not a batch: it has no Records")
    return found


def failures_response(failed: Iterable[str]) -> dict[str, Any]:
    """Lambda's partial batch response: the records to retry."""
    return {"batchItemFailures": [{"itemIdentifier": item} for item in failed]}


def each_message(
    event: Mapping[str, Any],
    handle: Callable[[SqsMessage], None],
    *,
    group: Callable[[SqsMessage], str] | None = None,
    workers: int = 1,
    carried: Callable[[Callable[..., list[str]]], Callable[..., list[str]]] = lambda work: work,
) -> tuple[dict[str, Any], int]:
    """Handle each message on its own; the partial batch response and how many messages.

    With `group` and `workers` > 1, messages of different groups are handled side by side in
    up to `workers` threads (a notifier's batch waits on one provider call at a time
    otherwise), and the messages of one group one after another, in the batch's order (a
    shipment's messages claim its channel log in turn instead of racing for it). A death
    (a BaseException) in any thread is raised here once the others have finished.
    `carried` wraps a thread's work in what it must carry from this thread (the trace)."""
    messages = sqs_messages(event)
    groups: dict[str, list[SqsMessage]] = {}
    if group is not None and workers > 1:
        for message in messages:
            groups.setdefault(_group_of(message, group), []).append(message)
    if len(groups) <= 1:
        # One at a time, or nothing to run side by side: in this thread.
        return failures_response(_handle_each(messages, handle)), len(messages)
    with ThreadPoolExecutor(max_workers=min(workers, len(groups))) as pool:
        work = carried(_handle_each)
        futures = [pool.submit(work, members, handle) for members in groups.values()]
        failed = {message_id for future in futures for message_id in future.result()}
    in_order = [m.message_id for m in messages if m.message_id in failed]
    return failures_response(in_order), len(messages)


def _handle_each(messages: Sequence[SqsMessage], handle: Callable[[SqsMessage], None]) -> list[str]:
    """Handle `messages` in order; the ids of those that raised an Exception."""
    failed = []
    for message in messages:
        try:
            handle(message)
        except Exception:  # each record fails alone, and SQS retries it
            failed.append(message.message_id)
    return failed


def _group_of(message: SqsMessage, group: Callable[[SqsMessage], str]) -> str:
    """The message's group; a message whose group cannot be told is a group of its own
    (its handler will say what is wrong with it)."""
    try:
        return "group:" + group(message)
    except Exception:
        return "alone:" + message.message_id


def counted(
    handle: Callable[[SqsMessage], None], errors: Counter[str]
) -> Callable[[SqsMessage], None]:
    """`handle`, counting each failure by its kind before it fails the record (from any
    thread `each_message` runs it in)."""
    lock = threading.Lock()

    def counted(record: SqsMessage) -> None:
        try:
            handle(record)
        except TrackwatchError as exc:
            with lock:
                errors[exc.kind] += 1
            raise
        except Exception as exc:
            with lock:
                errors[type(exc).__name__] += 1
            raise

    return counted
