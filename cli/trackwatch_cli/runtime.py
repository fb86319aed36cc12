"""Run the deployed functions in-process, with the event shapes Lambda would give them.

`LocalRuntime` plays the part of the Lambda service for a stack created by
`trackwatch_cli.stack.deploy`. Each function gets a container of its own, built
(on its first invocation, as Lambda would) from the environment the template gives
that function, the emulator's clients and the runtime's clock; nothing is shared
through the process's environment. It invokes the dispatcher as its schedule would,
long-polls each SQS event source and invokes its consumer with SQS batches
(deleting successes, leaving failures for redrive), and reads the table's
stream and invokes the publisher with stream batches (retrying from the first
failed record, then sending the batch's metadata to the on-failure queue).
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType
from typing import IO, Any

from trackwatch.adapters.aws import AwsClients
from trackwatch.bootstrap import Clock, Container, Handler, Overrides, bootstrap, utc_now
from trackwatch.config import Settings
from trackwatch_cli.stack import DeployedStack, EventSource, FunctionSpec

#: How often a failing stream batch is retried before it goes to the failure queue.
STREAM_RETRIES = 3


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
    ) -> None:
        """`settings`: variables set for every function on top of its own (say, a test's
        short Clickpost budget); `overrides`: ports to use instead, by function."""
        self.stack = stack
        self.clients = clients
        self.clock = clock
        self._settings = dict(settings or {})
        self._overrides = dict(overrides or {})
        self._factories = {
            logical_id: load_handler_factory(spec) for logical_id, spec in stack.functions.items()
        }
        self._containers: dict[str, Container] = {}
        self._handlers: dict[str, Handler] = {}
        self._sqs = clients.sqs
        # In-process moto answers Streams only at the classic endpoint; an emulator's own
        # endpoint (moto's server) serves every service.
        self._streams = (
            clients.client(
                "dynamodbstreams",
                endpoint_url=f"https://streams.dynamodb.{stack.region}.amazonaws.com",
            )
            if clients.endpoint_url is None
            else clients.client("dynamodbstreams")
        )
        #: (consumer, shard) → where that consumer is in that shard: each event source
        #: mapping reads the stream on its own (the publisher and the roll-up both read it).
        self._iterators: dict[tuple[str, str], str] = {}
        self._on_invoke = on_invoke or (lambda _: None)
        #: Where handlers' printed output (EMF metrics, logs) goes; None leaves it on stdout.
        self._log = log
        self.invocations: list[Invocation] = []
        # One invocation at a time: the API server's threads and the main loop share
        # the process (and redirect_stdout is process-wide).
        self._lock = threading.RLock()
        #: Handlers that raised instead of returning (their whole batch failed).
        self.crashes: list[tuple[str, Exception]] = []

    def container(self, function: str) -> Container:
        """The container of one function, as its handler gets it."""
        built = self._containers.get(function)
        if built is None:
            spec = self.stack.functions[function]
            settings = Settings({**spec.environment, **self._settings})
            built = bootstrap(
                settings,
                clock=self.clock,
                clients=self.clients,
                **self._overrides.get(function, Overrides()),
            )
            self._containers[function] = built
        return built

    def _handler(self, function: str) -> Handler:
        handler = self._handlers.get(function)
        if handler is None:
            # Built on first use, as Lambda builds it at a cold start.
            handler = self._factories[function](self.container(function))
            self._handlers[function] = handler
        return handler

    # ------------------------------------------------------------------ invoking

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Run one handler with one event, as Lambda would."""
        with self._lock:
            return self._invoke(function, event)

    def _invoke(self, function: str, event: dict[str, Any]) -> Any:
        spec = self.stack.functions[function]
        context = LambdaContext(
            function_name=spec.physical_name,
            invoked_function_arn=(
                f"arn:aws:lambda:{self.stack.region}:123456789012:function:{spec.physical_name}"
            ),
            timeout_s=spec.timeout_s,
        )
        try:
            with contextlib.redirect_stdout(self._log) if self._log else contextlib.nullcontext():
                result = self._handler(function)(event, context)
        except Exception as exc:  # Lambda turns any crash into a failed batch
            self.crashes.append((function, exc))
            result = {"batchItemFailures": [_identifier(r) for r in event.get("Records", [])]}
        failed = len(result.get("batchItemFailures", [])) if isinstance(result, dict) else 0
        invocation = Invocation(function, len(event.get("Records", [])), failed, result)
        self.invocations.append(invocation)
        self._on_invoke(invocation)
        return result

    def tick(self, scheduled_time: datetime, **extra: Any) -> Any:
        """Invoke every scheduled function as its schedule would at `scheduled_time`."""
        results = []
        for schedule in self.stack.schedules:
            event = {**schedule.input, "scheduled_time": scheduled_time.isoformat(), **extra}
            results.append(self.invoke(schedule.function, event))
        return results

    # ------------------------------------------------------------------ SQS

    def drain_queue(self, source: EventSource, *, max_batches: int = 10_000) -> int:
        """Deliver a queue's messages to its consumer until it is empty; returns messages."""
        assert source.queue_url is not None
        delivered = 0
        for _ in range(max_batches):
            answer = self._sqs.receive_message(
                QueueUrl=source.queue_url,
                MaxNumberOfMessages=min(10, source.batch_size),
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = answer.get("Messages", [])
            if not messages:
                break
            delivered += len(messages)
            event = self.sqs_event(messages, source)
            result = self.invoke(source.function, event)
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
            done = [m for m in messages if m["MessageId"] not in failed]
            for start in range(0, len(done), 10):
                self._sqs.delete_message_batch(
                    QueueUrl=source.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(done[start : start + 10])
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
        return delivered

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

    def pump_stream(self, source: EventSource) -> int:
        """Deliver the stream's new records to its consumer; returns records delivered."""
        delivered = 0
        shards = self._streams.describe_stream(StreamArn=source.source_arn)["StreamDescription"]
        for shard in shards.get("Shards", []):
            shard_id = shard["ShardId"]
            position = (source.function, shard_id)
            iterator = (
                self._iterators.get(position)
                or self._streams.get_shard_iterator(
                    StreamArn=source.source_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            )
            while iterator:
                answer = self._streams.get_records(ShardIterator=iterator, Limit=1000)
                records = answer.get("Records", [])
                next_iterator = answer.get("NextShardIterator")
                for start in range(0, len(records), source.batch_size):
                    batch = records[start : start + source.batch_size]
                    delivered += len(batch)
                    events = [self._stream_record(r, source) for r in batch]
                    self._deliver_stream_batch(source, events)
                if next_iterator:
                    self._iterators[position] = next_iterator
                if not records:
                    break
                iterator = next_iterator or ""
        return delivered

    def _deliver_stream_batch(self, source: EventSource, records: list[dict[str, Any]]) -> None:
        pending = records
        for _attempt in range(STREAM_RETRIES + 1):
            result = self.invoke(source.function, {"Records": pending})
            failures = (result or {}).get("batchItemFailures", [])
            if not failures:
                return
            # Lambda retries from the first failed record, with everything after it.
            first = min(f["itemIdentifier"] for f in failures)
            pending = [r for r in pending if r["dynamodb"]["SequenceNumber"] >= first]
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

    def settle(self, *, only: set[str] | None = None, max_rounds: int = 1000) -> int:
        """Drain every queue source and pump every stream (of `only` those functions) until
        nothing moves; returns the records delivered."""
        total = 0
        sources = [s for s in self.stack.event_sources if only is None or s.function in only]
        for _ in range(max_rounds):
            moved = 0
            for source in sources:
                if source.kind == "sqs":
                    moved += self.drain_queue(source)
                else:
                    moved += self.pump_stream(source)
            total += moved
            if moved == 0:
                return total
        raise RuntimeError(f"the stack did not settle in {max_rounds} rounds")
