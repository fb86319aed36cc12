"""The hostile values behind the sandbox's data faults (see FaultKind for the real-world cases)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from trackwatch_cli.sandbox.body import Repeat, Splicer
from trackwatch_cli.sandbox.faults import Fault, FaultKind
from trackwatch_cli.sandbox.journey import (
    CREATED_AT_LAG,
    InjectedScan,
    Journey,
    ScanSpec,
    ScanTouch,
    ShipmentIdentity,
    injected_checkpoint_id,
    record_time_text,
    render_scan,
)

#: The sandbox's scan times are naive India time, as Clickpost's samples are.
INDIA = timezone(timedelta(hours=5, minutes=30), "IST")
#: HUGE_BODY's data URI starts like a real JPEG's: the base64 of its SOI and JFIF marker.
DATA_URI_PREFIX = "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQ"
#: A carrier's error page, as it lands in a remark when pasted there.
_ERROR_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1>"
    "<p>The proxy server received an invalid response from an upstream server.</p>"
    "<pre>at com.carrier.tracking.ScanService.fetch(ScanService.java:214) </pre></body></html> "
)


def _epoch_s(when: datetime) -> int:
    return int(when.replace(tzinfo=INDIA).timestamp())


#: How each timestamp fault writes a scan that really happened at `when` (India time).
TIMESTAMP_FORMS: Mapping[FaultKind, Callable[[datetime], str | int]] = {
    FaultKind.TIMESTAMP_YEAR_ONE: lambda _: "0001-01-01 00:00:00",
    FaultKind.TIMESTAMP_YEAR_9999: lambda _: "9999-12-31T23:59:59-05:00",
    FaultKind.TIMESTAMP_ZEROS: lambda _: "0000-00-00 00:00:00",
    FaultKind.TIMESTAMP_DAY_FIRST: lambda when: when.strftime("%d/%m/%Y %H:%M"),
    FaultKind.TIMESTAMP_EPOCH_S: _epoch_s,
    FaultKind.TIMESTAMP_EPOCH_MS: lambda when: _epoch_s(when) * 1000,
    FaultKind.TIMESTAMP_BLANK: lambda _: "  ",
}

_FUTURE_SPEC = ScanSpec(
    checkpoint_id=1,
    status="In Transit",
    clickpost_status_code=5,
    clickpost_status_description="InTransit",
    clickpost_status_bucket=3,
    clickpost_status_bucket_description="In transit",
    location="Bhiwandi_Hub (Maharashtra)",
    remark="Bag received at hub",
)
_HISTORY_HUBS = (
    "Delhi_Bilaspur_HB (Haryana)",
    "Gurgaon_Sector37_DC (Haryana)",
    "Delhi_Okhla_PC (Delhi)",
)


def huge_remark(size: int) -> str:
    """An ASCII remark of exactly `size` characters: an error page pasted over and over."""
    return (_ERROR_PAGE * (size // len(_ERROR_PAGE) + 1))[:size]


def future_scan(
    journey: Journey, step: int, shipment: ShipmentIdentity, number: int, days_ahead: float
) -> InjectedScan:
    """An in-transit scan dated `days_ahead` past the time of `step`, arriving with it.

    Only the carrier's date is wrong: `created_at`, Clickpost's own record time, is when
    the scan really arrived.
    """
    clock = shipment.start + timedelta(hours=journey.steps[step].at_hours)
    when = clock + timedelta(days=days_ahead)
    scan = render_scan(_FUTURE_SPEC, when, shipment, injected_checkpoint_id(shipment, number))
    scan["created_at"] = record_time_text(clock + CREATED_AT_LAG)
    return InjectedScan(after_step=step, when=when, scan=scan)


def long_history(shipment: ShipmentIdentity, first_number: int, count: int) -> list[InjectedScan]:
    """`count` manifest-update scans, a minute apart, ending a minute before the journey."""
    history = []
    for index in range(count):
        spec = ScanSpec(
            checkpoint_id=1,
            status="Manifested",
            clickpost_status_code=1,
            clickpost_status_description="OrderPlaced",
            clickpost_status_bucket=1,
            clickpost_status_bucket_description="Order Placed",
            location=_HISTORY_HUBS[index % len(_HISTORY_HUBS)],
            remark=f"Shipment details updated ({index + 1} of {count})",
        )
        when = shipment.start - timedelta(minutes=count - index)
        checkpoint_id = injected_checkpoint_id(shipment, first_number + index)
        scan = render_scan(spec, when, shipment, checkpoint_id)
        history.append(InjectedScan(after_step=-1, when=when, scan=scan))
    return history


def _constant(value: str) -> Callable[[datetime], str]:
    return lambda _: value


def scan_touch(faults: Sequence[Fault], splicer: Splicer) -> ScanTouch | None:
    """What `faults` do to a waybill's newest-arrived scan, in the order they were set."""
    edits: list[tuple[str, Callable[[datetime], str | int]]] = []
    for fault in faults:
        if fault.kind in TIMESTAMP_FORMS:
            edits.append(("timestamp", TIMESTAMP_FORMS[fault.kind]))
        elif fault.kind is FaultKind.INVALID_UTF8:
            edits.append(("remark", _constant(splicer.splice(b'"' + fault.raw + b'"'))))
        elif fault.kind is FaultKind.HUGE_REMARK:
            edits.append(("remark", _constant(huge_remark(fault.size()))))
    if not edits:
        return None

    def touch(scan: dict[str, Any], when: datetime) -> None:
        for name, value in edits:
            scan[name] = value(when)

    return touch


def corrupt_additional(
    additional: dict[str, Any], faults: Sequence[Fault], splicer: Splicer
) -> None:
    """What `faults` do to a waybill's `additional` object (its `qc_images`)."""
    for fault in faults:
        if fault.kind is FaultKind.DEEP_NESTING:
            nested = splicer.splice(Repeat(b"[", fault.depth), Repeat(b"]", fault.depth))
            additional["qc_images"] = nested
        elif fault.kind is FaultKind.HUGE_BODY:
            size = fault.size()
            prefix = DATA_URI_PREFIX.encode()[:size]
            image = splicer.splice(b'"', prefix, Repeat(b"A", size - len(prefix)), b'"')
            additional["qc_images"] = [image]
