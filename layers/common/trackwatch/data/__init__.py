"""The data files that ship with the layer, read by the container (never by the logic).

Each can be replaced by a deployment (a path in settings); a file that cannot be
read or does not validate is a ConfigurationError naming it.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from trackwatch.errors import ConfigurationError
from trackwatch.logic.business_hours import BusinessCalendar
from trackwatch.logic.catalogue import StatusCatalogue
from trackwatch.logic.notify_rules import NotifyRules
from trackwatch.logic.orders import OrderStageTable
from trackwatch.logic.registry import MessageRegistry
from trackwatch.logic.render import Renderer
from trackwatch.models.delays import CalendarSpec, DelayRules


def _read(name: str, override: Path | None, what: str) -> tuple[str, str]:
    """(text, source) of `override` if given, else of the packaged `name`."""
    if override is not None:
        try:
            return override.read_text(encoding="utf-8"), str(override)
        except OSError as exc:
            raise ConfigurationError(f"cannot read {what} {override}: {exc}") from exc
    text = resources.files("trackwatch.data").joinpath(name).read_text("utf-8")
    return text, f"trackwatch/data/{name}"


def load_catalogue(path: Path | None = None) -> StatusCatalogue:
    """The status catalogue: the packaged one, or the file at `path`."""
    text, source = _read("status_codes.json", path, "status catalogue")
    return StatusCatalogue.from_json(text, source)


def load_rules(catalogue: StatusCatalogue, path: Path | None = None) -> NotifyRules:
    """The notification rules: the packaged ones, or the file at `path`."""
    text, source = _read("notifications.json", path, "notification rules")
    return NotifyRules.from_json(text, source, catalogue)


def load_order_stages(catalogue: StatusCatalogue, path: Path | None = None) -> OrderStageTable:
    """What each status code means for an order's member: the packaged table, or `path`."""
    text, source = _read("order_stages.json", path, "order stage table")
    return OrderStageTable.from_json(text, source, catalogue)


def load_registry(path: Path | None = None) -> MessageRegistry:
    """The message registry: the packaged one, or the file at `path`."""
    text, source = _read("messages.json", path, "message registry")
    return MessageRegistry.from_json(text, source)


def load_calendar(path: Path | None = None) -> BusinessCalendar:
    """The business-hours calendar: the packaged one (India), or the file at `path`."""
    text, source = _read("holidays.json", path, "holiday calendar")
    try:
        spec = CalendarSpec.model_validate_json(_without_comment(text))
        return BusinessCalendar(spec)
    except ValueError as exc:  # not JSON, a bad zone, or pydantic's ValidationError
        raise ConfigurationError(f"holiday calendar {source} is invalid: {exc}") from exc


def load_delay_rules(catalogue: StatusCatalogue, path: Path | None = None) -> DelayRules:
    """The dwell rules: the packaged ones, or the file at `path`; status codes must be in the
    catalogue."""
    text, source = _read("delays.json", path, "delay rules")
    try:
        rules = DelayRules.model_validate_json(_without_comment(text))
    except ValueError as exc:  # not JSON, or pydantic's ValidationError
        raise ConfigurationError(f"delay rules {source} are invalid: {exc}") from exc
    dwell = rules.stuck_after_business_hours
    codes = {*dwell.by_status, *rules.delivered_status_codes} | {
        code for table in dwell.by_carrier.values() for code in table
    }
    unknown = sorted(code for code in codes if not catalogue.is_known(code))
    if unknown:
        raise ConfigurationError(
            f"delay rules {source} name status codes not in the catalogue: {unknown}"
        )
    return rules


def _without_comment(text: str) -> str:
    """A data file without its `_comment` (the models forbid fields they do not know)."""
    loaded = json.loads(text)
    if isinstance(loaded, dict):
        loaded.pop("_comment", None)
    return json.dumps(loaded)


def load_templates() -> dict[str, str]:
    """Every packaged message template, by "<language>/<channel>/<kind>.<ext>"."""
    root = resources.files("trackwatch").joinpath("templates")
    sources: dict[str, str] = {}
    for language in root.iterdir():
        if not language.is_dir():
            continue
        for channel in language.iterdir():
            if not channel.is_dir():
                continue
            for template in channel.iterdir():
                if template.name.endswith((".j2", ".txt")):
                    name = f"{language.name}/{channel.name}/{template.name}"
                    sources[name] = template.read_text("utf-8")
    return sources


def load_renderer(registry: MessageRegistry | None = None, sms_max_segments: int = 3) -> Renderer:
    """A renderer over the packaged templates and the registry (the packaged one by default)."""
    return Renderer(load_templates(), registry or load_registry(), sms_max_segments)
