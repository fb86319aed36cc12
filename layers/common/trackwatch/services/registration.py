"""Registering shipments: the one path the API, IngestQueue and the CLI import share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from trackwatch.errors import TrackwatchError
from trackwatch.logic.registration import plan_registration
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.policy import Cadence
from trackwatch.models.record import ShipmentRecord
from trackwatch.models.registration import Outcome, Registration, Rejected
from trackwatch.ports import RegistrationStore
from trackwatch.services.conflicts import retry_on_conflict

#: Shipments one BatchGetItem reads (DynamoDB's limit).
READ_BATCH = 100


@dataclass(frozen=True)
class EntryResult:
    """What became of one entry of a batch (or one CSV row)."""

    index: int
    outcome: Outcome | None
    key: ShipmentKey | None = None
    #: Whether the shipment is being polled (a stopped one stays stopped).
    tracked: bool | None = None
    rejected: Rejected | None = None
    #: A failure that was not the entry's fault (storage); the entry may be retried.
    error: TrackwatchError | None = None


def register(
    registration: Registration,
    store: RegistrationStore,
    now: datetime,
    cadence: Cadence,
    *,
    read: tuple[ShipmentRecord | None] | None = None,
) -> tuple[Outcome, bool]:
    """Create or update one shipment (no write if nothing changes); (outcome, tracked).

    `read` is the stored record, if the caller already read it (consistently); a
    conflicting write re-reads it.
    """

    def attempt(n: int) -> tuple[Outcome, bool]:
        record = read[0] if read is not None and n == 0 else store.get(registration.key)
        write = plan_registration(record, registration, now, cadence)
        if write is None:
            assert record is not None
            return Outcome.UNCHANGED, record.active
        store.save_registration(write)
        if write.creates:
            return Outcome.CREATED, True
        assert record is not None
        return Outcome.UPDATED, record.active

    return retry_on_conflict(attempt, registration.key)


def register_all(
    entries: Sequence[Registration | Rejected],
    store: RegistrationStore,
    now: datetime,
    cadence: Cadence,
    *,
    workers: int = 8,
    on_done: Callable[[EntryResult], None] | None = None,
    exclusive: bool = False,
) -> list[EntryResult]:
    """Register every valid entry, report every rejected one; results in entry order.

    Entries for different shipments run in parallel; entries for one shipment run
    in their order, so the last of them wins as it would one after the other.
    Each worker reads its shipments with one BatchGetItem per 100, so an import
    that changes nothing costs a read per hundred rows and no write.

    `exclusive`: the caller is the only writer of the table (a fresh local stack,
    loaded before it starts). Shipments that read found absent are then created with
    batched writes (`bulk_create`); every other entry takes the conditional path.
    """
    batch = _Batch(entries, store, now, cadence, on_done or (lambda _: None), exclusive)
    groups: dict[ShipmentKey, list[int]] = {}
    for index, entry in enumerate(entries):
        if isinstance(entry, Rejected):
            batch.report(EntryResult(index, Outcome.REJECTED, rejected=entry))
        else:
            groups.setdefault(entry.key, []).append(index)
    if groups:
        pending = list(groups.items())
        size = max(1, min(READ_BATCH, -(-len(pending) // workers)))
        chunks = [pending[i : i + size] for i in range(0, len(pending), size)]
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(chunks)))) as pool:
            for future in [pool.submit(batch.run, chunk) for chunk in chunks]:
                future.result()
    return [r for r in batch.results if r is not None]


class _Batch:
    """One `register_all` call: its entries, where results go, and one chunk's work."""

    def __init__(
        self,
        entries: Sequence[Registration | Rejected],
        store: RegistrationStore,
        now: datetime,
        cadence: Cadence,
        done: Callable[[EntryResult], None],
        exclusive: bool,
    ) -> None:
        self.entries = entries
        self.store = store
        self.now = now
        self.cadence = cadence
        self.done = done
        self.exclusive = exclusive
        self.results: list[EntryResult | None] = [None] * len(entries)

    def report(self, result: EntryResult) -> None:
        self.results[result.index] = result
        self.done(result)

    def run(self, chunk: list[tuple[ShipmentKey, list[int]]]) -> None:
        """Read the chunk's shipments at once, then register its entries in order."""
        try:
            known: dict[ShipmentKey, ShipmentRecord] | None = self.store.get_many(
                [key for key, _ in chunk], consistent=True
            )
        except TrackwatchError:
            known = None  # read one by one instead; a lasting failure shows per entry
        created = self._bulk_create(chunk, known) if self.exclusive and known is not None else set()
        for key, indices in chunk:
            for position, index in enumerate(indices):
                if position == 0 and key in created:
                    continue
                # Only the first entry of a shipment may use the batch read: it may write.
                read = (known.get(key),) if known is not None and position == 0 else None
                self.report(self._one(index, read))

    def _one(self, index: int, read: tuple[ShipmentRecord | None] | None) -> EntryResult:
        entry = self.entries[index]
        assert isinstance(entry, Registration)
        try:
            outcome, tracked = register(entry, self.store, self.now, self.cadence, read=read)
            return EntryResult(index, outcome, key=entry.key, tracked=tracked)
        except TrackwatchError as exc:
            return EntryResult(index, None, key=entry.key, error=exc)

    def _bulk_create(
        self,
        chunk: list[tuple[ShipmentKey, list[int]]],
        known: dict[ShipmentKey, ShipmentRecord],
    ) -> set[ShipmentKey]:
        """Create the chunk's absent shipments (each from its first entry) in batches;
        returns the keys created. A failed batch leaves them to the conditional path."""
        firsts: list[tuple[int, Registration]] = []
        for key, indices in chunk:
            entry = self.entries[indices[0]]
            if key not in known and isinstance(entry, Registration):
                firsts.append((indices[0], entry))
        writes = [plan_registration(None, entry, self.now, self.cadence) for _, entry in firsts]
        if not writes:
            return set()
        try:
            self.store.bulk_create([w for w in writes if w is not None])
        except TrackwatchError:
            return set()
        for index, entry in firsts:
            self.report(EntryResult(index, Outcome.CREATED, key=entry.key, tracked=True))
        return {entry.key for _, entry in firsts}


class RegistrationService:
    """Registers shipments: the one path the API, IngestQueue and the CLI import share."""

    def __init__(
        self, store: RegistrationStore, cadence: Cadence, clock: Callable[[], datetime]
    ) -> None:
        self._store = store
        self._cadence = cadence
        self._clock = clock

    def register(
        self,
        entries: Sequence[Registration | Rejected],
        *,
        workers: int = 8,
        on_done: Callable[[EntryResult], None] | None = None,
        exclusive: bool = False,
    ) -> list[EntryResult]:
        """Register the valid entries; results (rejections included) in entry order.
        `exclusive`: see `register_all`."""
        return register_all(
            entries,
            self._store,
            self._clock(),
            self._cadence,
            workers=workers,
            on_done=on_done,
            exclusive=exclusive,
        )
