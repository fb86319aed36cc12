"""Clickpost calls against their lower bound: Σ over carriers of ceil(n / 5)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

from trackwatch.models.keys import ShipmentKey
from trackwatch.models.tracking import MAX_WAYBILLS_PER_CALL


def lower_bound(keys: Iterable[ShipmentKey]) -> int:
    """The fewest track-order calls that can cover `keys`: Σ_carriers ceil(n / 5)."""
    per_carrier = Counter(k.cp_id for k in set(keys))
    return sum(math.ceil(n / MAX_WAYBILLS_PER_CALL) for n in per_carrier.values())


def carrier_mix(total: int, weights: dict[int, int]) -> list[int]:
    """`total` cp_ids spread over carriers by weight, deterministically (no equal shares)."""
    whole = sum(weights.values())
    counts = {cp: total * w // whole for cp, w in weights.items()}
    # The remainder goes to the largest carrier so every shipment has one.
    largest = max(weights, key=lambda cp: weights[cp])
    counts[largest] += total - sum(counts.values())
    return [cp for cp, n in sorted(counts.items()) for _ in range(n)]
