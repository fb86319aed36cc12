"""Which events reach the customer, on which channel: configuration, loaded from data."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from trackwatch.errors import ConfigurationError
from trackwatch.logic.catalogue import StatusCatalogue
from trackwatch.models.events import (
    MilestoneStage,
    OrderStatusChanged,
    StatusChanged,
    Stuck,
    TopicEvent,
    Unstuck,
)
from trackwatch.models.notification import Channel, ChannelLog
from trackwatch.models.orders import stage_rank

#: Every event type but shipment.scan_added, which is never customer news.
NotifiableEventType = Literal[
    "shipment.status_changed",
    "shipment.ndr_raised",
    "shipment.stuck",
    "shipment.unstuck",
    "shipment.edd_changed",
    "shipment.invalid",
    "order.status_changed",
    "order.partially_delivered",
    "order.completed",
    "shipment.sla_breached",
    "shipment.delay_predicted",
]


class KindRule(BaseModel):
    """One customer-facing message kind and the events that make it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: NotifiableEventType
    #: For status_changed: the clickpost_status_codes that mean this kind.
    status_codes: frozenset[int] = frozenset()
    #: For order.status_changed: the stages that mean this kind.
    order_stages: frozenset[MilestoneStage] = frozenset()
    #: Sent at most once per shipment and channel (shipped, delivered).
    once_per_shipment: bool = False
    #: For a shipment in an order of several, the order's message says this instead (its
    #: siblings reaching the same stage together make one message).
    said_per_order: bool = False
    #: For stuck and unstuck: the reasons that make this kind (empty: any). Clickpost's
    #: flag only, by default: trackwatch's own no_scan_for goes to operations.
    reasons: frozenset[str] = frozenset()

    @model_validator(mode="after")
    def _codes_only_for_status_changes(self) -> Self:
        is_status = self.event_type == "shipment.status_changed"
        if is_status != bool(self.status_codes):
            raise ValueError("status_codes are required for status_changed kinds, and only there")
        is_order_status = self.event_type == "order.status_changed"
        if is_order_status != bool(self.order_stages):
            raise ValueError(
                "order_stages are required for order.status_changed kinds, and only there"
            )
        if self.said_per_order and not self.event_type.startswith("shipment."):
            raise ValueError("said_per_order is for a shipment's kinds")
        if self.reasons and self.event_type not in ("shipment.stuck", "shipment.unstuck"):
            raise ValueError("reasons are for stuck and unstuck kinds only")
        return self

    def takes(self, event: TopicEvent) -> bool:
        """Whether `event` (of this kind's type) makes this kind."""
        if self.status_codes:
            return (
                isinstance(event, StatusChanged)
                and event.clickpost_status_code in self.status_codes
            )
        if self.order_stages:
            return isinstance(event, OrderStatusChanged) and event.stage in self.order_stages
        if self.reasons and isinstance(event, Stuck | Unstuck):
            return event.reason in self.reasons
        return True


class ChannelRules(BaseModel):
    """The kinds one channel sends, and those that may ignore quiet hours."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kinds: frozenset[str]
    quiet_hours_bypass: frozenset[str] = frozenset()


class NotifyRules(BaseModel):
    """The whole configuration; validated so that every event maps to at most one kind."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kinds: dict[str, KindRule]
    channels: dict[Channel, ChannelRules]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for channel, rules in self.channels.items():
            unknown = (rules.kinds | rules.quiet_hours_bypass) - set(self.kinds)
            if unknown:
                raise ValueError(f"channel {channel} names unknown kinds {sorted(unknown)}")
        seen_codes: dict[int, str] = {}
        seen_stages: dict[str, str] = {}
        seen_types: dict[str, str] = {}
        for name, kind in self.kinds.items():
            for code in kind.status_codes:
                if code in seen_codes:
                    raise ValueError(f"status code {code} is in {seen_codes[code]} and {name}")
                seen_codes[code] = name
            for stage in kind.order_stages:
                if stage in seen_stages:
                    raise ValueError(f"order stage {stage} is in {seen_stages[stage]} and {name}")
                seen_stages[stage] = name
            if not kind.status_codes and not kind.order_stages:
                if kind.event_type in seen_types:
                    raise ValueError(
                        f"{kind.event_type} is both {seen_types[kind.event_type]} and {name}"
                    )
                seen_types[kind.event_type] = name
        return self

    def kind_of(self, event: TopicEvent, channel: Channel) -> str | None:
        """The kind of message `event` makes on `channel`, or None if the customer is not told."""
        rules = self.channels.get(channel)
        if rules is None:
            return None
        for name in sorted(rules.kinds):
            kind = self.kinds[name]
            if kind.event_type == event.event_type and kind.takes(event):
                return name
        return None

    def is_order_stage(self, kind: str) -> bool:
        """Whether `kind` tells an order's stage (order_shipped ...): its counts only rise, so
        it never flaps, and the repeat window does not apply to it."""
        return bool(self.kinds[kind].order_stages)

    def is_order_kind(self, kind: str) -> bool:
        """Whether `kind` is an order's message (told once for its boxes)."""
        return self.kinds[kind].event_type.startswith("order.")

    def said_per_order(self, kind: str) -> bool:
        """Whether an order of several says `kind` for its shipments (one message for them)."""
        return self.kinds[kind].said_per_order

    def bypasses_quiet_hours(self, kind: str, channel: Channel) -> bool:
        """Whether `kind` is sent on `channel` even inside quiet hours."""
        rules = self.channels.get(channel)
        return rules is not None and kind in rules.quiet_hours_bypass

    def once(self, kind: str) -> bool:
        """Whether `kind` is sent at most once per shipment and channel."""
        return self.kinds[kind].once_per_shipment

    @classmethod
    def from_json(cls, text: str, source: str, catalogue: StatusCatalogue) -> NotifyRules:
        """Parse and check a rules file; status codes must be in the catalogue."""
        try:
            rules = cls.model_validate_json(text)
        except ValidationError as exc:
            raise ConfigurationError(f"notification rules {source} are invalid: {exc}") from exc
        unknown = sorted(
            code
            for kind in rules.kinds.values()
            for code in kind.status_codes
            if not catalogue.is_known(code)
        )
        if unknown:
            raise ConfigurationError(
                f"notification rules {source} name status codes not in the catalogue: {unknown}"
            )
        return rules


def order_news(event: OrderStatusChanged, kind: str, log: ChannelLog) -> bool:
    """Whether an order's stage message is worth sending: the first of its kind ("1 of 3
    shipped"), or the one that brings every member still on its way to the stage ("3 of 3
    shipped"). Counts in between ("2 of 3") are left to the first and the last. A retry of
    the event the log last claimed always goes on (it may never have been sent)."""
    if kind not in log.sent_at or log.last_event_id == event.event_id:
        return True
    return event.milestone is not None and stage_rank(event.milestone) >= stage_rank(event.stage)
