"""The interfaces the services depend on; adapters implement them, tests fake them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from trackwatch.models.events import ShipmentEvent
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.messages import PollRequest
from trackwatch.models.record import ShipmentRecord, StateChange


class ShipmentStore(Protocol):
    """The shipments table."""

    def get_many(
        self, keys: Iterable[ShipmentKey], *, consistent: bool = False
    ) -> dict[ShipmentKey, ShipmentRecord]:
        """The stored records of `keys`; absent keys are left out."""
        ...

    def commit(self, change: StateChange) -> None:
        """Write a poll's outcome if the version still matches; else StaleStateError."""
        ...

    def due(self, due_keys: Sequence[str]) -> list[ShipmentKey]:
        """The shipments in the given due-index partitions."""
        ...

    def active(self) -> list[ShipmentKey]:
        """Every shipment still being tracked."""
        ...


class PollQueueWriter(Protocol):
    """Where poll requests go."""

    def send(self, requests: Sequence[PollRequest]) -> None:
        """Enqueue every request, or raise."""
        ...


class EventPublisher(Protocol):
    """Where events go."""

    def publish(self, events: Sequence[ShipmentEvent]) -> None:
        """Publish every event, or raise PublishError."""
        ...
