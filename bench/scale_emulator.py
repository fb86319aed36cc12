"""The product's emulator with the CPU time it spends on each operation kept.

`python -m bench.scale_emulator REGION` runs `trackwatch_cli.environment.serve` with a
WSGI wrapper that, per request, reads the serving thread's CPU time before and after
(`time.thread_time`: unaffected by other threads or processes) and adds it to the
operation's total (a DynamoDB operation per table it names: "GetItem OrdersTable").
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


def _table_name(physical: str) -> str:
    """A table's logical name in its stack (`<stack>-<LogicalId>-<suffix>`), or its name."""
    parts = physical.split("-")
    return parts[-2] if len(parts) >= 3 else physical


def operation_of(environ: dict[str, Any]) -> str:
    """The operation a request asks for; for DynamoDB, with the tables it names."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.startswith("DynamoDB_"):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        body = json.loads(raw or b"{}")
        tables = (
            [body["TableName"]] if "TableName" in body else sorted(body.get("RequestItems", {}))
        )
        names = ",".join(_table_name(t) for t in tables)
        operation = str(target.rsplit(".", 1)[-1])
        return f"{operation} {names}" if names else operation
    if target:
        return str(target.rsplit(".", 1)[-1])
    path = str(environ.get("PATH_INFO", ""))
    if path == STREAM_RECORDS_PATH:
        return "GetRecords (direct)"
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(raw)
    action = parse_qs(raw.decode(errors="replace")).get("Action")
    return action[0] if action else f"{environ.get('REQUEST_METHOD')} {path.split('/')[1:2]}"


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
