"""Pieces of the local runtime that need no emulator: event-source concurrency, quiet
detection, where a running stack is written down, and what the summary says."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from trackwatch.adapters.aws import AwsClients
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.policy import Cadence
from trackwatch.models.record import ShipmentRecord
from trackwatch.models.state import CurrentStatus, ShipmentState
from trackwatch_cli.delay_line import DelayingClients, DelayLine
from trackwatch_cli.endpoints import (
    LocalEndpoints,
    endpoints_file,
    read_endpoints,
    remove_endpoints,
    write_endpoints,
)
from trackwatch_cli.event_sources import (
    Activity,
    QueuePoller,
    SourceState,
    StreamPoller,
    settled_streams,
)
from trackwatch_cli.stack import EventSource
from trackwatch_cli.summary import tracking

SOURCE = EventSource(
    function="NotifySmsFunction",
    kind="sqs",
    source_arn="arn:aws:sqs:us-east-1:123456789012:SmsQueue",
    batch_size=10,
    report_batch_item_failures=True,
    queue_url="http://emulator/123456789012/SmsQueue",
)


STREAM = EventSource(
    function="PublishEventsFunction",
    kind="dynamodb",
    source_arn="arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/1",
    batch_size=100,
    report_batch_item_failures=True,
)


class FakeQueue:
    """A queue of numbered messages, received ten at a time."""

    def __init__(self, messages: int) -> None:
        self.waiting = [{"MessageId": str(i)} for i in range(messages)]
        self.released: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def receive(self, source: EventSource) -> list[dict[str, Any]]:
        with self._lock:
            taken, self.waiting = self.waiting[:10], self.waiting[10:]
        if not taken:
            time.sleep(0.01)  # as a long poll would wait
        return taken

    def receive_more(self, source: EventSource, most: int) -> list[dict[str, Any]]:
        return []

    def release(self, source: EventSource, messages: list[dict[str, Any]]) -> None:
        self.released.extend(messages)


def test_a_queue_is_worked_by_as_many_invocations_at_once_as_the_mapping_allows() -> None:
    # Given a queue of 200 messages and a mapping allowed 3 invocations at once
    queue = FakeQueue(200)
    activity = Activity()
    stopping = threading.Event()
    running: list[int] = []
    peak: list[int] = [0]
    lock = threading.Lock()
    delivered: list[str] = []

    def deliver(source: EventSource, messages: list[dict[str, Any]]) -> None:
        with lock:
            running.append(1)
            peak[0] = max(peak[0], len(running))
        time.sleep(0.02)
        with lock:
            running.pop()
            delivered.extend(m["MessageId"] for m in messages)
        activity.ended(source.function)

    state = SourceState(SOURCE, concurrency=3)
    poller = QueuePoller(
        state, activity, stopping, queue.receive, deliver, queue.release, queue.receive_more
    )

    # When the poller runs until the queue is empty and nothing runs
    poller.start()
    assert activity.wait(lambda: len(delivered) == 200 and activity.in_flight == 0, 10)
    stopping.set()
    poller.join(2)

    # Then every message was delivered once, by up to three invocations at a time
    assert sorted(delivered, key=int) == [str(i) for i in range(200)]
    assert peak[0] == 3
    assert state.invocations == 20


def test_streams_are_settled_only_when_nothing_runs_and_each_read_empty_since() -> None:
    activity = Activity()
    stream = SourceState(STREAM, concurrency=1)
    queue = SourceState(SOURCE, concurrency=4)

    assert not settled_streams([stream, queue], activity)  # never read
    stream.quiet_at = activity.count
    assert settled_streams([stream, queue], activity)
    activity.started("NotifySmsFunction")
    assert not settled_streams([stream, queue], activity)  # something runs
    activity.ended("NotifySmsFunction")
    assert not settled_streams([stream, queue], activity)  # it may have written since
    stream.quiet_at = activity.count
    assert settled_streams([stream, queue], activity)


def test_the_stream_waits_while_a_queue_it_feeds_is_full_and_looks_afresh_after_each_batch() -> (
    None
):
    # Given a stream with two batches, and a fed queue that is full until one look
    records = [[{"n": 1}], [{"n": 2}], []]
    looks: list[bool] = []
    full = [("SmsQueue", 80), None]
    delivered: list[list[dict[str, Any]]] = []
    stopping = threading.Event()

    def backlog(fresh: bool) -> tuple[str, int] | None:
        looks.append(fresh)
        return full.pop(0) if full else None

    def read(source: EventSource) -> list[dict[str, Any]]:
        if not records:
            stopping.set()
            return []
        return records.pop(0)

    poller = StreamPoller(
        SourceState(STREAM, concurrency=1),
        Activity(),
        stopping,
        read,
        lambda source, batch: delivered.append(batch),
        backlog,
    )

    # When
    poller.run()

    # Then nothing was delivered while the queue was full; the depths were read afresh
    # first and after each delivery, the monitor's reading used otherwise
    assert delivered == [[{"n": 1}], [{"n": 2}]]
    assert looks[:4] == [True, False, True, True]


class FakeSqs:
    """SendMessage, kept."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_message(self, **request: Any) -> dict[str, Any]:
        self.sent.append(request)
        return {"MessageId": str(len(self.sent))}

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        assert len(Entries) <= 10
        for entry in Entries:
            self.sent.append(
                {"QueueUrl": QueueUrl, **{k: v for k, v in entry.items() if k != "Id"}}
            )
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def test_delayed_messages_wait_in_the_delay_line_until_due_or_released() -> None:
    # Given functions' clients whose delayed sends go to a delay line
    sqs = FakeSqs()
    line = DelayLine(sqs)  # type: ignore[arg-type]
    base = AwsClients.emulator("http://emulator")
    base.__dict__["sqs"] = sqs
    clients = DelayingClients(base, line)

    # When one message is sent at once, one due at once and one in 15 minutes
    clients.sqs.send_message(QueueUrl="q", MessageBody="now")
    clients.sqs.send_message(QueueUrl="q", MessageBody="soon", DelaySeconds=0)
    clients.sqs.send_message(QueueUrl="q", MessageBody="later", DelaySeconds=900)

    # Then only the delayed one is held, until released (without its delay)
    assert [r["MessageBody"] for r in sqs.sent] == ["now", "soon"]
    assert line.release(due_only=True) == 0
    assert len(line) == 1
    assert line.release() == 1
    assert sqs.sent[-1] == {"QueueUrl": "q", "MessageBody": "later"}
    assert len(line) == 0


def test_released_messages_go_as_fast_as_their_queue_takes_them_in_batches() -> None:
    # Given 25 messages held for one queue, and 3 for another, whose queues take 12 and 0 now
    sqs = FakeSqs()
    room = {"full": 12, "busy": 0}
    line = DelayLine(sqs, room=lambda url: room[url])  # type: ignore[arg-type]
    for n in range(25):
        line.hold({"QueueUrl": "full", "MessageBody": f"m{n}", "DelaySeconds": 900})
    for n in range(3):
        line.hold({"QueueUrl": "busy", "MessageBody": f"b{n}", "DelaySeconds": 900})

    # When they are released early (the simulated clock moved)
    assert line.release() == 28

    # Then each queue got what it had room for, oldest first, in batches, and the rest waits
    assert [r["MessageBody"] for r in sqs.sent] == [f"m{n}" for n in range(12)]
    assert line.waiting == 16 and len(line) == 16
    # And as the queues drain, the next pumps send the rest, in order
    room.update(full=100, busy=2)
    assert line.pump() == 15
    room.update(busy=5)
    assert line.pump() == 1
    assert line.waiting == 0
    assert [r["MessageBody"] for r in sqs.sent if r["QueueUrl"] == "full"] == [
        f"m{n}" for n in range(25)
    ]
    assert [r["MessageBody"] for r in sqs.sent if r["QueueUrl"] == "busy"] == ["b0", "b1", "b2"]
    assert all("DelaySeconds" not in r for r in sqs.sent)


def test_a_running_stack_is_found_by_its_file_while_its_process_lives(tmp_path: Path) -> None:
    # Given the endpoints a running `trackwatch local` wrote
    path = tmp_path / "state" / "local.json"
    mine = LocalEndpoints(
        emulator_url="http://127.0.0.1:4566",
        region="us-east-1",
        stack="trackwatch-local",
        api_url="http://127.0.0.1:8787",
        pid=os.getpid(),
    )
    write_endpoints(mine, path)

    # Then another command finds them, with the lines boto3 and the AWS CLI need
    assert read_endpoints(path) == mine
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:4566" in mine.export_lines()
    assert "export AWS_DEFAULT_REGION=us-east-1" in mine.export_lines()
    # and a file left by a process that is gone counts for nothing
    write_endpoints(LocalEndpoints(**{**mine.__dict__, "pid": _a_dead_pid()}), path)
    assert read_endpoints(path) is None
    # and a run removes only its own file
    remove_endpoints(path, os.getpid())
    assert path.exists()
    write_endpoints(mine, path)
    remove_endpoints(path, os.getpid())
    assert not path.exists()


def test_the_endpoints_file_is_the_variable_or_under_the_state_home() -> None:
    assert endpoints_file({"TRACKWATCH_LOCAL_FILE": "/x/y.json"}) == Path("/x/y.json")
    assert endpoints_file({"XDG_STATE_HOME": "/s"}) == Path("/s/trackwatch/local.json")


def _a_dead_pid() -> int:
    # A pid above the kernel's maximum is never a live process.
    return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1


def test_the_summary_says_until_when_a_delivered_shipment_is_in_its_grace_period() -> None:
    delivered_at = datetime(2026, 11, 27, 6, 30, tzinfo=UTC)
    record = ShipmentRecord(
        key=ShipmentKey.of(4, "AWB1"),
        version=3,
        state=ShipmentState(
            current=CurrentStatus(clickpost_status_code=8, is_terminal=True),
            terminal_at=delivered_at,
        ),
        registered_at=delivered_at - timedelta(days=2),
        due_key="grace#1#0",
    )

    # 72 hours after delivery, shown in India time
    assert tracking(record, Cadence()) == "grace period until 30 Nov 12:00"
    unknown = record.model_copy(
        update={"state": ShipmentState(invalid_since=delivered_at), "due_key": "invalid#1#0"}
    )
    assert tracking(unknown, Cadence()) == "unknown to Clickpost; retried until 04 Dec 12:00"
    stopped = record.model_copy(update={"stop_reason": "stopped by request", "due_key": None})
    assert tracking(stopped, Cadence()) == "stopped by request"
