"""In-memory stand-ins for the delay ports; type-checked against the Protocols they replace."""

from __future__ import annotations

from collections.abc import Sequence

from trackwatch.errors import StorageError
from trackwatch.models.delays import ThresholdTable
from trackwatch.models.events import ShipmentEvent
from trackwatch.models.messages import InboxMessage
from trackwatch.ports import Inbox, ThresholdStore


class MemoryThresholds:
    """The thresholds table as one attribute; `fail` makes it unreadable."""

    def __init__(self, table: ThresholdTable | None = None) -> None:
        self.table = table
        self.loads = 0
        self.fail = False

    def load(self) -> ThresholdTable | None:
        self.loads += 1
        if self.fail:
            raise StorageError("DynamoDB GetItem of the delay thresholds failed: Boom")
        return self.table

    def save(self, table: ThresholdTable) -> None:
        self.table = table


class MemoryInbox:
    """A queue of events: received messages stay until deleted."""

    def __init__(self, events: Sequence[ShipmentEvent | None] = ()) -> None:
        self.messages = {f"r{i}": event for i, event in enumerate(events)}
        self.deleted: list[str] = []

    def receive(self, deadline: float | None = None) -> list[InboxMessage]:
        return [InboxMessage(receipt=r, event=e) for r, e in self.messages.items()]

    def delete(self, receipts: Sequence[str]) -> None:
        for receipt in receipts:
            self.messages.pop(receipt)
            self.deleted.append(receipt)


def _conforms() -> None:
    # mypy checks that the fakes satisfy the ports they stand in for.
    _thresholds: ThresholdStore = MemoryThresholds()
    _inbox: Inbox = MemoryInbox()
