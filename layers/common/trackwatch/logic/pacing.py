"""When a message may go, and whether it should go at all: quiet hours, repeats, daily caps."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from trackwatch.models.notification import ChannelLog, Deferral, Outcome

#: SQS holds a message back for at most 15 minutes (DelaySeconds).
MAX_SQS_DELAY_S = 900


def quiet_until(now: datetime, zone: ZoneInfo, start: time, end: time) -> datetime | None:
    """The end of the quiet hours `now` falls in (in `zone`), or None outside them.

    `start` after `end` (21:00-09:00) wraps past midnight; `start == end` means none.
    """
    if start == end:
        return None
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if start < end:
        if not start <= clock < end:
            return None
        end_day = local.date()
    elif clock >= start:
        end_day = local.date() + timedelta(days=1)
    elif clock < end:
        end_day = local.date()
    else:
        return None
    return datetime.combine(end_day, end, tzinfo=zone)


def hold(now: datetime, quiet_end: datetime | None, not_before: datetime | None) -> Deferral | None:
    """How long to hold a message back: until the later of quiet hours' end and `not_before`.

    SQS waits at most 15 minutes at a time, so a long hold is a chain of delays
    that each carry the same `not_before`.
    """
    targets = [t for t in (quiet_end, not_before) if t is not None and t > now]
    if not targets:
        return None
    target = max(targets)
    remaining = math.ceil((target - now).total_seconds())
    return Deferral(not_before=target, delay_s=min(MAX_SQS_DELAY_S, remaining))


class Admission(BaseModel):
    """The pacing decision for one message: None to send (claiming `log`), else why not."""

    model_config = ConfigDict(frozen=True)

    refused: Outcome | None
    log: ChannelLog


def admit(
    log: ChannelLog,
    *,
    kind: str,
    once: bool,
    event_id: str,
    occurred_at: datetime,
    now: datetime,
    today: date,
    repeat_window: timedelta,
    daily_cap: int,
) -> Admission:
    """Whether a `kind` message for this event may go, and the channel log after it goes.

    In order: a retry of the event last claimed goes (it was never sent, or its
    notification record would stop it after this); a once-only kind already sent, news
    older than news already told, the same kind inside the repeat window, and a
    full day are refused.
    """
    if log.last_event_id == event_id:
        return Admission(refused=None, log=log)
    refused: Outcome | None = None
    last_sent = log.sent_at.get(kind)
    count_today = log.day_count if log.day == today else 0
    if once and last_sent is not None:
        refused = Outcome.ALREADY_SENT
    elif log.last_occurred_at is not None and occurred_at < log.last_occurred_at:
        refused = Outcome.SUPERSEDED
    elif last_sent is not None and now - last_sent < repeat_window:
        refused = Outcome.REPEAT
    elif count_today >= daily_cap:
        refused = Outcome.DAILY_CAP
    if refused is not None:
        return Admission(refused=refused, log=log)
    newest = max(occurred_at, log.last_occurred_at or occurred_at)
    return Admission(
        refused=None,
        log=ChannelLog(
            seq=log.seq + 1,
            last_event_id=event_id,
            last_occurred_at=newest,
            sent_at={**log.sent_at, kind: now},
            day=today,
            day_count=count_today + 1,
        ),
    )
