"""Messages from templates: one per channel, language and kind (trackwatch/templates).

`sms/<lang>/<kind>.j2` is the text of an SMS; `email/<lang>/<kind>.j2` defines the
blocks `subject` and `body`. The renderer is given the templates' sources (the
container reads the files), so rendering never touches the disk. Undefined variables
raise (StrictUndefined), so a template that names a variable the context lacks fails
its golden test, not a customer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from jinja2 import DictLoader, Environment, StrictUndefined, TemplateError, TemplateNotFound
from pydantic import BaseModel, ConfigDict

from trackwatch.errors import ConfigurationError
from trackwatch.models.events import NdrRaised, ShipmentEvent, StatusChanged, Stuck
from trackwatch.models.notification import Channel, Recipient

DEFAULT_LANGUAGE = "en"

_MONTHS = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "hi": (
        "जनवरी",
        "फ़रवरी",
        "मार्च",
        "अप्रैल",
        "मई",
        "जून",
        "जुलाई",
        "अगस्त",
        "सितंबर",
        "अक्टूबर",
        "नवंबर",
        "दिसंबर",
    ),
}


class MessageContext(BaseModel):
    """The variables every template may use (None where unknown)."""

    model_config = ConfigDict(frozen=True)

    kind: str
    waybill: str
    order_id: str | None
    #: The order id if known, else the waybill: what the customer recognises.
    order_ref: str
    courier: str | None
    status: str | None
    location: str | None
    expected_delivery: str | None
    ndr_reason: str | None
    attempt: int | None


class RenderedText(BaseModel):
    """A rendered message, before it is addressed."""

    model_config = ConfigDict(frozen=True)

    subject: str | None
    body: str


def language_of(requested: str | None, available: frozenset[str]) -> str:
    """The template language for a customer's language tag ("hi-IN" → "hi"), else English."""
    primary = (requested or "").strip().lower().replace("_", "-").split("-")[0]
    return primary if primary in available else DEFAULT_LANGUAGE


def format_date(value: date, language: str) -> str:
    """A date as people in `language` write it: "4 Dec 2026", "4 दिसंबर 2026"."""
    months = _MONTHS.get(language, _MONTHS[DEFAULT_LANGUAGE])
    return f"{value.day} {months[value.month - 1]} {value.year}"


def context_for(
    event: ShipmentEvent, kind: str, recipient: Recipient, language: str
) -> MessageContext:
    """The template variables for one event, filled from the event and the stored shipment."""
    status = location = ndr_reason = None
    attempt = None
    match event:
        case StatusChanged():
            status, location = event.status or event.clickpost_status_description, event.location
        case NdrRaised():
            location, ndr_reason, attempt = event.location, event.ndr_description, event.attempt
        case Stuck():
            location = event.location
        case _:
            pass
    order_id = event.order_id or recipient.order_id
    edd = recipient.expected_delivery
    return MessageContext(
        kind=kind,
        waybill=event.waybill,
        order_id=order_id,
        order_ref=order_id or event.waybill,
        courier=event.courier_name or recipient.courier_name,
        status=status,
        location=location,
        expected_delivery=format_date(edd, language) if edd else None,
        ndr_reason=ndr_reason,
        attempt=attempt,
    )


class Renderer:
    """Renders message templates, given as {"<channel>/<language>/<kind>.j2": source}."""

    def __init__(self, templates: Mapping[str, str]) -> None:
        self._names = frozenset(templates)
        self._env = Environment(
            loader=DictLoader(dict(templates)),
            undefined=StrictUndefined,
            # Plain text (SMS, text/plain e-mail): HTML escaping would corrupt it.
            autoescape=False,  # noqa: S701
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )

    def languages(self, channel: Channel) -> frozenset[str]:
        """The languages with templates for `channel`."""
        return frozenset(
            parts[1]
            for name in self._names
            if len(parts := name.split("/")) == 3 and parts[0] == channel
        )

    def render(self, channel: Channel, language: str, context: MessageContext) -> RenderedText:
        """Render `context.kind` for `channel` in `language`; a broken template is a
        ConfigurationError naming it."""
        name = f"{channel}/{language}/{context.kind}.j2"
        try:
            template = self._env.get_template(name)
            variables = context.model_dump()
            if channel == "sms":
                return RenderedText(subject=None, body=_tidy(template.render(variables)))
            blocks = template.new_context(variables)
            subject = "".join(template.blocks["subject"](blocks))
            body = "".join(template.blocks["body"](template.new_context(variables)))
        except TemplateNotFound as exc:
            raise ConfigurationError(f"no template {name}") from exc
        except KeyError as exc:
            raise ConfigurationError(f"template {name} lacks the block {exc}") from exc
        except TemplateError as exc:
            raise ConfigurationError(f"template {name} failed: {exc}") from exc
        return RenderedText(subject=" ".join(subject.split()), body=_tidy(body) + "\n")


def _tidy(text: str) -> str:
    """Strip each line's trailing spaces and the text's outer blank lines."""
    return "\n".join(line.rstrip() for line in text.strip().splitlines())
