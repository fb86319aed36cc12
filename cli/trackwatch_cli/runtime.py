"""Run the deployed functions in-process, with the event shapes Lambda would give them.

`LocalRuntime` plays the part of the Lambda service for a stack created by
`trackwatch_cli.stack.deploy`. Each function runs in *execution environments*, as
Lambda's do: an environment is a container built from the environment the template
gives that function, the emulator's clients and the runtime's clock (nothing passes
through the process's environment), and the handler made over it. An environment runs
one invocation at a time; invocations that overlap get more environments, built on
demand as cold starts are. Environments are threads of this process, so what a real
environment keeps to itself (standard output, powertools' metric set, the logger's
keys) is made per thread (`isolation.py`).

It invokes the dispatcher as its schedule would; works each SQS event source with as
many concurrent invocations as the mapping's `MaximumConcurrency` allows (or the local
cap where the template sets none), deleting successes and making failures visible
again for redrive; and reads the table's stream, delivering batches in order
(retrying from the first failed record, then sending the batch's metadata to the
on-failure queue). `start()` keeps every source worked in the background,
`wait_until_quiet()` tells when everything has been delivered (`event_sources.py`),
and `settle()` does both and stops.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import ModuleType
from typing import IO, Any

import httpx

from trackwatch.adapters.aws import AwsClients
from trackwatch.bootstrap import Clock, Container, Handler, Overrides, bootstrap, utc_now
from trackwatch.config import Settings
from trackwatch_cli.delay_line import DelayingClients, DelayLine
from trackwatch_cli.environment import STREAM_RECORDS_PATH, EmulatorError, stream_records
from trackwatch_cli.event_sources import (
    BACKLOG_LIMIT,
    LONG_POLL_S,
    Activity,
    DepthMonitor,
    Poller,
    QueuePoller,
    SourceState,
    StreamPoller,
    busy_summary,
    queue_name,
    settled_streams,
)
from trackwatch_cli.isolation import isolate_logger_keys, isolate_metrics, routed_stdout
from trackwatch_cli.stack import DeployedStack, EventSource, FunctionSpec

#: How often a failing stream batch is retried before it goes to the failure queue.
STREAM_RETRIES = 3
#: Concurrent invocations of a mapping whose template sets no MaximumConcurrency (Lambda
#: would scale it to the account's limit; a laptop has two to eight cores).
LOCAL_CONCURRENCY = 4
#: Without real-time waits: how long a poller rests after an empty short poll.
SHORT_POLL_IDLE_S = 0.02


@dataclass
class LambdaContext:
    """The parts of Lambda's context object that powertools reads."""

    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = ""
    function_version: str = "$LATEST"
    timeout_s: int = 60

    def get_remaining_time_in_millis(self) -> int:
        """Lambda's remaining time; the local runtime never cuts a handler short."""
        return self.timeout_s * 1000


def load_handler_factory(spec: FunctionSpec) -> Callable[[Container], Handler]:
    """The `handler(container)` factory of the function's module (the template names the
    module; Lambda itself calls its `lambda_handler`, which builds from the environment)."""
    module_name, _, _attribute = spec.handler.rpartition(".")
    path = spec.code_dir / f"{module_name.replace('.', '/')}.py"
    module_spec = importlib.util.spec_from_file_location(
        f"trackwatch_function_{spec.logical_id}", path
    )
    if module_spec is None or module_spec.loader is None:
        raise FileNotFoundError(f"handler module {path} for {spec.logical_id} not found")
    module: ModuleType = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    factory: Callable[[Container], Handler] = module.handler
    return factory


@dataclass
class Invocation:
    """One handler run, for the timeline."""

    function: str
    records: int
    failed: int
    result: Any
    #: The event it was given (the runtime does not keep it; `on_invoke` may look).
    event: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Environment:
    """One execution environment: a container and the handler made over it."""

    container: Container
    handler: Handler


class EnvironmentPool:
    """A function's environments: an idle one for each invocation, a new one when none is."""

    def __init__(self, build: Callable[[int], Environment]) -> None:
        """`build(n)` makes the function's n-th environment (from 0)."""
        self._build = build
        self._idle: list[Environment] = []
        self._lock = threading.Lock()
        self.created = 0

    def checkout(self) -> Environment:
        """An idle environment, or a new one (a cold start)."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
            number = self.created
            self.created += 1
        return self._build(number)

    def checkin(self, environment: Environment) -> None:
        """The invocation ended; the environment waits for the next."""
        with self._lock:
            self._idle.append(environment)


@dataclass(frozen=True)
class RuntimeStatus:
    """What the runtime is doing, for a progress line."""

    invocations: dict[str, int]
    records: dict[str, int]
    running: dict[str, int]
    queue_depths: dict[str, int]
    busy: str


class StreamReader:
    """Reads a table's stream where moto keeps it (`environment.stream_records`): in this
    process when moto runs here (`mock_aws`), else from the emulator process of ours at
    `endpoint_url` (`environment.serve`).

    Not GetRecords: moto's response serializer spends milliseconds on every attribute
    value of every image, and moto's own numbers can clash (`stream_records` says how).
    """

    def __init__(self, region: str, client: httpx.Client | None) -> None:
        self._region = region
        self._client = client

    @classmethod
    def of(cls, endpoint_url: str | None, region: str) -> StreamReader:
        """The reader for the emulator at `endpoint_url` (None: moto in this process).
        Raises EmulatorError if that emulator does not serve STREAM_RECORDS_PATH."""
        if endpoint_url is None:
            return cls(region, None)
        client = httpx.Client(base_url=endpoint_url, timeout=30)
        try:
            found = client.get(STREAM_RECORDS_PATH)
            if found.status_code == 200 and found.json().get("Records") == []:
                return cls(region, client)
        except (httpx.HTTPError, ValueError):
            pass
        client.close()
        raise EmulatorError(
            f"the emulator at {endpoint_url} does not serve {STREAM_RECORDS_PATH}: the local "
            "runtime reads streams from an emulator started by trackwatch_cli.environment"
        )

    def read(self, table: str, after: int | None, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` records of `table`'s stream after sequence number `after`."""
        if self._client is None:
            return stream_records(table, self._region, after, limit)
        params = {"table": table, "region": self._region, "limit": str(limit)}
        if after is not None:
            params["after"] = str(after)
        answer = self._client.get(STREAM_RECORDS_PATH, params=params)
        answer.raise_for_status()
        records: list[dict[str, Any]] = answer.json()["Records"]
        return records


def _as_lambda_json(value: Any) -> Any:
    """`value` with every bytes value as base64 text, as in the JSON Lambda delivers."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _as_lambda_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_lambda_json(v) for v in value]
    return value


def _identifier(record: Mapping[str, Any]) -> dict[str, str]:
    """A record's id as a batch item failure names it: message id or sequence number."""
    if "messageId" in record:
        return {"itemIdentifier": record["messageId"]}
    return {"itemIdentifier": record["dynamodb"]["SequenceNumber"]}


class LocalRuntime:
    """The Lambda service, for one deployed stack, in this process."""

    def __init__(
        self,
        stack: DeployedStack,
        clients: AwsClients,
        *,
        clock: Clock = utc_now,
        settings: Mapping[str, str] | None = None,
        overrides: Mapping[str, Overrides] | None = None,
        on_invoke: Callable[[Invocation], None] | None = None,
        log: IO[str] | None = None,
        concurrency: int = LOCAL_CONCURRENCY,
        backlog_limit: int = BACKLOG_LIMIT,
        real_time_waits: bool = True,
        hold_delayed: bool = False,
    ) -> None:
        """`settings`: variables set for every function on top of its own (say, a test's
        short Clickpost budget); `overrides`: ports to use instead, by function;
        `concurrency`: invocations at once of a mapping without MaximumConcurrency;
        `real_time_waits` False: a short batch does not wait out its batching window and an
        idle queue is polled short, not long, so that `stop()` is immediate (a test harness,
        where a second per hop and per settle adds up; what is delivered is the same);
        `hold_delayed`: the functions' delayed messages wait in `delay_line` rather than
        in the emulator's queues (`trackwatch local` at scale; delay_line.py says why)."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.stack = stack
        self.clients = clients
        self.clock = clock
        self.concurrency = concurrency
        self.backlog_limit = backlog_limit
        self.real_time_waits = real_time_waits
        self._settings = dict(settings or {})
        self._overrides = dict(overrides or {})
        self._factories = {
            logical_id: load_handler_factory(spec) for logical_id, spec in stack.functions.items()
        }
        self._containers: dict[str, Container] = {}
        self._pools: dict[str, EnvironmentPool] = {}
        self._pools_lock = threading.Lock()
        self._sqs = clients.sqs
        #: Delayed messages the functions send, held here rather than in the emulator.
        self.delay_line = DelayLine(clients.sqs, room=self._room)
        self._function_clients = (
            DelayingClients(clients, self.delay_line) if hold_delayed else clients
        )
        self._stream_lock = threading.Lock()
        #: How the stream is read: moto's records, numbered as the stream's order.
        self._stream_reader = StreamReader.of(clients.endpoint_url, stack.region)
        #: Per (consumer, stream), the last sequence number that consumer read.
        self._after: dict[tuple[str, str], int] = {}
        self._on_invoke = on_invoke or (lambda _: None)
        #: Where handlers' printed output (EMF metrics, logs) goes; None leaves it on stdout.
        self._log = log
        self._stdout = routed_stdout()
        isolate_metrics()
        isolate_logger_keys()
        self.invocations: list[Invocation] = []
        #: Handlers that raised instead of returning (their whole batch failed).
        self.crashes: list[tuple[str, Exception]] = []
        #: Invocations that died (a BaseException: the process gone), not yet raised in
        #: the thread that waits on the runtime.
        self.deaths: list[BaseException] = []
        self.activity = Activity()
        self._states: dict[EventSource, SourceState] = {}
        self._pollers: list[Poller] = []
        self._stopping = threading.Event()
        self._monitor: DepthMonitor | None = None
        self._running_scope: set[str] | None = None

    # ------------------------------------------------------------------ environments

    def container(self, function: str) -> Container:
        """The container of the function's first environment, as its handler gets it."""
        with self._pools_lock:
            built = self._containers.get(function)
            if built is None:
                built = self._container(function)
                self._containers[function] = built
            return built

    def environment_of(self, function: str) -> dict[str, str]:
        """The environment the function's handlers see: the template's, and the runtime's
        settings over it."""
        return {**self.stack.functions[function].environment, **self._settings}

    def _container(self, function: str) -> Container:
        settings = Settings(self.environment_of(function))
        return bootstrap(
            settings,
            clock=self.clock,
            clients=self._function_clients,
            **self._overrides.get(function, Overrides()),
        )

    def _pool(self, function: str) -> EnvironmentPool:
        with self._pools_lock:
            pool = self._pools.get(function)
            if pool is None:
                factory = self._factories[function]

                def build(number: int) -> Environment:
                    # The first environment uses the container `container()` hands out;
                    # each later one (a concurrent invocation) is a cold start of its own.
                    container = (
                        self.container(function) if number == 0 else self._container(function)
                    )
                    return Environment(container, factory(container))

                pool = self._pools[function] = EnvironmentPool(build)
            return pool

    def environments(self, function: str) -> int:
        """How many environments the function has had (its cold starts)."""
        pool = self._pools.get(function)
        return pool.created if pool else 0

    def concurrency_of(self, source: EventSource) -> int:
        """Invocations at once for a mapping: its MaximumConcurrency, else the local cap."""
        return int(source.maximum_concurrency or self.concurrency)

    # ------------------------------------------------------------------ invoking

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Run one handler with one event, as Lambda would; safe from any thread."""
        self.activity.started(function)
        try:
            return self._call(function, event)
        finally:
            self.activity.ended(function)

    def _call(self, function: str, event: dict[str, Any]) -> Any:
        spec = self.stack.functions[function]
        context = LambdaContext(
            function_name=spec.physical_name,
            invoked_function_arn=(
                f"arn:aws:lambda:{self.stack.region}:123456789012:function:{spec.physical_name}"
            ),
            timeout_s=spec.timeout_s,
        )
        pool = self._pool(function)
        environment = pool.checkout()
        try:
            with self._stdout.into(self._log):
                result = environment.handler(event, context)
        except Exception as exc:  # Lambda turns any crash into a failed batch
            self.crashes.append((function, exc))
            result = {"batchItemFailures": [_identifier(r) for r in event.get("Records", [])]}
        finally:
            pool.checkin(environment)
        failed = len(result.get("batchItemFailures", [])) if isinstance(result, dict) else 0
        invocation = Invocation(function, len(event.get("Records", [])), failed, result, event)
        self.invocations.append(invocation)
        self._on_invoke(invocation)
        invocation.event = {}
        return result

    def tick(self, scheduled_time: datetime, **extra: Any) -> Any:
        """Invoke every scheduled function as its schedule would at `scheduled_time` (a
        schedule that is disabled, or whose rate or cron skips this minute, is not invoked:
        the dispatcher's fires every minute, a daily one once a day)."""
        results = []
        for schedule in self.stack.schedules:
            if not schedule.due_at(scheduled_time):
                continue
            event = {**schedule.input, "scheduled_time": scheduled_time.isoformat(), **extra}
            results.append(self.invoke(schedule.function, event))
        return results

    # ------------------------------------------------------------------ SQS

    def _receive(
        self, source: EventSource, wait_s: int = 0, most: int | None = None
    ) -> list[dict[str, Any]]:
        assert source.queue_url is not None
        answer = self._sqs.receive_message(
            QueueUrl=source.queue_url,
            MaxNumberOfMessages=min(10, source.batch_size, most or source.batch_size),
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = answer.get("Messages", [])  # type: ignore[assignment]
        return messages

    def _deliver_sqs(self, source: EventSource, messages: list[dict[str, Any]]) -> None:
        """Invoke the consumer with one received batch (counted as started by the caller);
        delete what succeeded, make what failed visible again."""
        assert source.queue_url is not None
        try:
            try:
                result = self._call(source.function, self.sqs_event(messages, source))
            except BaseException as death:  # the process died mid-batch
                # As in Lambda: no report, nothing deleted; the batch stays in flight until
                # its visibility timeout. The death is raised where the runtime is awaited.
                self.deaths.append(death)
                self.activity.happened()
                return
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
            done = [m for m in messages if m["MessageId"] not in failed]
            if done:
                self._sqs.delete_message_batch(
                    QueueUrl=source.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(done)
                    ],
                )
            # A failed message becomes visible again at once (not after the visibility
            # timeout), so its redrive to the dead-letter queue happens within the run.
            for message in messages:
                if message["MessageId"] in failed:
                    self._sqs.change_message_visibility(
                        QueueUrl=source.queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=0,
                    )
        finally:
            self.activity.ended(source.function)

    def _long_poll(self, source: EventSource) -> list[dict[str, Any]]:
        if self.real_time_waits:
            return self._receive(source, LONG_POLL_S)
        messages = self._receive(source)
        if not messages:
            self._stopping.wait(SHORT_POLL_IDLE_S)
        return messages

    def _receive_more(self, source: EventSource, most: int) -> list[dict[str, Any]]:
        return self._receive(source, 0, most)

    def _release(self, source: EventSource, messages: list[dict[str, Any]]) -> None:
        """Make received messages visible again at once (a poller stopping with them)."""
        assert source.queue_url is not None
        for message in messages:
            self._sqs.change_message_visibility(
                QueueUrl=source.queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=0,
            )

    def drain_queue(self, source: EventSource, *, max_batches: int = 10_000) -> int:
        """Deliver a queue's messages to its consumer, one batch at a time, until it is
        empty; returns messages."""
        delivered = 0
        for _ in range(max_batches):
            messages = self._receive(source)
            if not messages:
                break
            delivered += len(messages)
            self.activity.started(source.function)
            self._deliver_sqs(source, messages)
            self.raise_death()
        return delivered

    def raise_death(self) -> None:
        """Raise, in the caller's thread, the first invocation death not yet raised."""
        if self.deaths:
            raise self.deaths.pop(0)

    def sqs_event(
        self, messages: list[Mapping[str, Any]] | Any, source: EventSource
    ) -> dict[str, Any]:
        """The event Lambda builds from received SQS messages."""
        return {"Records": [self._sqs_record(m, source) for m in messages]}

    def _sqs_record(self, message: Mapping[str, Any], source: EventSource) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "dataType": value["DataType"],
                    "stringListValues": [],
                    "binaryListValues": [],
                }
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": source.source_arn,
            "awsRegion": self.stack.region,
        }

    # ------------------------------------------------------------------ streams

    def _read_stream(self, source: EventSource) -> list[dict[str, Any]]:
        """The next batch of the stream's records this consumer has not read, oldest first
        (each mapping reads the stream on its own: the publisher and the roll-up both read
        it)."""
        table = source.source_arn.split(":table/", 1)[1].split("/", 1)[0]
        with self._stream_lock:
            position = (source.function, source.source_arn)
            # One batch at a time: the backlog is looked at before each (event_sources).
            records = self._stream_reader.read(table, self._after.get(position), source.batch_size)
            if records:
                self._after[position] = int(records[-1]["dynamodb"]["SequenceNumber"])
        return records

    def _deliver_stream(self, source: EventSource, records: list[dict[str, Any]]) -> None:
        self._deliver_stream_batch(source, [self._stream_record(r, source) for r in records])

    def _deliver_stream_batch(self, source: EventSource, records: list[dict[str, Any]]) -> None:
        pending = records
        for _attempt in range(STREAM_RETRIES + 1):
            try:
                result = self.invoke(source.function, {"Records": pending})
            except BaseException as death:  # the process died mid-batch
                # Lambda retries a stream batch whose invocation died, records and all.
                self.deaths.append(death)
                self.activity.happened()
                continue
            failures = (result or {}).get("batchItemFailures", [])
            if not failures:
                return
            # Lambda retries from the first failed record, with everything after it.
            first = min(int(f["itemIdentifier"]) for f in failures)
            pending = [r for r in pending if int(r["dynamodb"]["SequenceNumber"]) >= first]
        self._send_to_failure_destination(source, pending)

    def _send_to_failure_destination(
        self, source: EventSource, records: list[dict[str, Any]]
    ) -> None:
        url = self.stack.outputs.get("StreamFailureQueueUrl")
        if url is None:
            return
        self._sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps(
                {
                    "requestContext": {"condition": "RetryAttemptsExhausted"},
                    "DDBStreamBatchInfo": {
                        "streamArn": source.source_arn,
                        "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                        "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                        "batchSize": len(records),
                    },
                }
            ),
        )

    def _stream_record(self, record: Mapping[str, Any], source: EventSource) -> dict[str, Any]:
        # Lambda's event is JSON: binary attributes arrive as base64 text, as here.
        dynamodb = _as_lambda_json(dict(record["dynamodb"]))
        created = dynamodb.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            dynamodb["ApproximateCreationDateTime"] = created.timestamp()
        return {
            "eventID": record.get("eventID"),
            "eventName": record.get("eventName"),
            "eventVersion": record.get("eventVersion", "1.1"),
            "eventSource": "aws:dynamodb",
            "awsRegion": self.stack.region,
            "dynamodb": dynamodb,
            "eventSourceARN": source.source_arn,
        }

    # ------------------------------------------------------------------ all together

    def _sources(self, only: Iterable[str] | None) -> list[EventSource]:
        scope = set(only) if only is not None else None
        return [s for s in self.stack.event_sources if scope is None or s.function in scope]

    def start(self, *, only: Iterable[str] | None = None, watch: Sequence[str] = ()) -> None:
        """Work every event source (of `only` those functions) in the background, as
        Lambda does, until `stop()`. `watch`: more queue URLs whose backlog holds the
        stream back (consumers outside the stack, such as the local timeline)."""
        if self._pollers:
            raise RuntimeError("the runtime's event sources are already running")
        sources = self._sources(only)
        self._running_scope = {s.function for s in sources}
        self._stopping = threading.Event()
        # boto3 builds clients lazily, and building two at once from one session is not
        # safe: build the ones every environment shares before the threads start.
        for name in ("dynamodb", "sqs", "sns", "ses", "secretsmanager"):
            getattr(self.clients, name)
        watched = {
            queue_name(s.queue_url): s.queue_url
            for s in sources
            if s.kind == "sqs" and s.queue_url and s.function not in self._upstream()
        }
        watched.update({queue_name(url): url for url in watch})
        self._monitor = DepthMonitor(
            watched,
            self._depth,
            self._stopping,
            every=lambda: self.delay_line.release(due_only=True),
        )
        self._monitor.read()
        self._monitor.start()
        self._states = {}
        for source in sources:
            if not self.real_time_waits:
                source = replace(source, batching_window_s=0.0)
            state = SourceState(source, self.concurrency_of(source))
            self._states[source] = state
            poller: Poller
            if source.kind == "sqs":
                poller = QueuePoller(
                    state,
                    self.activity,
                    self._stopping,
                    self._long_poll,
                    self._deliver_sqs,
                    self._release,
                    self._receive_more,
                )
            else:
                poller = StreamPoller(
                    state,
                    self.activity,
                    self._stopping,
                    self._read_stream,
                    self._deliver_stream,
                    self._backlog,
                )
            self._pollers.append(poller)
            poller.start()

    def _upstream(self) -> set[str]:
        """Consumers whose queues the stream does not feed (their backlog is not the
        stream's to wait for): the schedule's targets and what they enqueue for."""
        return {
            s.function
            for s in self.stack.event_sources
            if s.kind == "sqs" and s.queue_url == self.stack.outputs.get("PollQueueUrl")
        }

    def _room(self, url: str) -> int:
        """How many more messages a queue takes from the delay line now: up to the backlog
        limit, messages in flight included (a queue no poller works takes them all)."""
        if self._monitor is None or url not in self._monitor.urls:
            return 1 << 30
        return max(0, self.backlog_limit - self._depth(url)[1])

    def _depth(self, url: str) -> tuple[int, int]:
        """A queue's visible messages, and those plus the ones in flight (delayed ones are
        left out: they wait for the simulated clock, not for a consumer)."""
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        visible = int(attributes["ApproximateNumberOfMessages"])
        return visible, visible + int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0))

    def _backlog(self, fresh: bool) -> tuple[str, int] | None:
        """The fullest watched queue if over the backlog limit; `fresh`: read now (a
        publish batch fills the queues within the monitor's second)."""
        if self._monitor is None:
            return None
        if fresh:
            self._monitor.read()
        return self._monitor.over(self.backlog_limit)

    def stop(self, timeout_s: float = 1.0) -> None:
        """Stop reading event sources; wait up to `timeout_s` for the pollers (invocations
        already running finish on their own)."""
        self._stopping.set()
        deadline = time.monotonic() + timeout_s
        for poller in self._pollers:
            poller.join(max(0.0, deadline - time.monotonic()))
        if self._monitor is not None:
            self._monitor.join(max(0.0, deadline - time.monotonic()))
        self._pollers = []
        self._monitor = None
        self._running_scope = None

    @property
    def running(self) -> bool:
        """Whether `start()` is in effect."""
        return bool(self._pollers)

    def is_quiet(self) -> bool:
        """Nothing running, the stream read empty since the last activity, no message in
        any worked queue, visible or in flight (see event_sources), and none made due in the
        delay line and waiting for room in its queue."""
        # A held message whose real delay passed is the queue's now, as in the emulator.
        self.delay_line.release(due_only=True)
        if self.delay_line.waiting:
            return False
        count = self.activity.count
        if not settled_streams(self._states.values(), self.activity):
            return False
        for state in self._states.values():
            url = state.source.queue_url
            if state.source.kind == "sqs" and url is not None and self._holds_messages(url):
                return False
        return self.activity.count == count and self.activity.in_flight == 0

    def _holds_messages(self, url: str) -> bool:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        return any(int(value) for value in attributes.values())

    def wait_until_quiet(
        self, *, timeout_s: float | None = None, cancel: threading.Event | None = None
    ) -> bool:
        """Wait until every started source is drained and nothing runs; False if
        `timeout_s` passed or `cancel` was set first. An invocation that died (a
        BaseException in a handler) is raised here."""
        if not self._pollers:
            raise RuntimeError("start() the runtime's event sources first")
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        states = self._states.values()
        while True:
            self.raise_death()
            if self.activity.wait(lambda: settled_streams(states, self.activity), 0.1):
                if self.is_quiet():
                    return True
                # A message is waiting for a poller to take it: give it a moment.
                self._stopping.wait(0.02)
            if cancel is not None and cancel.is_set():
                return False
            if deadline is not None and time.monotonic() > deadline:
                return False

    def settle(self, *, only: set[str] | None = None, timeout_s: float | None = 600) -> int:
        """Work every event source (of `only` those functions) until nothing moves;
        returns the records delivered. Raises RuntimeError if that takes over `timeout_s`."""
        if self.running:
            before = sum(s.delivered for s in self._states.values())
            quiet_now = self.wait_until_quiet(timeout_s=timeout_s)
            moved = sum(s.delivered for s in self._states.values()) - before
        else:
            self.start(only=only)
            try:
                quiet_now = self.wait_until_quiet(timeout_s=timeout_s)
                moved = sum(s.delivered for s in self._states.values())
            finally:
                self.stop()
        if not quiet_now:
            raise RuntimeError(f"the stack did not settle in {timeout_s} s")
        return moved

    def status(self) -> RuntimeStatus:
        """Invocations and records by function, what runs, and the watched queues' depths."""
        invocations: dict[str, int] = {}
        records: dict[str, int] = {}
        for state in self._states.values():
            name = state.source.function
            invocations[name] = invocations.get(name, 0) + state.invocations
            records[name] = records.get(name, 0) + state.delivered
        return RuntimeStatus(
            invocations=invocations,
            records=records,
            running={k: v for k, v in self.activity.running.items() if v},
            queue_depths=dict(self._monitor.latest.depths) if self._monitor else {},
            busy=busy_summary(list(self._states.values()), self.activity),
        )
