"""Poll Clickpost for a batch of PollQueue messages, diff, and commit what changed."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from aws_lambda_powertools import Logger

from trackwatch.errors import (
    ClickpostAuthError,
    ClickpostError,
    ClickpostInvalidCarrierError,
    ClickpostMalformedResponseError,
    ClickpostResponseTooLargeError,
    TrackwatchError,
)
from trackwatch.logic.catalogue import StatusCatalogue
from trackwatch.logic.delays import DelayPolicy
from trackwatch.logic.poll_decision import check, decide, in_parts, stop
from trackwatch.logic.poll_decision import unreadable as unreadable_change
from trackwatch.models.clickpost import AwbResult, Meta
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.messages import CHECK_ONLY, PollRequest
from trackwatch.models.policy import Cadence
from trackwatch.models.record import ShipmentRecord, StateChange
from trackwatch.models.tracking import AwbOutcome, AwbStatus, CallOutcome, TrackCall
from trackwatch.ports import ShipmentStore, Tracker, TrackerFactory
from trackwatch.services.conflicts import retry_on_conflict

logger = Logger(service="trackwatch", child=True)


@dataclass
class PollSummary:
    """What one batch did: logged as one line, emitted as metrics."""

    messages: int = 0
    calls: int = 0
    http_requests: int = 0
    awbs: Counter[str] = field(default_factory=Counter)
    written: int = 0
    unchanged: int = 0
    skipped: int = 0
    conflicts: int = 0
    stopped: int = 0
    #: Shipments visited for the delay checks alone (no Clickpost call).
    checked: int = 0
    events: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    unknown_status_codes: Counter[int] = field(default_factory=Counter)
    #: Waybills whose answer could not be read, by field (see reason_kind).
    unreadable: Counter[str] = field(default_factory=Counter)

    def as_log(self) -> dict[str, object]:
        """The summary as structured log fields."""
        return {
            "messages": self.messages,
            "calls": self.calls,
            "http_requests": self.http_requests,
            "awbs": dict(self.awbs),
            "written": self.written,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "conflicts": self.conflicts,
            "stopped": self.stopped,
            "checked": self.checked,
            "events": dict(self.events),
            "errors": dict(self.errors),
            "unknown_status_codes": {str(k): v for k, v in self.unknown_status_codes.items()},
            "unreadable": dict(self.unreadable),
        }


class PollService:
    """Runs poll requests against Clickpost and the shipment store."""

    def __init__(
        self,
        store: ShipmentStore,
        catalogue: StatusCatalogue,
        cadence: Cadence,
        clock: Callable[[], datetime],
        trackers: TrackerFactory,
        delays: Callable[[], DelayPolicy] | None = None,
    ) -> None:
        """`delays`: the policy of our own stuck and late checks (None: they are off)."""
        self._store = store
        self._catalogue = catalogue
        self._cadence = cadence
        self._clock = clock
        self._trackers = trackers
        self._delays = delays

    async def poll(
        self,
        requests: Mapping[str, PollRequest],
        *,
        deadline: float | None = None,
        redelivered: Set[str] = frozenset(),
    ) -> tuple[dict[str, TrackwatchError | None], PollSummary]:
        """Poll every request concurrently; per request id, None or the error that failed it.

        `deadline` (time.monotonic()) is when the invocation must stop calling Clickpost: a
        call not done by then fails its message (retryable) instead of the whole batch
        timing out. `redelivered` names the requests that failed before: their calls of
        several waybills are asked again one waybill at a time if they fail again, so one
        waybill that Clickpost cannot answer never holds back its call-mates.
        """
        summary = PollSummary(messages=len(requests))
        ids = list(requests)
        async with self._trackers() as tracker:
            results = await asyncio.gather(
                *(
                    self._poll_one(requests[i], tracker, summary, deadline, i in redelivered)
                    for i in ids
                ),
                return_exceptions=True,
            )
        outcome: dict[str, TrackwatchError | None] = {}
        for request_id, result in zip(ids, results, strict=True):
            if isinstance(result, TrackwatchError):
                summary.errors[result.kind] += 1
                outcome[request_id] = result
            elif isinstance(result, BaseException):
                raise result
            else:
                outcome[request_id] = None
        return outcome, summary

    async def _poll_one(
        self,
        request: PollRequest,
        tracker: Tracker,
        summary: PollSummary,
        deadline: float | None,
        redelivered: bool,
    ) -> None:
        if request.reason == CHECK_ONLY:
            keys = [key for call in request.calls for key in call.keys]
            await asyncio.to_thread(self._check, keys, summary)
            return
        answers = await _track_all(request.calls, tracker, deadline)
        # Calls that failed on their content (or, for a redelivered message, at all) are asked
        # again waybill by waybill, and what still fails is blamed on its own waybill.
        again = [
            call
            for call, answer in answers
            if isinstance(answer, ClickpostError) and _worth_isolating(answer, redelivered)
        ]
        if again:
            several = [c for c in again if len(c.waybills) > 1]
            solo = [TrackCall(cp_id=c.cp_id, waybills=(w,)) for c in several for w in c.waybills]
            summary.calls += len(several)
            alone = [(c, a) for c, a in answers if c in again and len(c.waybills) == 1]
            kept = [(c, a) for c, a in answers if c not in again]
            answers = kept + _blame(await _track_all(solo, tracker, deadline) + alone)
        read: list[AwbOutcome] = []
        unreadable: list[AwbOutcome] = []
        rejected_carriers: list[TrackCall] = []
        failures: list[ClickpostError] = []
        for call, answer in answers:
            summary.calls += 1
            if isinstance(answer, CallOutcome):
                summary.http_requests += answer.attempts
                read.extend(answer.awbs)
                unreadable.extend(answer.unreadable)
            elif isinstance(answer, ClickpostInvalidCarrierError):
                summary.errors[answer.kind] += 1
                rejected_carriers.append(call)
            elif isinstance(answer, ClickpostError):
                failures.append(answer)
            else:
                raise answer
        for awb in (*read, *unreadable):
            summary.awbs[awb.status.value] += 1
        # The store is synchronous (boto3); keep the event loop free for other calls.
        await asyncio.to_thread(self._apply, read, unreadable, rejected_carriers, summary)
        if failures:
            # Successful calls are committed; the message is retried for the rest.
            # An authentication failure outranks everything: it needs a human.
            auth = [f for f in failures if isinstance(f, ClickpostAuthError)]
            raise (auth or failures)[0]

    def _apply(
        self,
        awbs: list[AwbOutcome],
        unreadable: list[AwbOutcome],
        rejected: list[TrackCall],
        summary: PollSummary,
    ) -> None:
        now = self._clock()
        answered = [a for a in awbs if a.status is not AwbStatus.MISSING]
        rejected_keys = [key for call in rejected for key in call.keys]
        records = self._store.get_many([a.key for a in (*answered, *unreadable)] + rejected_keys)
        for awb in answered:
            result = awb.result
            assert result is not None
            self._commit(
                records.get(awb.key),
                awb.key,
                summary,
                partial(self._decide, result=result, now=now, summary=summary),
            )
        for awb in unreadable:
            reason = awb.reason or "unreadable"
            # One line per waybill: which field, never the value (it is Clickpost's text).
            logger.warning(
                "Clickpost answer for one waybill could not be read",
                extra={"waybill": awb.key.waybill, "cp_id": awb.key.cp_id, "reason": reason},
            )
            summary.unreadable[reason_kind(reason)] += 1
            self._commit(
                records.get(awb.key),
                awb.key,
                summary,
                partial(
                    unreadable_change,
                    reason=reason,
                    fragment=awb.fragment,
                    now=now,
                    catalogue=self._catalogue,
                    cadence=self._cadence,
                ),
            )
        for key in rejected_keys:
            record = records.get(key)
            if record is None or not record.active:
                continue
            reason = f"invalid cp_id: Clickpost does not know carrier {key.cp_id}"
            self._store.commit(stop(record, reason, now, self._cadence))
            summary.stopped += 1

    def _check(self, keys: list[ShipmentKey], summary: PollSummary) -> None:
        """Visit shipments without asking Clickpost: only the delay checks can change them."""
        summary.checked += len(keys)
        if self._delays is None:
            return
        now = self._clock()
        policy = self._delays()
        records = self._store.get_many(keys)
        for key in keys:
            self._commit(records.get(key), key, summary, partial(check, now=now, delays=policy))

    def _decide(
        self, current: ShipmentRecord, result: AwbResult, now: datetime, summary: PollSummary
    ) -> StateChange | None:
        policy = self._delays() if self._delays is not None else None
        change, unknown = decide(current, result, now, self._catalogue, self._cadence, policy)
        summary.unknown_status_codes.update(unknown)
        return change

    def _commit(
        self,
        record: ShipmentRecord | None,
        key: ShipmentKey,
        summary: PollSummary,
        decide_change: Callable[[ShipmentRecord], StateChange | None],
    ) -> None:
        """Decide on the stored record and write, re-reading and re-deciding on a conflict."""

        def attempt(n: int) -> None:
            current = record if n == 0 else self._store.get_many([key], consistent=True).get(key)
            if current is None or not current.active:
                # Deleted or stopped since it was dispatched: nothing to do.
                summary.skipped += 1
                return
            change = decide_change(current)
            if change is None:
                summary.unchanged += 1
                return
            # A change with hundreds of events (a first sight of a long history) is written
            # in parts, so that no write passes DynamoDB's item limit.
            for part in in_parts(change, current):
                self._store.commit(part)
            summary.written += 1
            summary.events.update(e.event_type for e in change.events)
            if change.stop_reason is not None:
                summary.stopped += 1

        def conflicted() -> None:
            summary.conflicts += 1

        retry_on_conflict(attempt, key, on_conflict=conflicted)


Answer = CallOutcome | BaseException

#: Failures that are the answer's own (its content), not Clickpost's or the network's.
_CONTENT_FAILURES = (ClickpostResponseTooLargeError, ClickpostMalformedResponseError)


async def _track_all(
    calls: Sequence[TrackCall], tracker: Tracker, deadline: float | None
) -> list[tuple[TrackCall, Answer]]:
    answers = await asyncio.gather(
        *(tracker.track(call, deadline=deadline) for call in calls), return_exceptions=True
    )
    return list(zip(calls, answers, strict=True))


def _worth_isolating(error: ClickpostError, redelivered: bool) -> bool:
    """Whether a failed call is asked again waybill by waybill (never for a bad key or
    carrier: no waybill is to blame for those)."""
    if isinstance(error, ClickpostAuthError | ClickpostInvalidCarrierError):
        return False
    return redelivered or isinstance(error, _CONTENT_FAILURES)


def _blame(solo: list[tuple[TrackCall, Answer]]) -> list[tuple[TrackCall, Answer]]:
    """Single-waybill answers, with the failures that are the waybill's own turned into an
    unreadable outcome for it: a failure on the answer's content always; any other failure
    when a call-mate was answered (then Clickpost is up, and this waybill is the trouble)."""
    someone_answered = any(isinstance(a, CallOutcome) for _, a in solo)
    blamed: list[tuple[TrackCall, Answer]] = []
    for call, answer in solo:
        if isinstance(answer, ClickpostError) and (
            isinstance(answer, _CONTENT_FAILURES)
            or (someone_answered and _worth_isolating(answer, redelivered=True))
        ):
            (key,) = call.keys
            outcome = AwbOutcome(
                key=key, status=AwbStatus.UNREADABLE, reason=f"no answer: {answer.kind}"
            )
            answer = CallOutcome(
                call=call, meta=Meta(), awbs=(), unreadable=(outcome,), attempts=1, elapsed_s=0
            )
        blamed.append((call, answer))
    return blamed


def reason_kind(reason: str) -> str:
    """A reason as a low-cardinality metric dimension: the field path without list indices."""
    path, _, error = reason.partition(": ")
    return ".".join(part for part in path.split(".") if not part.isdigit()) + (
        f": {error}" if error else ""
    )
