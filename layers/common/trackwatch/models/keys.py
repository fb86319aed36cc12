"""The identity of a tracked shipment: (cp_id, waybill), validated once.

A waybill from outside (the API, IngestQueue, a CSV, the command line) is read by
`check_waybill`: normalised (Unicode NFKC, then trimmed), then it must be 1 to 100
visible ASCII characters, U+0021 to U+007E, other than a comma. Clickpost takes a
waybill as a query parameter of at most 100 characters and separates several by
commas; carriers' AWBs are letters, digits and a little punctuation. Anything else
is refused rather than cleaned: a zero-width space, a Cyrillic letter or a NUL would
otherwise make a second shipment that looks like, but is not, the first. NFKC turns
what is the same text in another form into its plain form (full-width letters and
digits, U+FF21 and on, become ASCII ones), so one waybill has one key however it
was typed.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict

from trackwatch.errors import InvalidInputError
from trackwatch.models.inputs import describe

MAX_WAYBILL_LENGTH = 100
#: Clickpost's carrier ids, and DynamoDB numbers, are far below this.
MAX_CP_ID = 2**31 - 1
#: The waybill's character set, in words (the rule's own wording).
WAYBILL_CHARACTERS = "visible ASCII (U+0021 to U+007E: letters, digits, punctuation)"
_WHITESPACE = re.compile(r"\s")
_WAYBILL_CHARACTER = re.compile(r"[\x21-\x7e]")
_DIGITS = re.compile(r"[0-9]+")


def _check_shape(value: object) -> str:
    """The rule every key's waybill keeps: what a Clickpost call needs."""
    if not isinstance(value, str):
        raise InvalidInputError("waybill", f"must be a string, not {type(value).__name__}")
    if value == "":
        raise InvalidInputError("waybill", "must not be empty")
    if len(value) > MAX_WAYBILL_LENGTH:
        raise InvalidInputError(
            "waybill", f"must be at most {MAX_WAYBILL_LENGTH} characters, got {len(value)}"
        )
    if "," in value:
        raise InvalidInputError(
            "waybill", "must not contain a comma (Clickpost separates AWBs by commas)"
        )
    if _WHITESPACE.search(value):
        raise InvalidInputError("waybill", "must not contain whitespace")
    return value


def check_waybill(value: object) -> str:
    """A waybill from outside: NFKC-normalised and trimmed, then 1-100 visible ASCII
    characters other than a comma; returns the normalised waybill."""
    if not isinstance(value, str):
        raise InvalidInputError("waybill", f"must be a string, not {type(value).__name__}")
    waybill = _check_shape(unicodedata.normalize("NFKC", value).strip())
    for position, char in enumerate(waybill):
        if not _WAYBILL_CHARACTER.fullmatch(char):
            raise InvalidInputError(
                "waybill",
                f"must be {WAYBILL_CHARACTERS}: {describe(char)} at position {position + 1} is not",
            )
    return waybill


def check_key_waybill(value: object) -> str:
    """A waybill in a key already accepted (stored, or built by code): its shape only.

    Keys stored before the character-set rule keep being read, polled and stopped.
    """
    return _check_shape(value)


def check_cp_id(value: object) -> int:
    """A cp_id: a positive integer (a string of ASCII digits, after NFKC, is accepted)."""
    if isinstance(value, bool):
        raise InvalidInputError("cp_id", "must be a positive integer, not a boolean")
    if isinstance(value, str):
        digits = unicodedata.normalize("NFKC", value).strip()
        if _DIGITS.fullmatch(digits):
            # Python refuses to read more than 4300 digits; far fewer are already too many.
            if len(digits) > len(str(MAX_CP_ID)):
                raise InvalidInputError(
                    "cp_id", f"must be a positive integer of at most {MAX_CP_ID}"
                )
            value = int(digits)
    if not isinstance(value, int) or value <= 0:
        raise InvalidInputError("cp_id", f"must be a positive integer, got {value!r}")
    return value


#: A waybill as a caller sends it (see `check_waybill`).
Waybill = Annotated[str, BeforeValidator(check_waybill)]
#: A waybill of a key already accepted (see `check_key_waybill`).
KeyWaybill = Annotated[str, BeforeValidator(check_key_waybill)]
CpId = Annotated[int, BeforeValidator(check_cp_id)]


class ShipmentKey(BaseModel):
    """One shipment: the carrier's id in Clickpost and the carrier's waybill."""

    model_config = ConfigDict(frozen=True)

    cp_id: CpId
    waybill: KeyWaybill

    @classmethod
    def parse(cls, cp_id: object, waybill: object) -> ShipmentKey:
        """A key as a caller sent it (a path, an argument): the registration's rules, and
        the waybill normalised as registering it did; InvalidInputError names the rule."""
        number = check_cp_id(cp_id)
        if number > MAX_CP_ID:
            raise InvalidInputError("cp_id", f"must be a positive integer of at most {MAX_CP_ID}")
        return cls.model_construct(cp_id=number, waybill=check_waybill(waybill))

    @classmethod
    def of(cls, cp_id: object, waybill: object) -> ShipmentKey:
        """A key from values already accepted (a stored item, an event); raises
        InvalidInputError naming the field and the rule. Callers' input goes through `parse`."""
        return cls.model_construct(cp_id=check_cp_id(cp_id), waybill=check_key_waybill(waybill))

    @property
    def pk(self) -> str:
        """The DynamoDB partition key: '<cp_id>#<waybill>'."""
        return f"{self.cp_id}#{self.waybill}"

    @classmethod
    def from_pk(cls, pk: str) -> ShipmentKey:
        """Inverse of `pk`."""
        cp_id, sep, waybill = pk.partition("#")
        if not sep:
            raise InvalidInputError("pk", f"must be '<cp_id>#<waybill>', got {pk!r}")
        return cls.of(cp_id, waybill)

    def __str__(self) -> str:
        return f"{self.waybill} (cp_id {self.cp_id})"
