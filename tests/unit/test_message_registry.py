"""The message registry against the templates and what operators and Meta accept.

- Every kind a channel sends has, in every language the stack is configured with, its
  template and its registry entry (a missing one fails here, and the notifier refuses to
  start).
- Every SMS, rendered with extreme but valid values, is its registered DLT text exactly: the
  fixed text untouched, each `{#var#}` filled with at most its registered length, in the
  encoding it was registered in, within the configured number of segments.
- Every WhatsApp message fills its approved template's parameters in order, with values Meta
  accepts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.notify_samples import RULES
from trackwatch.data import load_registry, load_templates
from trackwatch.logic import sms
from trackwatch.logic.registry import (
    DLT_PLACEHOLDER,
    WHATSAPP_BODY_LIMIT,
    MessageRegistry,
    SmsEntry,
    problems,
    template_name,
)
from trackwatch.logic.render import MessageContext, Renderer
from trackwatch.models.registration import MAX_ORDER_ID_LENGTH
from trackwatch_cli.cfn_template import load_template

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = load_registry()
TEMPLATES = load_templates()
TEMPLATE_PARAMETERS = load_template(ROOT / "template.yaml")["Parameters"]
#: The languages the stack is configured with, as it deploys by default.
LANGUAGES = tuple(TEMPLATE_PARAMETERS["SupportedLanguages"]["Default"].split(","))
MAX_SEGMENTS = int(TEMPLATE_PARAMETERS["SmsMaxSegments"]["Default"])
RENDERER = Renderer(TEMPLATES, REGISTRY, MAX_SEGMENTS)
SMS_CASES = [(lang, kind) for lang in LANGUAGES for kind in sorted(RULES.channels["sms"].kinds)]
WHATSAPP_CASES = [
    (lang, kind) for lang in LANGUAGES for kind in sorted(RULES.channels["whatsapp"].kinds)
]

#: Valid, and as hard as it gets: the longest order number and waybill a registration takes,
#: carrier text with new lines, tabs, runs of spaces, GSM-7's two-septet characters, curly
#: quotes, Devanagari, an emoji, control and zero-width characters.
NASTY = "Hub\n\t[Out]  {for}  del~very | ₹€ “quoted” — देरी 🚚 \x00\u200b" * 4
EXTREME = MessageContext(
    kind="",
    waybill="W" * 100,
    order_id="O" * MAX_ORDER_ID_LENGTH,
    order_ref="9" * MAX_ORDER_ID_LENGTH,
    courier=NASTY,
    status=NASTY,
    location=NASTY,
    expected_delivery="28 सितंबर 2026",
    ndr_reason=NASTY,
    attempt=99,
)
EMPTY = EXTREME.model_copy(
    update={
        "order_id": None,
        "order_ref": "AWB1",
        "courier": None,
        "status": None,
        "location": None,
        "expected_delivery": None,
        "ndr_reason": None,
        "attempt": None,
    }
)


def dlt_pattern(entry: SmsEntry, text: str) -> re.Pattern[str]:
    """What an operator matches: the registered text, each {#var#} any 0..max characters."""
    fixed = text.strip().split(DLT_PLACEHOLDER)
    parts = [re.escape(fixed[0])]
    for variable, after in zip(entry.variables, fixed[1:], strict=True):
        parts.append(f"(.{{0,{variable.max_length}}})")
        parts.append(re.escape(after))
    return re.compile("".join(parts), re.DOTALL)


def assert_as_registered(language: str, kind: str, context: MessageContext) -> None:
    entry = REGISTRY.sms(language, kind)
    text = TEMPLATES[template_name(language, "sms", kind)]
    rendered = RENDERER.render("sms", language, context.model_copy(update={"kind": kind}))
    body = rendered.body
    # the registered text, exactly, around values within their registered lengths
    assert dlt_pattern(entry, text).fullmatch(body), body
    assert rendered.dlt_template_id == entry.dlt_template_id
    # in the encoding it was registered in
    assert rendered.encoding == entry.encoding
    assert sms.encoding_of(body) == entry.encoding
    # within the configured segments, on one line, no control characters
    assert sms.segments(body) <= MAX_SEGMENTS
    assert rendered.segments == sms.segments(body)
    assert "\n" not in body and "\x00" not in body and "\u200b" not in body


# --------------------------------------------------------------------------- completeness


def test_every_kind_has_a_template_and_an_entry_in_every_configured_language() -> None:
    # When
    found = problems(REGISTRY, TEMPLATES, RULES, LANGUAGES, MAX_SEGMENTS)

    # Then
    assert found == []
    assert set(LANGUAGES) >= {"en", "hi"}


def test_a_missing_template_or_entry_or_language_is_named() -> None:
    # Given a Hindi WhatsApp template gone, an English DLT registration gone, and Tamil asked for
    templates = {k: v for k, v in TEMPLATES.items() if k != "hi/whatsapp/stuck.txt"}
    data = REGISTRY.model_dump()
    del data["languages"]["en"]["sms"]["delivered"]
    registry = MessageRegistry.model_validate(data)

    # When
    found = problems(registry, templates, RULES, (*LANGUAGES, "ta"), MAX_SEGMENTS)

    # Then
    assert found == [
        "en/sms/delivered.txt: no DLT registration (sms.delivered) in the registry",
        "hi/whatsapp/stuck.txt: no template",
        "ta: no entry in the message registry",
    ]


def test_a_template_that_drifts_from_its_registration_is_named() -> None:
    # Given a placeholder too many, Unicode in a GSM-7 registration, a parameter missing
    templates = dict(TEMPLATES)
    templates["en/sms/delivered.txt"] = "Your order {#var#} was delivered {#var#}. Thanks!"
    templates["en/sms/rto_started.txt"] = "Your order {#var#} is on its way back — sorry."
    templates["en/whatsapp/delivered.txt"] = "Delivered."

    # When
    found = problems(REGISTRY, templates, RULES, LANGUAGES, MAX_SEGMENTS)

    # Then
    assert found == [
        "en/sms/delivered.txt: 2 {#var#} in the text, 1 variables registered",
        "en/sms/rto_started.txt: registered as gsm7, but its fixed text is ucs2",
        "en/whatsapp/delivered.txt: parameters [] in the text, 1 registered",
    ]


def test_templates_that_cannot_fit_the_segments_refuse_to_start() -> None:
    found = problems(REGISTRY, TEMPLATES, RULES, LANGUAGES, 1)
    assert "hi/sms/delivered.txt: does not fit 1 segments" in "\n".join(found)


# --------------------------------------------------------------------------- SMS as registered


@pytest.mark.parametrize(("language", "kind"), SMS_CASES)
def test_sms_with_extreme_values_is_exactly_the_registered_dlt_text(
    language: str, kind: str
) -> None:
    assert_as_registered(language, kind, EXTREME)


@pytest.mark.parametrize(("language", "kind"), SMS_CASES)
def test_sms_with_every_optional_value_missing_is_the_registered_text(
    language: str, kind: str
) -> None:
    assert_as_registered(language, kind, EMPTY)


def test_clickpost_text_is_shortened_never_the_message() -> None:
    # Given a stuck shipment whose last location is a paragraph
    context = EMPTY.model_copy(
        update={"kind": "stuck", "order_ref": "ORD-1042", "location": "Bhiwandi " * 40}
    )

    # When
    rendered = RENDERER.render("sms", "en", context)

    # Then the location is cut (and says so), the order number and the fixed text are whole
    assert rendered.shortened == ("location",)
    assert "ORD-1042" in rendered.body
    assert "(last update: Bhiwandi Bhiwandi Bhiwandi..)" in rendered.body
    assert rendered.body.endswith("We are following up with our courier partner.")


def test_an_order_number_too_long_for_its_variable_keeps_its_end() -> None:
    context = EMPTY.model_copy(update={"kind": "delivered", "order_ref": "SHOP-2026-" + "7" * 40})
    body = RENDERER.render("sms", "en", context).body
    assert body.startswith("Your order .." + "7" * 28 + " has been delivered.")


texts = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=0, max_size=300)


@settings(max_examples=60, deadline=None)
@given(
    courier=texts,
    location=texts,
    ndr_reason=texts,
    order_ref=st.text(min_size=1, max_size=MAX_ORDER_ID_LENGTH),
    language=st.sampled_from(LANGUAGES),
    kind=st.sampled_from(sorted(RULES.channels["sms"].kinds)),
)
def test_any_values_give_the_registered_text(
    courier: str, location: str, ndr_reason: str, order_ref: str, language: str, kind: str
) -> None:
    context = EXTREME.model_copy(
        update={
            "courier": courier or None,
            "location": location or None,
            "ndr_reason": ndr_reason or None,
            "order_ref": order_ref,
        }
    )
    assert_as_registered(language, kind, context)


# --------------------------------------------------------------------------- WhatsApp


@pytest.mark.parametrize(("language", "kind"), WHATSAPP_CASES)
@pytest.mark.parametrize("context", [EXTREME, EMPTY], ids=["extreme", "empty"])
def test_whatsapp_fills_its_approved_template_as_meta_accepts(
    language: str, kind: str, context: MessageContext
) -> None:
    # Given
    entry = REGISTRY.whatsapp(language, kind)
    text = TEMPLATES[template_name(language, "whatsapp", kind)].strip()

    # When
    rendered = RENDERER.render("whatsapp", language, context.model_copy(update={"kind": kind}))

    # Then the approved template, its parameters in order, each a value Meta takes
    assert rendered.whatsapp is not None
    template = rendered.whatsapp
    assert (template.name, template.language_code) == (entry.template_name, entry.language_code)
    assert len(template.parameters) == len(entry.parameters)
    for value in template.parameters:
        assert value.strip()
        assert "\n" not in value and "\t" not in value and "     " not in value
    expected = re.sub(r"\{\{(\d+)\}\}", lambda m: template.parameters[int(m[1]) - 1], text)
    assert rendered.body == expected
    assert len(rendered.body) <= WHATSAPP_BODY_LIMIT
