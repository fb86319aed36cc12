"""Orders: the shipments that share an order_id, rolled up into one small item.

An order's item holds, per member, the steps of its journey that matter to the order
(its stage, its standing, Clickpost's status), each tagged with the shipment's `version`
and the time of the write that made it: enough to replay the order in the order things
happened, whatever order the roll-up saw them in. Nothing here is personal data.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from trackwatch.models.events import (
    MILESTONE_STAGES,
    STAGES,
    MilestoneStage,
    OrderEvent,
    Stage,
    Standing,
)
from trackwatch.models.keys import ShipmentKey

__all__ = [
    "ENDED",
    "MILESTONE_STAGES",
    "STAGES",
    "UNDELIVERABLE",
    "EmittedEvent",
    "MemberChange",
    "MemberStatus",
    "MemberStep",
    "MilestoneStage",
    "OrderRecord",
    "OrderState",
    "Stage",
    "Standing",
    "stage_rank",
]

#: Standings in which a member will not reach the customer (on its way back, or ended
#: otherwise than delivered).
UNDELIVERABLE: frozenset[str] = frozenset(
    {"returning", "returned", "lost", "cancelled", "damaged", "expired", "ended"}
)
#: Standings that end a member's journey.
ENDED: frozenset[str] = frozenset(
    {"delivered", "returned", "lost", "cancelled", "damaged", "expired", "ended"}
)


def stage_rank(stage: Stage) -> int:
    """0 for placed ... 3 for delivered."""
    return STAGES.index(stage)


class MemberStatus(BaseModel):
    """A shipment's current Clickpost status, as the order keeps it."""

    model_config = ConfigDict(frozen=True)

    clickpost_status_code: int | None = None
    clickpost_status_description: str | None = None
    clickpost_status_bucket: int | None = None
    clickpost_status_bucket_description: str | None = None
    is_terminal: bool = False


class MemberChange(BaseModel):
    """One write of a shipment, as the roll-up sees it: which order it is in after the write
    (and was in before), its status, its version and when the write happened."""

    model_config = ConfigDict(frozen=True)

    key: ShipmentKey
    #: The shipment's version after the write: a member's steps are ordered by it.
    version: int = Field(ge=0)
    #: When the write happened: the poll that detected the change (its events' detected_at),
    #: the registration, or (for other writes) when the roll-up read it.
    at: AwareDatetime
    order_id: str | None
    previous_order_id: str | None = None
    status: MemberStatus | None = None


class MemberStep(BaseModel):
    """One step of a member's journey within one order."""

    model_config = ConfigDict(frozen=True)

    version: int = Field(ge=0)
    at: AwareDatetime
    #: False: the shipment left the order with this write (its order_id changed or cleared).
    in_order: bool = True
    #: The stage this status means, and where it leaves the member (None: a status the stage
    #: table does not know, which leaves the member where it stood). Decided when the step is
    #: taken, so that replaying a settled window never changes with a newer stage table.
    stage: Stage = "placed"
    standing: Standing | None = "placed"
    status: MemberStatus = Field(default_factory=MemberStatus)


class EmittedEvent(BaseModel):
    """An order event already published, as the order's item remembers it (its timeline)."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    event_type: str
    #: The end of the window that settled it (the event's detected_at).
    at: AwareDatetime
    stage: MilestoneStage | None = None
    reached: int | None = None
    total: int


class OrderState(BaseModel):
    """What the order's item holds (besides its version)."""

    model_config = ConfigDict(frozen=True)

    order_id: str
    #: pk ("<cp_id>#<waybill>") → the member's steps, by version.
    members: dict[str, tuple[MemberStep, ...]] = Field(default_factory=dict)
    #: Windows that end at or before this moment are settled: their events are out, and a
    #: step that arrives late is counted from here on (never in a window already told).
    settled_until: AwareDatetime | None = None
    emitted: tuple[EmittedEvent, ...] = ()


class OrderRecord(BaseModel):
    """One order's item: its state, the version its conditional writes check, and the settle
    tick already asked for."""

    model_config = ConfigDict(frozen=True)

    state: OrderState
    version: int = Field(ge=0)
    #: The end of the open window a settle tick was queued for (None: none queued).
    settle_at: AwareDatetime | None = None
    #: Members in the order now (kept beside the state, so that a notifier reads one number).
    member_count: int = 0
    #: Events written with the state that settled them and not yet known to be published:
    #: whoever next handles the order publishes them (again, with the same ids, if need be).
    pending: tuple[OrderEvent, ...] = ()
    #: Epoch second after which DynamoDB may delete the item (its last change + retention).
    expires_at: int | None = None


class SettleRequest(BaseModel):
    """A settle tick: close the order's windows that have ended by `settle_at`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    order_id: str = Field(min_length=1)
    settle_at: AwareDatetime
