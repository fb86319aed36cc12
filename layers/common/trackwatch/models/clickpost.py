"""Clickpost's track-order response, field for field.

Parsing is lenient where Clickpost is loose: unknown fields are ignored, nulls
are accepted wherever Clickpost has been seen to send them, and numbers sent
as strings (or strings sent as numbers) are coerced. Timestamps carry no zone
on the wire; they are read in the source zone passed as validation context
(``{"source_tz": ZoneInfo(...)}``, Asia/Kolkata when absent) and held as aware
datetimes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

#: The zone Clickpost's zone-less timestamps are read in unless a deployment says otherwise.
DEFAULT_SOURCE_TIMEZONE = "Asia/Kolkata"
_DEFAULT_ZONE = ZoneInfo(DEFAULT_SOURCE_TIMEZONE)


def source_zone(info: ValidationInfo) -> ZoneInfo:
    """The zone naive timestamps are read in: the validation context's, or India's."""
    context = info.context
    if isinstance(context, dict):
        tz = context.get("source_tz")
        if isinstance(tz, ZoneInfo):
            return tz
    return _DEFAULT_ZONE


def parse_timestamp(value: object, tz: ZoneInfo) -> datetime | None:
    """'YYYY-MM-DD HH:MM:SS' (or ISO 8601) read in `tz`; empty or null is None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueError(f"timestamp {value!r} is not 'YYYY-MM-DD HH:MM:SS'") from exc
    else:
        raise ValueError(f"timestamp must be a string, not {type(value).__name__}")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def _to_str(value: object) -> object:
    # Clickpost sends some identifiers as numbers in one payload and strings in another.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _none_to_list(value: object) -> object:
    return [] if value is None else value


LooseStr = Annotated[str, BeforeValidator(_to_str)]
LooseList = Annotated[list[LooseStr], BeforeValidator(_none_to_list)]


class _ClickpostModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class StatusObject(_ClickpostModel):
    """One status: `latest_status`, and the shape every scan extends."""

    timestamp: datetime | None = None
    location: LooseStr | None = None
    remark: LooseStr | None = None
    status: LooseStr | None = None
    clickpost_status_code: int | None = None
    clickpost_status_description: LooseStr | None = None
    clickpost_status_bucket: int | None = None
    clickpost_status_bucket_description: LooseStr | None = None
    created_at: datetime | None = None

    @field_validator("timestamp", "created_at", mode="before")
    @classmethod
    def _zoned(cls, value: object, info: ValidationInfo) -> datetime | None:
        return parse_timestamp(value, source_zone(info))


class Scan(StatusObject):
    """One checkpoint of a shipment's history."""

    checkpoint_id: int | LooseStr | None = None
    tracking_id: int | LooseStr | None = None


class Edd(_ClickpostModel):
    """Clickpost's SLA-based expected delivery, in days."""

    min_sla: int | None = None
    max_sla: int | None = None
    exact_sla: int | None = None


class Ndr(_ClickpostModel):
    """The latest non-delivery report, as Clickpost buckets it."""

    ndr_bucket_code: int | None = None
    ndr_description: LooseStr | None = None


class Additional(_ClickpostModel):
    """Everything about the shipment that is not a scan."""

    is_stuck: bool | None = None
    order_id: LooseStr | None = None
    sku: LooseList = Field(default_factory=list)
    edd: Edd | None = None
    invoice_number: LooseStr | None = None
    pickup_city: LooseStr | None = None
    drop_city: LooseStr | None = None
    cod_value: float | None = None
    currency_code: LooseStr | None = None
    courier_partner_edd: LooseStr | None = None
    channel_name: LooseStr | None = None
    qc_images: LooseList = Field(default_factory=list)
    ndr: Ndr | None = None
    courier_partner_id: int | None = None
    courier_name: LooseStr | None = None

    @field_validator("edd", "ndr", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value in ({}, "", []) else value


class AwbResult(_ClickpostModel):
    """What Clickpost says about one AWB."""

    latest_status: StatusObject | None = None
    scans: Annotated[list[Scan], BeforeValidator(_none_to_list)] = Field(default_factory=list)
    valid: bool = True
    additional: Additional = Field(default_factory=Additional)

    @field_validator("latest_status", "additional", mode="before")
    @classmethod
    def _empty_objects(cls, value: object, info: ValidationInfo) -> object:
        if value in ({}, "", []):
            return None if info.field_name == "latest_status" else {}
        if value is None and info.field_name == "additional":
            return {}
        return value


class Meta(_ClickpostModel):
    """The envelope: HTTP-like status, message, and whether the call succeeded."""

    status: int | None = None
    success: bool = False
    message: LooseStr | None = None


class TrackOrderResponse(_ClickpostModel):
    """The whole body of GET /api/v2/track-order/."""

    meta: Meta
    result: Annotated[dict[str, AwbResult], BeforeValidator(lambda v: {} if v is None else v)] = (
        Field(default_factory=dict)
    )


def parse_track_order(body: bytes | str, tz: ZoneInfo | None = None) -> TrackOrderResponse:
    """Parse a track-order body; raises pydantic.ValidationError on a bad shape."""
    return TrackOrderResponse.model_validate_json(body, context={"source_tz": tz or _DEFAULT_ZONE})
