"""Every template renders for every kind, channel and language, exactly as its golden file
(an SMS as sent, a WhatsApp message as the customer reads it with its template's name and
parameters, an e-mail with its subject).

Regenerate the golden files after a deliberate wording change with
`UPDATE_GOLDEN=1 uv run pytest tests/unit/test_notify_templates.py`, and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.notify_samples import RENDERER, RULES, recipient, sample_event
from trackwatch.data import load_registry
from trackwatch.errors import ConfigurationError
from trackwatch.logic.render import MessageContext, Renderer, context_for, language_of
from trackwatch.models.notification import CHANNELS, Channel

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
LANGUAGES = ("en", "hi")
KINDS = sorted(RULES.kinds)
CASES = [(c, lang, kind) for c in CHANNELS for lang in LANGUAGES for kind in KINDS]


def _as_text(channel: Channel, language: str, kind: str) -> str:
    rendered = RENDERER.render(
        channel, language, context_for(sample_event(kind), kind, recipient(language), language)
    )
    if channel == "sms":
        return (
            f"DLT template: {rendered.dlt_template_id} ({rendered.encoding}, "
            f"{rendered.segments} segments)\n\n{rendered.body}\n"
        )
    if channel == "whatsapp":
        assert rendered.whatsapp is not None
        template = rendered.whatsapp
        return (
            f"Template: {template.name} ({template.language_code}) "
            f"{list(template.parameters)}\n\n{rendered.body}\n"
        )
    return f"Subject: {rendered.subject}\n\n{rendered.body}"


def test_every_channel_has_templates_in_english_and_hindi() -> None:
    # When
    renderer = RENDERER

    # Then
    for channel in CHANNELS:
        assert {"en", "hi"} <= renderer.languages(channel), channel


@pytest.mark.parametrize(("channel", "language", "kind"), CASES)
def test_template_renders_as_its_golden_file(channel: Channel, language: str, kind: str) -> None:
    # Given
    golden = GOLDEN / channel / language / f"{kind}.txt"

    # When
    text = _as_text(channel, language, kind)

    # Then
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden}; run with UPDATE_GOLDEN=1"
    assert text == golden.read_text(encoding="utf-8")
    assert "None" not in text


@pytest.mark.parametrize(("channel", "language", "kind"), CASES)
def test_template_renders_with_every_optional_value_missing(
    channel: Channel, language: str, kind: str
) -> None:
    # Given: no order id, courier, location, date or reason
    context = MessageContext(
        kind=kind,
        waybill="AWB1",
        order_id=None,
        order_ref="AWB1",
        courier=None,
        status=None,
        location=None,
        expected_delivery=None,
        ndr_reason=None,
        attempt=None,
    )

    # When
    rendered = RENDERER.render(channel, language, context)

    # Then: the placeholders of the registry stand in (registered text cannot bend)
    assert "AWB1" in rendered.body
    assert "None" not in rendered.body + (rendered.subject or "")
    if channel == "email":
        assert rendered.subject
    if channel == "whatsapp":
        assert rendered.whatsapp is not None
        assert all(rendered.whatsapp.parameters)


def test_a_template_naming_an_unknown_variable_fails_loudly() -> None:
    # Given an e-mail template with a typo in a variable name
    templates = {
        "en/email/shipped.j2": "{% block subject %}x{% endblock %}"
        "{% block body %}Order {{ order_refx }} shipped{% endblock %}"
    }
    context = context_for(sample_event("shipped"), "shipped", recipient(), "en")

    # When / Then
    with pytest.raises(ConfigurationError, match="order_refx"):
        Renderer(templates, load_registry()).render("email", "en", context)


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_missing_template_is_a_configuration_error(channel: Channel) -> None:
    # Given
    context = context_for(sample_event("shipped"), "no_such_kind", recipient(), "en")

    # When / Then
    with pytest.raises(ConfigurationError, match="no template"):
        RENDERER.render(channel, "en", context)


@pytest.mark.parametrize(
    ("requested", "expected"),
    [("hi", "hi"), ("hi-IN", "hi"), ("HI", "hi"), ("ta", "en"), ("", "en")],
)
def test_language_falls_back_to_english(requested: str, expected: str) -> None:
    assert language_of(requested, frozenset({"en", "hi"})) == expected
