"""Change capture, measured: the same journeys three ways, on the simulated clock.

1. **cadence only**: the change feed disabled, no webhooks; every class at its full cadence.
2. **feed + sweep**: the updated-order feed read every 5 minutes; while it is healthy the
   dispatcher polls only the reconciliation sweep.
3. **feed + webhooks + sweep**: as 2, and the sandbox POSTs a webhook per scan to the
   local API.

Each mode gets a fresh stack (template.yaml in the counting emulator) and a fresh
sandbox whose journeys move with the simulated clock; shipments are registered at the
moment their journey starts (Clickpost records the first scan seven minutes later).
Every minute: the sandbox's webhooks go out, the schedules fire at their rates, and
every queue and stream is worked off. Measured: Clickpost's track-order and feed
requests (the sandbox's logs), AWS requests and units (the emulator's log), the lag
from Clickpost's record of a scan (`recorded_at`) to the published event
(`published_at`, read back from the event log) and to the customer's SMS or e-mail
(the local senders note the simulated time of each send), and changes missed against
the sandbox's ground truth (every scan it revealed). Quiet hours are off, so that the
message lag is the pipeline's own.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from bench.calls import carrier_mix
from bench.emulator import CountingMotoServer, tally
from bench.harness import CARRIER_WEIGHTS, JOURNEYS, REGION, TEMPLATE
from trackwatch.adapters.aws import AwsClients
from trackwatch.bootstrap import Overrides
from trackwatch.logic.cadence import CadenceClass, period_minutes
from trackwatch.logic.change_capture import sweep_minutes
from trackwatch.models.events import ShipmentEvent
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.notification import Channel, Message
from trackwatch.models.policy import Cadence, Sweep
from trackwatch.models.registration import Registration
from trackwatch_cli.api_gateway import ApiGateway
from trackwatch_cli.deployment import LocalStack, SimulatedClock, start_stack
from trackwatch_cli.sandbox import SandboxServer, load_journeys
from trackwatch_cli.sandbox.timed import scaled

START = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)
#: (change feed, webhooks) per mode, in the order they are reported.
MODES: dict[str, tuple[bool, bool]] = {
    "cadence only": (False, False),
    "feed + sweep": (True, False),
    "feed + webhooks + sweep": (True, True),
}


@dataclass(frozen=True)
class FreshnessConfig:
    """Sizes of one run."""

    name: str
    shipments: int
    #: Journeys run this many times faster than the packaged ones.
    speedup: float
    #: Shipments start (and are registered) spread over this many hours.
    stagger_hours: float
    #: Simulated hours played after the last journey's last step (the slowest class's
    #: full period: cadence-only must have had its chance at the last change).
    tail_hours: float
    #: The journeys the shipments follow, in turn.
    journeys: tuple[str, ...] = JOURNEYS
    #: Runs of every mode; each after the first has other waybills (so other cadence slots
    #: and sweep cycles) and starts a little later (so other feed windows).
    repeats: int = 1


#: 40 shipments on the six journeys twelve times faster (the longest, 160 hours, in
#: 13.3), registered over 6 hours: about 25 simulated hours, ~5 minutes a mode here.
FULL = FreshnessConfig("full", 40, 12, 6, 6, repeats=3)
QUICK = FreshnessConfig("quick", 12, 16, 2, 6, repeats=3)
#: Each repetition starts this much later than the one before.
REPEAT_SHIFT = timedelta(minutes=17)
#: The smoke test's: two shipments on the happy path, forty times faster.
SMOKE = FreshnessConfig("smoke", 2, 40, 0.2, 0.5, ("delivered_smoothly",))


class TimedSender:
    """A local sender that notes the simulated time of each message."""

    def __init__(self, channel: Channel, clock: SimulatedClock) -> None:
        self.channel = channel
        self._clock = clock
        self.sent: list[tuple[datetime, Message]] = []

    def send(self, message: Message) -> None:
        """Keep the message and when it was sent."""
        self.sent.append((self._clock(), message))


@dataclass
class ModeRun:
    """One mode's run."""

    mode: str
    minutes: int = 0
    seconds: float = 0.0
    #: Scans the sandbox revealed, and those never published by the end of the run.
    revealed: int = 0
    missed: int = 0
    #: Events published more than once (same event_id, counted from SNS publishes).
    duplicates: int = 0
    events: int = 0
    #: Distinct writes that carried events (changes).
    changes: int = 0
    track_calls: int = 0
    track_awbs: int = 0
    feed_calls: int = 0
    webhooks: int = 0
    #: AWBs the coalescer polled on a hint; AWBs the dispatcher sent (cadence or sweep).
    hint_awbs: int = 0
    scheduled_awbs: int = 0
    already_seen: int = 0
    #: Minutes the dispatcher spent in each mode.
    modes: Counter[str] = field(default_factory=Counter)
    #: Seconds from Clickpost's record to the published event, by event type.
    event_lags: dict[str, list[float]] = field(default_factory=dict)
    #: Seconds from Clickpost's record to the customer's message.
    message_lags: list[float] = field(default_factory=list)
    aws: dict[str, float] = field(default_factory=dict)
    invocations: Counter[str] = field(default_factory=Counter)

    @property
    def all_event_lags(self) -> list[float]:
        """Every event's lag, whatever its type."""
        return [lag for lags in self.event_lags.values() for lag in lags]


@dataclass
class FreshnessResults:
    """Every mode's run."""

    config: FreshnessConfig
    #: The first repetition's runs (the detailed tables).
    runs: list[ModeRun] = field(default_factory=list)
    #: Every repetition's runs, the first included (the spread).
    repeats: list[list[ModeRun]] = field(default_factory=list)
    elapsed_s: float = 0.0
    started: float = field(default_factory=time.time)


@dataclass(frozen=True)
class _Planned:
    key: ShipmentKey
    journey: str
    start: datetime


def plan(config: FreshnessConfig, repeat: int = 0) -> list[_Planned]:
    """The shipments: uneven carriers, the six journeys in turn, starts spread evenly."""
    count = config.shipments
    step = timedelta(hours=config.stagger_hours) / max(1, count)
    first = START + REPEAT_SHIFT * repeat
    return [
        _Planned(
            key=ShipmentKey.of(cp_id, f"FR{repeat}{cp_id:02d}{i:06d}"),
            journey=config.journeys[i % len(config.journeys)],
            start=first + step * i,
        )
        for i, cp_id in enumerate(carrier_mix(count, CARRIER_WEIGHTS))
    ]


def _minutes_to_play(config: FreshnessConfig, shipments: list[_Planned]) -> int:
    journeys = load_journeys()
    longest = max(journeys[s.journey].steps[-1].at_hours for s in shipments) / config.speedup
    end = max(s.start for s in shipments) + timedelta(hours=longest + config.tail_hours)
    return int((end - START).total_seconds() // 60)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values`, inclusive method; NaN when empty."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def run_mode(
    server: CountingMotoServer, mode: str, config: FreshnessConfig, log: IO[str], repeat: int = 0
) -> ModeRun:
    """One mode, from a fresh stack to the figures."""
    feed, webhooks = MODES[mode]
    result = ModeRun(mode)
    server.empty()
    clock = SimulatedClock(START)
    journeys = {n: scaled(j, 1 / config.speedup) for n, j in load_journeys().items()}
    sandbox = SandboxServer(journeys=journeys, journey_clock=clock)
    sandbox.carriers.update({cp: f"Carrier {cp}" for cp in CARRIER_WEIGHTS})
    sandbox.start()
    senders = {"sms": TimedSender("sms", clock), "email": TimedSender("email", clock)}
    clients = AwsClients.emulator(server.endpoint, REGION)
    phase = f"freshness.{mode}"
    try:
        with server.log.during(f"setup.{mode}"):
            local = _stack(clients, clock, sandbox, senders, feed=feed, log=log)
        runtime = local.runtime
        gateway = ApiGateway(runtime, local.stack.routes).start() if webhooks else None
        if gateway is not None:
            sandbox.send_webhooks_to(f"{gateway.base_url}/webhooks/clickpost", local.webhook_key)
        shipments = plan(config, repeat)
        result.minutes = _minutes_to_play(config, shipments)
        started = time.perf_counter()
        # The event sources run throughout; each minute waits for the stack to be quiet.
        runtime.start()
        with server.log.during(phase):
            _play(result, local, sandbox, shipments, clock)
        runtime.stop()
        result.seconds = time.perf_counter() - started
        if gateway is not None:
            gateway.stop()
        _collect(result, local.container(), sandbox, senders, runtime.invocations, clock())
        requests = server.log.of(phase)
        result.aws = dict(tally(requests))
        published = [e for r in requests for e in r.events]
        result.duplicates = len(published) - len(set(published))
        return result
    finally:
        if sandbox.webhooks is not None:
            sandbox.webhooks.close()
        sandbox.stop()


def _stack(
    clients: AwsClients,
    clock: SimulatedClock,
    sandbox: SandboxServer,
    senders: dict[str, TimedSender],
    *,
    feed: bool,
    log: IO[str],
) -> LocalStack:
    """template.yaml deployed for one mode, its notifiers sending through `senders`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return start_stack(
            TEMPLATE,
            clients,
            clock,
            stack_name="trackwatch-freshness",
            parameters={
                "DueShards": "1",
                "ChangeFeed": "enabled" if feed else "disabled",
                # The pipeline's own lag: no message waits for the morning.
                "QuietHoursStart": "00:00",
                "QuietHoursEnd": "00:00",
            },
            settings={"CLICKPOST_BASE_URL": sandbox.base_url},
            overrides={
                "NotifySmsFunction": Overrides(senders={"sms": senders["sms"]}),
                "NotifyEmailFunction": Overrides(senders={"email": senders["email"]}),
            },
            log=log,
        )


def _play(
    result: ModeRun,
    local: LocalStack,
    sandbox: SandboxServer,
    shipments: list[_Planned],
    clock: SimulatedClock,
) -> None:
    """Every minute of the run: journeys start, webhooks go out, schedules fire."""
    runtime = local.runtime
    pending = sorted(shipments, key=lambda s: s.start)
    registration = local.container().registration_service
    for minute in range(result.minutes):
        now = clock()
        due = [s for s in pending if s.start <= now]
        if due:
            pending = pending[len(due) :]
            _start_journeys(sandbox, registration, due, minute)
        busy = bool(due) | (sandbox.deliver_webhooks() > 0)
        for answer in runtime.tick(now):
            if isinstance(answer, dict) and answer.get("mode") in ("full", "sweep"):
                result.modes[str(answer["mode"])] += 1
            busy |= _enqueued(answer)
        # Each minute's work is done within the minute. A minute that registered
        # nothing, received no webhook and enqueued no poll started nothing (the last
        # one was worked off): its wait for quiet is skipped, a real-time saving only.
        if busy:
            runtime.settle()
        clock.advance(timedelta(minutes=1))


def _enqueued(answer: object) -> bool:
    """Whether a scheduled function's answer says it started work for the event sources:
    poll messages sent (dispatcher, coalescer); anything unknown counts as work."""
    if not isinstance(answer, dict):
        return True
    if "poll_messages" in answer:
        return bool(answer["poll_messages"]) or bool(answer.get("registered"))
    if "minute" in answer and "due" in answer:  # the dispatcher
        return bool(answer.get("messages"))
    # The feed poller only sends hints, which the coalescer takes on its own tick.
    return "hinted" not in answer


def _start_journeys(
    sandbox: SandboxServer, registration: Any, due: list[_Planned], minute: int
) -> None:
    """The journeys that start now: on the sandbox's clock, and registered with us."""
    for s in due:
        sandbox.add_shipment_at(s.key.waybill, s.key.cp_id, s.journey, s.start)
    registration.register(
        [
            Registration(
                waybill=s.key.waybill,
                cp_id=s.key.cp_id,
                phone=f"+91987{(i + minute) % 100000:05d}{i % 10:02d}"[:13],
                email=f"c{s.key.waybill.lower()}@example.com",
                # SMS and e-mail, as measured before WhatsApp came first: the lag to a
                # message is the pipeline's, not a WhatsApp delivery window's.
                channels=("sms", "email"),
            )
            for i, s in enumerate(due)
        ]
    )


def _collect(
    result: ModeRun,
    container: Any,
    sandbox: SandboxServer,
    senders: dict[str, TimedSender],
    invocations: list[Any],
    end: datetime,
) -> None:
    """Read back what the run did: events (from the event log), messages, calls, hints."""
    keys = sorted({ShipmentKey.of(s.cp_id, s.waybill) for s in sandbox.ground_truth(end)}, key=str)
    events: list[ShipmentEvent] = [e for k in keys for e in container.event_log.history(k)]
    result.events = len(events)
    result.changes = len({(e.cp_id, e.waybill, e.detected_at) for e in events})
    for event in events:
        if event.recorded_at is not None and event.published_at is not None:
            lag = (event.published_at - event.recorded_at).total_seconds()
            result.event_lags.setdefault(event.event_type, []).append(lag)
    recorded = {e.event_id: e.recorded_at for e in events}
    for sender in senders.values():
        for sent_at, message in sender.sent:
            at = recorded.get(message.event_id or "")
            if at is not None:
                result.message_lags.append((sent_at - at).total_seconds())
    truth = sandbox.ground_truth(end)
    published = {str(e.checkpoint_id) for e in events if e.event_type == "shipment.scan_added"}
    result.revealed = len(truth)
    result.missed = sum(1 for s in truth if str(s.checkpoint_id) not in published)
    result.track_calls = len(sandbox.requests)
    result.track_awbs = sum(len(r.waybills) for r in sandbox.requests)
    result.feed_calls = sandbox.feed_requests
    result.webhooks = len(sandbox.webhooks.sent) if sandbox.webhooks is not None else 0
    for invocation in invocations:
        result.invocations[invocation.function] += 1
        answer = invocation.result if isinstance(invocation.result, dict) else {}
        if invocation.function == "CoalesceHintsFunction":
            result.hint_awbs += int(answer.get("polled", 0))
            result.already_seen += int(answer.get("already_seen", 0))
        elif invocation.function == "DispatchPollsFunction":
            result.scheduled_awbs += int(answer.get("due", 0))


def run(
    config: FreshnessConfig,
    log: IO[str],
    say: Any = print,
    modes: tuple[str, ...] = tuple(MODES),
) -> FreshnessResults:
    """Every mode of `config`, one after the other, in one emulator."""
    results = FreshnessResults(config)
    started = time.perf_counter()
    server = CountingMotoServer().start()
    try:
        for repeat in range(config.repeats):
            runs = []
            for mode in modes:
                say(f"freshness: {mode}, {config.shipments} shipments, run {repeat + 1}")
                runs.append(run_mode(server, mode, config, log, repeat))
            results.repeats.append(runs)
        results.runs = results.repeats[0]
    finally:
        server.stop()
    results.elapsed_s = time.perf_counter() - started
    return results


# --------------------------------------------------------------------------- at scale


def sweep_polls_per_day(shipments: int = 1_000_000) -> float:
    """AWB polls a day of the sweep alone, at the architecture's mix and the defaults."""
    from bench.cost import MIX

    cadence, sweep = Cadence(), Sweep()
    classes = {
        "transit": CadenceClass.TRANSIT,
        "ofd": CadenceClass.OUT_FOR_DELIVERY,
        "new": CadenceClass.NEW,
        "grace": CadenceClass.GRACE,
    }
    total = 0.0
    for name, (share, period) in MIX.items():
        klass = classes[name]
        assert period == period_minutes(klass, cadence)
        total += shipments * share * 1440 / sweep_minutes(klass, sweep)
    return total


def calls_per_day(run: ModeRun, shipments: int = 1_000_000) -> tuple[float, float, float]:
    """Track-order AWB polls, calls and feed reads a day at the architecture's workload:
    (AWB polls, calls, feed requests).

    Cadence only is the architecture's own figure (14.2M polls). With the feed, the sweep's
    polls (its periods over the mix) plus, for each of the day's 1.6M changes, the AWBs
    this run polled on a hint per change (webhook re-sends and feed overlaps included);
    at that scale a one-minute window holds ~1,100 waybills over ~20 carriers, so calls
    are taken as full (5 AWBs), as the architecture does. Feed reads: one per period
    (5 minutes) per page, pages as measured here.
    """
    from bench.cost import changes_per_day, polls_per_day

    if run.mode == "cadence only":
        polls = polls_per_day()
        return polls, polls / 5, 0.0
    per_change = run.hint_awbs / max(1, run.changes)
    polls = sweep_polls_per_day(shipments) + changes_per_day() * per_change
    feed_runs = run.invocations.get("PollChangeFeedFunction", 0)
    pages_per_run = run.feed_calls / max(1, feed_runs)
    return polls, polls / 5, 288 * pages_per_run
