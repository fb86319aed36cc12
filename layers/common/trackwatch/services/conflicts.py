"""Optimistic concurrency: read, decide, write on condition; on a conflict, again."""

from __future__ import annotations

from collections.abc import Callable

from trackwatch.errors import StaleStateError

#: Re-read and re-decide this many times when another writer got there first.
MAX_CONFLICT_RETRIES = 3


def _nothing() -> None:
    return None


def retry_on_conflict[T](
    attempt: Callable[[int], T],
    subject: object,
    *,
    on_conflict: Callable[[], None] = _nothing,
    retries: int = MAX_CONFLICT_RETRIES,
) -> T:
    """`attempt(n)` for n = 0, 1, ... until one does not raise StaleStateError.

    Each attempt reads what it decides on (attempt 0 may use what the caller had
    already read), decides, and writes on the condition that nothing moved. After
    `retries` conflicts, a StaleStateError naming `subject`: the caller's message is
    retried later, by which time the other writer is done.
    """
    for n in range(retries + 1):
        try:
            return attempt(n)
        except StaleStateError:
            on_conflict()
    raise StaleStateError(f"shipment {subject} kept changing under {retries} retries")
