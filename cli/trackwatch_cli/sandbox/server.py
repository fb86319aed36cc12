"""A local stand-in for Clickpost's GET /api/v2/track-order/ (and, with a journey clock, its
updated-order feed and webhooks: `timed.py`), over real HTTP.

The standard library's ThreadingHTTPServer is enough: one GET route, JSON
out, keep-alive with Content-Length, a thread per connection. A framework
would add a dependency and an event loop to reason about, and nothing else
the sandbox needs; it would also stand between the sandbox and the bytes
its hostile answers must put on the wire exactly (a hang, a drip, a body
that is not UTF-8).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from trackwatch_cli.loopback import LoopbackHTTPServer
from trackwatch_cli.sandbox import hostile
from trackwatch_cli.sandbox.body import Piece, Splicer, body_chunks, body_length
from trackwatch_cli.sandbox.demo import DEFAULT_CARRIERS, DemoShipment, demo_shipments
from trackwatch_cli.sandbox.faults import (
    DEFAULT_DAYS_AHEAD,
    DEFAULT_DEPTH,
    DEFAULT_HISTORY_SCANS,
    DEFAULT_RAW_REMARK,
    Fault,
    FaultBoard,
    FaultKind,
    FaultPlan,
)
from trackwatch_cli.sandbox.journey import (
    InjectedScan,
    Journey,
    ShipmentIdentity,
    load_journeys,
    render_awb,
    render_invalid,
)
from trackwatch_cli.sandbox.timed import (
    MAX_WINDOW_SECONDS,
    UPDATED_ORDER_PATH,
    FeedDesk,
    FeedFault,
    FeedFaultKind,
    Listed,
    RevealedScan,
    WebhookPoster,
    feed_document,
    feed_entries,
    naive_local,
    next_link,
    reveal_times,
    revealed_scans,
    revealed_step,
    step_payloads,
)

log = logging.getLogger(__name__)

TRACK_ORDER_PATH = "/api/v2/track-order/"
MAX_WAYBILLS = 5
DEFAULT_KEY = "sandbox-key"
DEFAULT_USERNAME = "sandbox-user"
#: A Monday morning, India time: every journey's scans count from here (without a clock).
DEFAULT_JOURNEY_START = datetime(2025, 1, 6, 9, 0, 0)
#: A poll never moves a shipment on when a journey clock does.
_NEVER = 10**12
#: With `any_waybill`, a waybill starting with this (any case) is one Clickpost does not
#: know: it is answered `valid: false`.
INVALID_PREFIX = "INVALID"
#: With a clock, a step's scans are dated this long before the poll that first shows them.
SCAN_LEAD = timedelta(minutes=10)
#: Clickpost's naive timestamps are India time.
_CLICKPOST_ZONE = ZoneInfo("Asia/Kolkata")
_MALFORMED_BODY = b'{"meta": {"status": 200, "success": tr'
_REQUIRED_PARAMS = ("key", "username", "waybill", "cp_id")


@dataclass(frozen=True)
class SandboxRequest:
    """One request the sandbox answered, for tests and benchmarks to count."""

    cp_id: int | None
    waybills: tuple[str, ...]
    status_code: int
    #: The main fault: the whole-answer one, else the first AWB, delivery or SLOW fault.
    fault: FaultKind | None
    #: Time to compute the answer; a hang's or a drip's time on the wire is not in it.
    duration_s: float
    #: Every fault the request drew.
    faults: tuple[FaultKind, ...] = ()


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, extra headers, a body made of pieces, and how it goes out."""

    status: int
    pieces: tuple[Piece, ...]
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    #: Hold the answer until `release_hangs()`; `stop()` closes the connection unanswered.
    hang: bool = False
    #: Send the body one byte at a time, this many seconds apart.
    drip_s: float | None = None

    @classmethod
    def of(cls, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> Answer:
        """An answer whose body is `body`, sent at once."""
        return cls(status, (body,), headers or {})

    @property
    def body(self) -> bytes:
        """The whole body in memory (for tests; a HUGE_BODY answer is built here)."""
        return b"".join(self.chunks())

    @property
    def content_length(self) -> int:
        """The body's length, without building it."""
        return body_length(self.pieces)

    def chunks(self) -> Iterator[bytes]:
        """The body in chunks, as it goes on the wire."""
        return body_chunks(self.pieces)


@dataclass
class _Shipment:
    identity: ShipmentIdentity
    journey: Journey
    step: int = 0
    polls: int = 0
    #: With a clock: when each step shown so far was first shown (naive India time).
    step_times: list[datetime] = field(default_factory=list)
    #: Scans data faults added; they stay in the history.
    injected: list[InjectedScan] = field(default_factory=list)
    has_long_history: bool = False


def _document(status: int, success: bool, message: str, result: dict[str, Any]) -> dict[str, Any]:
    return {"meta": {"status": status, "success": success, "message": message}, "result": result}


def _envelope(status: int, success: bool, message: str, result: dict[str, Any]) -> bytes:
    return json.dumps(_document(status, success, message, result)).encode()


def _error(http_status: int, meta_status: int, message: str) -> Answer:
    return Answer.of(http_status, _envelope(meta_status, False, message, {}))


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
        clock: Callable[[], datetime] | None = None,
        any_waybill: bool = False,
        journey_clock: Callable[[], datetime] | None = None,
    ) -> None:
        """`clock` (zone-aware): journeys start when first polled and each step's scans
        are dated when a poll first shows it, so dates and EDDs follow that clock (else
        every journey starts at `journey_start`), and a step that holds (`hold_hours`: a
        shipment that sits, the delay demos) is shown by the first poll after its hold has
        passed. Without a clock a step shows every `advance_every` polls. `any_waybill`:
        answer every waybill of every cp_id, on a journey picked from the waybill
        (`journey_for`).

        `journey_clock` (zone-aware) instead: journeys move with it, a step appearing when
        Clickpost records it whoever polls, and the updated-order feed and webhooks tell of
        it (`trackwatch_cli.sandbox.timed`); without it, a shipment moves a step per poll.
        It takes precedence over `clock` for dating: a step is dated when it is due (and
        holds are not used: the journey's hours are)."""
        if advance_every < 1:
            raise ValueError("advance_every must be at least 1")
        self._address = (host, port)
        self._key = key
        self._username = username
        self.carriers = dict(carriers)
        self.journeys = dict(load_journeys() if journeys is None else journeys)
        self.journey_start = journey_start
        self.advance_every = advance_every if journey_clock is None else _NEVER
        self.journey_clock = journey_clock
        #: The updated-order feed's faults and left-out updates.
        self.feed = FeedDesk()
        #: Entries one feed page lists at most.
        self.feed_page_size = 100
        #: Where webhooks go (`send_webhooks_to`), and up to when they have been sent.
        self.webhooks: WebhookPoster | None = None
        self._webhooks_until: datetime | None = None
        self._feed_requests = 0
        self.clock = clock
        self.any_waybill = any_waybill
        #: Order ids of shipments met only when first polled (`expect`).
        self._orders: dict[tuple[int, str], str] = {}
        #: Seconds every request waits before it is answered (benchmarks).
        self.latency_s = latency_s
        self.faults = FaultBoard()
        self._lock = threading.Lock()
        self._shipments: dict[tuple[int, str], _Shipment] = {}
        self._requests: list[SandboxRequest] = []
        self._in_flight = 0
        self._max_in_flight = 0
        self._stopping = threading.Event()
        #: One event per request held by a HANG fault; set to let it go.
        self._held: set[threading.Event] = set()
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
        """Stop serving and close the socket; slow, hung and dripping answers are cut short."""
        if self._http is None:
            return
        self._stopping.set()
        self._let_go()
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
        self, waybill: str, cp_id: int, journey_name: str | None = None, order_id: str | None = None
    ) -> None:
        """Register an AWB to be answered along `journey_name` (default: `journey_for`),
        from its first step."""
        shipment = self._new_shipment(
            waybill,
            cp_id,
            self.journey_for(waybill) if journey_name is None else journey_name,
            order_id or f"ORD{cp_id:03d}{waybill[-6:]}",
        )
        with self._lock:
            self._shipments[(cp_id, waybill)] = shipment

    def _new_shipment(
        self, waybill: str, cp_id: int, journey_name: str, order_id: str | None
    ) -> _Shipment:
        journey = self.journeys.get(journey_name)
        if journey is None:
            raise KeyError(f"unknown journey {journey_name!r}; known: {sorted(self.journeys)}")
        if not waybill or "," in waybill:
            raise ValueError("waybill must be non-empty and contain no comma")
        identity = ShipmentIdentity(
            waybill=waybill,
            cp_id=cp_id,
            courier_name=self.carriers.get(cp_id, f"Carrier {cp_id}"),
            order_id=order_id,
            # On a journey clock every journey is on its schedule from `journey_start`.
            start=(
                self.journey_start
                if self.clock is None or self.journey_clock is not None
                else self._now()
            ),
        )
        if self.journey_clock is not None and journey.holds:
            # A delay demo keeps its hours: its first step is due at the start, and the
            # history it arrives with is that much older (its hours are its holds).
            start = identity.start - timedelta(hours=journey.steps[0].at_hours)
            identity = identity.model_copy(update={"start": start})
        return _Shipment(identity, journey)

    def journey_for(self, waybill: str) -> str:
        """The journey an AWB follows when nobody chose one: `invalid` for a waybill
        starting with INVALID_PREFIX, else one of the others picked by a hash of the
        waybill (the same one every time, on every machine)."""
        if waybill.upper().startswith(INVALID_PREFIX) and "invalid" in self.journeys:
            return "invalid"
        # Not the delay demos: whether they sit depends on the clock, not on the waybill.
        names = sorted(
            name
            for name, j in self.journeys.items()
            if j.valid and j.picked_for_any_waybill and not j.holds
        )
        digest = hashlib.sha256(waybill.encode()).digest()
        return names[int.from_bytes(digest[:8]) % len(names)]

    def expect(self, waybill: str, cp_id: int, order_id: str | None) -> None:
        """With `any_waybill`: the order id to answer for an AWB when it is first polled
        (the journey is still `journey_for`'s). Keeps nothing else until then."""
        if order_id:
            with self._lock:
                self._orders[(cp_id, waybill)] = order_id

    def _now(self) -> datetime:
        """The clock's time as Clickpost writes it: naive India time."""
        assert self.clock is not None
        return self.clock().astimezone(_CLICKPOST_ZONE).replace(tzinfo=None)

    def add_shipment_at(
        self,
        waybill: str,
        cp_id: int,
        journey_name: str,
        start: datetime,
        order_id: str | None = None,
    ) -> None:
        """Register an AWB whose journey starts at `start` (zone-aware; for a journey clock)."""
        self.add_shipment(waybill, cp_id, journey_name, order_id)
        with self._lock:
            shipment = self._shipments[(cp_id, waybill)]
            shipment.identity = shipment.identity.model_copy(update={"start": naive_local(start)})

    def add_demo_shipments(self) -> list[DemoShipment]:
        """Register `demo_shipments()` and return them."""
        shipments = demo_shipments()
        for shipment in shipments:
            self.add_shipment(shipment.waybill, shipment.cp_id, shipment.journey, shipment.order_id)
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

    def _next_holds(self, shipment: _Shipment) -> bool:
        """With a clock: whether the next step waits (`hold_hours`) before a poll shows it."""
        step = shipment.step
        return (
            self.clock is not None
            and self.journey_clock is None
            and step < shipment.journey.last_step
            and shipment.journey.steps[step + 1].hold_hours > 0
        )

    def _hold_passed(self, shipment: _Shipment) -> bool:
        """With a clock: whether the next step holds, the step before it has been shown, and
        the hold has passed since that step's time (lock held)."""
        step = shipment.step
        if not self._next_holds(shipment) or len(shipment.step_times) <= step:
            return False
        hold = timedelta(hours=shipment.journey.steps[step + 1].hold_hours)
        return self._now() >= shipment.step_times[step] + hold

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
        delay_s: float | None = None,
        http_status: int | None = None,
        meta_status: int = 354,
        message: str = "Unhandled error from the carrier",
        size_bytes: int | None = None,
        scans: int = DEFAULT_HISTORY_SCANS,
        depth: int = DEFAULT_DEPTH,
        days_ahead: float = DEFAULT_DAYS_AHEAD,
        raw: bytes = DEFAULT_RAW_REMARK,
        extra_waybill: str | None = None,
    ) -> Fault:
        """Arm a fault for the next `count` matching requests (None: until cleared).

        The parameters after `message` tune data faults; FaultKind says which uses which.
        """
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
                size_bytes=size_bytes,
                scans=scans,
                depth=depth,
                days_ahead=days_ahead,
                raw=raw,
                extra_waybill=extra_waybill,
            )
        )

    def clear_faults(self) -> None:
        """Disarm every fault (requests already hung stay hung: see `release_hangs`)."""
        self.faults.clear()

    @property
    def hanging(self) -> int:
        """How many requests a HANG fault is holding right now."""
        with self._lock:
            return len(self._held)

    def release_hangs(self) -> int:
        """Let every held request send its answer; returns how many there were."""
        return self._let_go()

    def _hold(self) -> bool:
        """Block the calling connection for a HANG; True once released, False if stopping.

        A client that gives up meanwhile is noticed only then: its thread waits until
        release or stop, as a gateway's would.
        """
        released = threading.Event()
        with self._lock:
            self._held.add(released)
        try:
            # Checked after registering, so a stop() racing with us cannot be missed.
            if not self._stopping.is_set():
                released.wait()
            return not self._stopping.is_set()
        finally:
            with self._lock:
                self._held.discard(released)

    def _let_go(self) -> int:
        with self._lock:
            held = list(self._held)
        for released in held:
            released.set()
        return len(held)

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
        plan = FaultPlan()
        answer: Answer | None = None
        try:
            if self.latency_s > 0:
                self._stopping.wait(self.latency_s)
            raw_cp_id = params.get("cp_id", "").strip()
            raw_waybills = params.get("waybill", "")
            waybills = tuple(w.strip() for w in raw_waybills.split(",")) if raw_waybills else ()
            if raw_cp_id.isdigit():
                cp_id = int(raw_cp_id)
            answer = self._refusal(params, cp_id, waybills)
            if answer is None:
                assert cp_id is not None  # _refusal checks it
                plan = self.faults.draw(cp_id, waybills)
                if plan.delay_s > 0:
                    self._stopping.wait(plan.delay_s)
                if plan.answer is not None:
                    answer = _fault_answer(plan.answer)
                elif cp_id not in self.carriers and not self.any_waybill:
                    answer = _error(200, 302, "Invalid cp_id")
                else:
                    splicer = Splicer()
                    result = self._track(cp_id, waybills, plan, splicer)
                    document = _document(200, True, "SUCCESS", result)
                    answer = Answer(200, splicer.encode(document))
                answer = _deliver(answer, plan.delivery)
            return answer
        finally:
            with self._lock:
                self._in_flight -= 1
                self._requests.append(
                    SandboxRequest(
                        cp_id=cp_id,
                        waybills=waybills,
                        status_code=500 if answer is None else answer.status,
                        fault=plan.kinds[0] if plan.kinds else None,
                        duration_s=time.monotonic() - started,
                        faults=plan.kinds,
                    )
                )

    def _refusal(
        self, params: Mapping[str, str], cp_id: int | None, waybills: tuple[str, ...]
    ) -> Answer | None:
        """The error a request that Clickpost would refuse gets; None for a good request."""
        missing = [p for p in _REQUIRED_PARAMS if not params.get(p)]
        if missing:
            return _error(400, 400, f"missing query parameter(s): {', '.join(missing)}")
        if not self._credentials_ok(params["key"], params["username"]):
            return _error(401, 301, "Authentication failed")
        if cp_id is None:
            return _error(400, 400, "cp_id must be a positive integer")
        if any(not w for w in waybills):
            return _error(400, 400, "waybill has an empty entry")
        if len(waybills) > MAX_WAYBILLS:
            return _error(
                400, 400, f"at most {MAX_WAYBILLS} waybills per request, got {len(waybills)}"
            )
        return None

    def _credentials_ok(self, key: str, username: str) -> bool:
        # Constant-time, as a real credential check must be.
        key_ok = hmac.compare_digest(key.encode(), self._key.encode())
        username_ok = hmac.compare_digest(username.encode(), self._username.encode())
        return key_ok and username_ok

    def _track(
        self, cp_id: int, waybills: tuple[str, ...], plan: FaultPlan, splicer: Splicer
    ) -> dict[str, Any]:
        result: dict[str, Any] = {}
        with self._lock:
            for waybill in dict.fromkeys(waybills):
                shipment = self._answerable(cp_id, waybill)
                faults = [f for f in plan.awb_faults if f.applies_to(waybill)]
                kinds = {f.kind for f in faults}
                if shipment is None or FaultKind.MISSING_AWB in kinds:
                    continue
                if FaultKind.INVALID_AWB in kinds:
                    result[waybill] = render_invalid(shipment.journey, shipment.identity)
                    continue
                self._inject(shipment, faults)
                self._release_hold(shipment)
                awb = render_awb(
                    shipment.journey,
                    shipment.step,
                    shipment.identity,
                    injected=shipment.injected,
                    touch=hostile.scan_touch(faults, splicer),
                    step_times=self._step_times(shipment),
                )
                hostile.corrupt_additional(awb["additional"], faults, splicer)
                result[waybill] = awb
                for fault in faults:
                    if fault.kind is FaultKind.DUPLICATE_KEY:
                        # A second "<waybill>" key, right after the first.
                        key = splicer.splice(json.dumps(waybill).encode())
                        result[key] = _stale(shipment)
                    elif fault.kind is FaultKind.UNASKED_AWB:
                        extra = fault.extra_waybill or f"{waybill}-C1"
                        if extra not in waybills:
                            result[extra] = _child_piece(shipment, extra)
                self._count_poll(shipment)
        return result

    def _release_hold(self, shipment: _Shipment) -> None:
        """A shipment that sat: the first poll after its next step's hold shows that step."""
        if self._hold_passed(shipment):
            shipment.step += 1

    def _count_poll(self, shipment: _Shipment) -> None:
        """One more poll answered: every `advance_every` polls the next step, unless that
        step holds (it is shown by its hold, not by the count of polls)."""
        shipment.polls += 1
        if shipment.polls % self.advance_every == 0 and not self._next_holds(shipment):
            shipment.step = min(shipment.step + 1, shipment.journey.last_step)

    # ------------------------------------------------------------------ the journey clock

    def _on_clock(self, shipment: _Shipment) -> bool:
        """With a journey clock, move `shipment` to the step its time has reached; whether
        any step is revealed yet (lock held)."""
        if self.journey_clock is None:
            return True
        step = revealed_step(shipment.journey, shipment.identity.start, self.journey_clock())
        shipment.step = max(step, 0)
        return step >= 0

    def ground_truth(self, now: datetime | None = None) -> list[RevealedScan]:
        """Every scan revealed by `now` (default: the journey clock's now)."""
        moment = now or self._clock_now()
        with self._lock:
            shipments = list(self._shipments.values())
        return [
            scan
            for s in shipments
            if s.journey.valid
            for scan in revealed_scans(s.journey, s.identity, moment)
        ]

    def _clock_now(self) -> datetime:
        if self.journey_clock is None:
            raise RuntimeError("the sandbox has no journey clock")
        return self.journey_clock()

    def leave_out(self, waybill: str, cp_id: int, steps: int = 1) -> list[int]:
        """Leave the shipment's next `steps` updates out of every feed listing (Clickpost's
        feed missing a change); returns the steps left out."""
        with self._lock:
            shipment = self._shipments[(cp_id, waybill)]
            now = self._clock_now()
            first = revealed_step(shipment.journey, shipment.identity.start, now) + 1
            hidden = list(range(first, min(first + steps, shipment.journey.last_step + 1)))
        for step in hidden:
            self.feed.hidden.add((cp_id, waybill, step))
        return hidden

    def set_feed_fault(
        self, kind: FeedFaultKind, *, count: int | None = 1, retry_after: str | None = "1"
    ) -> None:
        """Arm a fault of the updated-order feed for the next `count` calls."""
        self.feed.push(FeedFault(kind, count, retry_after))

    @property
    def feed_requests(self) -> int:
        """Updated-order requests answered so far."""
        with self._lock:
            return self._feed_requests

    def handle_updated_order(self, params: Mapping[str, str]) -> Answer:
        """Answer one updated-order request: the waybills whose updates Clickpost recorded
        in [start_date, end_date] (epoch seconds), one entry each, paginated."""
        with self._lock:
            self._feed_requests += 1
        missing = [p for p in ("key", "username", "start_date", "end_date") if not params.get(p)]
        if missing:
            return _error(400, 400, f"missing query parameter(s): {', '.join(missing)}")
        if not self._credentials_ok(params["key"], params["username"]):
            return _error(401, 301, "Authentication failed")
        try:
            start, end = int(params["start_date"]), int(params["end_date"])
            page, per_page = int(params.get("page", "1")), int(params.get("per_page", "0"))
        except ValueError:
            return _error(400, 400, "start_date, end_date and page must be integers")
        if not 0 <= end - start <= MAX_WINDOW_SECONDS:
            return _error(400, 400, f"the window must be 0-{MAX_WINDOW_SECONDS} seconds")
        fault = self.feed.draw() if page == 1 else None
        if fault is not None and fault.kind is FeedFaultKind.RATE_LIMITED:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return Answer.of(429, _envelope(429, False, "Too Many Requests", {}), headers)
        if fault is not None and fault.kind is FeedFaultKind.DOWN:
            return _error(500, 500, "Internal Server Error")
        listed = (
            []
            if fault is not None and fault.kind is FeedFaultKind.EMPTY
            else self._listed(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))
        )
        if per_page <= 0:
            per_page = self.feed_page_size
            if fault is not None and fault.kind is FeedFaultKind.SECOND_PAGE:
                per_page = max(1, -(-len(listed) // 2))
        chunk = listed[(page - 1) * per_page : page * per_page]
        more = page * per_page < len(listed)
        query = {k: v for k, v in params.items() if k not in ("page", "per_page")}
        link = next_link(self.base_url, query, page + 1, per_page) if more else None
        return Answer.of(200, feed_document(feed_entries(chunk), link))

    def _listed(self, start: datetime, end: datetime) -> list[Listed]:
        low, high = naive_local(start), naive_local(end)
        listed: list[Listed] = []
        with self._lock:
            for (cp_id, waybill), shipment in sorted(self._shipments.items()):
                if not shipment.journey.valid:
                    continue
                times = reveal_times(shipment.journey, shipment.identity.start)
                steps = [
                    i
                    for i, when in enumerate(times)
                    if low <= when <= high and (cp_id, waybill, i) not in self.feed.hidden
                ]
                if steps:
                    step = max(steps)
                    listed.append(Listed(shipment.identity, shipment.journey, step, times[step]))
        return listed

    def send_webhooks_to(self, url: str, key: str) -> WebhookPoster:
        """Send Clickpost's webhooks (all-status mode) to `url` from now on, with `key`."""
        if self.webhooks is not None:
            self.webhooks.close()
        self.webhooks = WebhookPoster(url, key)
        self._webhooks_until = self._clock_now()
        return self.webhooks

    def deliver_webhooks(self) -> int:
        """POST a webhook for every scan revealed since the last delivery (and retries due);
        returns the POSTs made. Call it as the journey clock moves."""
        if self.webhooks is None or self._webhooks_until is None:
            return 0
        now = self._clock_now()
        low, high = naive_local(self._webhooks_until), naive_local(now)
        payloads = []
        with self._lock:
            shipments = list(self._shipments.values())
        for shipment in shipments:
            if not shipment.journey.valid:
                continue
            for step, when in enumerate(reveal_times(shipment.journey, shipment.identity.start)):
                if low < when <= high:
                    payloads.extend(step_payloads(shipment.journey, step, shipment.identity))
        self._webhooks_until = now
        return self.webhooks.deliver(payloads)

    def _answerable(self, cp_id: int, waybill: str) -> _Shipment | None:
        """The shipment to answer for an AWB, met now if `any_waybill`; None when unknown or,
        on a journey clock, when Clickpost has recorded nothing of it yet (lock held)."""
        shipment = self._shipments.get((cp_id, waybill))
        if shipment is None and self.any_waybill:
            shipment = self._first_sight(cp_id, waybill)
        if shipment is not None and not self._on_clock(shipment):
            return None
        return shipment

    def _first_sight(self, cp_id: int, waybill: str) -> _Shipment:
        """An AWB nobody registered here, answered along `journey_for` (lock held)."""
        order_id = self._orders.pop((cp_id, waybill), None)
        shipment = self._new_shipment(waybill, cp_id, self.journey_for(waybill), order_id)
        if self.journey_clock is not None:
            # On a journey clock, its journey starts now (its first step a moment later).
            start = naive_local(self.journey_clock())
            shipment.identity = shipment.identity.model_copy(update={"start": start})
        self._shipments[(cp_id, waybill)] = shipment
        return shipment

    def _step_times(self, shipment: _Shipment) -> list[datetime] | None:
        """With a clock, each step shown is dated when first shown (lock held)."""
        if self.clock is None or self.journey_clock is not None:
            return None
        shown = min(shipment.step, shipment.journey.last_step)
        while len(shipment.step_times) <= shown:
            shipment.step_times.append(self._now() - SCAN_LEAD)
        return shipment.step_times

    @staticmethod
    def _inject(shipment: _Shipment, faults: list[Fault]) -> None:
        """Add the scans FUTURE_SCAN and LONG_HISTORY put into a shipment's history."""
        for fault in faults:
            if fault.kind is FaultKind.FUTURE_SCAN:
                scan = hostile.future_scan(
                    shipment.journey,
                    shipment.step,
                    shipment.identity,
                    len(shipment.injected),
                    fault.days_ahead,
                )
                shipment.injected.append(scan)
            elif fault.kind is FaultKind.LONG_HISTORY and not shipment.has_long_history:
                history = hostile.long_history(
                    shipment.identity, len(shipment.injected), fault.scans
                )
                shipment.injected.extend(history)
                shipment.has_long_history = True


def _stale(shipment: _Shipment) -> dict[str, Any]:
    """The answer the previous step gave (`valid: false` before the first)."""
    if shipment.step == 0:
        return render_invalid(shipment.journey, shipment.identity)
    before = shipment.step - 1
    injected = [scan for scan in shipment.injected if scan.after_step <= before]
    return render_awb(
        shipment.journey,
        before,
        shipment.identity,
        injected=injected,
        step_times=shipment.step_times or None,
    )


def _child_piece(shipment: _Shipment, waybill: str) -> dict[str, Any]:
    """Another piece of `shipment`'s order, on its journey and step."""
    identity = shipment.identity.model_copy(update={"waybill": waybill})
    return render_awb(
        shipment.journey, shipment.step, identity, step_times=shipment.step_times or None
    )


def _deliver(answer: Answer, delivery: Fault | None) -> Answer:
    if delivery is None:
        return answer
    if delivery.kind is FaultKind.HANG:
        return replace(answer, hang=True)
    return replace(answer, drip_s=delivery.wait_s())


def _fault_answer(fault: Fault) -> Answer:
    if fault.kind is FaultKind.MALFORMED:
        return Answer.of(200, _MALFORMED_BODY)
    if fault.kind is FaultKind.REJECTED:
        return _error(200, fault.meta_status, fault.message)
    status = fault.status_code()
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return Answer.of(status, _envelope(status, False, phrase, {}), headers)


class _HTTPServer(LoopbackHTTPServer):
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
        """Route GET /api/v2/track-order/ and /api/v1/updated-order; anything else is 404."""
        sandbox = self.server.sandbox if isinstance(self.server, _HTTPServer) else None
        if sandbox is None:
            self._send(_error(500, 500, "sandbox not attached"), threading.Event())
            return
        # Handler and server are one unit: the handler shares the server's stop signal.
        stopping = sandbox._stopping
        url = urlsplit(self.path)
        if url.path.rstrip("/") == UPDATED_ORDER_PATH:
            query = parse_qs(url.query, keep_blank_values=True)
            self._send(sandbox.handle_updated_order({n: v[0] for n, v in query.items()}), stopping)
            return
        if url.path.rstrip("/") != TRACK_ORDER_PATH.rstrip("/"):
            self._send(_error(404, 404, f"no route for {url.path}"), stopping)
            return
        query = parse_qs(url.query, keep_blank_values=True)
        params = {name: values[0] for name, values in query.items()}
        answer = sandbox.handle_track_order(params)
        if answer.hang and not sandbox._hold():
            # Stopped while hung: the connection closes without an answer, as it would.
            self.close_connection = True
            return
        self._send(answer, stopping)

    def _send(self, answer: Answer, stopping: threading.Event) -> None:
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(answer.content_length))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if answer.drip_s is None:
                for chunk in answer.chunks():
                    if stopping.is_set():
                        # A huge body the client reads slowly must not hold up stop().
                        self.close_connection = True
                        return
                    self.wfile.write(chunk)
            elif not self._drip(answer, answer.drip_s, stopping):
                self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a read timeout against a slow answer): expected.
            self.close_connection = True

    def _drip(self, answer: Answer, gap_s: float, stopping: threading.Event) -> bool:
        """Write the body a byte at a time; False if the sandbox stopped first."""
        for chunk in answer.chunks():
            for offset in range(len(chunk)):
                if stopping.wait(gap_s):
                    return False
                self.wfile.write(chunk[offset : offset + 1])
        return True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The request line holds the key and username: log the path only.
        log.debug("sandbox %s %s -> %s", self.command, urlsplit(self.path).path, code)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("sandbox: " + format, *args)
