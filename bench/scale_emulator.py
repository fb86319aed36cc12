"""The product's emulator with the CPU time it spends on each operation kept.

`python -m bench.scale_emulator REGION` runs `trackwatch_cli.environment.serve` with a
WSGI wrapper that, per request, reads the serving thread's CPU time before and after
(`time.thread_time`: unaffected by other threads or processes) and adds it to the
operation's total (a DynamoDB operation per table it names: "GetItem OrdersTable"; an SQS
one per queue, "ReceiveMessage EmailQueue"; an SNS publish per topic).
`GET /_bench/cpu` returns {operation: [requests, cpu_s]}; where the emulator's time goes in
the scale benchmark is read there.
"""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from trackwatch_cli.environment import STREAM_RECORDS_PATH, WsgiApp, serve

CPU_PATH = "/_bench/cpu"


def _logical_name(physical: str) -> str:
    """A table's, queue's or topic's logical name in its stack (`<stack>-<LogicalId>-<suffix>`),
    or its name."""
    parts = physical.split("-")
    return parts[-2] if len(parts) >= 3 else physical


def _body(environ: dict[str, Any]) -> bytes:
    """The request's body, read and put back for the emulator to read."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw: bytes = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(raw)
    return raw


def _named(operation: str, names: list[str]) -> str:
    logical = ",".join(_logical_name(n) for n in names if n)
    return f"{operation} {logical}" if logical else operation


def operation_of(environ: dict[str, Any]) -> str:
    """The operation a request asks for; for DynamoDB with the tables it names, for SQS
    with its queue, for an SNS publish with its topic."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    operation = str(target.rsplit(".", 1)[-1])
    if target.startswith("DynamoDB_"):
        body = json.loads(_body(environ) or b"{}")
        tables = (
            [body["TableName"]] if "TableName" in body else sorted(body.get("RequestItems", {}))
        )
        return _named(operation, tables)
    if target.startswith("AmazonSQS."):
        url = str(json.loads(_body(environ) or b"{}").get("QueueUrl", ""))
        return _named(operation, [url.rstrip("/").rsplit("/", 1)[-1]])
    if target:
        return operation
    path = str(environ.get("PATH_INFO", ""))
    if path == STREAM_RECORDS_PATH:
        return "GetRecords (direct)"
    form = parse_qs(_body(environ).decode(errors="replace"))
    action = form.get("Action")
    if not action:
        return f"{environ.get('REQUEST_METHOD')} {path.split('/')[1:2]}"
    topic = form.get("TopicArn", [""])[0].rsplit(":", 1)[-1]
    return _named(action[0], [topic]) if action[0].startswith("Publish") else action[0]


def timed(app: WsgiApp) -> WsgiApp:
    """Keep each operation's request count and CPU seconds."""
    totals: defaultdict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    lock = threading.Lock()

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == CPU_PATH:
            with lock:
                body = json.dumps(dict(totals)).encode()
            start_response("200 OK", [("Content-Length", str(len(body)))])
            return [body]
        operation = operation_of(environ)
        started = time.thread_time()
        chunks = list(app(environ, start_response))
        spent = time.thread_time() - started
        with lock:
            totals[operation][0] += 1
            totals[operation][1] += spent
        return chunks

    return middleware


if __name__ == "__main__":
    serve(sys.argv[1] if len(sys.argv) > 1 else "us-east-1", wrap=timed)
