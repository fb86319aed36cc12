"""What the orders API and the command line show of one order: output models."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from trackwatch.models.events import Stage, Standing


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class OrderMemberView(_View):
    """One shipment of the order, as the roll-up last saw it."""

    cp_id: int
    waybill: str
    standing: Standing = Field(
        description=(
            "placed, shipped, out_for_delivery, delivered; returning (on its way back to "
            "the seller); or how it ended otherwise: returned, lost, cancelled, damaged, "
            "expired, ended."
        )
    )
    stage: Stage = Field(description="The furthest stage it reached: it never goes back.")
    clickpost_status_code: int | None
    clickpost_status_description: str | None
    clickpost_status_bucket: int | None
    clickpost_status_bucket_description: str | None
    is_terminal: bool
    joined_at: AwareDatetime | None = Field(description="When it joined this order.")


class OrderTimelineEntry(_View):
    """One line of the order's timeline: a member's step, or an order event told."""

    at: AwareDatetime
    what: Literal[
        "joined",
        "status",
        "left",
        "order.status_changed",
        "order.partially_delivered",
        "order.completed",
    ]
    cp_id: int | None = None
    waybill: str | None = None
    clickpost_status_code: int | None = None
    clickpost_status_description: str | None = None
    stage: Stage | None = None
    reached: int | None = Field(default=None, description="For order.status_changed.")
    total: int | None = Field(default=None, description="Members when an event was told.")
    event_id: str | None = None


class OrderView(_View):
    """An order: the shipments that share its order_id, across carriers."""

    order_id: str
    total: int = Field(description="Shipments in the order now.")
    milestone: Stage | None = Field(
        description=(
            "The stage of the least advanced member still on its way, as told in order "
            "events (members returning or ended otherwise do not hold it back); never moves "
            "backwards."
        )
    )
    complete: bool = Field(description="Whether every member's journey has ended.")
    counts: dict[Standing, int] = Field(description="Members by standing, now.")
    members: list[OrderMemberView]
    told_until: AwareDatetime | None = Field(
        description="Member changes up to here are told in order events; later ones wait "
        "for their window (OrderWindowMinutes) to close."
    )
    timeline: list[OrderTimelineEntry] = Field(
        description="Each member's steps and each order event, oldest first."
    )
