"""Journeys that move with a clock, Clickpost's updated-order feed over them, and webhooks.

Without a clock the sandbox moves a shipment one step per poll. With a *journey clock*
(`SandboxServer(journey_clock=...)`) a step appears when Clickpost would have recorded
it, whoever polls: at the journey's start plus the step's hours, plus the minutes
Clickpost takes to record a scan (the created_at of the step's last scan). That is
what the updated-order feed lists and what webhooks announce, and what the
benchmark counts as ground truth: every scan the sandbox revealed, and when.

Faults, as Clickpost or a network would cause them:
- the feed: a waybill's next update left out of every listing (`leave_out`), 429 with
  Retry-After, an answer split over two pages, an empty window, an outage (500);
- webhooks: each one sent twice, a round sent newest first, a wrong key.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

import httpx

from trackwatch_cli.sandbox.journey import (
    JOURNEY_ZONE,
    Journey,
    JourneyStep,
    ShipmentIdentity,
    record_time_text,
    render_awb,
    render_scan,
    step_recorded_at,
)

UPDATED_ORDER_PATH = "/api/v1/updated-order"
#: Clickpost's limit on one call's window.
MAX_WINDOW_SECONDS = 1800


# --------------------------------------------------------------------------- time


def scaled(journey: Journey, factor: float) -> Journey:
    """`journey` with every time multiplied by `factor` (0.25: four times as fast)."""
    steps = [
        step.model_copy(
            update={
                "at_hours": step.at_hours * factor,
                "scans": tuple(
                    s.model_copy(update={"at_hours": s.at_hours * factor})
                    if s.at_hours is not None
                    else s
                    for s in step.scans
                ),
            }
        )
        for step in journey.steps
    ]
    return journey.model_copy(update={"steps": tuple(steps)})


def step_revealed_at(step: JourneyStep, start: datetime) -> datetime:
    """When Clickpost has recorded all of a step (naive, journey zone): its last scan's
    created_at (a step without scans changes `additional` only: its own time, recorded)."""
    return step_recorded_at(step, start, max(0, len(step.scans) - 1))


def reveal_times(journey: Journey, start: datetime) -> list[datetime]:
    """Each step's reveal time; never earlier than the step before it."""
    times: list[datetime] = []
    for step in journey.steps:
        own = step_revealed_at(step, start)
        times.append(max(own, times[-1]) if times else own)
    return times


def naive_local(moment: datetime) -> datetime:
    """An aware time as the journeys' naive India time."""
    return moment.astimezone(JOURNEY_ZONE).replace(tzinfo=None)


def aware(naive: datetime) -> datetime:
    """A journey time (naive India time) as an aware UTC time."""
    return naive.replace(tzinfo=JOURNEY_ZONE).astimezone(UTC)


def revealed_step(journey: Journey, start: datetime, now: datetime) -> int:
    """The last step revealed at `now` (aware), -1 before the first."""
    local = naive_local(now)
    revealed = -1
    for index, when in enumerate(reveal_times(journey, start)):
        if when <= local:
            revealed = index
    return revealed


@dataclass(frozen=True)
class RevealedScan:
    """One scan the sandbox revealed: the benchmark's ground truth."""

    cp_id: int
    waybill: str
    checkpoint_id: int
    clickpost_status_code: int
    #: When Clickpost recorded it (its created_at), aware.
    recorded_at: datetime
    step: int


def revealed_scans(
    journey: Journey, identity: ShipmentIdentity, now: datetime
) -> list[RevealedScan]:
    """Every scan of `identity`'s journey revealed by `now`."""
    last = revealed_step(journey, identity.start, now)
    found: list[RevealedScan] = []
    for number, step in enumerate(journey.steps[: last + 1]):
        for index, spec in enumerate(step.scans):
            found.append(
                RevealedScan(
                    cp_id=identity.cp_id,
                    waybill=identity.waybill,
                    checkpoint_id=identity.serial * 1000 + spec.checkpoint_id,
                    clickpost_status_code=spec.clickpost_status_code,
                    recorded_at=aware(step_recorded_at(step, identity.start, index)),
                    step=number,
                )
            )
    return found


# --------------------------------------------------------------------------- the feed


class FeedFaultKind(StrEnum):
    """What goes wrong with the updated-order feed."""

    #: HTTP 429, with `retry_after` seconds.
    RATE_LIMITED = "rate_limited"
    #: The answer comes in two pages, the second behind a `next` link.
    SECOND_PAGE = "second_page"
    #: The answer lists nothing, whatever was updated (an empty window).
    EMPTY = "empty"
    #: HTTP 500: the feed is down.
    DOWN = "down"


@dataclass
class FeedFault:
    """A feed fault for the next `count` calls (None: until cleared)."""

    kind: FeedFaultKind
    count: int | None = 1
    retry_after: str | None = "1"


@dataclass
class FeedDesk:
    """The feed's faults and the updates it leaves out; thread-safe."""

    faults: list[FeedFault] = field(default_factory=list)
    #: (cp_id, waybill, step) never listed.
    hidden: set[tuple[int, str, int]] = field(default_factory=set)
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def push(self, fault: FeedFault) -> None:
        """Arm a fault."""
        with self.lock:
            self.faults.append(fault)

    def clear(self) -> None:
        """Disarm every fault (left-out updates stay left out)."""
        with self.lock:
            self.faults.clear()

    def draw(self) -> FeedFault | None:
        """The fault this call meets, counted down."""
        with self.lock:
            self.calls += 1
            if not self.faults:
                return None
            fault = self.faults[0]
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    self.faults.pop(0)
            return fault


@dataclass(frozen=True)
class Listed:
    """One shipment's latest update in a window."""

    identity: ShipmentIdentity
    journey: Journey
    step: int
    revealed_at: datetime


def feed_entries(listed: Iterable[Listed]) -> list[dict[str, Any]]:
    """The feed's `result` entries, as Clickpost documents them."""
    entries = []
    for item in listed:
        awb = render_awb(item.journey, item.step, item.identity)
        latest = awb.get("latest_status") or {}
        entries.append(
            {
                "waybill": item.identity.waybill,
                "carrier_partner": item.identity.cp_id,
                "created_at": record_time_text(item.identity.start),
                "updated_at": record_time_text(item.revealed_at),
                "timestamp": latest.get("timestamp"),
                "clickpost_status_code": latest.get("clickpost_status_code"),
                "clickpost_status_description": latest.get("clickpost_status_description"),
            }
        )
    return entries


def feed_document(entries: list[dict[str, Any]], next_link: str | None) -> bytes:
    """A feed answer's body."""
    document: dict[str, Any] = {
        "meta": {"status": 200, "success": True, "message": "SUCCESS"},
        "result": entries,
    }
    if next_link is not None:
        document["next"] = next_link
    return json.dumps(document).encode()


def next_link(base_url: str, params: Mapping[str, str], page: int, per_page: int) -> str:
    """The link to page `page`: the query as given (credentials too, as an API would echo
    them), the page and its size."""
    query = {**params, "page": str(page), "per_page": str(per_page)}
    return f"{base_url}{UPDATED_ORDER_PATH}?{urlencode(query)}"


# --------------------------------------------------------------------------- webhooks


class WebhookFaultKind(StrEnum):
    """What goes wrong with Clickpost's webhooks."""

    #: Each webhook of the next round(s) is sent twice (Clickpost re-sends).
    DUPLICATE = "duplicate"
    #: The next round(s) go out newest first (Clickpost does not guarantee order).
    OUT_OF_ORDER = "out_of_order"
    #: The next webhook(s) carry a wrong key.
    WRONG_KEY = "wrong_key"


@dataclass
class SentWebhook:
    """One POST and its answer."""

    waybill: str
    clickpost_status_code: int
    status: int
    duplicate: bool = False


def webhook_payload(scan: Mapping[str, Any], identity: ShipmentIdentity) -> dict[str, Any]:
    """One webhook as Clickpost sends it in all-status mode: one per scan."""
    latest = {k: v for k, v in scan.items() if k not in ("checkpoint_id", "tracking_id")}
    additional: dict[str, Any] = {"latest_status": latest, "is_rvp": False}
    if scan.get("clickpost_status_code") == 9:
        additional["ndr_status_code"] = 1
        additional["ndr_status_description"] = "Customer Unavailable"
    return {
        "waybill": identity.waybill,
        "cp_id": identity.cp_id,
        "clickpost_status_code": scan.get("clickpost_status_code"),
        "clickpost_status_description": scan.get("clickpost_status_description"),
        "status": scan.get("status"),
        "remark": scan.get("remark"),
        "location": scan.get("location"),
        "timestamp": scan.get("timestamp"),
        "additional": additional,
    }


def step_payloads(journey: Journey, step: int, identity: ShipmentIdentity) -> list[dict[str, Any]]:
    """The webhooks one revealed step sends: one per scan, in the step's order."""
    journey_step = journey.steps[step]
    payloads = []
    for index, spec in enumerate(journey_step.scans):
        hours = spec.at_hours if spec.at_hours is not None else journey_step.at_hours
        when = identity.start + timedelta(hours=hours, minutes=index)
        recorded = step_recorded_at(journey_step, identity.start, index)
        payloads.append(
            webhook_payload(render_scan(spec, when, identity, recorded=recorded), identity)
        )
    return payloads


class WebhookPoster:
    """Sends webhooks to a URL as Clickpost would: one POST per scan, the key in a header,
    anything but 200 retried on a later round (up to `retries` times)."""

    def __init__(self, url: str, key: str, *, retries: int = 2, timeout_s: float = 10.0) -> None:
        self.url = url
        self.key = key
        self.retries = retries
        self._http = httpx.Client(timeout=timeout_s)
        self._faults: list[tuple[WebhookFaultKind, int | None]] = []
        self._pending: list[tuple[dict[str, Any], int]] = []
        self.sent: list[SentWebhook] = []
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the HTTP client."""
        self._http.close()

    def set_fault(self, kind: WebhookFaultKind, count: int | None = 1) -> None:
        """Arm a fault for the next `count` rounds (WRONG_KEY: webhooks); None: until cleared."""
        with self._lock:
            self._faults.append((kind, count))

    def clear_faults(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    def _take(self, kind: WebhookFaultKind) -> bool:
        with self._lock:
            for index, (armed, count) in enumerate(self._faults):
                if armed is kind:
                    if count is not None:
                        if count <= 1:
                            self._faults.pop(index)
                        else:
                            self._faults[index] = (armed, count - 1)
                    return True
        return False

    def deliver(self, payloads: list[dict[str, Any]]) -> int:
        """Send this round's webhooks (and the retries due); returns how many POSTs."""
        round_ = [(p, 0) for p in payloads]
        with self._lock:
            round_, self._pending = self._pending + round_, []
        duplicate = self._take(WebhookFaultKind.DUPLICATE) if round_ else False
        if round_ and self._take(WebhookFaultKind.OUT_OF_ORDER):
            round_.reverse()
        posts = 0
        for payload, attempt in round_:
            for copy in range(2 if duplicate else 1):
                posts += 1
                key = "not-" + self.key if self._take(WebhookFaultKind.WRONG_KEY) else self.key
                status = self._post(payload, key)
                self.sent.append(
                    SentWebhook(
                        payload["waybill"], payload["clickpost_status_code"], status, copy > 0
                    )
                )
                if status != 200 and copy == 0 and attempt < self.retries:
                    with self._lock:
                        self._pending.append((payload, attempt + 1))
        return posts

    def _post(self, payload: dict[str, Any], key: str) -> int:
        try:
            answer = self._http.post(self.url, json=payload, headers={"webhook_key": key})
        except httpx.HTTPError:
            return 0
        return answer.status_code
