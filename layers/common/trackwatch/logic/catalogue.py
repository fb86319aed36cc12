"""The Clickpost status catalogue, loaded from data so a deployment can override it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trackwatch.errors import ConfigurationError


class StatusInfo(BaseModel):
    """What trackwatch knows about one clickpost_status_code."""

    model_config = ConfigDict(frozen=True)

    code: int
    name: str
    terminal: bool = False
    failed_delivery: bool = False
    out_for_delivery: bool = False
    known: bool = True


class _CatalogueFile(BaseModel):
    statuses: list[StatusInfo] = Field(min_length=1)


class StatusCatalogue:
    """code → StatusInfo; an unknown code is accepted as a non-terminal status."""

    def __init__(self, statuses: list[StatusInfo]) -> None:
        self._by_code = {s.code: s for s in statuses}

    def lookup(self, code: int, description: str | None = None) -> StatusInfo:
        """The status for `code`; unknown codes keep Clickpost's own description."""
        known = self._by_code.get(code)
        if known is not None:
            return known
        return StatusInfo(code=code, name=description or f"Unknown{code}", known=False)

    def is_known(self, code: int) -> bool:
        """Whether `code` is in the catalogue."""
        return code in self._by_code

    @property
    def terminal_codes(self) -> frozenset[int]:
        """The codes that end a journey."""
        return frozenset(code for code, status in self._by_code.items() if status.terminal)

    def __len__(self) -> int:
        return len(self._by_code)

    @classmethod
    def from_json(cls, text: str, source: str) -> StatusCatalogue:
        """Parse a catalogue file; a bad file is a ConfigurationError naming it."""
        try:
            parsed = _CatalogueFile.model_validate_json(text)
        except ValidationError as exc:
            raise ConfigurationError(f"status catalogue {source} is invalid: {exc}") from exc
        return cls(parsed.statuses)
