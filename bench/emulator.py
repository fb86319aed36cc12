"""moto's server with a request log kept on the server side, and DynamoDB capacity worked out.

`CountingMotoServer` is moto's `ThreadedMotoServer` with one difference: its WSGI
application is wrapped so that every request the emulator answers is recorded as
(service, operation, resource) before it is dispatched. That record is "the
emulator's request log": it sees every request any client in the process sends,
the product's and the local Lambda runtime's alike, and nothing is estimated.

moto answers `ReturnConsumedCapacity` with fixed placeholders (0.5 or 1 unit
whatever the size), so capacity is computed here instead, by DynamoDB's published
rules, from the items themselves as moto holds them:

- a write costs ceil(max(size before, size after) / 1 KB) write units per item,
  plus, per global secondary index, 1 unit for an index entry put or deleted
  (2 when its key changes; 0 when a KEYS_ONLY index's key does not change);
- GetItem and BatchGetItem cost ceil(size / 4 KB) per item read (a missing item
  still costs the minimum), halved for eventually consistent reads;
- Query and Scan cost ceil(total size read / 4 KB) per request, halved when
  eventually consistent; an index read counts the size of the index entries
  (table key plus index key for KEYS_ONLY).

SNS and SQS bill per request and per 64 KB chunk of payload; the chunk count is
recorded beside each request (`billed`).
"""

from __future__ import annotations

import io
import json
import math
import sys
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx

from trackwatch_cli.environment import STREAM_RECORDS_PATH, Emulator

ACCOUNT = "123456789012"
#: Path prefix of the benchmark's own endpoints on the emulator.
CONTROL = "/_bench/"
CHUNK = 64 * 1024
_READ_BLOCK = 4 * 1024
_WRITE_BLOCK = 1024
_DYNAMO_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"})
_DYNAMO_READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan"})


@dataclass(frozen=True)
class Request:
    """One request the emulator answered."""

    service: str
    operation: str
    #: The table, queue or topic it named (its last path segment), or "".
    resource: str
    #: DynamoDB read and write request units it consumed (0 elsewhere).
    rru: float = 0.0
    wru: float = 0.0
    #: Of `wru`, the units of global secondary index entries put, moved or deleted.
    index_wru: float = 0.0
    #: Billed requests: SNS and SQS count each 64 KB chunk of payload; 1 elsewhere.
    billed: int = 1
    #: Messages it carried (SNS publishes, SQS sends and receives), else 0.
    messages: int = 0
    #: For an SNS publish: "<event_type> <event_id>" of each trackwatch event it carried.
    events: tuple[str, ...] = ()


@dataclass
class RequestLog:
    """Every request answered, in order; tagged with the phase it happened in."""

    entries: list[tuple[str, Request]] = field(default_factory=list)
    phase: str = "setup"
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, request: Request) -> None:
        """Record one request under the current phase."""
        with self._lock:
            self.entries.append((self.phase, request))

    @contextmanager
    def during(self, phase: str) -> Iterator[None]:
        """Tag the requests answered inside the block with `phase`."""
        before = self.phase
        self.phase = phase
        try:
            yield
        finally:
            self.phase = before

    def of(self, phase: str) -> list[Request]:
        """The requests of one phase."""
        with self._lock:
            return [r for p, r in self.entries if p == phase]


def tally(requests: Iterable[Request]) -> defaultdict[str, float]:
    """Totals of a set of requests: per 'service:operation', and units and billed chunks."""
    totals: defaultdict[str, float] = defaultdict(float)
    for r in requests:
        totals[f"{r.service}:{r.operation}"] += 1
        totals[f"{r.service}:requests"] += 1
        totals[f"{r.service}:billed"] += r.billed
        totals[f"{r.service}:messages"] += r.messages
        if r.service == "dynamodb":
            totals["dynamodb:rru"] += r.rru
            totals["dynamodb:wru"] += r.wru
            totals[f"dynamodb:{r.operation}:rru"] += r.rru
            totals[f"dynamodb:{r.operation}:wru"] += r.wru
            totals[f"dynamodb:{r.resource}:wru"] += r.wru
            totals[f"dynamodb:{r.resource}:index_wru"] += r.index_wru
            if r.operation in _DYNAMO_WRITES:
                totals["dynamodb:write_requests"] += 1
    return totals


# --------------------------------------------------------------------------- sizes


def value_size(value: dict[str, Any]) -> int:
    """The size DynamoDB counts for one attribute value in attribute-value form."""
    kind, inner = next(iter(value.items()))
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        # DynamoDB: about one byte per two significant digits, plus one.
        return len(str(inner).lstrip("-").replace(".", "")) // 2 + 1
    if kind == "B":
        # Raw bytes as moto holds them (`to_regular_json` decodes), or base64 text as the
        # wire carries them; DynamoDB counts the raw length either way.
        if isinstance(inner, bytes | bytearray):
            return len(inner)
        text = str(inner)
        return len(text) * 3 // 4 - text.count("=")
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + value_size(v) for k, v in inner.items())
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in inner)
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: v}) for v in inner)
    return len(json.dumps(inner))


def item_size(item: dict[str, Any] | None) -> int:
    """The size of an item in attribute-value form (names plus values)."""
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def _read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / _READ_BLOCK))
    return float(units) if consistent else units / 2


# --------------------------------------------------------------------------- moto access


class _Tables:
    """What the emulator holds, read directly (the server runs in this process)."""

    def __init__(self, region: str) -> None:
        self.region = region

    def _backend(self) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends[ACCOUNT][self.region]

    def item(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        """One item in attribute-value form, or None."""
        try:
            found = self._backend().get_item(table, key)
        except Exception:  # a missing table: the request itself will fail and say so
            return None
        if found is None:
            return None
        return {name: value.to_regular_json() for name, value in found.attrs.items()}

    def indexes(self, table: str) -> list[tuple[list[str], str]]:
        """Per global secondary index: its key attributes and projection type."""
        try:
            found = self._backend().get_table(table)
        except Exception:
            return []
        table_keys = [found.hash_key_attr] + (
            [found.range_key_attr] if found.range_key_attr else []
        )
        return [
            (
                [*table_keys, *index.schema_key_attrs],
                str((index.projection or {}).get("ProjectionType", "ALL")),
            )
            for index in found.global_indexes
        ]

    def index_keys(self, table: str, index_name: str) -> list[str]:
        """The attributes an index entry holds for KEYS_ONLY: table key plus index key."""
        try:
            found = self._backend().get_table(table)
        except Exception:
            return []
        keys = [found.hash_key_attr] + ([found.range_key_attr] if found.range_key_attr else [])
        for index in found.global_indexes:
            if index.name == index_name:
                keys += index.schema_key_attrs
        return keys


def _write_units(
    tables: _Tables,
    table: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> float:
    item = max(1, math.ceil(max(item_size(before), item_size(after)) / _WRITE_BLOCK))
    return item + _index_units(tables, table, before, after)


def _index_units(
    tables: _Tables,
    table: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> float:
    """The write's units on the table's global secondary indexes."""
    units = 0
    for keys, projection in tables.indexes(table):
        old = tuple(json.dumps((before or {}).get(k), sort_keys=True) for k in keys)
        new = tuple(json.dumps((after or {}).get(k), sort_keys=True) for k in keys)
        had = before is not None and all(k in before for k in keys)
        has = after is not None and all(k in after for k in keys)
        if had and has and old != new:
            units += 2
        elif had != has or (had and has and projection != "KEYS_ONLY" and before != after):
            units += 1
    return float(units)


# --------------------------------------------------------------------------- the WSGI wrapper


def _service(environ: dict[str, Any], target: str) -> str:
    if target.startswith("DynamoDBStreams"):
        return "dynamodbstreams"
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 4:
            return scope[3]
    path = environ.get("PATH_INFO", "")
    return "moto-api" if path.startswith("/moto-api") else "unknown"


def _resource(body: dict[str, Any]) -> str:
    for name in ("TableName", "QueueUrl", "TopicArn"):
        value = body.get(name)
        if isinstance(value, str):
            return value.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return ""


def _notify(form: dict[str, Any], prefix: str) -> str:
    """The channels an entry's `notify` attribute routes it to, comma-separated ("" if none)."""
    for key, value in form.items():
        attribute = key.startswith(f"{prefix}MessageAttributes.entry.") and key.endswith(".Name")
        if attribute and value == "notify":
            text = form.get(key.removesuffix("Name") + "Value.StringValue") or "[]"
            return ",".join(json.loads(text))
    return ""


def _events(form: dict[str, Any]) -> tuple[str, ...]:
    """The trackwatch events in an SNS Publish or PublishBatch form, as "<type> <id>
    <channels routed to>"."""
    found = []
    for name, value in form.items():
        if name == "Message" or name.endswith(".Message"):
            try:
                event = json.loads(value)
            except ValueError:
                continue
            if isinstance(event, dict) and "event_id" in event:
                notify = _notify(form, name.removesuffix("Message"))
                found.append(f"{event.get('event_type')} {event['event_id']} {notify}".rstrip())
    return tuple(found)


class _Counting:
    """WSGI middleware: record each request, then let moto answer it."""

    def __init__(self, app: Callable[..., Any], log: RequestLog, region: str) -> None:
        self.app = app
        self.log = log
        self.tables = _Tables(region)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        if environ.get("PATH_INFO", "").startswith(CONTROL):
            return self._control(environ, raw, start_response)
        if environ.get("PATH_INFO") == STREAM_RECORDS_PATH:
            # The local runtime's stream read (GetRecords without moto's serializer).
            self.log.add(Request("dynamodbstreams", "GetRecords", ""))
            return self.app(environ, start_response)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        service = _service(environ, target)
        if target:
            operation = target.rsplit(".", 1)[-1]
            try:
                body: dict[str, Any] = json.loads(raw or b"{}")
            except ValueError:
                body = {}
        else:
            form = {k: v[0] for k, v in parse_qs(raw.decode(errors="replace")).items()}
            operation = form.get("Action") or f"{environ.get('REQUEST_METHOD')} {service}"
            body = form
        if service == "dynamodb" and operation in _DYNAMO_WRITES:
            return self._write(operation, body, environ, start_response)
        if service == "dynamodb" and operation in _DYNAMO_READS:
            return self._read(operation, body, environ, start_response)
        billed, messages = self._payload(service, operation, body)
        if service == "sqs" and operation == "ReceiveMessage":
            return self._receive(body, environ, start_response)
        events = _events(body) if service == "sns" else ()
        self.log.add(
            Request(
                service,
                operation,
                _resource(body),
                billed=billed,
                messages=messages,
                events=events,
            )
        )
        return self.app(environ, start_response)

    def _control(self, environ: dict[str, Any], raw: bytes, start: Any) -> Any:
        """The benchmark's own endpoints: set the phase, read a phase's log, clear it."""
        action = environ["PATH_INFO"].removeprefix(CONTROL)
        answer: Any = {}
        if action == "phase":
            self.log.phase = raw.decode()
        elif action == "log":
            phase = parse_qs(environ.get("QUERY_STRING", "")).get("phase", [""])[0]
            answer = [asdict(r) for r in self.log.of(phase)]
        elif action == "clear":
            with self.log._lock:
                self.log.entries.clear()
        body = json.dumps(answer).encode()
        start("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    # -- DynamoDB

    def _write(
        self, operation: str, body: dict[str, Any], environ: dict[str, Any], start: Any
    ) -> Any:
        targets: list[tuple[str, dict[str, Any]]] = []
        if operation == "BatchWriteItem":
            for table, writes in body.get("RequestItems", {}).items():
                for write in writes:
                    if "PutRequest" in write:
                        item = write["PutRequest"]["Item"]
                        targets.append((table, self._key_of(table, item)))
                    elif "DeleteRequest" in write:
                        targets.append((table, write["DeleteRequest"]["Key"]))
        else:
            table = body.get("TableName", "")
            key = body.get("Key") or self._key_of(table, body.get("Item") or {})
            targets.append((table, key))
        before = [self.tables.item(t, k) for t, k in targets]
        answer = self.app(environ, start)
        after = [self.tables.item(t, k) for t, k in targets]
        wru = sum(
            _write_units(self.tables, t, b, a)
            for (t, _), b, a in zip(targets, before, after, strict=True)
        )
        index_wru = sum(
            _index_units(self.tables, t, b, a)
            for (t, _), b, a in zip(targets, before, after, strict=True)
        )
        resource = targets[0][0] if targets else ""
        self.log.add(Request("dynamodb", operation, resource, wru=wru, index_wru=index_wru))
        return answer

    def _key_of(self, table: str, item: dict[str, Any]) -> dict[str, Any]:
        return {k: item[k] for k in self.tables.index_keys(table, "") if k in item}

    def _read(
        self, operation: str, body: dict[str, Any], environ: dict[str, Any], start: Any
    ) -> Any:
        chunks = list(self.app(environ, start))
        try:
            answer = json.loads(b"".join(chunks) or b"{}")
        except ValueError:
            answer = {}
        rru = 0.0
        resource = _resource(body)
        if operation == "GetItem":
            rru = _read_units(item_size(answer.get("Item")), bool(body.get("ConsistentRead")))
        elif operation == "BatchGetItem":
            for table, wanted in body.get("RequestItems", {}).items():
                resource = table
                consistent = bool(wanted.get("ConsistentRead"))
                got = answer.get("Responses", {}).get(table, [])
                missing = max(0, len(wanted.get("Keys", [])) - len(got))
                rru += sum(_read_units(item_size(i), consistent) for i in got)
                rru += missing * _read_units(0, consistent)
        else:
            index = body.get("IndexName")
            items = answer.get("Items", [])
            if index:
                keys = self.tables.index_keys(body.get("TableName", ""), index)
                size = sum(
                    item_size(
                        {
                            k: v
                            for k, v in (
                                self.tables.item(body["TableName"], {keys[0]: i[keys[0]]}) or i
                            ).items()
                            if k in keys
                        }
                    )
                    for i in items
                    if keys and keys[0] in i
                )
            else:
                size = sum(item_size(i) for i in items)
            rru = _read_units(size, bool(body.get("ConsistentRead")))
        self.log.add(Request("dynamodb", operation, resource, rru=rru))
        return chunks

    # -- SNS and SQS

    @staticmethod
    def _payload(service: str, operation: str, body: dict[str, Any]) -> tuple[int, int]:
        """(billed 64 KB chunks, messages) of a publish or a send."""
        if service == "sns" and operation in ("Publish", "PublishBatch"):
            parts = [
                v
                for k, v in body.items()
                if k.endswith("Message") or ".MessageAttributes." in k or k.startswith("Message")
            ]
            messages = sum(1 for k in body if k == "Message" or k.endswith(".Message"))
            size = sum(len(p.encode()) for p in parts)
            return max(1, math.ceil(size / CHUNK)), messages
        if service == "sqs" and operation in ("SendMessage", "SendMessageBatch"):
            entries = body.get("Entries") or [body]
            size = sum(len(str(e.get("MessageBody", "")).encode()) for e in entries)
            return max(1, math.ceil(size / CHUNK)), len(entries)
        return 1, 0

    def _receive(self, body: dict[str, Any], environ: dict[str, Any], start: Any) -> Any:
        chunks = list(self.app(environ, start))
        try:
            messages = json.loads(b"".join(chunks) or b"{}").get("Messages", [])
        except ValueError:
            messages = []
        size = sum(len(str(m.get("Body", "")).encode()) for m in messages)
        self.log.add(
            Request(
                "sqs",
                "ReceiveMessage",
                _resource(body),
                billed=max(1, math.ceil(size / CHUNK)),
                messages=len(messages),
            )
        )
        return chunks


def serve(region: str = "us-east-1") -> None:
    """Run the counting emulator in this process until its parent goes away."""
    from trackwatch_cli.environment import serve as serve_emulator

    serve_emulator(region, wrap=lambda app: _Counting(app, RequestLog(), region))


class RemoteLog:
    """The emulator's request log, read and tagged over HTTP."""

    def __init__(self, endpoint: str) -> None:
        self._endpoint = endpoint

    @contextmanager
    def during(self, phase: str) -> Iterator[None]:
        """Tag the requests answered inside the block with `phase` (then "idle")."""
        httpx.post(f"{self._endpoint}{CONTROL}phase", content=phase.encode(), timeout=30)
        try:
            yield
        finally:
            httpx.post(f"{self._endpoint}{CONTROL}phase", content=b"idle", timeout=30)

    def of(self, phase: str) -> list[Request]:
        """The requests of one phase."""
        answer = httpx.get(f"{self._endpoint}{CONTROL}log", params={"phase": phase}, timeout=60)
        return [Request(**{**e, "events": tuple(e["events"])}) for e in answer.json()]


class CountingMotoServer(Emulator):
    """moto's server with a server-side request log, in a process of its own.

    The product's emulator (`trackwatch_cli.environment.Emulator`: a process of its
    own, so the emulator's work runs on the second core while this process runs the
    handlers, the sandbox and the naive poller), running this module's `serve`.
    """

    def __init__(self, region: str = "us-east-1") -> None:
        super().__init__(region, module="bench.emulator", cwd=Path(__file__).resolve().parents[1])

    @property
    def endpoint(self) -> str:
        """http://host:port."""
        return self.endpoint_url

    @property
    def log(self) -> RemoteLog:
        """The emulator's request log."""
        return RemoteLog(self.endpoint_url)

    def empty(self) -> None:
        """Forget every resource moto holds and every logged request."""
        self.reset()
        httpx.post(f"{self.endpoint}{CONTROL}clear", timeout=60)


if __name__ == "__main__":
    serve(sys.argv[1] if len(sys.argv) > 1 else "us-east-1")
