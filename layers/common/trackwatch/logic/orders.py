"""The order roll-up, as pure decisions: a member's write becomes a step of the order, and
the steps, replayed in the order they happened, become the order's events.

**Steps.** Each write of a member is one step, tagged with the shipment's `version` and the
time of the write. Applying a step is idempotent (a version already there is ignored), and a
member's steps are ordered by version whatever order they arrive in: redelivery and
out-of-order delivery change nothing.

**Windows.** The steps of every member, sorted by (time, member, version), fall into windows
of `window` (OrderWindowMinutes): a window opens at the first step after the last one closed
and collects every step until it closes. When a window closes (`settle`), it is replayed on
the order as it stood, and what it changed becomes the order's events. Events are therefore
a function of the steps and their times alone: the same whatever order the roll-up took the
steps in, and however often, provided each step reaches it before its window closes (a step
that arrives later still is counted in the next window, never in one already told).

**Events** (only for an order of two shipments or more: a single shipment's own events say
everything, and its customer hears about it per waybill, as before):

- `order.status_changed`: members reached a stage (shipped, out for delivery, delivered):
  once per stage and count, "2 of 3 delivered". A member that went past a stage within the
  window is told about at the furthest stage it reached only.
- `order.partially_delivered`: once, when some member is delivered and another will not be
  (on its way back, or ended otherwise).
- `order.completed`: once, when every member's journey has ended.

The order's `milestone` is the stage of its least advanced member still on its way; it is
latched, so it never moves backwards (a late joiner lowers the counts, not the milestone).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from trackwatch.errors import ConfigurationError
from trackwatch.logic.catalogue import StatusCatalogue
from trackwatch.models.events import (
    MemberRef,
    OrderCompleted,
    OrderEvent,
    OrderMember,
    OrderPartiallyDelivered,
    OrderStatusChanged,
    event_type_name,
    order_event_id,
)
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.orders import (
    ENDED,
    MILESTONE_STAGES,
    STAGES,
    UNDELIVERABLE,
    EmittedEvent,
    MemberChange,
    MemberStatus,
    MemberStep,
    MilestoneStage,
    OrderState,
    Stage,
    Standing,
    stage_rank,
)

OutcomeStanding = Literal["returned", "lost", "cancelled", "damaged", "expired"]
#: An order is told about (events, order-level messages) from this many members on.
TOLD_FROM_MEMBERS = 2


class OrderStageTable(BaseModel):
    """Which Clickpost status codes mean which stage of an order's member (data: a deployment
    may override data/order_stages.json). Codes it does not name leave a member where it
    stood; a terminal code it does not name ends the member as "ended"."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    stages: dict[Stage, frozenset[int]]
    returning: frozenset[int] = frozenset()
    outcomes: dict[OutcomeStanding, frozenset[int]] = {}

    @model_validator(mode="after")
    def _each_code_once(self) -> Self:
        seen: dict[int, str] = {}
        groups = [
            *self.stages.items(),
            ("returning", self.returning),
            *self.outcomes.items(),
        ]
        for name, codes in groups:
            for code in codes:
                if code in seen:
                    raise ValueError(f"status code {code} is in {seen[code]} and {name}")
                seen[code] = name
        return self

    @property
    def codes(self) -> frozenset[int]:
        """Every code the table names."""
        named = [*self.stages.values(), self.returning, *self.outcomes.values()]
        return frozenset(code for codes in named for code in codes)

    def classify(self, status: MemberStatus | None) -> tuple[Stage, Standing | None]:
        """The stage a status means, and where it leaves the member (None: where it stood)."""
        if status is None or status.clickpost_status_code is None:
            return "placed", "placed"
        code = status.clickpost_status_code
        for stage, codes in self.stages.items():
            if code in codes:
                return stage, stage
        if code in self.returning:
            return "placed", "returning"
        for outcome, codes in self.outcomes.items():
            if code in codes:
                return "placed", outcome
        return "placed", ("ended" if status.is_terminal else None)

    @classmethod
    def from_json(cls, text: str, source: str, catalogue: StatusCatalogue) -> OrderStageTable:
        """Parse and check a stage table; its codes must be in the catalogue."""
        try:
            table = cls.model_validate_json(text)
        except ValidationError as exc:
            raise ConfigurationError(f"order stage table {source} is invalid: {exc}") from exc
        unknown = sorted(code for code in table.codes if not catalogue.is_known(code))
        if unknown:
            raise ConfigurationError(
                f"order stage table {source} names status codes not in the catalogue: {unknown}"
            )
        return table


# --------------------------------------------------------------------------- steps


def orders_of(change: MemberChange) -> list[str]:
    """The orders a write touches: the one the shipment left (if it changed), the one it is in."""
    touched: list[str] = []
    if change.previous_order_id and change.previous_order_id != change.order_id:
        touched.append(change.previous_order_id)
    if change.order_id:
        touched.append(change.order_id)
    return touched


def _same(a: MemberStep, b: MemberStep) -> bool:
    """Whether two steps say the same to the order (the status's wording aside)."""
    return (
        a.in_order == b.in_order
        and a.stage == b.stage
        and a.standing == b.standing
        and a.status.clickpost_status_code == b.status.clickpost_status_code
        and a.status.clickpost_status_bucket == b.status.clickpost_status_bucket
        and a.status.is_terminal == b.status.is_terminal
    )


def apply(state: OrderState, change: MemberChange, table: OrderStageTable) -> OrderState:
    """The order with `change` taken as one of its member's steps (unchanged if that version
    is already there, is older than one already told, or is a departure of a shipment it
    never had).

    A step that says what the member's previous version said is dropped once that previous
    version is there (most writes bring scans, not a new status); while the previous version
    has not arrived it is kept, and `significant` leaves it out of every replay. So the
    steps replayed are the same whatever order the versions arrive in."""
    key = change.key.pk
    steps = state.members.get(key, ())
    if any(step.version == change.version for step in steps):
        return state
    in_order = change.order_id == state.order_id
    if not in_order and not steps:
        return state
    until = state.settled_until
    if until is not None and any(s.at < until and s.version > change.version for s in steps):
        # Older than a step already told: the member has moved on, and the windows told
        # stay as they were told.
        return state
    # A step never lands in a window already told: it is counted in the next one.
    at = change.at if until is None else max(change.at, until)
    stage, standing = table.classify(change.status)
    step = MemberStep(
        version=change.version,
        at=at,
        in_order=in_order,
        stage=stage,
        standing=standing,
        status=change.status or MemberStatus(),
    )
    merged = sorted((*steps, step), key=lambda s: s.version)
    by_version = {s.version: s for s in merged}
    kept = tuple(
        s
        for s in merged
        if not ((before := by_version.get(s.version - 1)) is not None and _same(before, s))
    )
    if kept == steps:
        return state
    return state.model_copy(update={"members": {**state.members, key: kept}})


def significant(steps: Sequence[MemberStep]) -> list[MemberStep]:
    """A member's steps that say something new: each one that differs from the step before
    it (by version). The same list whichever of the repeats are stored."""
    found: list[MemberStep] = []
    for step in sorted(steps, key=lambda s: s.version):
        if not found or not _same(found[-1], step):
            found.append(step)
    return found


def canonical(state: OrderState) -> OrderState:
    """`state` with only its significant steps: two orders that replay alike are equal."""
    return state.model_copy(
        update={"members": {key: tuple(significant(s)) for key, s in state.members.items()}}
    )


# --------------------------------------------------------------------------- replay


@dataclass
class Window:
    """The steps that happened within one window, and when it closes."""

    start: datetime
    end: datetime
    steps: list[tuple[str, MemberStep]] = field(default_factory=list)


def windows(state: OrderState, window: timedelta) -> list[Window]:
    """Every step of every member, in the order they happened, in windows of `window`."""
    flat = sorted(
        (
            (step.at, key, step.version, step)
            for key, steps in state.members.items()
            for step in significant(steps)
        ),
        key=lambda item: (item[0], item[1], item[2]),
    )
    found: list[Window] = []
    for at, key, _version, step in flat:
        if not found or at >= found[-1].end:
            found.append(Window(start=at, end=at + window))
        found[-1].steps.append((key, step))
    return found


@dataclass
class MemberView:
    """One member as the replay has it so far."""

    key: ShipmentKey
    version: int = -1
    in_order: bool = False
    #: The furthest stage any of its steps reached (never goes back).
    high: int = 0
    standing: Standing = "placed"
    standing_version: int = -1
    status: MemberStatus = field(default_factory=MemberStatus)
    joined_at: datetime | None = None

    def take(self, step: MemberStep) -> None:
        """Apply one step (an older version than the current one only raises the stage, and
        its standing counts only if no newer one said where the member stands)."""
        self.high = max(self.high, stage_rank(step.stage))
        if step.standing is not None and step.version > self.standing_version:
            self.standing, self.standing_version = step.standing, step.version
        if step.version > self.version:
            if step.in_order and not self.in_order:
                self.joined_at = step.at
            self.version, self.in_order, self.status = step.version, step.in_order, step.status

    @property
    def stage(self) -> Stage:
        """The furthest stage reached."""
        return STAGES[self.high]

    def as_member(self) -> OrderMember:
        """As an order event shows it."""
        return OrderMember(
            cp_id=self.key.cp_id,
            waybill=self.key.waybill,
            standing=self.standing,
            stage=self.stage,
            clickpost_status_code=self.status.clickpost_status_code,
            clickpost_status_description=self.status.clickpost_status_description,
        )


@dataclass
class Replay:
    """The order replayed window by window: its members, what was told, its milestone."""

    order_id: str
    members: dict[str, MemberView] = field(default_factory=dict)
    #: Per stage, the most members ever known to have reached it (told or not).
    reported: dict[MilestoneStage, int] = field(
        default_factory=lambda: dict.fromkeys(MILESTONE_STAGES, 0)
    )
    milestone: int | None = None
    partially_told: bool = False
    completed_told: bool = False

    def current(self) -> list[MemberView]:
        """The members in the order now, by key."""
        return sorted(
            (m for m in self.members.values() if m.in_order),
            key=lambda m: (m.key.cp_id, m.key.waybill),
        )

    def take(self, steps: Iterable[tuple[str, MemberStep]]) -> None:
        """Apply steps without telling anything (the live view of an open window)."""
        for key, step in steps:
            view = self.members.get(key)
            if view is None:
                view = self.members[key] = MemberView(ShipmentKey.from_pk(key))
            view.take(step)

    def window(self, window: Window) -> list[OrderEvent]:
        """Replay one closed window; the events it makes, in order."""
        before = {key: (m.in_order, m.high) for key, m in self.members.items()}
        self.take(window.steps)
        members = self.current()
        total = len(members)
        told = total >= TOLD_FROM_MEMBERS

        def newly(stage: MilestoneStage) -> list[MemberView]:
            rank = stage_rank(stage)
            return [
                m
                for m in members
                if m.high >= rank
                and not (before.get(m.key.pk, (False, 0))[0] and before[m.key.pk][1] >= rank)
            ]

        reached = {s: sum(1 for m in members if m.high >= stage_rank(s)) for s in MILESTONE_STAGES}
        rising = [s for s in MILESTONE_STAGES if reached[s] > self.reported[s]]
        on_way = [m.high for m in members if m.standing not in UNDELIVERABLE]
        if on_way:
            self.milestone = max(self.milestone if self.milestone is not None else 0, min(on_way))
        context = _EventContext(self, window, members)

        events: list[OrderEvent] = []
        for stage in rising:
            crossed = newly(stage)
            further = {
                m.key.pk
                for higher in rising
                if stage_rank(higher) > stage_rank(stage)
                for m in newly(higher)
            }
            if told and crossed and any(m.key.pk not in further for m in crossed):
                events.append(context.status_changed(stage, reached[stage], crossed))
            self.reported[stage] = reached[stage]
        delivered = sum(1 for m in members if m.standing == "delivered")
        if (
            told
            and not self.partially_told
            and delivered
            and any(m.standing in UNDELIVERABLE for m in members)
        ):
            self.partially_told = True
            events.append(context.partially_delivered(delivered))
        if told and not self.completed_told and all(m.standing in ENDED for m in members):
            self.completed_told = True
            events.append(context.completed(delivered))
        return events

    @property
    def milestone_stage(self) -> Stage | None:
        """The order's milestone (None before it has a member on its way)."""
        return None if self.milestone is None else STAGES[self.milestone]


@dataclass(frozen=True)
class _EventContext:
    """What every event of one window carries."""

    replay: Replay
    window: Window
    members: list[MemberView]

    def _common(self, event_type: str, change: str) -> dict[str, object]:
        counts = Counter(m.standing for m in self.members)
        order_id = self.replay.order_id
        return {
            "event_id": order_event_id(order_id, event_type, change),
            "order_id": order_id,
            "occurred_at": max(step.at for _, step in self.window.steps),
            "detected_at": self.window.end,
            "milestone": self.replay.milestone_stage,
            "total": len(self.members),
            "counts": dict(sorted(counts.items())),
            "members": tuple(m.as_member() for m in self.members),
        }

    def status_changed(
        self, stage: MilestoneStage, reached: int, crossed: Sequence[MemberView]
    ) -> OrderStatusChanged:
        return OrderStatusChanged.model_validate(
            {
                **self._common("order.status_changed", f"{stage}|{reached}"),
                "stage": stage,
                "reached": reached,
                "newly_reached": tuple(
                    MemberRef(cp_id=m.key.cp_id, waybill=m.key.waybill) for m in crossed
                ),
            }
        )

    def partially_delivered(self, delivered: int) -> OrderPartiallyDelivered:
        return OrderPartiallyDelivered.model_validate(
            {**self._common("order.partially_delivered", ""), "delivered": delivered}
        )

    def completed(self, delivered: int) -> OrderCompleted:
        return OrderCompleted.model_validate(
            {**self._common("order.completed", ""), "delivered": delivered}
        )


# --------------------------------------------------------------------------- settling


@dataclass(frozen=True)
class Settled:
    """What settling an order did: its new state, the events to publish, and when its next
    window closes (None: no step is waiting, or closing it cannot tell anything)."""

    state: OrderState
    events: list[OrderEvent]
    next_at: datetime | None


def emitted(event: OrderEvent) -> EmittedEvent:
    """An event as the order's timeline keeps it."""
    return EmittedEvent(
        event_id=event.event_id,
        event_type=event_type_name(type(event)),
        at=event.detected_at,
        stage=event.stage if isinstance(event, OrderStatusChanged) else None,
        reached=event.reached if isinstance(event, OrderStatusChanged) else None,
        total=event.total,
    )


def settle(state: OrderState, now: datetime, window: timedelta) -> Settled:
    """Close every window that has ended by `now` and tell what the new ones changed."""
    replay = Replay(state.order_id)
    told = {e.event_id for e in state.emitted}
    settled_until = state.settled_until
    fresh: list[OrderEvent] = []
    next_at: datetime | None = None
    for closing in windows(state, window):
        if closing.end > now:
            next_at = closing.end
            break
        events = replay.window(closing)
        if settled_until is None or closing.end > settled_until:
            fresh.extend(e for e in events if e.event_id not in told)
            settled_until = closing.end
    if next_at is not None and len(state.members) < TOLD_FROM_MEMBERS:
        # An order that has never had two boxes tells nothing when a window closes (its box's
        # own messages say it all): no tick is asked for. The next change of a member settles
        # what has closed by then, and a box that joins opens a window of two, which asks.
        next_at = None
    if settled_until == state.settled_until and not fresh:
        return Settled(state, [], next_at)
    new_state = state.model_copy(
        update={
            "settled_until": settled_until,
            "emitted": (*state.emitted, *(emitted(e) for e in fresh)),
        }
    )
    return Settled(new_state, fresh, next_at)


def next_window_end(state: OrderState, window: timedelta) -> datetime | None:
    """When the first window not yet settled closes (None: every step is told)."""
    for candidate in windows(state, window):
        if state.settled_until is None or candidate.end > state.settled_until:
            return candidate.end
    return None


def replayed(state: OrderState, window: timedelta) -> tuple[Replay, Replay]:
    """The order as told (settled windows only) and as it is now (every step)."""
    told = Replay(state.order_id)
    live = Replay(state.order_id)
    for closing in windows(state, window):
        live.take(closing.steps)
        if state.settled_until is not None and closing.end <= state.settled_until:
            told.window(closing)
    return told, live


def milestone(state: OrderState, window: timedelta) -> Stage | None:
    """The order's milestone, as told so far."""
    return replayed(state, window)[0].milestone_stage


def member_count(state: OrderState) -> int:
    """Shipments in the order now (its latest step of each says so)."""
    count = 0
    for steps in state.members.values():
        latest = max(steps, key=lambda s: s.version)
        count += latest.in_order
    return count
