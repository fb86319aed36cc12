"""The identity of a tracked shipment: (cp_id, waybill), validated once."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict

from trackwatch.errors import InvalidInputError

MAX_WAYBILL_LENGTH = 100
_WHITESPACE = re.compile(r"\s")


def check_waybill(value: object) -> str:
    """A waybill: non-empty, at most 100 characters, no comma and no whitespace."""
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


def check_cp_id(value: object) -> int:
    """A cp_id: a positive integer (a string of digits is accepted)."""
    if isinstance(value, bool):
        raise InvalidInputError("cp_id", "must be a positive integer, not a boolean")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value <= 0:
        raise InvalidInputError("cp_id", f"must be a positive integer, got {value!r}")
    return value


Waybill = Annotated[str, BeforeValidator(check_waybill)]
CpId = Annotated[int, BeforeValidator(check_cp_id)]


class ShipmentKey(BaseModel):
    """One shipment: the carrier's id in Clickpost and the carrier's waybill."""

    model_config = ConfigDict(frozen=True)

    cp_id: CpId
    waybill: Waybill

    @classmethod
    def of(cls, cp_id: object, waybill: object) -> ShipmentKey:
        """Validate and build; raises InvalidInputError naming the field and the rule."""
        return cls.model_construct(cp_id=check_cp_id(cp_id), waybill=check_waybill(waybill))

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
