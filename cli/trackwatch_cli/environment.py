"""The local environment: an emulated AWS account, and an SMTP server that keeps what it gets.

Shared by `trackwatch local`, the integration tests and the benchmarks. Where the
emulator is is a value (its endpoint, and `AwsClients` pointed at it), never the
process's environment.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs

import httpx

from trackwatch.adapters.aws import AwsClients

REGION = "us-east-1"
#: moto's default account, which every emulated resource belongs to.
EMULATED_ACCOUNT = "123456789012"
#: The emulator process's own read of a table's stream (see `serve`).
STREAM_RECORDS_PATH = "/_trackwatch/stream-records"
#: The emulator process makes delayed messages of given queues visible (see `serve`).
RELEASE_DELAYED_PATH = "/_trackwatch/release-delayed"


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: How long a new emulator process may take to say which port it serves.
START_TIMEOUT_S = 60.0


def serve(region: str = REGION, wrap: Callable[[WsgiApp], WsgiApp] | None = None) -> None:
    """Run moto's server in this process until the parent goes away; print its port first.

    The body of an emulator process (`Emulator.start`). `wrap` puts middleware around
    moto's WSGI application (the benchmarks count requests that way). The parent holds
    this process's stdin: when it closes (the parent stopped, or died), the server exits,
    so no emulator outlives the run that started it.

    moto's own server is werkzeug's development server with two costs that grow with
    every request, worked around here without changing moto: it closes the connection
    after each response (so every request is a new TCP connection and a new thread), and
    its dispatcher lists moto's package directory, under a lock, to route each request
    (`KeepAliveHandler`, `RouteCachingDispatcher`). And it serves STREAM_RECORDS_PATH: a
    table's stream records after a sequence number, as GetRecords returns them (but
    numbered by their place in the stream) and without moto's response serializer,
    which spends milliseconds on every attribute value of every image
    (`stream_records`); the local runtime reads streams there.
    """
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    # moto warns about each template resource type it skips; stack.deploy handles those.
    warnings.simplefilter("ignore")
    from moto.moto_server.werkzeug_app import create_backend_app

    app: WsgiApp = _with_stream_records(_route_caching_dispatcher()(create_backend_app))
    if wrap is not None:
        app = wrap(app)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_keep_alive_handler())

    def exit_with_parent() -> None:
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=exit_with_parent, daemon=True).start()
    print(server.server_address[1], flush=True)
    server.serve_forever()


def stream_records(table: str, region: str, after: int | None, limit: int) -> list[Any]:
    """Up to `limit` stream records of `table` after sequence number `after` (None: from
    the start), oldest first, each numbered by its place in the stream; runs where moto
    runs (this process's, or the emulator process's own: see `serve`).

    Numbered here, not as moto numbers them: moto takes a record's number from the
    stream's length when it starts building the record, and appends it when done, with
    no lock. Two writes to one table at once (its server answers each request in a
    thread of its own) can take the same number, and the later numbers then run behind
    the records' places. Read by moto's numbers, a stream poller would read records
    again (every one after a clash), and after a last record that clashed it would read
    that record for ever. The stream's order is the order of moto's list; a record is
    given its number on its first read, before anyone has seen it, and keeps it.
    """
    from moto.dynamodb.models import dynamodb_backends

    found = dynamodb_backends[EMULATED_ACCOUNT][region].get_table(table)
    shard = found.stream_shard
    if shard is None:
        return []
    first = shard.starting_sequence_number
    place = 0 if after is None else max(0, after + 1 - first)
    records = shard.items[place : place + limit]
    for offset, record in enumerate(records):
        record.record["dynamodb"]["SequenceNumber"] = str(first + place + offset)
    return [record.to_json() for record in records]


def release_delayed(region: str, queues: Iterable[str]) -> int:
    """Make the delayed messages of the named queues visible now; returns how many. Runs
    where moto runs (this process's, or the emulator process's own; see `serve`).

    moto holds a delayed message for real seconds; the local runtime's time is simulated
    (LocalStack.release_delayed says why releasing early is safe)."""
    from moto.sqs.models import sqs_backends

    wanted = set(queues)
    released = 0
    for name, queue in sqs_backends[EMULATED_ACCOUNT][region].queues.items():
        if name not in wanted:
            continue
        for message in queue._messages:
            if message.delayed:
                message.delayed_until = 0
                released += 1
    return released


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()  # as Lambda's JSON carries a binary value
    raise TypeError(f"{type(value).__name__} is not JSON")


def _with_stream_records(app: WsgiApp) -> WsgiApp:
    """Serve STREAM_RECORDS_PATH (table, region, after, limit) and RELEASE_DELAYED_PATH
    (a JSON body: region, queues) beside moto's `app`."""

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        if path == RELEASE_DELAYED_PATH:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            asked = json.loads(environ["wsgi.input"].read(length) or b"{}")
            released = release_delayed(asked.get("region", REGION), asked.get("queues", []))
            return _json_answer(start_response, {"released": released})
        if path != STREAM_RECORDS_PATH:
            return app(environ, start_response)
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        records: list[Any] = []
        if "table" in query:
            after = query.get("after")
            records = stream_records(
                query["table"],
                query.get("region", REGION),
                int(after) if after else None,
                int(query.get("limit", "1000")),
            )
        return _json_answer(start_response, {"Records": records})

    return middleware


def _json_answer(start_response: Callable[..., Any], document: Any) -> list[bytes]:
    body = json.dumps(document, default=_json_default).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def _route_caching_dispatcher() -> type:
    """moto's dispatcher, remembering which backend serves each host it has routed."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    class RouteCachingDispatcher(DomainDispatcherApplication):
        """Routes are fixed once moto is imported; moto recomputes them from a listing
        of its package directory (a stat per service) on every request."""

        _routes: dict[str | None, Any]

        def get_backend_for_host(self, host: str | None) -> Any:
            routes = self.__dict__.setdefault("_routes", {})
            if host not in routes:
                routes[host] = super().get_backend_for_host(host)
            return routes[host]

    return RouteCachingDispatcher


def _keep_alive_handler() -> type:
    """moto's request handler, answering with a length and keeping the connection open."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class KeepAliveHandler(MotoRequestHandler):
        """werkzeug's handler ends every response with `Connection: close`: it cannot
        drain a request it did not read. This one reads each request's body whole
        before the application sees it, so the next request on the connection starts
        where this one ended, and answers with Content-Length (HTTP/1.1 keep-alive)."""

        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; with Nagle's algorithm a kept-alive
        # connection then waits for the client's delayed ACK (~40 ms) between them.
        disable_nagle_algorithm = True

        def run_wsgi(self) -> None:
            environ = self.make_environ()
            if environ.get("wsgi.input_terminated"):
                body = environ["wsgi.input"].read()
            else:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = self.rfile.read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            answer: dict[str, Any] = {}

            def start_response(
                status: str, headers: list[tuple[str, str]], exc_info: Any = None
            ) -> Callable[[bytes], None]:
                answer["status"], answer["headers"] = status, headers
                return chunks.append

            chunks: list[bytes] = []
            result = self.server.app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            payload = b"".join(chunks)
            code, _, reason = str(answer["status"]).partition(" ")
            self.send_response(int(code), reason)
            for name, value in answer["headers"]:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            return

    return KeepAliveHandler


class Emulator:
    """moto's server in a process of its own on a free loopback port, and clients for it.

    A process of its own, so that the emulator's Python and the local runtime's run on
    different cores instead of taking turns under one interpreter lock. `module` is what
    the process runs (`python -m module region`); it must call `serve` (the benchmarks
    give their counting variant).
    """

    def __init__(
        self,
        region: str = REGION,
        *,
        module: str = "trackwatch_cli.environment",
        cwd: Path | None = None,
    ) -> None:
        """`cwd`: where the process starts (a module outside the installed packages)."""
        self.region = region
        self._module = module
        self._cwd = cwd
        self._process: subprocess.Popen[str] | None = None
        self.endpoint_url = ""
        self.clients = AwsClients.emulator(None, region)

    @classmethod
    def attach(cls, endpoint_url: str, region: str = REGION) -> Emulator:
        """An emulator some other process started (the benchmarks share one); `stop()`
        leaves it running."""
        emulator = cls(region)
        emulator.endpoint_url = endpoint_url.rstrip("/")
        emulator.clients = AwsClients.emulator(emulator.endpoint_url, region)
        return emulator

    def start(self) -> Self:
        """Start the process and wait for its port; `clients` and `endpoint_url` then
        point at it. Raises EmulatorError if it does not come up."""
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", self._module, self.region],
            cwd=self._cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        port = self._read_port(self._process)
        if not port.isdigit():
            self.stop()
            raise EmulatorError(f"the AWS emulator ({self._module}) did not start")
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self.clients = AwsClients.emulator(self.endpoint_url, self.region)
        return self

    @staticmethod
    def _read_port(process: subprocess.Popen[str]) -> str:
        assert process.stdout is not None
        found: list[str] = []
        reader = threading.Thread(
            target=lambda: found.append(process.stdout.readline().strip()),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        reader.join(START_TIMEOUT_S)
        return found[0] if found else ""

    @property
    def pid(self) -> int | None:
        """The emulator process's id, while it runs."""
        return self._process.pid if self._process is not None else None

    def peak_memory_bytes(self) -> int | None:
        """The emulator process's peak resident memory so far (Linux), or None."""
        if self._process is None:
            return None
        return peak_memory_bytes(self._process.pid)

    def reset(self) -> None:
        """Forget every resource the emulator holds."""
        httpx.post(f"{self.endpoint_url}/moto-api/reset", timeout=60)

    def cpu_seconds(self) -> float | None:
        """CPU time the emulator process has used so far (Linux), or None."""
        return None if self._process is None else cpu_seconds(self._process.pid)

    def stop(self) -> None:
        """Stop the process (closing its stdin is enough; terminate it if it lingers)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class EmulatorError(RuntimeError):
    """The emulator process did not start."""


def cpu_seconds(pid: int) -> float | None:
    """A process's user + system CPU time so far, from /proc, or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def peak_memory_bytes(pid: int) -> int | None:
    """A process's peak resident set size (VmHWM), or None where /proc does not say."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


@dataclass
class Mailbox:
    """E-mails the local SMTP server received."""

    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd's hook: keep the message."""
        with self.lock:
            message = message_from_bytes(envelope.content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def take(self) -> list[EmailMessage]:
        """Every message received so far, forgotten here (a long run keeps none)."""
        with self.lock:
            taken, self.messages = self.messages, []
            return taken


class SmtpServer:
    """aiosmtpd on a free loopback port, keeping every message in `mailbox`."""

    def __init__(self) -> None:
        self.mailbox = Mailbox()
        self.port = 0
        self._controller: Any = None

    def start(self) -> Self:
        """Start the server on a free port."""
        from aiosmtpd.controller import Controller

        # aiosmtpd checks its server by connecting to the port it was given, so port 0
        # will not do: ask the OS for a free port first.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop the server."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


if __name__ == "__main__":
    serve(sys.argv[1] if len(sys.argv) > 1 else REGION)
