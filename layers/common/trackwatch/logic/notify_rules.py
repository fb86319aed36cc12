"""Which events reach the customer, on which channel: configuration, loaded from data."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from trackwatch.errors import ConfigurationError
from trackwatch.logic.catalogue import StatusCatalogue
from trackwatch.models.events import ShipmentEvent, StatusChanged, Stuck, Unstuck
from trackwatch.models.notification import Channel

#: Every event type but shipment.scan_added, which is never customer news.
NotifiableEventType = Literal[
    "shipment.status_changed",
    "shipment.ndr_raised",
    "shipment.stuck",
    "shipment.unstuck",
    "shipment.edd_changed",
    "shipment.invalid",
    "shipment.sla_breached",
    "shipment.delay_predicted",
]


class KindRule(BaseModel):
    """One customer-facing message kind and the events that make it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: NotifiableEventType
    #: For status_changed: the clickpost_status_codes that mean this kind.
    status_codes: frozenset[int] = frozenset()
    #: Sent at most once per shipment and channel (shipped, delivered).
    once_per_shipment: bool = False
    #: For stuck and unstuck: the reasons that make this kind (empty: any). Clickpost's
    #: flag only, by default: trackwatch's own no_scan_for goes to operations.
    reasons: frozenset[str] = frozenset()

    @model_validator(mode="after")
    def _codes_only_for_status_changes(self) -> Self:
        is_status = self.event_type == "shipment.status_changed"
        if is_status != bool(self.status_codes):
            raise ValueError("status_codes are required for status_changed kinds, and only there")
        if self.reasons and self.event_type not in ("shipment.stuck", "shipment.unstuck"):
            raise ValueError("reasons are for stuck and unstuck kinds only")
        return self

    def takes(self, event: ShipmentEvent) -> bool:
        """Whether `event` (of this kind's type) makes this kind."""
        if self.status_codes:
            return (
                isinstance(event, StatusChanged)
                and event.clickpost_status_code in self.status_codes
            )
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
        seen_types: dict[str, str] = {}
        for name, kind in self.kinds.items():
            for code in kind.status_codes:
                if code in seen_codes:
                    raise ValueError(f"status code {code} is in {seen_codes[code]} and {name}")
                seen_codes[code] = name
            if not kind.status_codes:
                if kind.event_type in seen_types:
                    raise ValueError(
                        f"{kind.event_type} is both {seen_types[kind.event_type]} and {name}"
                    )
                seen_types[kind.event_type] = name
        return self

    def kind_of(self, event: ShipmentEvent, channel: Channel) -> str | None:
        """The kind of message `event` makes on `channel`, or None if the customer is not told."""
        rules = self.channels.get(channel)
        if rules is None:
            return None
        for name in sorted(rules.kinds):
            kind = self.kinds[name]
            if kind.event_type == event.event_type and kind.takes(event):
                return name
        return None

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
