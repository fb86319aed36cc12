"""The notification record as the once-guard, on DynamoDB (moto): what `begin` stores and
returns for a new record, a record held by a live attempt, a record whose attempt died, one
that went already, and one that came the other way (first choice or fallback)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.conftest import create_keyed_table, emulated_aws
from tests.notify_samples import sms_record
from trackwatch.adapters.aws import AwsClients
from trackwatch.adapters.notifications_table import NotificationsTable
from trackwatch.errors import StaleStateError
from trackwatch.models.notification import (
    Delivery,
    DeliveryState,
    Fallback,
    FallbackNote,
)

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
TABLE = "notifications"


@pytest.fixture
def clients() -> Iterator[AwsClients]:
    with emulated_aws() as clients:
        create_keyed_table(clients, TABLE)
        yield clients


def delivery(at: datetime = NOW, fallback: Fallback | None = None) -> Delivery:
    return sms_record(at, fallback_of=fallback)


def test_a_new_record_is_this_attempts_in_one_conditional_put(clients: AwsClients) -> None:
    table = NotificationsTable(TABLE, clients.dynamodb, 3600)
    calls: list[str] = []
    clients.dynamodb.meta.events.register(
        "before-call.dynamodb", lambda event_name, **_: calls.append(event_name)
    )

    begun = table.begin(delivery(), NOW + timedelta(seconds=50))

    assert calls == ["before-call.dynamodb.PutItem"]
    assert begun.attempt_until == NOW + timedelta(seconds=50)
    assert table.delivery(begun.event_id, "sms") == begun


def test_a_live_attempt_holds_its_record_and_a_dead_ones_is_taken_over(
    clients: AwsClients,
) -> None:
    # Given a record written by an attempt that may send until 06:00:50, noted by a fallback
    table = NotificationsTable(TABLE, clients.dynamodb, 3600)
    first = table.begin(delivery(), NOW + timedelta(seconds=50))
    noted = first.model_copy(
        update={
            "fallback": FallbackNote(to_channel="whatsapp", reason="failed", at=NOW),
            "version": 1,
        }
    )
    table.update(noted)

    # When a twin begins while it may still send: refused, the record untouched
    with pytest.raises(StaleStateError, match="is being sent on sms"):
        table.begin(delivery(NOW + timedelta(seconds=10)), NOW + timedelta(seconds=60))
    assert table.delivery(first.event_id, "sms") == noted

    # When the retry begins after that time: the record is its own, the note kept, and
    # the record there was read from the failed put's answer, not by a read of its own
    later = NOW + timedelta(minutes=2)
    calls: list[str] = []
    clients.dynamodb.meta.events.register(
        "before-call.dynamodb", lambda event_name, **_: calls.append(event_name)
    )
    taken = table.begin(delivery(later), later + timedelta(seconds=50))
    assert calls == ["before-call.dynamodb.PutItem", "before-call.dynamodb.PutItem"]
    assert (taken.state, taken.version, taken.state_at) == (DeliveryState.PENDING, 2, later)
    assert taken.attempt_until == later + timedelta(seconds=50)
    assert taken.fallback == noted.fallback
    assert table.delivery(first.event_id, "sms") == taken


def test_a_record_that_went_or_came_the_other_way_is_returned_as_it_is(
    clients: AwsClients,
) -> None:
    table = NotificationsTable(TABLE, clients.dynamodb, 3600)
    # Given a fallback's record whose attempt died long ago
    fallback = Fallback(from_channel="whatsapp", reason="timeout")
    theirs = table.begin(delivery(fallback=fallback), NOW)

    # When the first-choice message begins: the fallback's record stands, not taken over
    later = NOW + timedelta(hours=1)
    assert table.begin(delivery(later), later) == theirs

    # Given it went (sent), when its own retry begins: the sent record comes back
    sent = theirs.model_copy(update={"state": DeliveryState.SENT, "version": 1})
    table.update(sent)
    assert table.begin(delivery(later, fallback), later) == sent
