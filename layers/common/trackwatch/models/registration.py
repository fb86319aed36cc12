"""A shipment registration as callers send it: over HTTP, on IngestQueue, or as a CSV row.

Every rule is checked here once, and every broken rule is reported as a
`Problem` naming the field and the rule (``phone: not a valid phone number``),
never as pydantic's own wording of its internals. A whole body that is not
JSON, not an object or a list, or a list of more than `MAX_BATCH` entries is
refused as a whole (InvalidInputError on ``body``); in a list, each entry
stands or falls on its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from trackwatch.errors import InvalidInputError, MalformedInputError
from trackwatch.models.inputs import (
    PROMISE_DATES,
    check_printable,
    describe,
    is_promise_date,
    is_surrogate,
    lone_surrogates,
    visible,
)
from trackwatch.models.keys import MAX_CP_ID, MAX_WAYBILL_LENGTH, CpId, ShipmentKey, Waybill

MAX_BATCH = 100
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
DEFAULT_PHONE_REGION = "IN"
DEFAULT_LANGUAGE = "en"
MAX_ORDER_ID_LENGTH = 100
MAX_METADATA_ENTRIES = 20
MAX_METADATA_KEY_LENGTH = 64
MAX_METADATA_VALUE_LENGTH = 256

Channel = Literal["whatsapp", "sms", "email"]
CHANNELS: frozenset[str] = frozenset({"whatsapp", "sms", "email"})


def check_phone(value: object) -> str:
    """A phone number, normalised to E.164; national numbers are read as Indian."""
    if not isinstance(value, str):
        raise InvalidInputError("phone", "must be a string")
    # Imported on first use rather than at cold start: of the API's routes, only a
    # registration needs it.
    import phonenumbers

    try:
        number = phonenumbers.parse(value, DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInputError("phone", "not a valid phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidInputError("phone", "not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def check_email(value: object) -> str:
    """An e-mail address by its syntax (no DNS look-up), normalised."""
    if not isinstance(value, str):
        raise InvalidInputError("email", "must be a string")
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        # email-validator's reasons are about the address's shape, never echo it whole.
        raise InvalidInputError("email", f"not a valid e-mail address ({exc})") from exc


def check_metadata(value: object) -> dict[str, str]:
    """A small string-to-string map: a few short keys with short values."""
    if not isinstance(value, dict):
        raise InvalidInputError("metadata", "must be an object of strings")
    if len(value) > MAX_METADATA_ENTRIES:
        raise InvalidInputError("metadata", f"must have at most {MAX_METADATA_ENTRIES} entries")
    for key, item in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_METADATA_KEY_LENGTH:
            raise InvalidInputError(
                "metadata", f"keys must be 1 to {MAX_METADATA_KEY_LENGTH} characters"
            )
        check_printable("metadata", key)
        if not isinstance(item, str):
            raise InvalidInputError("metadata", f"value of {key!r} must be a string")
        if any(is_surrogate(c) for c in item):
            raise InvalidInputError("metadata", f"value of {key!r} must be valid Unicode text")
        if len(item) > MAX_METADATA_VALUE_LENGTH:
            raise InvalidInputError(
                "metadata",
                f"value of {key!r} must be at most {MAX_METADATA_VALUE_LENGTH} characters",
            )
    return dict(value)


def check_order_id(value: object) -> object:
    """An order id is printable text (its length is the field's own rule)."""
    return check_printable("order_id", value) if isinstance(value, str) else value


def parse_order_id(value: str) -> str:
    """An order id given on its own (a path, a command's argument): 1 to
    MAX_ORDER_ID_LENGTH characters of printable text; else InvalidInputError."""
    if not 1 <= len(value) <= MAX_ORDER_ID_LENGTH:
        raise InvalidInputError("order_id", f"must be 1 to {MAX_ORDER_ID_LENGTH} characters")
    return check_printable("order_id", value)


Phone = Annotated[
    str,
    BeforeValidator(check_phone),
    Field(description="Normalised to E.164; a number without +country code is read as Indian."),
]
Email = Annotated[
    str,
    BeforeValidator(check_email),
    Field(json_schema_extra={"format": "email"}),
]
Metadata = Annotated[
    dict[str, str],
    BeforeValidator(check_metadata),
    Field(
        description=(
            f"At most {MAX_METADATA_ENTRIES} entries; keys up to {MAX_METADATA_KEY_LENGTH} "
            f"characters, values up to {MAX_METADATA_VALUE_LENGTH}."
        )
    ),
]


class Outcome(StrEnum):
    """What a registration did."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"


class Registration(BaseModel):
    """Put a shipment under tracking, or update how its customer is reached.

    Registering a shipment again merges: fields left out keep their stored
    value, a field sent as null clears it (phone, email, order_id, metadata).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    waybill: Waybill = Field(
        description=(
            f"The carrier's AWB: 1-{MAX_WAYBILL_LENGTH} visible ASCII characters (U+0021 to "
            "U+007E) other than a comma, after Unicode NFKC normalisation and trimming; "
            "stored and answered normalised."
        )
    )
    cp_id: CpId = Field(description="Clickpost's carrier id: a positive integer.", le=MAX_CP_ID)
    order_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ORDER_ID_LENGTH,
        description="Printable text: no control or invisible formatting characters.",
    )
    phone: Phone | None = None
    email: Email | None = None
    language: str | None = Field(
        default=None, description="A supported language code (en, hi, ...); default en."
    )
    channels: tuple[Channel, ...] | None = Field(
        default=None,
        description=(
            "Channels the customer accepts, in order of preference; default whatsapp, sms, "
            "email. WhatsApp and SMS stand in for each other in this order (a message goes by "
            "the first that can reach the customer, and by the next if it is not delivered); "
            "e-mail is sent besides."
        ),
        max_length=3,
    )
    opt_out: tuple[Channel, ...] | None = Field(
        default=None, description="Channels the customer refused; never used.", max_length=3
    )
    metadata: Metadata | None = None
    promised_delivery_date: date | None = Field(
        default=None,
        description=(
            "The delivery date promised to the customer (YYYY-MM-DD, 2000 to 2099). A shipment "
            "still on its way when this day ends in its destination's zone gets "
            "shipment.sla_breached; "
            "without it, the carrier's EDD is the promise."
        ),
    )

    @field_validator("promised_delivery_date", mode="before")
    @classmethod
    def _plain_date(cls, value: object) -> object:
        # A date only: pydantic would also take a timestamp, or a datetime at midnight.
        if value is None:
            return value
        day: date | None = None
        if isinstance(value, date) and not isinstance(value, datetime):
            day = value
        elif isinstance(value, str) and _DATE.fullmatch(value):
            try:
                day = date.fromisoformat(value)
            except ValueError:
                day = None  # 2026-02-30
        if day is None:
            raise InvalidInputError("promised_delivery_date", "must be a date, YYYY-MM-DD")
        if not is_promise_date(day):
            first, last = PROMISE_DATES
            raise InvalidInputError(
                "promised_delivery_date",
                f"must be a date from {first.isoformat()} to {last.isoformat()}",
            )
        return day

    @field_validator("order_id", mode="before")
    @classmethod
    def _printable_order_id(cls, value: object) -> object:
        return check_order_id(value)

    @field_validator("language")
    @classmethod
    def _supported_language(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        languages = _languages(info.context)
        if value not in languages:
            raise InvalidInputError("language", f"must be one of {', '.join(sorted(languages))}")
        return value

    @field_validator("channels", "opt_out")
    @classmethod
    def _distinct(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and len(set(value)) != len(value):
            raise InvalidInputError("channels", "must not repeat a channel")
        return value

    @property
    def key(self) -> ShipmentKey:
        """The shipment this registers."""
        return ShipmentKey.model_construct(cp_id=self.cp_id, waybill=self.waybill)

    def given(self, name: str) -> bool:
        """Whether the caller sent `name` (null included), as opposed to leaving it out."""
        return name in self.model_fields_set


class Problem(BaseModel):
    """One broken rule: the field it concerns and the rule, in words."""

    model_config = ConfigDict(frozen=True)

    field: str = Field(description="The field, e.g. phone, or channels[1].")
    rule: str = Field(description="The rule it broke, e.g. not a valid phone number.")

    def __str__(self) -> str:
        return f"{self.field}: {self.rule}"


class Rejected(BaseModel):
    """An entry that was not accepted, and every reason why."""

    model_config = ConfigDict(frozen=True)

    problems: tuple[Problem, ...]
    waybill: str | None = None
    cp_id: int | None = None

    def __str__(self) -> str:
        return "; ".join(str(p) for p in self.problems)


def _languages(context: object) -> frozenset[str]:
    if isinstance(context, Mapping) and context.get("languages"):
        return frozenset(context["languages"])
    return frozenset({DEFAULT_LANGUAGE})


def _field_name(location: Sequence[int | str]) -> str:
    name = ""
    for part in location:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            # An unknown field is named as sent: escape what cannot be shown or stored.
            shown = visible(part)
            name += f".{shown}" if name else shown
    return name or "body"


def _rule(error: Mapping[str, Any]) -> str:
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, InvalidInputError):
        return cause.rule
    kind = error["type"]
    ctx = error.get("ctx") or {}
    rules = {
        "missing": "is required",
        "less_than_equal": f"must be a positive integer of at most {ctx.get('le')}",
        "extra_forbidden": "is not a known field",
        "string_type": "must be a string",
        "string_too_short": f"must be at least {ctx.get('min_length')} characters",
        "string_too_long": f"must be at most {ctx.get('max_length')} characters",
        "too_long": f"must have at most {ctx.get('max_length')} entries",
        "tuple_type": "must be a list",
        "literal_error": f"must be one of {ctx.get('expected', '')}".replace("'", ""),
        "model_type": "must be an object",
        "model_attributes_type": "must be an object",
    }
    return rules.get(kind) or str(error["msg"]).removeprefix("Value error, ")


def problems_of(exc: ValidationError) -> tuple[Problem, ...]:
    """pydantic's errors as field + rule, in the field order of the model."""
    seen: dict[str, Problem] = {}
    for error in exc.errors():
        # A rule may quote the input (an e-mail validator names the character it refused).
        problem = Problem(field=_field_name(error["loc"]), rule=visible(_rule(error)))
        seen.setdefault(problem.field, problem)
    return tuple(seen.values())


def parse_entry(raw: object, languages: Iterable[str]) -> Registration | Rejected:
    """One entry: a Registration, or every problem with it (nothing is stored for it)."""
    # JSON's \ud800 escapes make strings that are not text: no store, queue or answer
    # can carry them, so such an entry is refused before anything reads it.
    broken = [
        Problem(field=where, rule=f"must be valid Unicode text: {describe(char)} is not")
        for where, char in lone_surrogates(raw)
    ]
    if broken:
        cp_id = raw.get("cp_id") if isinstance(raw, dict) else None
        return Rejected(
            problems=tuple(broken),
            cp_id=cp_id if isinstance(cp_id, int) and not isinstance(cp_id, bool) else None,
        )
    try:
        return Registration.model_validate(raw, context={"languages": frozenset(languages)})
    except ValidationError as exc:
        identity = raw if isinstance(raw, dict) else {}
        waybill = identity.get("waybill")
        cp_id = identity.get("cp_id")
        return Rejected(
            problems=problems_of(exc),
            waybill=waybill
            if isinstance(waybill, str) and len(waybill) <= MAX_WAYBILL_LENGTH
            else None,
            cp_id=cp_id if isinstance(cp_id, int) and not isinstance(cp_id, bool) else None,
        )


def parse_body(body: str | bytes | None) -> tuple[bool, list[object]]:
    """A request or message body: (is it a batch, its entries); whole-body problems raise."""
    if body is None or not body.strip():
        raise MalformedInputError("body", "is required: a JSON object or a list of them")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise MalformedInputError("body", "not valid JSON") from exc
    if isinstance(payload, dict):
        return False, [payload]
    if isinstance(payload, list):
        if not payload:
            raise InvalidInputError("body", "a batch must hold at least one shipment")
        if len(payload) > MAX_BATCH:
            raise InvalidInputError(
                "body", f"a batch holds at most {MAX_BATCH} shipments, got {len(payload)}"
            )
        return True, payload
    raise InvalidInputError("body", "must be a JSON object or a list of objects")
