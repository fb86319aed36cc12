"""What a notification record's `begin` keeps when a record is there already
(logic/delivery.py): the pure decision the DynamoDB adapter and the in-memory fake share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.notify_samples import sms_record
from trackwatch.errors import StaleStateError
from trackwatch.logic.delivery import settled, take_over
from trackwatch.models.notification import (
    Delivery,
    DeliveryState,
    Fallback,
    FallbackNote,
)

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
TIMEOUT = Fallback(from_channel="whatsapp", reason="timeout")


def record(
    *,
    state: DeliveryState = DeliveryState.PENDING,
    fallback_of: Fallback | None = None,
    attempt_until: datetime | None = None,
    version: int = 0,
) -> Delivery:
    return sms_record(
        NOW, state=state, fallback_of=fallback_of, attempt_until=attempt_until, version=version
    )


@pytest.mark.parametrize(
    ("existing", "mine"),
    [
        (record(state=DeliveryState.SENT), record()),
        (record(state=DeliveryState.FAILED), record()),
        (record(fallback_of=TIMEOUT, attempt_until=NOW - timedelta(hours=1)), record()),
        (record(attempt_until=NOW - timedelta(hours=1)), record(fallback_of=TIMEOUT)),
    ],
    ids=["sent", "failed", "went as a fallback", "went as first choice"],
)
def test_a_record_past_pending_or_that_came_the_other_way_is_kept(
    existing: Delivery, mine: Delivery
) -> None:
    assert settled(existing, mine)
    assert take_over(existing, mine) is existing


def test_a_record_held_by_a_live_attempt_is_not_taken() -> None:
    existing = record(attempt_until=NOW + timedelta(seconds=1))

    assert not settled(existing, record())
    with pytest.raises(StaleStateError, match="is being sent on sms"):
        take_over(existing, record())


@pytest.mark.parametrize("attempt_until", [NOW, NOW - timedelta(minutes=1), None])
def test_a_record_whose_attempt_is_over_is_taken_with_its_note_and_next_version(
    attempt_until: datetime | None,
) -> None:
    note = FallbackNote(to_channel="email", reason="failed", at=NOW)
    existing = record(attempt_until=attempt_until, version=3).model_copy(update={"fallback": note})
    mine = record(attempt_until=NOW + timedelta(minutes=15))

    taken = take_over(existing, mine)

    assert not settled(existing, mine)
    assert taken.attempt_until == mine.attempt_until
    assert taken.fallback == note and taken.version == 4
