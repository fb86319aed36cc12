"""Group shipments into the fewest Clickpost track-order calls.

One call carries up to five waybills of a single carrier (Clickpost's rule),
so the minimum for a set of shipments is the sum over carriers of
ceil(distinct waybills / 5).
"""

from __future__ import annotations

from collections.abc import Iterable

from trackwatch.errors import InvalidInputError
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.tracking import MAX_WAYBILLS_PER_CALL, TrackCall


def plan_calls(
    keys: Iterable[ShipmentKey], max_per_call: int = MAX_WAYBILLS_PER_CALL
) -> list[TrackCall]:
    """The fewest calls covering `keys`: by cp_id ascending, then first-seen order."""
    if not 1 <= max_per_call <= MAX_WAYBILLS_PER_CALL:
        raise InvalidInputError(
            "max_per_call", f"must be between 1 and {MAX_WAYBILLS_PER_CALL}, got {max_per_call}"
        )
    # A dict keeps first-seen order and drops duplicates in one pass.
    by_carrier: dict[int, dict[str, None]] = {}
    for key in keys:
        by_carrier.setdefault(key.cp_id, {})[key.waybill] = None
    calls: list[TrackCall] = []
    for cp_id in sorted(by_carrier):
        waybills = list(by_carrier[cp_id])
        for start in range(0, len(waybills), max_per_call):
            chunk = tuple(waybills[start : start + max_per_call])
            calls.append(TrackCall(cp_id=cp_id, waybills=chunk))
    return calls
