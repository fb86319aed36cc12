"""The order roll-up as properties (hypothesis), over any interleaving of members' changes.

A *world* is an order of three boxes and a fourth that joins late, each with its journey
(one is returned, one is lost, the others delivered, some after a failed attempt), its changes
at times of their own: siblings often change within one window, sometimes hours apart. The
roll-up then *processes* that world as the stream would deliver it: each change at some
moment before its window closes, in any order across members and within one (a retried batch
re-delivers older records), some of them twice, with settle ticks at any moments between.

For every world and every such processing:
- the order's milestone never moves backwards;
- `order.completed` is emitted exactly once, `order.partially_delivered` at most once;
- the events are the same, ids and content, as processing the world in its own order.

And when a change arrives after its window has closed (an outage longer than the window),
the guarantees that do not depend on timing still hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.order_samples import ORDER, STAGES, T0, WINDOW, change
from trackwatch.logic.orders import apply, canonical, milestone, settle, windows
from trackwatch.models.events import OrderEvent, OrderStatusChanged
from trackwatch.models.orders import STAGES as STAGE_ORDER
from trackwatch.models.orders import MemberChange, OrderState

FAR = T0 + timedelta(days=365)

DELIVERED = [[4, 5, 6, 8], [4, 6, 8], [5, 6, 9, 6, 8], [4, 5, 6, 9, 5, 6, 8], [8]]
RETURNED = [[4, 5, 6, 9, 11, 21, 14], [4, 11, 14], [4, 5, 21, 14]]
LOST = [[4, 5, 16], [4, 16], [16]]


@st.composite
def journey(draw: st.DrawFn, kind: str) -> list[int]:
    paths = {"delivered": DELIVERED, "returned": RETURNED, "lost": LOST}[kind]
    return list(draw(st.sampled_from(paths)))


@st.composite
def worlds(draw: st.DrawFn) -> list[MemberChange]:
    """Every change of the order's four members, in the order they happened."""
    kinds = draw(st.permutations(["delivered", "returned", "lost", "delivered"]))
    changes: list[MemberChange] = []
    # Siblings are often handed to the carrier together: a shared clock, with small offsets.
    shared = [draw(st.integers(30, 600)) for _ in range(8)]
    for index, (waybill, kind) in enumerate(zip(("A", "B", "C", "D"), kinds, strict=True)):
        late = waybill == "D"
        joined_at = draw(st.integers(0, 4000)) if late else draw(st.integers(0, 5))
        changes.append(change(waybill, 1, joined_at, None, cp_id=4 + index % 2))
        minutes = float(joined_at)
        for version, code in enumerate(draw(journey(kind)), start=2):
            together = draw(st.booleans())
            step = shared[min(version - 2, 7)] if together else draw(st.integers(1, 900))
            minutes += step + draw(st.integers(0, 3))
            changes.append(change(waybill, version, minutes, code, cp_id=4 + index % 2))
    return sorted(changes, key=lambda c: (c.at, c.key.pk, c.version))


@dataclass(frozen=True)
class Action:
    """Something the roll-up does at `at` (minutes after T0): a change, or a settle tick."""

    at: float
    tiebreak: int
    change: MemberChange | None = None


def window_ends(world: list[MemberChange]) -> dict[tuple[str, int], float]:
    """When the window of each change closes (minutes after T0), in the world taken whole; a
    change that repeats its shipment's previous status is in no window: it may come whenever
    the window around its time would close."""
    state = OrderState(order_id=ORDER)
    for item in world:
        state = apply(state, item, STAGES)
    closing = windows(state, WINDOW)
    ends: dict[tuple[str, int], float] = {}
    for item in world:
        end = next((w.end for w in closing if w.start <= item.at < w.end), item.at + WINDOW)
        ends[(item.key.pk, item.version)] = (end - T0).total_seconds() / 60
    return ends


@st.composite
def processings(draw: st.DrawFn, world: list[MemberChange], bounded: bool) -> list[Action]:
    """One way of processing `world`: each change delivered once before its window closes
    (`bounded`; else at any time), some delivered again later, settle ticks in between."""
    ends = window_ends(world)
    actions: list[Action] = []
    for item in world:
        start = (item.at - T0).total_seconds() / 60
        end = ends[(item.key.pk, item.version)]
        latest = end - 0.01 if bounded else start + 5000
        actions.append(Action(draw(st.floats(start, latest)), draw(st.integers(0, 10**6)), item))
        if draw(st.integers(0, 4)) == 0:  # delivered again, any time later
            again = draw(st.floats(start, start + 6000))
            actions.append(Action(again, draw(st.integers(0, 10**6)), item))
    last = max(a.at for a in actions)
    for _ in range(draw(st.integers(0, 12))):
        actions.append(Action(draw(st.floats(0, last + 60)), draw(st.integers(0, 10**6))))
    return sorted(actions, key=lambda a: (a.at, a.tiebreak))


def rank(stage: str | None) -> int:
    return -1 if stage is None else STAGE_ORDER.index(stage)


@dataclass
class Outcome:
    events: list[OrderEvent]
    milestones: list[str | None]
    final: OrderState


def process(actions: list[Action]) -> Outcome:
    """Run the roll-up's logic over `actions`, as the service does, then settle for good."""
    state = OrderState(order_id=ORDER)
    events: list[OrderEvent] = []
    milestones: list[str | None] = []
    for action in actions:
        now = T0 + timedelta(minutes=action.at)
        if action.change is not None:
            state = apply(state, action.change, STAGES)
        settled = settle(state, now, WINDOW)
        state, events = settled.state, events + settled.events
        milestones.append(milestone(state, WINDOW))
    settled = settle(state, FAR, WINDOW)
    milestones.append(milestone(settled.state, WINDOW))
    return Outcome(events + settled.events, milestones, settled.state)


def in_its_own_order(world: list[MemberChange]) -> Outcome:
    return process([Action((c.at - T0).total_seconds() / 60, i, c) for i, c in enumerate(world)])


def assert_safe(outcome: Outcome) -> None:
    ranks = [rank(m) for m in outcome.milestones]
    assert ranks == sorted(ranks), outcome.milestones
    kinds = [e.event_type for e in outcome.events]
    assert kinds.count("order.completed") == 1
    assert kinds.count("order.partially_delivered") <= 1
    ids = [e.event_id for e in outcome.events]
    assert len(ids) == len(set(ids))
    assert ids == [e.event_id for e in outcome.final.emitted]


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_any_processing_before_windows_close_tells_the_same_events(data: st.DataObject) -> None:
    # Given a world, and one way the stream might deliver it
    world = data.draw(worlds())
    actions = data.draw(processings(world, bounded=True))

    # When the roll-up processes it, and the world in its own order
    outcome = process(actions)
    reference = in_its_own_order(world)

    # Then the milestone never went back, completed came once, and the events are the same
    assert_safe(outcome)
    assert_safe(reference)
    assert outcome.events == reference.events
    assert canonical(outcome.final) == canonical(reference.final)


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_changes_arriving_after_their_window_still_cannot_break_the_order(
    data: st.DataObject,
) -> None:
    # Given a world processed with any delay (changes told in a later window than they
    # happened in)
    world = data.draw(worlds())
    actions = data.draw(processings(world, bounded=False))

    # When
    outcome = process(actions)

    # Then the milestone never moves back, completed comes once, no event is told twice, and
    # every member ends where the world left it
    assert_safe(outcome)
    final = outcome.events[-1] if outcome.events[-1].event_type == "order.completed" else None
    reference = in_its_own_order(world)
    last = next(e for e in reversed(reference.events) if e.event_type == "order.completed")
    assert {(m.waybill, m.standing) for m in reference.events[-1].members} >= {
        (m.waybill, m.standing) for m in last.members
    }
    assert final is None or final.total <= 4


def furthest_in_windows(world: list[MemberChange]) -> set[str]:
    """The milestone stages members newly stood at, each at its furthest in a window."""
    state = OrderState(order_id=ORDER)
    for item in world:
        state = apply(state, item, STAGES)
    high: dict[str, int] = {}
    found: set[str] = set()
    for closed in windows(state, WINDOW):
        furthest: dict[str, int] = {}
        for key, step in closed.steps:
            furthest[key] = max(furthest.get(key, -1), rank(step.stage))
        for key, reached in furthest.items():
            if reached > high.get(key, -1):
                high[key] = reached
                if reached >= rank("shipped"):
                    found.add(STAGE_ORDER[reached])
    return found


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_the_world_in_its_own_order_tells_every_stage_a_member_reached(
    data: st.DataObject,
) -> None:
    world = data.draw(worlds())

    outcome = in_its_own_order(world)

    # Every stage some member stood at when a window closed is told ("shipped" is not when
    # each box that reached it went further within the same window: a member that went past
    # a stage within the window is told about at the furthest stage it reached only)
    stages = {e.stage for e in outcome.events if isinstance(e, OrderStatusChanged)}
    assert furthest_in_windows(world) <= stages
    assert "delivered" in stages
    partial = [e for e in outcome.events if e.event_type == "order.partially_delivered"]
    assert len(partial) == 1
