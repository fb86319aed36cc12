"""A local stand-in for Clickpost's GET /api/v2/track-order/, over real HTTP.

The standard library's ThreadingHTTPServer is enough: one GET route, JSON
out, keep-alive with Content-Length, a thread per connection. A framework
would add a dependency and an event loop to reason about, and nothing else
the sandbox needs.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from trackwatch_cli.sandbox.demo import DEFAULT_CARRIERS, DemoShipment, demo_shipments
from trackwatch_cli.sandbox.faults import Fault, FaultBoard, FaultKind, FaultPlan
from trackwatch_cli.sandbox.journey import (
    Journey,
    ShipmentIdentity,
    load_journeys,
    render_awb,
    render_invalid,
)

log = logging.getLogger(__name__)

TRACK_ORDER_PATH = "/api/v2/track-order/"
MAX_WAYBILLS = 5
DEFAULT_KEY = "sandbox-key"
DEFAULT_USERNAME = "sandbox-user"
#: A Monday morning, India time: every journey's scans count from here.
DEFAULT_JOURNEY_START = datetime(2025, 1, 6, 9, 0, 0)
_MALFORMED_BODY = b'{"meta": {"status": 200, "success": tr'
_REQUIRED_PARAMS = ("key", "username", "waybill", "cp_id")


@dataclass(frozen=True)
class SandboxRequest:
    """One request the sandbox answered, for tests and benchmarks to count."""

    cp_id: int | None
    waybills: tuple[str, ...]
    status_code: int
    fault: FaultKind | None
    duration_s: float


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, extra headers, JSON (or deliberately broken) body."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class _Shipment:
    identity: ShipmentIdentity
    journey: Journey
    step: int = 0
    polls: int = 0


def _envelope(status: int, success: bool, message: str, result: dict[str, Any]) -> bytes:
    body = {"meta": {"status": status, "success": success, "message": message}, "result": result}
    return json.dumps(body).encode()


def _error(http_status: int, meta_status: int, message: str) -> Answer:
    return Answer(http_status, _envelope(meta_status, False, message, {}))


class SandboxServer:
    """Clickpost's track-order endpoint on loopback, with journeys and injectable faults."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        key: str = DEFAULT_KEY,
        username: str = DEFAULT_USERNAME,
        carriers: Mapping[int, str] = DEFAULT_CARRIERS,
        journeys: Mapping[str, Journey] | None = None,
        journey_start: datetime = DEFAULT_JOURNEY_START,
        advance_every: int = 1,
        latency_s: float = 0.0,
    ) -> None:
        if advance_every < 1:
            raise ValueError("advance_every must be at least 1")
        self._address = (host, port)
        self._key = key
        self._username = username
        self.carriers = dict(carriers)
        self.journeys = dict(load_journeys() if journeys is None else journeys)
        self.journey_start = journey_start
        self.advance_every = advance_every
        #: Seconds every request waits before it is answered (benchmarks).
        self.latency_s = latency_s
        self.faults = FaultBoard()
        self._lock = threading.Lock()
        self._shipments: dict[tuple[int, str], _Shipment] = {}
        self._requests: list[SandboxRequest] = []
        self._in_flight = 0
        self._max_in_flight = 0
        self._stopping = threading.Event()
        self._http: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Bind and serve in a daemon thread."""
        if self._http is not None:
            raise RuntimeError("sandbox already started")
        self._stopping.clear()
        self._http = _HTTPServer(self._address, self)
        # A short poll interval makes stop() quick: shutdown() waits for one poll.
        self._thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="trackwatch-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; slow answers in progress are cut short."""
        if self._http is None:
            return
        self._stopping.set()
        self._http.shutdown()
        self._http.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._http = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """http://host:port of the running server."""
        if self._http is None:
            raise RuntimeError("sandbox not started")
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    # ------------------------------------------------------------------ shipments

    def add_shipment(
        self, waybill: str, cp_id: int, journey_name: str, order_id: str | None = None
    ) -> None:
        """Register an AWB to be answered along `journey_name`, from its first step."""
        journey = self.journeys.get(journey_name)
        if journey is None:
            raise KeyError(f"unknown journey {journey_name!r}; known: {sorted(self.journeys)}")
        if not waybill or "," in waybill:
            raise ValueError("waybill must be non-empty and contain no comma")
        identity = ShipmentIdentity(
            waybill=waybill,
            cp_id=cp_id,
            courier_name=self.carriers.get(cp_id, f"Carrier {cp_id}"),
            order_id=order_id or f"ORD{cp_id:03d}{waybill[-6:]}",
            start=self.journey_start,
        )
        with self._lock:
            self._shipments[(cp_id, waybill)] = _Shipment(identity, journey)

    def add_demo_shipments(self) -> list[DemoShipment]:
        """Register `demo_shipments()` and return them."""
        shipments = demo_shipments()
        for shipment in shipments:
            self.add_shipment(shipment.waybill, shipment.cp_id, shipment.journey)
        return shipments

    def advance(self, waybill: str, cp_id: int, steps: int = 1) -> int:
        """Move one shipment `steps` steps on (not past its last); returns its step."""
        with self._lock:
            shipment = self._shipments[(cp_id, waybill)]
            shipment.step = min(shipment.step + steps, shipment.journey.last_step)
            return shipment.step

    def advance_all(self, steps: int = 1) -> None:
        """Move every shipment `steps` steps on, for runtimes that advance by time."""
        with self._lock:
            for shipment in self._shipments.values():
                shipment.step = min(shipment.step + steps, shipment.journey.last_step)

    def step_of(self, waybill: str, cp_id: int) -> int:
        """The step a shipment will show at its next poll."""
        with self._lock:
            return self._shipments[(cp_id, waybill)].step

    # ------------------------------------------------------------------ faults

    def set_fault(
        self,
        kind: FaultKind,
        *,
        count: int | None = 1,
        cp_id: int | None = None,
        waybill: str | None = None,
        retry_after: str | None = None,
        delay_s: float = 0.0,
        http_status: int | None = None,
        meta_status: int = 354,
        message: str = "Unhandled error from the carrier",
    ) -> Fault:
        """Arm a fault for the next `count` matching requests (None: until cleared)."""
        return self.faults.push(
            Fault(
                kind=kind,
                count=count,
                cp_id=cp_id,
                waybill=waybill,
                retry_after=retry_after,
                delay_s=delay_s,
                http_status=http_status,
                meta_status=meta_status,
                message=message,
            )
        )

    def clear_faults(self) -> None:
        """Disarm every fault."""
        self.faults.clear()

    # ------------------------------------------------------------------ statistics

    @property
    def requests(self) -> list[SandboxRequest]:
        """Every request answered so far, in completion order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def max_concurrency(self) -> int:
        """The most requests ever being answered at once."""
        with self._lock:
            return self._max_in_flight

    def reset_stats(self) -> None:
        """Forget the request log and the concurrency peak."""
        with self._lock:
            self._requests.clear()
            self._max_in_flight = self._in_flight

    # ------------------------------------------------------------------ answering

    def handle_track_order(self, params: Mapping[str, str]) -> Answer:
        """Answer one track-order request given its query parameters."""
        started = time.monotonic()
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        cp_id: int | None = None
        waybills: tuple[str, ...] = ()
        fault: FaultKind | None = None
        answer: Answer | None = None
        try:
            if self.latency_s > 0:
                self._stopping.wait(self.latency_s)
            missing = [p for p in _REQUIRED_PARAMS if not params.get(p)]
            raw_cp_id = params.get("cp_id", "").strip()
            raw_waybills = params.get("waybill", "")
            waybills = tuple(w.strip() for w in raw_waybills.split(",")) if raw_waybills else ()
            if raw_cp_id.isdigit():
                cp_id = int(raw_cp_id)
            if missing:
                answer = _error(400, 400, f"missing query parameter(s): {', '.join(missing)}")
            elif not self._credentials_ok(params["key"], params["username"]):
                answer = _error(401, 301, "Authentication failed")
            elif cp_id is None:
                answer = _error(400, 400, "cp_id must be a positive integer")
            elif any(not w for w in waybills):
                answer = _error(400, 400, "waybill has an empty entry")
            elif len(waybills) > MAX_WAYBILLS:
                answer = _error(
                    400, 400, f"at most {MAX_WAYBILLS} waybills per request, got {len(waybills)}"
                )
            else:
                plan = self.faults.draw(cp_id, waybills)
                if plan.delay_s > 0:
                    fault = FaultKind.SLOW
                    self._stopping.wait(plan.delay_s)
                if plan.answer is not None:
                    fault = plan.answer.kind
                    answer = _fault_answer(plan.answer)
                elif cp_id not in self.carriers:
                    answer = _error(200, 302, "Invalid cp_id")
                else:
                    result = self._track(cp_id, waybills, plan)
                    answer = Answer(200, _envelope(200, True, "SUCCESS", result))
                    if plan.awb_faults:
                        fault = plan.awb_faults[0].kind
            return answer
        finally:
            with self._lock:
                self._in_flight -= 1
                self._requests.append(
                    SandboxRequest(
                        cp_id=cp_id,
                        waybills=waybills,
                        status_code=500 if answer is None else answer.status,
                        fault=fault,
                        duration_s=time.monotonic() - started,
                    )
                )

    def _credentials_ok(self, key: str, username: str) -> bool:
        # Constant-time, as a real credential check must be.
        key_ok = hmac.compare_digest(key.encode(), self._key.encode())
        username_ok = hmac.compare_digest(username.encode(), self._username.encode())
        return key_ok and username_ok

    def _track(self, cp_id: int, waybills: tuple[str, ...], plan: FaultPlan) -> dict[str, Any]:
        missing = {f.waybill for f in plan.awb_faults if f.kind is FaultKind.MISSING_AWB}
        invalid = {f.waybill for f in plan.awb_faults if f.kind is FaultKind.INVALID_AWB}
        result: dict[str, Any] = {}
        with self._lock:
            for waybill in dict.fromkeys(waybills):
                shipment = self._shipments.get((cp_id, waybill))
                if shipment is None or waybill in missing or None in missing:
                    continue
                if waybill in invalid or None in invalid:
                    result[waybill] = render_invalid(shipment.journey, shipment.identity)
                    continue
                result[waybill] = render_awb(shipment.journey, shipment.step, shipment.identity)
                shipment.polls += 1
                if shipment.polls % self.advance_every == 0:
                    shipment.step = min(shipment.step + 1, shipment.journey.last_step)
        return result


def _fault_answer(fault: Fault) -> Answer:
    if fault.kind is FaultKind.MALFORMED:
        return Answer(200, _MALFORMED_BODY)
    if fault.kind is FaultKind.REJECTED:
        return _error(200, fault.meta_status, fault.message)
    status = fault.status_code()
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return Answer(status, _envelope(status, False, phrase, {}), headers)


class _HTTPServer(ThreadingHTTPServer):
    # Connection threads must not keep the process (or a test run) alive.
    daemon_threads = True

    def __init__(self, address: tuple[str, int], sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "trackwatch-sandbox"
    #: Idle keep-alive connections are dropped after this many seconds.
    timeout = 30
    # Headers and body are written separately; with Nagle's algorithm on, a kept-alive
    # connection waits ~40 ms for the ACK of the first before sending the second.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        """Route GET /api/v2/track-order/; anything else is 404."""
        url = urlsplit(self.path)
        if url.path.rstrip("/") != TRACK_ORDER_PATH.rstrip("/"):
            self._send(_error(404, 404, f"no route for {url.path}"))
            return
        query = parse_qs(url.query, keep_blank_values=True)
        params = {name: values[0] for name, values in query.items()}
        sandbox = self.server.sandbox if isinstance(self.server, _HTTPServer) else None
        if sandbox is None:
            self._send(_error(500, 500, "sandbox not attached"))
            return
        self._send(sandbox.handle_track_order(params))

    def _send(self, answer: Answer) -> None:
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a read timeout against a slow answer): expected.
            self.close_connection = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The request line holds the key and username: log the path only.
        log.debug("sandbox %s %s -> %s", self.command, urlsplit(self.path).path, code)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("sandbox: " + format, *args)
