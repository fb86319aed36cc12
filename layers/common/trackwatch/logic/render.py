"""Messages from templates: one per language, channel and kind (trackwatch/templates).

`<language>/sms/<kind>.txt` is the text registered on DLT, `{#var#}` where a value goes;
`<language>/whatsapp/<kind>.txt` the body of the Meta-approved template, `{{1}}`, `{{2}}`...
where its parameters go; `<language>/email/<kind>.j2` defines the jinja2 blocks `subject`
and `body`. What fills the placeholders, and the external identities, come from the message
registry (logic/registry.py). The renderer is given the templates' sources (the container
reads the files), so rendering never touches the disk. E-mail templates raise on an undefined
variable (StrictUndefined), so a typo fails its golden test, not a customer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from trackwatch.errors import ConfigurationError
from trackwatch.logic import sms
from trackwatch.logic.registry import (
    CLICKPOST_TEXT,
    DLT_PLACEHOLDER,
    MIN_CLICKPOST_LENGTH,
    WHATSAPP_BODY_LIMIT,
    WHATSAPP_PARAMETER_LIMIT,
    MessageRegistry,
    SmsEntry,
    template_name,
)
from trackwatch.models.events import (
    DelayPredicted,
    NdrRaised,
    OrderCompleted,
    OrderPartiallyDelivered,
    OrderStatusChanged,
    StatusChanged,
    Stuck,
    TopicEvent,
    is_order_event,
)
from trackwatch.models.notification import Channel, Recipient, WhatsAppTemplate

if TYPE_CHECKING:
    from jinja2 import Environment

DEFAULT_LANGUAGE = "en"
_WHATSAPP_PARAMETER = re.compile(r"\{\{(\d+)\}\}")
_SPACES = re.compile(r"\s+")

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


class Parcel(BaseModel):
    """One shipment of an order, as an order's e-mail lists it."""

    model_config = ConfigDict(frozen=True)

    waybill: str
    #: Where it stands (an OrderMember's standing: the template words it).
    standing: str


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
    #: For an order: how many of its parcels the message is about (shipped, delivered...),
    #: and how many it has.
    pieces: int | None = None
    total_pieces: int | None = None
    #: For an order's e-mail: each parcel and where it stands.
    parcels: tuple[Parcel, ...] = ()

    def value(self, variable: str) -> str | None:
        """One variable as text; None when unknown."""
        raw = getattr(self, variable)
        return None if raw is None else str(raw)


class RenderedText(BaseModel):
    """A rendered message, before it is addressed."""

    model_config = ConfigDict(frozen=True)

    subject: str | None
    body: str
    #: SMS: the DLT template the body follows, its encoding and segments.
    dlt_template_id: str | None = None
    encoding: sms.Encoding | None = None
    segments: int | None = None
    #: WhatsApp: the approved template and the values of its parameters.
    whatsapp: WhatsAppTemplate | None = None
    #: The variables shortened to fit (Clickpost's text, over-long order numbers).
    shortened: tuple[str, ...] = ()


def language_of(requested: str | None, available: frozenset[str]) -> str:
    """The template language for a customer's language tag ("hi-IN" → "hi"), else English."""
    primary = (requested or "").strip().lower().replace("_", "-").split("-")[0]
    return primary if primary in available else DEFAULT_LANGUAGE


def format_date(value: date, language: str) -> str:
    """A date as people in `language` write it: "4 Dec 2026", "4 दिसंबर 2026"."""
    months = _MONTHS.get(language, _MONTHS[DEFAULT_LANGUAGE])
    return f"{value.day} {months[value.month - 1]} {value.year}"


def context_for(
    event: TopicEvent, kind: str, recipient: Recipient, language: str
) -> MessageContext:
    """The template variables for one event, filled from the event and the stored shipment."""
    if is_order_event(event):
        return _order_context(event, kind, recipient, language)
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
    if isinstance(event, DelayPredicted):
        # The news is the new date.
        location, edd = event.location, event.predicted_delivery_date
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


def _order_context(
    event: OrderStatusChanged | OrderPartiallyDelivered | OrderCompleted,
    kind: str,
    recipient: Recipient,
    language: str,
) -> MessageContext:
    """An order's message: its order number, how many of its parcels, each parcel's standing.
    The courier and the status are left out: an order's parcels may travel with several."""
    pieces = event.reached if isinstance(event, OrderStatusChanged) else event.delivered
    edd = recipient.expected_delivery
    return MessageContext(
        kind=kind,
        waybill=event.members[0].waybill if event.members else recipient.key.waybill,
        order_id=event.order_id,
        order_ref=event.order_id,
        courier=None,
        status=None,
        location=None,
        expected_delivery=format_date(edd, language) if edd else None,
        ndr_reason=None,
        attempt=None,
        pieces=pieces,
        total_pieces=event.total,
        parcels=tuple(Parcel(waybill=m.waybill, standing=m.standing) for m in event.members),
    )


# --------------------------------------------------------------------------- SMS


def fill_sms(
    entry: SmsEntry, text: str, values: Mapping[str, str], max_segments: int
) -> RenderedText:
    """The registered DLT text with each `{#var#}` filled: values cleaned for the registered
    encoding and cut to their registered length, then Clickpost's text shortened (longest
    first) until the message fits `max_segments`. The fixed text is never touched."""
    encoding = entry.encoding
    fixed = text.split(DLT_PLACEHOLDER)
    if len(fixed) - 1 != len(entry.variables):
        raise ConfigurationError(f"DLT template {entry.dlt_template_id}: placeholders mismatch")
    filled: list[str] = []
    shortened: set[str] = set()
    for variable in entry.variables:
        value = sms.clean(values[variable.name], encoding)
        cut = (sms.cut_end if variable.name in CLICKPOST_TEXT else sms.cut_start)(
            value, variable.max_length, encoding
        )
        if cut != value:
            shortened.add(variable.name)
        filled.append(cut)
    body = _compose(fixed, filled)
    room = sms.capacity(max_segments, encoding)
    while sms.segments(body, encoding) > max_segments:
        index = _longest_clickpost(entry, filled)
        if index is None:
            raise ConfigurationError(
                f"DLT template {entry.dlt_template_id} cannot fit {max_segments} segments"
            )
        over = sms.length(body, encoding) - room
        current = filled[index]
        limit = max(MIN_CLICKPOST_LENGTH, len(current) - max(over, 1))
        filled[index] = sms.cut_end(current, limit, encoding)
        shortened.add(entry.variables[index].name)
        body = _compose(fixed, filled)
    return RenderedText(
        subject=None,
        body=body,
        dlt_template_id=entry.dlt_template_id,
        encoding=encoding,
        segments=sms.segments(body, encoding),
        shortened=tuple(sorted(shortened)),
    )


def _compose(fixed: list[str], values: list[str]) -> str:
    parts = [fixed[0]]
    for value, after in zip(values, fixed[1:], strict=True):
        parts.extend((value, after))
    return "".join(parts)


def _longest_clickpost(entry: SmsEntry, filled: list[str]) -> int | None:
    """The Clickpost value that can still give most room, or None."""
    candidates = [
        (len(value), i)
        for i, (variable, value) in enumerate(zip(entry.variables, filled, strict=True))
        if variable.name in CLICKPOST_TEXT and len(value) > MIN_CLICKPOST_LENGTH
    ]
    return max(candidates)[1] if candidates else None


# --------------------------------------------------------------------------- WhatsApp


def whatsapp_parameter(value: str, variable: str) -> str:
    """A value Meta accepts as a template parameter: no new line or tab, no run of more than
    four spaces; Clickpost's text shortened to a few words."""
    text = _SPACES.sub(" ", "".join(" " if not c.isprintable() else c for c in value)).strip()
    if variable in CLICKPOST_TEXT:
        text = sms.cut_end(text, WHATSAPP_PARAMETER_LIMIT, "ucs2")
    return text or "-"


def fill_whatsapp(
    name: str, language_code: str, parameters: tuple[str, ...], text: str
) -> RenderedText:
    """The approved body with its parameters in, and the template message to send."""
    body = _WHATSAPP_PARAMETER.sub(lambda m: parameters[int(m[1]) - 1], text).strip()
    if len(body) > WHATSAPP_BODY_LIMIT:
        raise ConfigurationError(f"WhatsApp template {name}: body over {WHATSAPP_BODY_LIMIT}")
    return RenderedText(
        subject=None,
        body=body,
        whatsapp=WhatsAppTemplate(name=name, language_code=language_code, parameters=parameters),
    )


# --------------------------------------------------------------------------- the renderer


class Renderer:
    """Renders messages from templates {"<language>/<channel>/<kind>.<ext>": source} and the
    message registry."""

    def __init__(
        self, templates: Mapping[str, str], registry: MessageRegistry, sms_max_segments: int = 3
    ) -> None:
        self.templates = dict(templates)
        self.registry = registry
        self.sms_max_segments = sms_max_segments

    @cached_property
    def _env(self) -> Environment:
        # jinja2 only where e-mail is rendered: the SMS and WhatsApp notifiers never import it.
        from jinja2 import DictLoader, Environment, StrictUndefined

        return Environment(
            loader=DictLoader(self.templates),
            undefined=StrictUndefined,
            # Plain text (text/plain e-mail): HTML escaping would corrupt it.
            autoescape=False,  # noqa: S701
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )

    def languages(self, channel: Channel) -> frozenset[str]:
        """The languages with templates for `channel`."""
        return frozenset(
            parts[0]
            for name in self.templates
            if len(parts := name.split("/")) == 3 and parts[1] == channel
        )

    def render(self, channel: Channel, language: str, context: MessageContext) -> RenderedText:
        """Render `context.kind` for `channel` in `language`; a missing or broken template or
        registration is a ConfigurationError naming it."""
        name = template_name(language, channel, context.kind)
        if channel == "email":
            return self._email(name, context)
        text = self.templates.get(name)
        if text is None:
            raise ConfigurationError(f"no template {name}")
        text = text.strip()
        if channel == "sms":
            entry = self.registry.sms(language, context.kind)
            values: dict[str, str] = {
                v.name: self._value(context, v.name, language) for v in entry.variables
            }
            return fill_sms(entry, text, values, self.sms_max_segments)
        wa = self.registry.whatsapp(language, context.kind)
        parameters = tuple(
            whatsapp_parameter(self._value(context, variable, language), variable)
            for variable in wa.parameters
        )
        return fill_whatsapp(wa.template_name, wa.language_code, parameters, text)

    def _value(self, context: MessageContext, variable: str, language: str) -> str:
        value = context.value(variable)
        return value if value else self.registry.placeholder(language, variable)

    def _email(self, name: str, context: MessageContext) -> RenderedText:
        from jinja2 import TemplateError, TemplateNotFound

        try:
            template = self._env.get_template(name)
            variables = context.model_dump()
            subject = "".join(template.blocks["subject"](template.new_context(variables)))
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
