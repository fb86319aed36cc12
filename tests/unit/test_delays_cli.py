"""`trackwatch delays thresholds`: the lines it prints, before and after the first run."""

from __future__ import annotations

from tests.delay_support import CALENDAR, RULES, learned
from tests.factories import CATALOGUE, NOW
from trackwatch_cli.delays_cli import Thresholds, render_thresholds, threshold_lines


def test_before_the_first_run_the_rules_stand_and_say_so() -> None:
    # Given no learned table
    view = Thresholds(learned=None, rules=RULES, calendar=CALENDAR, catalogue=CATALOGUE)

    # When
    lines = threshold_lines(view)
    heading, _ = render_thresholds(view)

    # Then every status the rules name is a line, in effect from the rule
    transit = next(x for x in lines if x.clickpost_status_code == 5)
    assert (transit.rule_hours, transit.in_effect_hours, transit.source) == (36, 36, "rule")
    assert transit.learned_hours is None
    assert "No thresholds learned yet" in heading


def test_a_learned_line_is_used_and_too_few_samples_leave_the_rule() -> None:
    # Given carrier 4's in-transit threshold learned, carrier 5's not, and all carriers'
    table = learned((4, 5, 20.0, 30.0), (5, 5, None, None), (None, 5, 25.0, 31.0), at=NOW)
    view = Thresholds(learned=table, rules=RULES, calendar=CALENDAR, catalogue=CATALOGUE)

    # When
    lines = {(x.cp_id, x.clickpost_status_code): x for x in threshold_lines(view)}
    only_five = threshold_lines(view, carrier=5)

    # Then a poller of carrier 4 uses what was learned, of carrier 5 the rule; the
    # all-carriers line stands in for time to delivery only
    assert (lines[(4, 5)].in_effect_hours, lines[(4, 5)].source) == (20.0, "learned")
    assert (lines[(5, 5)].in_effect_hours, lines[(5, 5)].source) == (36, "rule")
    assert lines[(None, 5)].in_effect_hours is None
    assert lines[(None, 5)].remaining_hours == 31.0
    assert {x.cp_id for x in only_five} == {5, None}
