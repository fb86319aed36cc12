"""What `trackwatch local` tracks: a user's CSV, checked and registered without holding it.

The file is read twice, a row at a time: once to check every row before anything
starts (so a bad row is an error naming its line, and nothing is registered), once to
register the rows a thousand at a time into the fresh stack. Only the first rows'
keys are kept (for the summary), so a file of any length fits in little memory.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from trackwatch.config import Settings
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.registration import Registration, Rejected
from trackwatch.services.registration import EntryResult, RegistrationService
from trackwatch_cli.shipments_cli import CsvError, iter_rows

#: Rows registered per call (each call reads its shipments in hundreds, writes in 25s).
REGISTER_CHUNK = 1000
#: Bad rows named in the error; the rest are counted.
BAD_ROWS_SHOWN = 20
#: Shipments whose keys are kept for the summary.
KEPT_KEYS = 50


class LocalInputError(Exception):
    """Bad input to `trackwatch local`; the message names the problem."""


def default_languages() -> frozenset[str]:
    """The template's default languages: the CSV is checked before the stack exists."""
    return Settings({}).registration.languages


@dataclass(frozen=True)
class CsvCheck:
    """A checked CSV: how many rows, and the first shipment (for a probe call)."""

    path: Path
    rows: int
    first: ShipmentKey


def check_shipments_csv(path: Path, languages: frozenset[str] | None = None) -> CsvCheck:
    """Every row of FILE.csv checked by the rules of `trackwatch shipments import`; any bad
    row is a LocalInputError naming its line, field and rule."""
    languages = languages or default_languages()
    rows = 0
    first: ShipmentKey | None = None
    bad: list[str] = []
    bad_count = 0
    try:
        for row in iter_rows(path, languages):
            rows += 1
            if isinstance(row.entry, Rejected):
                bad_count += 1
                if len(bad) < BAD_ROWS_SHOWN:
                    problems = "; ".join(f"{p.field}: {p.rule}" for p in row.entry.problems)
                    bad.append(f"{path}, line {row.line}: {problems}")
            elif first is None:
                first = row.entry.key
    except CsvError as exc:
        raise LocalInputError(str(exc)) from exc
    if bad:
        more = bad_count - len(bad)
        raise LocalInputError("\n".join(bad + ([f"... and {more:,} more"] if more else [])))
    if first is None:
        raise LocalInputError(f"{path}: no shipments in the file")
    return CsvCheck(path, rows, first)


def csv_registrations(check: CsvCheck, languages: frozenset[str]) -> Iterator[Registration]:
    """The checked file's shipments, read again a row at a time."""
    for row in iter_rows(check.path, languages):
        if isinstance(row.entry, Rejected):  # the file changed since it was checked
            raise LocalInputError(f"{check.path}, line {row.line}: changed since it was checked")
        yield row.entry


@dataclass
class Registered:
    """What registering the rows did."""

    rows: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    #: The first KEPT_KEYS shipments, in file order.
    keys: list[ShipmentKey] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        """Rows registered per second."""
        return self.rows / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        """The one-line summary."""
        counts = ", ".join(f"{n:,} {outcome}" for outcome, n in sorted(self.outcomes.items()))
        return (
            f"registered {self.rows:,} shipments in {self.seconds:.1f} s "
            f"({self.per_second:,.0f} a second): {counts}"
        )


def register_stream(
    service: RegistrationService,
    entries: Iterable[Registration],
    *,
    on_row: Callable[[Registration], None] = lambda _: None,
    on_done: Callable[[int], None] = lambda _: None,
) -> Registered:
    """Register `entries` a chunk at a time into a stack no one else writes yet (so new
    shipments are created in batches); `on_row` sees each row before, `on_done(n)` is
    told of each n rows done. Raises LocalInputError if any row could not be stored."""
    registered = Registered()
    started = time.perf_counter()
    source = iter(entries)
    while chunk := list(itertools.islice(source, REGISTER_CHUNK)):
        for row in chunk:
            on_row(row)
            if len(registered.keys) < KEPT_KEYS:
                registered.keys.append(row.key)
        results = service.register(chunk, exclusive=True)
        failed = [r for r in results if r.error is not None or r.outcome is None]
        if failed:
            raise LocalInputError(_failure(failed))
        for result in results:
            name = result.outcome.value if result.outcome else "failed"
            registered.outcomes[name] = registered.outcomes.get(name, 0) + 1
        registered.rows += len(chunk)
        on_done(len(chunk))
    registered.seconds = time.perf_counter() - started
    return registered


def _failure(failed: list[EntryResult]) -> str:
    first = failed[0]
    return f"{len(failed)} shipments could not be registered: {first.key}: {first.error}"
