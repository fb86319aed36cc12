"""The event contract subscribers rely on (schema_version 1).

Every event carries the same envelope; `event_type` selects its own fields.
`event_id` is deterministic — a UUIDv5 of the shipment and the change — so a
change detected twice, or delivered twice, always has the same id.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal, TypeIs

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

SCHEMA_VERSION: Literal[1] = 1
#: Where an event's occurred_at comes from.
TimeQuality = Literal["carrier", "detected", "unreadable", "future"]
#: Why a shipment is stuck: Clickpost's own flag, or no new scan for longer than its threshold.
StuckReason = Literal["clickpost_flag", "no_scan_for"]
#: Why a stuck shipment is not any more: it moved (a newer scan, a new status, the journey
#: ended), or Clickpost cleared its flag.
UnstuckReason = Literal["clickpost_flag", "moved"]
#: Where a dwell threshold comes from: learned from the event log, or the rules data file.
ThresholdSource = Literal["learned", "rule"]
#: Where a promised delivery date comes from.
PromiseSource = Literal["registration", "courier_partner_edd", "clickpost_sla"]
# A fixed namespace makes event ids reproducible across deployments and runs.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c1f9e-3a5e-4d2b-9a43-2b9c4f4e7d10")


def event_id(cp_id: int, waybill: str, event_type: str, change: str) -> str:
    """The deterministic id of one change of one shipment."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{cp_id}|{waybill}|{event_type}|{change}"))


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(description="Deterministic id: the same change always has the same id.")
    schema_version: Literal[1] = SCHEMA_VERSION
    waybill: str
    cp_id: int
    order_id: str | None = Field(description="The merchant's order number, when known.")
    courier_name: str | None
    occurred_at: AwareDatetime = Field(
        description=(
            "When it happened, per the carrier; when the carrier's time is absent, "
            "unreadable or in the future, when trackwatch noticed it (see time_quality)."
        )
    )
    detected_at: AwareDatetime = Field(description="When trackwatch noticed it.")
    time_quality: TimeQuality = Field(
        default="carrier",
        description=(
            "Where occurred_at comes from: 'carrier' (the scan's own time), 'detected' (the "
            "change has no carrier time, or the carrier gave none), 'unreadable' (the carrier "
            "sent a time that cannot be read) or 'future' (more than the margin ahead of "
            "trackwatch's clock); for the last two, reported_time holds what was sent."
        ),
    )
    reported_time: str | None = Field(
        default=None,
        description="The carrier's time as sent (at most 64 characters), when not usable.",
    )
    recorded_at: AwareDatetime | None = Field(
        default=None,
        description=(
            "When Clickpost recorded the scan or status behind this event (its created_at); "
            "null when Clickpost gives no such time (stuck, unstuck, EDD and invalid events, "
            "or a created_at that cannot be read or lies in the future)."
        ),
    )
    published_at: AwareDatetime | None = Field(
        default=None,
        description=(
            "When trackwatch published this event (a replay publishes it again, with a new "
            "published_at and the same event_id); null only inside trackwatch, before publishing."
        ),
    )


class StatusFields(BaseModel):
    """A Clickpost status, as carried by scan and status events."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    clickpost_status_code: int | None
    clickpost_status_description: str | None
    clickpost_status_bucket: int | None
    clickpost_status_bucket_description: str | None
    status: str | None = Field(description="The carrier's own status text.")
    location: str | None
    remark: str | None


class ScanAdded(_Event):
    """A checkpoint trackwatch had not seen before."""

    event_type: Literal["shipment.scan_added"] = "shipment.scan_added"
    checkpoint_id: int | str
    tracking_id: int | str | None
    scan: StatusFields
    is_terminal: bool


class StatusChanged(_Event):
    """The clickpost_status_bucket of the current status changed."""

    event_type: Literal["shipment.status_changed"] = "shipment.status_changed"
    from_bucket: int | None
    from_bucket_description: str | None
    to_bucket: int | None
    to_bucket_description: str | None
    clickpost_status_code: int | None
    clickpost_status_description: str | None
    status: str | None
    location: str | None
    remark: str | None
    is_terminal: bool


class NdrRaised(_Event):
    """A new failed-delivery scan (a non-delivery report)."""

    event_type: Literal["shipment.ndr_raised"] = "shipment.ndr_raised"
    checkpoint_id: int | str
    attempt: int = Field(ge=1, description="1 for the first failed delivery, 2 for the second...")
    ndr_bucket_code: int | None
    ndr_description: str | None
    location: str | None
    remark: str | None


class Stuck(_Event):
    """The shipment is stuck: Clickpost flagged it, or it had no new scan for too long."""

    event_type: Literal["shipment.stuck"] = "shipment.stuck"
    clickpost_status_code: int | None
    clickpost_status_bucket: int | None
    location: str | None
    reason: StuckReason = Field(
        default="clickpost_flag",
        description=(
            "'clickpost_flag': Clickpost's additional.is_stuck turned true; 'no_scan_for': no "
            "new scan for longer than the threshold of the current status (threshold_hours)."
        ),
    )
    no_scan_for_hours: float | None = Field(
        default=None,
        description=(
            "Business hours (the destination's calendar) since last_scan_at, when trackwatch "
            "noticed; null when not computed (trackwatch's own checks off)."
        ),
    )
    threshold_hours: float | None = Field(
        default=None, description="The business hours the current status may go without a scan."
    )
    threshold_source: ThresholdSource | None = Field(
        default=None,
        description="'learned' (the daily p90 of this carrier and status) or 'rule' (data file).",
    )
    last_scan_at: AwareDatetime | None = Field(
        default=None, description="When the shipment last moved: its newest scan."
    )


class Unstuck(_Event):
    """A stuck shipment is not stuck any more."""

    event_type: Literal["shipment.unstuck"] = "shipment.unstuck"
    clickpost_status_code: int | None
    clickpost_status_bucket: int | None
    location: str | None
    reason: UnstuckReason = Field(
        default="clickpost_flag",
        description=(
            "'moved': a newer scan or status arrived (or the journey ended); 'clickpost_flag': "
            "Clickpost cleared its stuck flag."
        ),
    )


class Edd(BaseModel):
    """The expected delivery: the carrier's date and Clickpost's SLA days."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    courier_partner_edd: str | None = None
    min_sla: int | None = None
    max_sla: int | None = None
    exact_sla: int | None = None


class EddChanged(_Event):
    """The expected delivery changed after first sight."""

    event_type: Literal["shipment.edd_changed"] = "shipment.edd_changed"
    previous: Edd
    current: Edd


class Invalid(_Event):
    """Clickpost answered valid: false for this AWB."""

    event_type: Literal["shipment.invalid"] = "shipment.invalid"


class SlaBreached(_Event):
    """A shipment still on its way passed its promised delivery date."""

    event_type: Literal["shipment.sla_breached"] = "shipment.sla_breached"
    promised_delivery_date: date = Field(
        description="The promise it missed (the end of this day in the destination's zone)."
    )
    promise_source: PromiseSource = Field(
        description=(
            "'registration' (promised_delivery_date as registered), 'courier_partner_edd' "
            "(the carrier's date) or 'clickpost_sla' (Clickpost's SLA days from the first scan)."
        )
    )
    clickpost_status_code: int | None
    clickpost_status_bucket: int | None
    location: str | None


class DelayPredicted(_Event):
    """The time a shipment usually needs from its current status says it will miss its promise."""

    event_type: Literal["shipment.delay_predicted"] = "shipment.delay_predicted"
    promised_delivery_date: date
    promise_source: PromiseSource
    predicted_delivery_date: date = Field(
        description="When it is now expected, in the destination's zone."
    )
    expected_remaining_hours: float = Field(
        description=(
            "Business hours this carrier usually takes from the current status to delivery "
            "(the median learned from the event log)."
        )
    )
    status_since: AwareDatetime | None = Field(
        default=None, description="When the shipment entered its current status."
    )
    clickpost_status_code: int | None
    clickpost_status_bucket: int | None
    location: str | None


#: Every kind of shipment event (ShipmentEvent and TopicEvent hold them all).
_ShipmentEvents = (
    ScanAdded
    | StatusChanged
    | NdrRaised
    | Stuck
    | Unstuck
    | EddChanged
    | Invalid
    | SlaBreached
    | DelayPredicted
)
ShipmentEvent = Annotated[_ShipmentEvents, Field(discriminator="event_type")]
EVENT_TYPES: tuple[type[_Event], ...] = (
    ScanAdded,
    StatusChanged,
    NdrRaised,
    Stuck,
    Unstuck,
    EddChanged,
    Invalid,
    SlaBreached,
    DelayPredicted,
)
EVENT_ADAPTER: TypeAdapter[ShipmentEvent] = TypeAdapter(ShipmentEvent)
EVENT_LIST_ADAPTER: TypeAdapter[list[ShipmentEvent]] = TypeAdapter(list[ShipmentEvent])


# --------------------------------------------------------------------------- orders

#: How far a shipment has come on its way to the customer, in order. A shipment's stage
#: never goes back: it is the furthest any of its statuses reached.
Stage = Literal["placed", "shipped", "out_for_delivery", "delivered"]
STAGES: tuple[Stage, ...] = ("placed", "shipped", "out_for_delivery", "delivered")
#: The stages an order announces when its members reach them.
MilestoneStage = Literal["shipped", "out_for_delivery", "delivered"]
MILESTONE_STAGES: tuple[MilestoneStage, ...] = ("shipped", "out_for_delivery", "delivered")
#: Where a member stands now: on its way (a stage), on its way back, or ended.
Standing = Literal[
    "placed",
    "shipped",
    "out_for_delivery",
    "delivered",
    "returning",
    "returned",
    "lost",
    "cancelled",
    "damaged",
    "expired",
    "ended",
]


def order_event_id(order_id: str, event_type: str, change: str = "") -> str:
    """The deterministic id of one change of one order."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"order|{order_id}|{event_type}|{change}"))


class OrderMember(BaseModel):
    """One shipment of an order, where it stands when the event was settled."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cp_id: int
    waybill: str
    standing: Standing = Field(
        description=(
            "placed, shipped, out_for_delivery or delivered; returning (on its way back to "
            "the seller); or how it ended otherwise: returned, lost, cancelled, damaged, "
            "expired, ended (another terminal status)."
        )
    )
    stage: Stage = Field(description="The furthest it came: it never goes back.")
    clickpost_status_code: int | None
    clickpost_status_description: str | None


class MemberRef(BaseModel):
    """A shipment named by its carrier and waybill."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cp_id: int
    waybill: str


class _OrderEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(description="Deterministic id: the same change always has the same id.")
    schema_version: Literal[1] = SCHEMA_VERSION
    order_id: str
    occurred_at: AwareDatetime = Field(
        description="When the latest member change this event sums up was written."
    )
    detected_at: AwareDatetime = Field(
        description="The end of the collection window that settled it (OrderWindowMinutes)."
    )
    milestone: Stage | None = Field(
        description=(
            "The order's milestone: the stage of its least advanced member still on its way "
            "(members returning or ended otherwise do not hold it back). Never moves backwards."
        )
    )
    total: int = Field(ge=1, description="Shipments in the order.")
    counts: dict[Standing, int] = Field(description="Members by standing.")
    members: tuple[OrderMember, ...]


class OrderStatusChanged(_OrderEvent):
    """Members of the order reached a stage: `reached` of `total` now have."""

    event_type: Literal["order.status_changed"] = "order.status_changed"
    stage: MilestoneStage
    reached: int = Field(ge=1, description="Members that have reached `stage` (or gone past).")
    newly_reached: tuple[MemberRef, ...] = Field(
        description="The members that reached `stage` in this window."
    )


class OrderPartiallyDelivered(_OrderEvent):
    """Some members were delivered and some will not be (on their way back, or ended)."""

    event_type: Literal["order.partially_delivered"] = "order.partially_delivered"
    delivered: int = Field(ge=1)


class OrderCompleted(_OrderEvent):
    """Every member's journey has ended; `members` says how each ended."""

    event_type: Literal["order.completed"] = "order.completed"
    delivered: int = Field(ge=0)


OrderEvent = Annotated[
    OrderStatusChanged | OrderPartiallyDelivered | OrderCompleted,
    Field(discriminator="event_type"),
]
ORDER_EVENT_TYPES: tuple[type[_OrderEvent], ...] = (
    OrderStatusChanged,
    OrderPartiallyDelivered,
    OrderCompleted,
)
ORDER_EVENT_ADAPTER: TypeAdapter[OrderEvent] = TypeAdapter(OrderEvent)

#: Anything published on the events topic: a shipment's event or an order's.
TopicEvent = Annotated[
    _ShipmentEvents | OrderStatusChanged | OrderPartiallyDelivered | OrderCompleted,
    Field(discriminator="event_type"),
]
TOPIC_EVENT_ADAPTER: TypeAdapter[TopicEvent] = TypeAdapter(TopicEvent)
TOPIC_EVENT_LIST_ADAPTER: TypeAdapter[list[TopicEvent]] = TypeAdapter(list[TopicEvent])


def is_order_event(
    event: TopicEvent,
) -> TypeIs[OrderStatusChanged | OrderPartiallyDelivered | OrderCompleted]:
    """Whether `event` is an order's (else a shipment's)."""
    return isinstance(event, _OrderEvent)


def event_type_name(model: type[_Event] | type[_OrderEvent]) -> str:
    """The event_type literal of an event class."""
    default = model.model_fields["event_type"].default
    assert isinstance(default, str)
    return default


def routing_attributes(event: TopicEvent) -> dict[str, str | int | bool]:
    """The attributes subscribers filter on without parsing the body."""
    if is_order_event(event):
        return order_routing_attributes(event)
    attributes: dict[str, str | int | bool] = {
        "event_type": event.event_type,
        "cp_id": event.cp_id,
        "schema_version": event.schema_version,
    }
    code: int | None
    bucket: int | None
    terminal: bool | None
    match event:
        case StatusChanged():
            code, bucket, terminal = event.clickpost_status_code, event.to_bucket, event.is_terminal
        case ScanAdded():
            code, bucket = event.scan.clickpost_status_code, event.scan.clickpost_status_bucket
            terminal = event.is_terminal
        case Stuck() | Unstuck():
            code, bucket, terminal = (
                event.clickpost_status_code,
                event.clickpost_status_bucket,
                None,
            )
            # Lets a subscription take, say, only trackwatch's own stuck checks.
            attributes["reason"] = event.reason
        case SlaBreached() | DelayPredicted():
            code, bucket, terminal = (
                event.clickpost_status_code,
                event.clickpost_status_bucket,
                None,
            )
        case _:
            code = bucket = terminal = None
    if code is not None:
        attributes["clickpost_status_code"] = code
    if bucket is not None:
        attributes["clickpost_status_bucket"] = bucket
    if terminal is not None:
        attributes["is_terminal"] = terminal
    return attributes


def order_routing_attributes(event: _OrderEvent) -> dict[str, str | int | bool]:
    """An order event's attributes: its type, its size, and for status_changed its stage."""
    attributes: dict[str, str | int | bool] = {
        "event_type": event_type_name(type(event)),
        "schema_version": event.schema_version,
        "order_members": event.total,
    }
    if isinstance(event, OrderStatusChanged):
        attributes["order_stage"] = event.stage
    return attributes


def occurred(value: datetime | None, fallback: datetime) -> datetime:
    """A status's timestamp, or `fallback` when the carrier gave none."""
    return value if value is not None else fallback


def events_json_schema() -> dict[str, object]:
    """The JSON Schema of every event (shipments' and orders'), as committed in
    docs/events.schema.json."""
    schema = TOPIC_EVENT_ADAPTER.json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://trackwatch.dev/schemas/shipment-event/v1.json"
    schema["title"] = "trackwatch shipment or order event (schema_version 1)"
    return schema
