"""SMS length as operators count it: GSM-7 septets or UCS-2 units, in segments."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trackwatch.logic import sms


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("a" * 160, "gsm7", 1),
        ("a" * 161, "gsm7", 2),
        ("a" * 306, "gsm7", 2),
        ("a" * 307, "gsm7", 3),
        ("€" * 80, "gsm7", 1),  # two septets each: 160
        ("€" * 81, "gsm7", 2),
        # 152 septets then an escape pair: the pair may not straddle segments 1 and 2
        ("a" * 152 + "€" + "a" * 10, "gsm7", 2),
        ("अ" * 70, "ucs2", 1),
        ("अ" * 71, "ucs2", 2),
        ("अ" * 134, "ucs2", 2),
        ("अ" * 135, "ucs2", 3),
        ("a" * 69 + "🚚", "ucs2", 2),  # a surrogate pair: 71 units
        ("Your order ₹", "ucs2", 1),  # ₹ is not GSM-7: the whole message is UCS-2
    ],
)
def test_segments(text: str, encoding: sms.Encoding, segments: int) -> None:
    assert sms.encoding_of(text) == encoding
    assert sms.segments(text) == segments


def test_clean_makes_a_value_one_gsm_7_line() -> None:
    # Curly quotes, an en dash, a new line, a tab, a zero-width space, an ellipsis, Devanagari
    value = "\u201cOut for delivery\u201d \u2013 Hub\n\tNo.\u200b 5 \u2026 Café देरी"
    assert sms.clean(value, "gsm7") == '"Out for delivery" - Hub No. 5 ... Café ????'
    assert (
        sms.clean(value, "ucs2") == "\u201cOut for delivery\u201d \u2013 Hub No. 5 \u2026 Café देरी"
    )


def test_cuts_keep_the_meaningful_end() -> None:
    assert sms.cut_end("Customer not available at address", 20, "gsm7") == "Customer not.."
    assert sms.cut_start("ORDER-2026-000123456", 10, "gsm7") == "..00123456"
    assert sms.cut_end("short", 20, "gsm7") == "short"
    assert sms.cut_end("ग्राहक उपलब्ध नहीं था", 10, "ucs2") == "ग्राहक…"


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=500))
def test_a_cleaned_gsm_7_value_is_gsm_7(value: str) -> None:
    assert sms.is_gsm7(sms.clean(value, "gsm7"))


@given(st.text(max_size=400), st.integers(min_value=1, max_value=5))
def test_capacity_is_what_fits(text: str, max_segments: int) -> None:
    encoding = sms.encoding_of(text)
    fits = sms.length(text, encoding) <= sms.capacity(max_segments, encoding)
    if fits and max_segments == 1:
        assert sms.segments(text) == 1
    if sms.segments(text) <= max_segments:
        # a pair never straddles, so what takes n segments may be a unit or two over n full ones
        assert sms.length(text, encoding) <= sms.capacity(max_segments, encoding)
