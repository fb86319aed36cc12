"""Journeys: scripted shipment histories the sandbox plays back one step at a time.

A journey file (``journeys/<name>.json``) is a list of steps; each step adds
scans and may override fields of ``additional`` (the overrides persist until a
later step changes them). Scan times are offsets in hours from a journey start,
so every response is reproducible.

A sandbox given a clock (the local runtime's) dates each step's scans from the moment
the step was first shown instead, so a shipment's times mean something to that clock:
the delay checks measure real (simulated) hours. Scans written earlier than their step
(``at_hours`` before the step's) are that much older than the step: the history a
shipment already had when it was registered. There, too, a step may wait (``hold_hours``)
before a poll can show it: a shipment that sits (the delay demos).

Status codes follow Clickpost's published table. Bucket ids 1 (Order Placed),
2 (Shipped), 3 (In transit), 6 (Delivered) and 8 (returns) come from Clickpost
samples; every other bucket id used here (4 "Out for delivery", 5 "Failed
delivery") is an assumption, as are the NDR codes: no official list exists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

#: Clickpost's wire format for timestamps: naive; carrier times in India time.
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
#: Clickpost records a scan a few minutes after the carrier made it.
CREATED_AT_LAG = timedelta(minutes=7)
#: The zone of the journeys' (naive) times: the carriers', India.
JOURNEY_ZONE = ZoneInfo("Asia/Kolkata")
_JOURNEY_PACKAGE = "trackwatch_cli.sandbox"
_JOURNEY_DIR = "journeys"


class _Spec(BaseModel):
    # Journey files are hand-written: a misspelt field must fail, not vanish.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScanSpec(_Spec):
    """One scan as written in a journey file."""

    #: Unique within the journey; the sandbox makes it unique per shipment.
    checkpoint_id: int = Field(ge=1, le=999)
    status: str
    clickpost_status_code: int
    clickpost_status_description: str
    clickpost_status_bucket: int
    clickpost_status_bucket_description: str
    location: str
    remark: str = ""
    #: Hours after the journey start; defaults to the step's time. A value
    #: earlier than a previous step's makes a late, out-of-order scan.
    at_hours: float | None = Field(default=None, ge=0)


class NdrSpec(_Spec):
    """A non-delivery report."""

    ndr_bucket_code: int
    ndr_description: str


class EddSpec(_Spec):
    """Clickpost's SLA in days."""

    min_sla: int | None = None
    max_sla: int | None = None
    exact_sla: int | None = None


class AdditionalOverride(_Spec):
    """Fields of `additional` a step changes; an explicit null clears the field."""

    is_stuck: bool | None = None
    ndr: NdrSpec | None = None
    #: The carrier's EDD as days after the journey start (rendered YYYY-MM-DD); negative:
    #: a date already past.
    courier_partner_edd_days: int | None = None
    edd: EddSpec | None = None

    def apply(self, additional: dict[str, Any], start: datetime) -> None:
        """Write the fields this override sets into `additional`."""
        for name in self.model_fields_set:
            if name == "courier_partner_edd_days":
                days = self.courier_partner_edd_days
                edd = None if days is None else (start.date() + timedelta(days)).isoformat()
                additional["courier_partner_edd"] = edd
            elif name == "ndr":
                additional["ndr"] = {} if self.ndr is None else self.ndr.model_dump()
            elif name == "edd":
                additional["edd"] = {} if self.edd is None else self.edd.model_dump()
            else:
                additional[name] = getattr(self, name)


class JourneyStep(_Spec):
    """What one poll reveals: new scans and changes to `additional`."""

    at_hours: float = Field(ge=0)
    #: With a clock: shown no sooner than this many hours after the step before it was.
    hold_hours: float = Field(default=0, ge=0)
    scans: tuple[ScanSpec, ...] = ()
    additional: AdditionalOverride = AdditionalOverride()


class Journey(_Spec):
    """A named, ordered list of steps."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str
    #: False for an AWB Clickpost does not know: always answered `valid: false`.
    valid: bool = True
    #: False for a journey only the demo names (the delayed box of its order): an AWB nobody
    #: chose a journey for never gets it, so adding one changes no other AWB's journey.
    picked_for_any_waybill: bool = True
    #: Which scan `latest_status` shows: the newest by timestamp, or the last to
    #: arrive (so a late scan can displace a terminal one, as carriers cause).
    latest_status_from: Literal["timestamp", "arrival"] = "timestamp"
    pickup_city: str = "Delhi"
    drop_city: str = "Bengaluru"
    sku: tuple[str, ...] = ("Footwear",)
    cod_value: float = 0.0
    additional: AdditionalOverride = AdditionalOverride()
    steps: tuple[JourneyStep, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        ids = [scan.checkpoint_id for step in self.steps for scan in step.scans]
        if len(ids) != len(set(ids)):
            raise ValueError("checkpoint_id values must be unique within a journey")
        times = [step.at_hours for step in self.steps]
        if times != sorted(times):
            raise ValueError("steps must be in time order (at_hours non-decreasing)")
        if not self.valid and ids:
            raise ValueError("an invalid journey has no scans")
        return self

    @property
    def last_step(self) -> int:
        """Index of the final step."""
        return len(self.steps) - 1

    @property
    def holds(self) -> bool:
        """Whether a step waits for the clock (a delay demo)."""
        return any(step.hold_hours for step in self.steps)


class ShipmentIdentity(BaseModel):
    """Who a rendered AWB is: enough to build its `additional` object."""

    model_config = ConfigDict(frozen=True)

    waybill: str
    cp_id: int
    courier_name: str
    #: None when the sandbox was not told the order (Clickpost then sends null).
    order_id: str | None
    start: datetime

    @property
    def serial(self) -> int:
        """A stable number per shipment, the stem of its checkpoint and tracking ids."""
        digest = hashlib.sha256(f"{self.cp_id}#{self.waybill}".encode()).digest()
        return int.from_bytes(digest[:4]) + 1


@dataclass(frozen=True)
class InjectedScan:
    """A scan a fault added to one shipment's history; it stays there from then on."""

    #: It arrived right after this step's scans; -1: before the journey's first scan.
    after_step: int
    when: datetime
    scan: Mapping[str, Any]


#: Rewrites the newest-arrived scan (given its real time) before `latest_status` copies it.
type ScanTouch = Callable[[dict[str, Any], datetime], None]


def render_awb(
    journey: Journey,
    step: int,
    shipment: ShipmentIdentity,
    *,
    injected: Sequence[InjectedScan] = (),
    touch: ScanTouch | None = None,
    step_times: Sequence[datetime] | None = None,
) -> dict[str, Any]:
    """The `result[<AWB>]` object for `shipment` once `journey` has reached `step`.

    `injected` scans join the history where they arrived; `touch` rewrites the scan that
    arrived last (a data fault), and `latest_status` mirrors it when it shows that scan.
    Scans are dated `start + at_hours`; with `step_times` (one per step shown), a step's
    scans are dated at its own time instead, a late scan as many hours before it as the
    journey puts it before its step.
    """
    step = min(step, journey.last_step)
    additional = _additional(journey, step, shipment)
    if not journey.valid:
        return {"latest_status": {}, "scans": [], "valid": False, "additional": additional}
    arrived: list[tuple[datetime, int, dict[str, Any]]] = []

    def arrive(after_step: int) -> None:
        for extra in injected:
            if extra.after_step == after_step:
                arrived.append((extra.when, len(arrived), dict(extra.scan)))

    arrive(-1)
    for number, journey_step in enumerate(journey.steps[: step + 1]):
        if step_times is None:
            base = shipment.start + timedelta(hours=journey_step.at_hours)
        else:
            base = step_times[number]
        for index, scan in enumerate(journey_step.scans):
            # Scans of one step are a few minutes apart, in file order; a late scan (its own
            # at_hours) is dated earlier but recorded by Clickpost when its step arrives.
            early = journey_step.at_hours - scan.at_hours if scan.at_hours is not None else 0
            offset = timedelta(minutes=index)
            when = base - timedelta(hours=early) + offset
            recorded = base + offset + CREATED_AT_LAG
            arrived.append(
                (when, len(arrived), render_scan(scan, when, shipment, recorded=recorded))
            )
        arrive(number)
    if touch is not None and arrived:
        when, _, newest = arrived[-1]
        touch(newest, when)
    newest_first = [s for _, _, s in sorted(arrived, key=lambda a: (a[0], a[1]), reverse=True)]
    latest: dict[str, Any] = {}
    if arrived:
        source = newest_first[0] if journey.latest_status_from == "timestamp" else arrived[-1][2]
        latest = {k: v for k, v in source.items() if k not in ("checkpoint_id", "tracking_id")}
    return {"latest_status": latest, "scans": newest_first, "valid": True, "additional": additional}


def render_invalid(journey: Journey, shipment: ShipmentIdentity) -> dict[str, Any]:
    """`result[<AWB>]` for an AWB answered `valid: false` (by a fault or an invalid journey)."""
    return {
        "latest_status": {},
        "scans": [],
        "valid": False,
        "additional": _additional(journey, 0, shipment),
    }


def step_recorded_at(step: JourneyStep, start: datetime, index: int = 0) -> datetime:
    """When Clickpost records the `index`-th scan of `step` (naive, journey zone)."""
    return start + timedelta(hours=step.at_hours, minutes=index) + CREATED_AT_LAG


def record_time_text(moment: datetime) -> str:
    """A journey time (naive, India) as Clickpost writes its own record times: naive UTC."""
    return moment.replace(tzinfo=JOURNEY_ZONE).astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def render_scan(
    scan: ScanSpec,
    when: datetime,
    shipment: ShipmentIdentity,
    checkpoint_id: int | None = None,
    *,
    recorded: datetime | None = None,
) -> dict[str, Any]:
    """One scan as Clickpost sends it; `checkpoint_id` overrides the one the spec implies,
    `recorded` (default: a few minutes after `when`) is when Clickpost recorded it."""
    if checkpoint_id is None:
        checkpoint_id = shipment.serial * 1000 + scan.checkpoint_id
    return {
        "timestamp": when.strftime(TIMESTAMP_FORMAT),
        "location": scan.location,
        "remark": scan.remark,
        "status": scan.status,
        "clickpost_status_code": scan.clickpost_status_code,
        "checkpoint_id": checkpoint_id,
        "tracking_id": shipment.serial,
        "created_at": record_time_text(recorded or when + CREATED_AT_LAG),
        "clickpost_status_description": scan.clickpost_status_description,
        "clickpost_status_bucket": scan.clickpost_status_bucket,
        "clickpost_status_bucket_description": scan.clickpost_status_bucket_description,
    }


def injected_checkpoint_id(shipment: ShipmentIdentity, number: int) -> int:
    """The checkpoint id of a shipment's `number`-th injected scan (from 0).

    Apart from the journey's own ids (serial * 1000 + 1..999) and below 2**53, so
    it survives a JavaScript number too.
    """
    return shipment.serial * 1_000_000 + 1_000 + number


def _additional(journey: Journey, step: int, shipment: ShipmentIdentity) -> dict[str, Any]:
    additional: dict[str, Any] = {
        "is_stuck": False,
        "order_id": shipment.order_id,
        "sku": list(journey.sku),
        "edd": {"max_sla": 4, "min_sla": 2, "exact_sla": None},
        "invoice_number": f"INV{shipment.serial:010d}",
        "pickup_city": journey.pickup_city,
        "drop_city": journey.drop_city,
        "cod_value": journey.cod_value,
        "currency_code": "INR",
        "courier_partner_edd": None,
        "channel_name": "trackwatch-sandbox",
        "qc_images": [],
        "ndr": {},
        "courier_partner_id": shipment.cp_id,
        "courier_name": shipment.courier_name,
    }
    journey.additional.apply(additional, shipment.start)
    for journey_step in journey.steps[: step + 1]:
        journey_step.additional.apply(additional, shipment.start)
    return additional


class JourneyFileError(ValueError):
    """A packaged journey file is unreadable or breaks the schema."""


@lru_cache(maxsize=1)
def load_journeys() -> dict[str, Journey]:
    """Every packaged journey, by name; a bad file raises JourneyFileError naming it."""
    folder = resources.files(_JOURNEY_PACKAGE).joinpath(_JOURNEY_DIR)
    journeys: dict[str, Journey] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        try:
            journey = Journey.model_validate_json(entry.read_text(encoding="utf-8"))
        except ValidationError as exc:
            raise JourneyFileError(f"journey file {entry.name}: {exc}") from exc
        if f"{journey.name}.json" != entry.name:
            raise JourneyFileError(f"journey file {entry.name} names itself {journey.name!r}")
        journeys[journey.name] = journey
    return journeys
