"""Clickpost's track-order response, field for field.

Parsing is lenient where Clickpost is loose: unknown fields are ignored, nulls
are accepted wherever Clickpost has been seen to send them, and numbers sent
as strings (or strings sent as numbers) are coerced, by pydantic itself rather
than by Python validators, which would cost a call per field on every scan. Objects
sent empty ("", [], {}) and lists sent null are read by pydantic too and settled
afterwards, in one Python call per AWB (`AwbResult._finish`): a before-validator
would make pydantic build its input as Python objects before validating them again,
which had made the whole parse 1.7x `json.loads` instead of 1.0x.

Timestamps are total: every form Clickpost or a carrier is known to send is
read (see `parse_timestamp`), and a value that cannot be read never fails the
scan. It becomes `timestamp=None`, with the value as sent, bounded, in
`timestamp_raw` (likewise `created_at`). Zone-less carrier times (`timestamp`)
are read in the source zone passed as validation context
(``{"source_tz": ZoneInfo(...)}``, Asia/Kolkata when absent); zone-less
Clickpost record times (`created_at`, the feed's `updated_at`) in the record zone
(``{"record_tz": ...}``, UTC when absent: in Clickpost's own sample every scan's
`created_at` falls 2-5 hours *before* its India-time `timestamp` if read in India
time, and 0.5-3 hours after it if read as UTC, which fits Clickpost's two-hourly
carrier refresh; undocumented, so it is a setting). Every datetime held is aware.

`read_track_order` reads a body waybill by waybill: the envelope first, then
each `result` entry on its own, so one entry that does not parse costs that
waybill alone. Two quirks of JSON are settled here rather than left to chance:
a duplicated key keeps its last value (both pydantic's parser and Python's
`json` do so, so the fast and the entry-by-entry paths agree), and bytes that
are not UTF-8 are replaced with U+FFFD instead of rejecting the body.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Self, TypedDict
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetPydanticSchema,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
    with_config,
)
from pydantic_core import core_schema

# Re-exported: where Clickpost's zone-less times are read is Clickpost's matter too.
from trackwatch.models.policy import DEFAULT_SOURCE_TIMEZONE as DEFAULT_SOURCE_TIMEZONE

#: The zone Clickpost's zone-less timestamps are read in unless a deployment says otherwise.
_DEFAULT_ZONE = ZoneInfo(DEFAULT_SOURCE_TIMEZONE)
#: The zone of Clickpost's own record times (`created_at`, `updated_at`) unless told otherwise.
DEFAULT_RECORD_TIMEZONE = "UTC"
_DEFAULT_RECORD_ZONE = ZoneInfo(DEFAULT_RECORD_TIMEZONE)

#: Timestamps outside these years are treated as unreadable: no scan is that old
#: or that far ahead, and the bounds keep every UTC conversion clear of overflow.
MIN_YEAR = 1970
MAX_YEAR = 2200
#: Epoch numbers above this are milliseconds, the threshold pydantic itself uses:
#: as seconds it is the year 2603, as milliseconds August 1970.
EPOCH_MILLISECONDS_ABOVE = 2e10
#: How much of an unreadable timestamp is kept for diagnosis.
RAW_TIMESTAMP_CHARS = 64
#: How much of an unreadable result entry is kept for diagnosis, in UTF-8 bytes.
FRAGMENT_BYTES = 2048
_LONGEST_TIMESTAMP = 64
_EPOCH_MAX_S = datetime(MAX_YEAR + 1, 1, 1, tzinfo=UTC).timestamp()


# --------------------------------------------------------------------------- timestamps


def parse_timestamp(value: object, tz: ZoneInfo) -> datetime | None:
    """Any known timestamp form as an aware datetime; None when absent or unreadable. Never raises.

    Read: ISO 8601 with a 'T' or a space, fractional seconds, 'Z' or an offset
    (zone-less values are read in `tz`); epoch seconds or milliseconds as a
    number or a digit string, told apart by magnitude (read as UTC); surrounding
    whitespace. Unreadable: anything else, and any time outside MIN_YEAR..MAX_YEAR.
    """
    try:
        if isinstance(value, datetime):
            parsed: datetime | None = value
        elif isinstance(value, str):
            parsed = _from_text(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            parsed = _from_epoch(value)
        else:
            return None
        if parsed is None or not MIN_YEAR <= parsed.year <= MAX_YEAR:
            return None
        # utcoffset() is None for a naive datetime, and for one whose tzinfo gives
        # no offset; Python bounds any offset to under a day, so within the year
        # bounds every conversion to UTC succeeds.
        return parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=tz)
    except (ValueError, OverflowError, OSError, TypeError, ArithmeticError):
        return None


def _from_text(value: str) -> datetime | None:
    text = value.strip()
    if not text or len(text) > _LONGEST_TIMESTAMP:
        return None
    if text.isascii() and (text.isdigit() or _is_decimal(text)):
        return _from_epoch(float(text))
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        # A lower-case separator or zone ('t', 'z') is ISO 8601 too.
        return datetime.fromisoformat(text.upper())


def _is_decimal(text: str) -> bool:
    whole, dot, fraction = text.partition(".")
    return bool(dot) and whole.isdigit() and fraction.isdigit()


def _from_epoch(value: float) -> datetime | None:
    seconds = value / 1000 if abs(value) > EPOCH_MILLISECONDS_ABOVE else value
    if not (math.isfinite(seconds) and 0 <= seconds < _EPOCH_MAX_S):
        return None
    return datetime.fromtimestamp(seconds, UTC)


def _raw_text(value: object) -> str:
    """An unreadable timestamp, bounded, for diagnosis."""
    if isinstance(value, str):
        return value[:RAW_TIMESTAMP_CHARS]
    if isinstance(value, datetime):
        # Out of range, but read by pydantic: its reading stands for what was sent.
        return value.isoformat()[:RAW_TIMESTAMP_CHARS]
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"<integer of {value.bit_length()} bits>"
    if isinstance(value, bool | int | float):
        return repr(value)[:RAW_TIMESTAMP_CHARS]
    return f"<{type(value).__name__}>"


def _is_absent(value: object) -> bool:
    return value is None or (isinstance(value, str) and value == "")


# --------------------------------------------------------------------------- models


#: A time as it comes off the wire: parsed by pydantic itself when it can be (the
#: common case costs no Python), otherwise kept as sent. Whoever reads the status (its
#: AwbResult, or a Scan itself) then zones it, tries the forms pydantic does not read, or
#: marks it unreadable, so by the time anyone sees it the field holds what its annotation
#: says.
_WIRE_TIME_SCHEMA = core_schema.nullable_schema(
    core_schema.union_schema(
        [core_schema.datetime_schema(), core_schema.any_schema()], mode="left_to_right"
    )
)
WireTime = Annotated[datetime | None, GetPydanticSchema(lambda _t, _h: _WIRE_TIME_SCHEMA)]
#: The same reading, for a time read only when someone asks for it (`created_at`).
_WIRE_TIME = TypeAdapter[object](
    Annotated[object, GetPydanticSchema(lambda _t, _h: _WIRE_TIME_SCHEMA)]
)
#: Where StatusObject keeps the zone it was read in (beside its fields, never dumped).
_ZONE_KEY = "_source_tz"
#: And the zone its record times (`created_at`) are read in, when the context names one.
_RECORD_ZONE_KEY = "_record_tz"
#: Where AwbResult keeps its scans once built.
_SCANS_KEY = "_scans"


def _finished_time(value: object, tz: ZoneInfo) -> tuple[datetime | None, str | None]:
    """A wire time as (the aware time or None, the value as sent when it is unreadable)."""
    if type(value) is datetime and value.tzinfo is None and MIN_YEAR <= value.year <= MAX_YEAR:
        # The common case: a zone-less time pydantic has already parsed.
        return value.replace(tzinfo=tz), None
    parsed = None if value is None else parse_timestamp(value, tz)
    unreadable = parsed is None and not _is_absent(value)
    return parsed, _raw_text(value) if unreadable else None


#: A list (or a mapping) Clickpost may also send as null, meaning empty: read by pydantic
#: alone, and settled by the model holding it (a before-validator would have pydantic build
#: the value as Python objects, then validate those).
_NULLABLE = GetPydanticSchema(lambda source, handler: core_schema.nullable_schema(handler(source)))


class _ClickpostModel(BaseModel):
    # coerce_numbers_to_str: Clickpost sends some identifiers as numbers in one
    # payload and strings in another.
    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)


class StatusObject(_ClickpostModel):
    """One status: `latest_status`, and the shape every scan extends.

    Its times are finished (zoned, or marked unreadable) by whoever reads it: the AwbResult
    holding it, in that result's one validator, or `Scan`'s own. A Python validator per
    status object cost as much as pydantic's whole parse of it, so a status read inside an
    AwbResult has none (see `AwbResult._finish`). Validated on its own, a StatusObject keeps
    pydantic's reading of `timestamp`; read a scan's shape with `Scan`.

    `created_at` is kept as sent and read only when asked for: nothing on the poll path
    needs it, and reading it for every scan was a fifth of the parse.
    """

    # A status handed in as an instance is rebuilt, so finishing it never touches the caller's.
    model_config = ConfigDict(revalidate_instances="always")

    timestamp: WireTime = None
    location: str | None = None
    remark: str | None = None
    status: str | None = None
    clickpost_status_code: int | None = None
    clickpost_status_description: str | None = None
    clickpost_status_bucket: int | None = None
    clickpost_status_bucket_description: str | None = None
    #: `created_at` as sent; read by the `created_at` property.
    created_at_sent: Any = Field(default=None, alias="created_at", exclude=True)
    #: `timestamp` as sent (at most 64 characters) when it could not be read or is
    #: out of range; else None. Set only by validation, never taken from the input.
    timestamp_raw: str | None = None

    def _created(self) -> tuple[datetime | None, str | None]:
        # Read as it would have been in the body (the union never refuses a value).
        value = _WIRE_TIME.validate_python(self.created_at_sent)
        # A record time: Clickpost's own clock (UTC unless the context says otherwise).
        return _finished_time(value, self.__dict__.get(_RECORD_ZONE_KEY, _DEFAULT_RECORD_ZONE))

    @property
    def created_at(self) -> datetime | None:
        """When Clickpost recorded the status, aware; None when absent or unreadable."""
        return self._created()[0]

    @property
    def created_at_raw(self) -> str | None:
        """`created_at` as sent (at most 64 characters) when it could not be read."""
        return self._created()[1]


def _finish_status(status: StatusObject, tz: ZoneInfo, record_tz: ZoneInfo | None) -> None:
    """Zone a freshly read status's `timestamp` in `tz` (or mark it unreadable) and keep the
    zone of its record times. The model is frozen and not yet shared, so the finished values
    go straight into its __dict__; timestamp_raw is always set here, never taken from the
    input."""
    values = status.__dict__
    values[_ZONE_KEY] = tz
    if record_tz is not None:
        values[_RECORD_ZONE_KEY] = record_tz
    value = values["timestamp"]
    if type(value) is datetime and value.tzinfo is None and MIN_YEAR <= value.year <= MAX_YEAR:
        # The common case: a zone-less time pydantic has already parsed.
        values["timestamp"] = value.replace(tzinfo=tz)
        values["timestamp_raw"] = None
    else:
        values["timestamp"], values["timestamp_raw"] = _finished_time(value, tz)


def _zones_of(info: ValidationInfo) -> tuple[ZoneInfo, ZoneInfo | None]:
    """The validation context's zone of carrier times (India's when absent) and of record
    times (None when absent: the default applies when one is read)."""
    context = info.context
    if type(context) is not dict:
        return _DEFAULT_ZONE, None
    tz = context.get("source_tz", _DEFAULT_ZONE)
    record_tz = context.get("record_tz")
    return (
        tz if isinstance(tz, ZoneInfo) else _DEFAULT_ZONE,
        record_tz if isinstance(record_tz, ZoneInfo) else None,
    )


class Scan(StatusObject):
    """One checkpoint of a shipment's history (read on its own: it finishes its times)."""

    checkpoint_id: int | str | None = None
    tracking_id: int | str | None = None

    @model_validator(mode="after")
    def _finish_time(self, info: ValidationInfo) -> Self:
        # One call per scan, after pydantic has parsed what it can; scans are built only
        # when a poll needs them (see AwbResult.scans).
        _finish_status(self, *_zones_of(info))
        return self


@with_config(ConfigDict(extra="ignore", coerce_numbers_to_str=True))
class ScanFields(TypedDict, total=False):
    """A scan as read off the wire: Scan's fields with Scan's types, checked as strictly, but
    held in a dict. Building a model (and zoning its times) for every scan was most of the
    parse; a poll needs the models only of the scans it has not seen (see AwbResult.scans)."""

    #: As sent: read when the scan's model is built.
    timestamp: Any
    location: str | None
    remark: str | None
    status: str | None
    clickpost_status_code: int | None
    clickpost_status_description: str | None
    clickpost_status_bucket: int | None
    clickpost_status_bucket_description: str | None
    created_at: Any
    checkpoint_id: int | str | None
    tracking_id: int | str | None


class Edd(_ClickpostModel):
    """Clickpost's SLA-based expected delivery, in days."""

    min_sla: int | None = None
    max_sla: int | None = None
    exact_sla: int | None = None


class Ndr(_ClickpostModel):
    """The latest non-delivery report, as Clickpost buckets it."""

    ndr_bucket_code: int | None = None
    ndr_description: str | None = None


#: The branches of a loose object, as pydantic names them in an error's location; the
#: empty ones are left out of `describe_validation`, and the object's own name too, so an
#: error reads as it would for the model alone.
_OBJECT_BRANCH = "<object>"
_EMPTY_BRANCHES = frozenset({"<empty string>", "<empty list>"})


def _loose_object(model: type[BaseModel]) -> GetPydanticSchema:
    """An object Clickpost may also send as null, "" or [] (all meaning none): read by pydantic
    alone, the model first, so a well-formed object costs no Python; anything else fails as it
    would for the model. What stands for none is settled by `AwbResult._finish`."""
    return GetPydanticSchema(
        lambda _t, handler: core_schema.nullable_schema(
            core_schema.union_schema(
                [
                    (handler.generate_schema(model), _OBJECT_BRANCH),
                    (core_schema.literal_schema([""]), "<empty string>"),
                    (
                        core_schema.list_schema(core_schema.any_schema(), max_length=0),
                        "<empty list>",
                    ),
                ],
                mode="left_to_right",
            )
        )
    )


def _is_none_sent(value: object) -> bool:
    """null, "", [] or an object with no field we read ({} and the like): nothing sent."""
    return not isinstance(value, BaseModel) or not value.model_fields_set


class Additional(_ClickpostModel):
    """Everything about the shipment that is not a scan (`edd` and `ndr` sent empty settled to
    None, `sku` and `qc_images` sent null to [], by the AwbResult holding it)."""

    # Handed in as an instance, it is rebuilt: settling it never touches the caller's.
    model_config = ConfigDict(revalidate_instances="always")

    is_stuck: bool | None = None
    order_id: str | None = None
    sku: Annotated[list[str], _NULLABLE] = Field(default_factory=list)
    edd: Annotated[Edd | None, _loose_object(Edd)] = None
    invoice_number: str | None = None
    pickup_city: str | None = None
    drop_city: str | None = None
    cod_value: float | None = None
    currency_code: str | None = None
    courier_partner_edd: str | None = None
    channel_name: str | None = None
    qc_images: Annotated[list[str], _NULLABLE] = Field(default_factory=list)
    ndr: Annotated[Ndr | None, _loose_object(Ndr)] = None
    courier_partner_id: int | None = None
    courier_name: str | None = None

    def settle(self) -> None:
        """Just read (not yet shared): `edd` and `ndr` sent empty become None, `sku` and
        `qc_images` sent null become []. In place: the model is frozen, so into __dict__."""
        fields = self.__dict__
        for name in ("edd", "ndr"):
            if fields[name] is not None and _is_none_sent(fields[name]):
                fields[name] = None
        for name in ("sku", "qc_images"):
            if fields[name] is None:
                fields[name] = []


class AwbResult(_ClickpostModel):
    """What Clickpost says about one AWB."""

    latest_status: Annotated[StatusObject | None, _loose_object(StatusObject)] = None
    #: The scans as read, every field checked (None when Clickpost sends null); `scans`
    #: gives them as models.
    scans_read: list[ScanFields] | None = Field(default=None, alias="scans")
    valid: bool = True
    additional: Annotated[Additional, _loose_object(Additional)] = Field(default_factory=Additional)

    @model_validator(mode="after")
    def _finish(self, info: ValidationInfo) -> Self:
        # The one Python call per AWB (the rest is pydantic's): settle what was sent empty,
        # finish latest_status's times, and keep the zones the scans' times are read in when
        # `scans` builds them. The model is frozen and not yet shared, so the values go
        # straight into its __dict__.
        values = self.__dict__
        tz, record_tz = _zones_of(info)
        values[_ZONE_KEY] = tz
        values[_RECORD_ZONE_KEY] = record_tz or _DEFAULT_RECORD_ZONE
        latest = values["latest_status"]
        if _is_none_sent(latest):
            values["latest_status"] = None
        else:
            _finish_status(latest, tz, record_tz)
        extra = values["additional"]
        if isinstance(extra, Additional):
            extra.settle()
        else:
            values["additional"] = Additional()
        return self

    @property
    def scans(self) -> list[Scan]:
        """Every scan as a model with its times read (built once, on first use)."""
        built: list[Scan] | None = self.__dict__.get(_SCANS_KEY)
        if built is None:
            context = {
                "source_tz": self.__dict__.get(_ZONE_KEY, _DEFAULT_ZONE),
                "record_tz": self.__dict__.get(_RECORD_ZONE_KEY, _DEFAULT_RECORD_ZONE),
            }
            built = [
                Scan.model_validate(fields, context=context) for fields in self.scans_read or ()
            ]
            self.__dict__[_SCANS_KEY] = built
        return built

    @property
    def checkpoint_ids(self) -> list[object]:
        """Each scan's checkpoint_id as sent, without building the scans."""
        return [fields.get("checkpoint_id") for fields in self.scans_read or ()]


class Meta(_ClickpostModel):
    """The envelope: HTTP-like status, message, and whether the call succeeded."""

    status: int | None = None
    success: bool = False
    message: str | None = None


class TrackOrderResponse(_ClickpostModel):
    """The whole body of GET /api/v2/track-order/."""

    meta: Meta
    #: null settles to {} (a before-validator would have pydantic build the whole `result`
    #: as Python objects first, and then validate those: twice the parse).
    result: Annotated[dict[str, AwbResult], _NULLABLE] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _settle(self) -> Self:
        if self.__dict__["result"] is None:
            self.__dict__["result"] = {}
        return self


def parse_track_order(
    body: bytes | str, tz: ZoneInfo | None = None, *, record_tz: ZoneInfo | None = None
) -> TrackOrderResponse:
    """Parse a whole track-order body; raises pydantic.ValidationError if any part is bad."""
    return TrackOrderResponse.model_validate_json(body, context=zones(tz, record_tz))


def zones(tz: ZoneInfo | None = None, record_tz: ZoneInfo | None = None) -> dict[str, ZoneInfo]:
    """The validation context: the zones of carrier times and of Clickpost's record times."""
    return {"source_tz": tz or _DEFAULT_ZONE, "record_tz": record_tz or _DEFAULT_RECORD_ZONE}


# --------------------------------------------------------------------------- waybill by waybill


class UnreadableBodyError(ValueError):
    """The body, its envelope or an entry cannot be read; `reason` never quotes the body."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class UnreadableEntry:
    """A `result` entry that does not parse."""

    #: Where and how it failed (pydantic's location and error type), never the value.
    reason: str
    #: The entry as sent, cut to FRAGMENT_BYTES of UTF-8: Clickpost's text, for diagnosis only.
    fragment: str


@dataclass(frozen=True, slots=True)
class TrackOrderRead:
    """A track-order body read entry by entry."""

    meta: Meta
    #: The requested waybills whose entries were read.
    result: Mapping[str, AwbResult]
    #: The requested waybills whose entries could not be read.
    unreadable: Mapping[str, UnreadableEntry]
    #: Entries in `result` for waybills nobody asked for; not read.
    ignored: int


def read_track_order(
    body: bytes | str,
    tz: ZoneInfo | None = None,
    waybills: Collection[str] | None = None,
    *,
    record_tz: ZoneInfo | None = None,
) -> TrackOrderRead:
    """Read a body waybill by waybill (all of them when `waybills` is None).

    Raises UnreadableBodyError when the body is not JSON or its `meta` cannot be
    read. A refused call (`meta.success` false) has its `result` left unread.
    """
    context = zones(tz, record_tz)
    wanted = None if waybills is None else frozenset(waybills)
    try:
        # The common case, at pydantic's speed: everything parses at once.
        whole = TrackOrderResponse.model_validate_json(body, context=context)
    except (ValueError, RecursionError):
        # ValidationError is a ValueError; so is a str body pydantic cannot encode.
        return _read_entry_by_entry(body, context, wanted)
    if not whole.meta.success:
        return TrackOrderRead(whole.meta, {}, {}, 0)
    if wanted is None:
        return TrackOrderRead(whole.meta, whole.result, {}, 0)
    result = {w: r for w, r in whole.result.items() if w in wanted}
    return TrackOrderRead(whole.meta, result, {}, len(whole.result) - len(result))


def _read_entry_by_entry(
    body: bytes | str, context: dict[str, ZoneInfo], wanted: frozenset[str] | None
) -> TrackOrderRead:
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise UnreadableBodyError(f"not JSON: {exc.msg} at {where}") from None
    except RecursionError:
        raise UnreadableBodyError("not JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise UnreadableBodyError("not a JSON object")
    meta = _validate(Meta, document.get("meta"), context, ("meta",))
    if not meta.success:
        return TrackOrderRead(meta, {}, {}, 0)
    entries = document.get("result")
    if entries is None:
        entries = {}
    if not isinstance(entries, dict):
        raise UnreadableBodyError("result: not an object")
    result: dict[str, AwbResult] = {}
    unreadable: dict[str, UnreadableEntry] = {}
    ignored = 0
    for waybill, entry in entries.items():
        if wanted is not None and waybill not in wanted:
            ignored += 1
            continue
        try:
            result[waybill] = _validate(AwbResult, entry, context, ())
        except UnreadableBodyError as exc:
            unreadable[waybill] = UnreadableEntry(exc.reason, _fragment(entry))
    return TrackOrderRead(meta, result, unreadable, ignored)


def _validate[M: BaseModel](
    model: type[M], value: object, context: dict[str, ZoneInfo], where: tuple[str, ...]
) -> M:
    # Back through JSON, so an entry is read exactly as the fast path reads it
    # (pydantic coerces a JSON number and a Python float to text differently).
    try:
        return model.model_validate_json(json.dumps(value), context=context)
    except ValidationError as exc:
        raise UnreadableBodyError(describe_validation(exc, where)) from None
    except RecursionError:
        raise UnreadableBodyError(f"{'.'.join(where) or 'entry'}: nested too deeply") from None


def describe_validation(exc: ValidationError, where: tuple[str, ...] = ()) -> str:
    """Where and how validation failed, e.g. 'scans.3.clickpost_status_code: int_parsing'.

    Locations and pydantic's error types only: never the input, which is
    Clickpost's text and not ours to put in an error or a log.
    """
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    # A loose object's failure, as the model's own: not its empty alternatives, nor the branch.
    errors = [e for e in errors if _EMPTY_BRANCHES.isdisjoint(e["loc"])] or errors
    first = errors[0]
    path = [str(p) for p in first["loc"] if p != _OBJECT_BRANCH]
    location = ".".join([*where, *path]) or "entry"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{location}: {first['type']}{more}"


def _fragment(entry: object) -> str:
    try:
        text = json.dumps(entry, ensure_ascii=False)
    except (RecursionError, ValueError):
        return ""
    return text.encode("utf-8", errors="replace")[:FRAGMENT_BYTES].decode("utf-8", errors="ignore")
