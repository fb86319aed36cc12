"""The message registry: what each message kind says, per language and channel, and under
which external identity it is registered (data/messages.json, with templates/<language>/).

SMS to India must match a template registered on DLT, character for character outside
its `{#var#}` placeholders, each placeholder filled with at most `max_length` characters
(30 is DLT's usual limit). WhatsApp messages a business starts must be Meta-approved
templates, per language, with `{{1}}`, `{{2}}`... filled in the registered parameter
order. E-mail has no registration: its templates are free text (jinja2).

`problems()` checks the registry against the templates, the notification rules and the
configured languages; the container refuses to start on any problem, and a unit test runs
the same check, so a kind without its template in some language never reaches a customer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trackwatch.errors import ConfigurationError
from trackwatch.logic import sms
from trackwatch.logic.notify_rules import NotifyRules
from trackwatch.models.notification import Channel

VariableName = Literal[
    "order_ref",
    "waybill",
    "courier",
    "status",
    "location",
    "expected_delivery",
    "ndr_reason",
    "attempt",
    "pieces",
    "total_pieces",
]
#: Variables that always have a value.
ALWAYS_KNOWN: frozenset[str] = frozenset({"order_ref", "waybill"})
#: Variables whose text comes from Clickpost (a carrier's words): these are shortened
#: when a message would be too long, never the registered text around them.
CLICKPOST_TEXT: frozenset[str] = frozenset({"courier", "status", "location", "ndr_reason"})
#: A Clickpost value is never shortened below this (with its ellipsis), so it still says
#: something; the registry check makes sure every template fits with them at this length.
MIN_CLICKPOST_LENGTH = 8

DLT_PLACEHOLDER = "{#var#}"
_WHATSAPP_PARAMETER = re.compile(r"\{\{(\d+)\}\}")
#: Meta's limit on a template's body, parameters included.
WHATSAPP_BODY_LIMIT = 1024
#: A WhatsApp parameter from Clickpost is shortened to this; Meta sets no limit of its own
#: below the body's, but a parameter is a few words.
WHATSAPP_PARAMETER_LIMIT = 60

#: The file a channel's template has, under templates/<language>/<channel>/<kind>.<ext>.
EXTENSIONS: dict[Channel, str] = {"sms": "txt", "whatsapp": "txt", "email": "j2"}


def template_name(language: str, channel: Channel, kind: str) -> str:
    """The template's name: its path under templates/."""
    return f"{language}/{channel}/{kind}.{EXTENSIONS[channel]}"


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SmsVariable(_Entry):
    """One `{#var#}` of a DLT template: what fills it, and how long it may be."""

    name: VariableName
    max_length: int = Field(default=30, ge=1, le=160)

    @model_validator(mode="before")
    @classmethod
    def _name_alone(cls, data: object) -> object:
        # "order_ref" is short for {"name": "order_ref"} (DLT's default of 30 characters).
        return {"name": data} if isinstance(data, str) else data


class SmsEntry(_Entry):
    """A kind's SMS in one language, as registered on DLT."""

    dlt_template_id: str = Field(pattern=r"^[0-9]{19}$")
    #: GSM-7 for a template registered as plain text, UCS-2 for one registered as Unicode.
    encoding: sms.Encoding
    #: What fills each `{#var#}`, in order.
    variables: tuple[SmsVariable, ...]


class WhatsAppEntry(_Entry):
    """A kind's WhatsApp template in one language, as approved by Meta."""

    template_name: str = Field(pattern=r"^[a-z0-9_]{1,512}$")
    #: Meta's code of the approved translation.
    language_code: str = Field(pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$")
    category: Literal["UTILITY"] = "UTILITY"
    #: What fills `{{1}}`, `{{2}}`, ... in order.
    parameters: tuple[VariableName, ...]


class LanguageEntry(_Entry):
    """Everything one language needs besides its folder of templates."""

    sms: dict[str, SmsEntry]
    whatsapp: dict[str, WhatsAppEntry]
    #: What a variable says when its value is unknown (registered text cannot bend around it).
    placeholders: dict[VariableName, str] = Field(default_factory=dict)
    #: Replies that mean "no more messages on this channel" (compared case-insensitively).
    opt_out_keywords: tuple[str, ...] = ()


class MessageRegistry(BaseModel):
    """The whole registry, by language."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    languages: dict[str, LanguageEntry]

    @model_validator(mode="after")
    def _some_language(self) -> Self:
        if not self.languages:
            raise ValueError("the registry names no language")
        return self

    def sms(self, language: str, kind: str) -> SmsEntry:
        """The DLT registration of `kind` in `language`; ConfigurationError if there is none."""
        entry = self._language(language).sms.get(kind)
        if entry is None:
            raise ConfigurationError(f"no SMS registration for {kind} in {language}")
        return entry

    def whatsapp(self, language: str, kind: str) -> WhatsAppEntry:
        """The Meta template of `kind` in `language`; ConfigurationError if there is none."""
        entry = self._language(language).whatsapp.get(kind)
        if entry is None:
            raise ConfigurationError(f"no WhatsApp template for {kind} in {language}")
        return entry

    def placeholder(self, language: str, variable: str) -> str:
        """What `variable` says in `language` when it has no value."""
        text = self._language(language).placeholders.get(variable)  # type: ignore[call-overload]
        if text is None:
            raise ConfigurationError(f"no placeholder for {variable} in {language}")
        return str(text)

    def opt_out_keywords(self) -> frozenset[str]:
        """Every language's opt-out replies, case-folded."""
        return frozenset(
            word.casefold() for entry in self.languages.values() for word in entry.opt_out_keywords
        )

    def _language(self, language: str) -> LanguageEntry:
        entry = self.languages.get(language)
        if entry is None:
            raise ConfigurationError(f"the message registry has no language {language}")
        return entry

    @classmethod
    def from_json(cls, text: str, source: str) -> MessageRegistry:
        """Parse a registry file; a ConfigurationError names what is wrong."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise ConfigurationError(f"message registry {source} is invalid: {exc}") from exc


# --------------------------------------------------------------------------- the check


def problems(
    registry: MessageRegistry,
    templates: Mapping[str, str],
    rules: NotifyRules,
    languages: Iterable[str],
    sms_max_segments: int,
) -> list[str]:
    """Everything that would stop a configured kind reaching a customer in a configured
    language on a channel that sends it; empty when all is well."""
    found: list[str] = []
    for language in sorted(languages):
        entry = registry.languages.get(language)
        if entry is None:
            found.append(f"{language}: no entry in the message registry")
            continue
        for channel, channel_rules in sorted(rules.channels.items()):
            for kind in sorted(channel_rules.kinds):
                found.extend(
                    _kind_problems(entry, templates, language, channel, kind, sms_max_segments)
                )
    return found


def _kind_problems(
    entry: LanguageEntry,
    templates: Mapping[str, str],
    language: str,
    channel: Channel,
    kind: str,
    sms_max_segments: int,
) -> list[str]:
    name = template_name(language, channel, kind)
    text = templates.get(name)
    if text is None:
        return [f"{name}: no template"]
    # A file ends with a new line; the registered text does not.
    text = text.strip()
    where = name
    if channel == "sms":
        sms_entry = entry.sms.get(kind)
        if sms_entry is None:
            return [f"{where}: no DLT registration (sms.{kind}) in the registry"]
        return [f"{where}: {p}" for p in sms_problems(sms_entry, text, entry, sms_max_segments)]
    if channel == "whatsapp":
        wa_entry = entry.whatsapp.get(kind)
        if wa_entry is None:
            return [f"{where}: no Meta template (whatsapp.{kind}) in the registry"]
        return [f"{where}: {p}" for p in whatsapp_problems(wa_entry, text, entry)]
    return []


def _missing_placeholders(entry: LanguageEntry, names: Iterable[str]) -> list[str]:
    return [
        f"no placeholder for {name}"
        for name in names
        if name not in ALWAYS_KNOWN and name not in entry.placeholders
    ]


def sms_problems(
    sms_entry: SmsEntry, text: str, entry: LanguageEntry, max_segments: int
) -> list[str]:
    """A DLT template's text against its registration: placeholders, encoding, length."""
    found: list[str] = []
    fixed = text.split(DLT_PLACEHOLDER)
    if len(fixed) - 1 != len(sms_entry.variables):
        found.append(
            f"{len(fixed) - 1} {DLT_PLACEHOLDER} in the text, "
            f"{len(sms_entry.variables)} variables registered"
        )
        return found
    fixed_text = "".join(fixed)
    if "{{" in fixed_text or "{#" in fixed_text or "\n" in fixed_text:
        found.append("the text holds something other than fixed text and {#var#}")
    actual = sms.encoding_of(fixed_text)
    if actual != sms_entry.encoding:
        found.append(f"registered as {sms_entry.encoding}, but its fixed text is {actual}")
    found.extend(_missing_placeholders(entry, (v.name for v in sms_entry.variables)))
    longest = fixed_text + "".join(
        "x"
        * (min(v.max_length, MIN_CLICKPOST_LENGTH) if v.name in CLICKPOST_TEXT else v.max_length)
        for v in sms_entry.variables
    )
    if sms.length(longest, sms_entry.encoding) > sms.capacity(max_segments, sms_entry.encoding):
        found.append(
            f"does not fit {max_segments} segments even with Clickpost's text at "
            f"{MIN_CLICKPOST_LENGTH} characters"
        )
    return found


def whatsapp_problems(wa_entry: WhatsAppEntry, text: str, entry: LanguageEntry) -> list[str]:
    """A Meta template's text against its registration: numbered parameters, length."""
    found: list[str] = []
    numbers = [int(n) for n in _WHATSAPP_PARAMETER.findall(text)]
    if sorted(numbers) != list(range(1, len(wa_entry.parameters) + 1)):
        found.append(
            f"parameters {sorted(numbers)} in the text, {len(wa_entry.parameters)} registered"
        )
    found.extend(_missing_placeholders(entry, wa_entry.parameters))
    worst = len(_WHATSAPP_PARAMETER.sub("", text)) + WHATSAPP_PARAMETER_LIMIT * len(numbers)
    if worst > WHATSAPP_BODY_LIMIT:
        found.append(f"may exceed Meta's {WHATSAPP_BODY_LIMIT}-character body")
    return found
