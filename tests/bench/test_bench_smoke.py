"""The benchmark's pure parts, and one small run of ours beside the naive poller.

No timing is asserted anywhere: benchmarks report, the test suite never fails on speed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bench import cost, report, throughput
from bench.calls import carrier_mix, lower_bound
from bench.emulator import CountingMotoServer, item_size
from bench.harness import Bench, open_bench, shipments
from bench.items import ItemSizes
from bench.items import sizes as item_sizes
from bench.run import QUICK, Results, requests_and_calls
from trackwatch.logic.batching import plan_calls
from trackwatch.models.keys import ShipmentKey
from trackwatch_cli.sandbox import SandboxServer

ROOT = Path(__file__).resolve().parents[2]


def test_lower_bound_is_the_sum_over_carriers_of_ceil_n_over_5() -> None:
    # Given 7 AWBs of carrier 4, 5 of carrier 5 and 1 of carrier 6 (one repeated)
    keys = [ShipmentKey.of(4, f"A{i}") for i in range(7)]
    keys += [ShipmentKey.of(5, f"B{i}") for i in range(5)]
    keys += [ShipmentKey.of(6, "C0"), ShipmentKey.of(6, "C0")]

    # Then the bound is 2 + 1 + 1, and the product's planner meets it exactly
    assert lower_bound(keys) == 4
    assert len(plan_calls(keys)) == lower_bound(keys)


def test_carrier_mix_is_uneven_and_complete() -> None:
    mix = carrier_mix(1003, {4: 35, 5: 25, 6: 15, 7: 10, 8: 8, 9: 5, 10: 2})

    assert len(mix) == 1003
    assert len(set(mix)) == 7
    assert lower_bound(s.key for s in shipments(1003)) > 1003 // 5


def test_item_size_follows_dynamodb_rules() -> None:
    # Names and values count; a number is about one byte per two digits, plus one
    assert item_size({"pk": {"S": "4#AB"}}) == 2 + 4
    assert item_size({"version": {"N": "12"}}) == 7 + 2
    # binary counts its raw length, as moto holds it (bytes) or as the wire carries it
    # (base64): counting the repr of the bytes once made a packed item look twice its size
    assert item_size({"state": {"B": bytes(range(256)) * 2}}) == 5 + 512
    assert item_size({"state": {"B": "AAECAw=="}}) == 5 + 4
    assert item_size(None) == 0


#: Units as a bench run measures them (the cost model's input).
MEASURED = cost.Measured(
    poll_rru=0.5,
    poll_sqs_billed=0.01,
    change_wru_shipments=3.7,
    change_wru_event_log=1.85,
    change_sns_billed=0.2,
    events_per_change=2.0,
    notifiable_per_change=0.83,
    routed_per_change=0.5,
    awbs_per_s=150.0,
    naive_awbs_per_s=30.0,
)


def test_cost_model_reproduces_the_architecture_workload() -> None:
    # The workload of docs/architecture.md: 14.2M polls and 1.6M changes a day
    assert cost.polls_per_day() == pytest.approx(14_200_000)
    assert cost.changes_per_day() == pytest.approx(1_600_000)
    # and, with change capture, 8.6M check-only visits: transit 700k x 11, ofd 100k x 9
    assert cost.check_visits_per_day() == pytest.approx(700_000 * 11 + 100_000 * 9)
    # and, with items of 1,425 bytes, the naive PutItem line: 426M polls x 2 WRU at $0.625/M
    size = ItemSizes(
        scans=30, item_bytes=1199, change_bytes=1199, event_log_bytes=488, naive_bytes=1425
    )
    measured = MEASURED
    naive = cost.naive(measured, size, size)
    assert naive[0].dollars == pytest.approx(426e6 * 2 * 0.625e-6)
    assert cost.total(naive) > cost.total(cost.ours(measured, size, size))
    # A change's shipments-table units: the measured item units, and a life's DueIndex
    # moves (3 2/3 of 2 WRU over 8 changes) in place of the bench journeys' moves
    split = replace(measured, change_index_wru_shipments=2.7)
    assert cost.change_wru(split, size, size) == pytest.approx(3.7 - 2.7 + (3 + 2 / 3) * 2 / 8)
    # Every line of ours is priced, and the orders and the notification side are the same in both
    ours = cost.ours(measured, size, size)
    assert all(line.dollars > 0 for line in ours)
    for part in ("orders", "notifications"):
        assert cost.total(ours, (part,)) == pytest.approx(cost.total(naive, (part,)))
    # and the orders' table: every life's reads and writes of its order's item, settle ticks
    # for the boxes of orders of several only (one in ten), the notifiers' size reads, storage
    (orders_table,) = [line for line in ours if line.what == "DynamoDB, orders (Standard)"]
    lives, ticks = 6e6, 6e6 * 7 * 0.10
    reads = lives * 10 + ticks + size_reads(measured) / 2
    writes = lives * 7 + ticks
    assert orders_table.dollars == pytest.approx(
        reads * 0.125e-6 + writes * 0.625e-6 + 3.59 * 0.45, rel=1e-3
    )


def size_reads(m: cost.Measured) -> float:
    """The notifiers' reads of an order's size a month: 3 in 4 recipient reads are for a
    kind an order of several says once. Recipient reads: every delivery (routed, delivery
    checks and fallbacks) but the checks whose WhatsApp message arrived before them (each
    of the 2 WhatsApp messages a shipment that does not fall back: 2 - 0.4)."""
    shipments = 6e6
    checks, fallbacks = shipments * 4 * 0.5, shipments * 0.4
    arrived = checks - fallbacks
    handovers = arrived + (checks - arrived) * 2 + fallbacks
    return (48e6 * m.routed_per_change + handovers - arrived) * 0.75


def test_the_event_log_is_priced_at_the_table_class_the_template_sets(tmp_path: Path) -> None:
    # Given the template, and a copy whose event log is Standard-IA
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    ia = tmp_path / "template.yaml"
    head, log = text.split("\n  EventLogTable:\n", 1)
    log = log.replace(
        "    Properties:\n", "    Properties:\n      TableClass: STANDARD_INFREQUENT_ACCESS\n", 1
    )
    ia.write_text(f"{head}\n  EventLogTable:\n{log}", encoding="utf-8")
    size = item_sizes(30)
    measured = replace(MEASURED, change_wru_shipments=1.0, change_wru_event_log=2.0)

    def log_writes(template: cost.Template) -> cost.Line:
        (line,) = [
            x
            for x in cost.ours(measured, size, size, template)
            if "event log" in x.what and "writes" in x.what
        ]
        return line

    # Then the template's log (Standard) is priced at Standard's write price, the copy at IA's
    standard, infrequent = log_writes(cost.Template.read()), log_writes(cost.Template.read(ia))
    assert "(Standard)" in standard.what and "(Standard-IA)" in infrequent.what
    assert standard.dollars == pytest.approx(48e6 * 2.0 * 0.625e-6)
    assert infrequent.dollars == pytest.approx(48e6 * 2.0 * 0.78125e-6)


def test_item_sizes_grow_with_the_journey_and_stay_within_the_goals() -> None:
    short, long = item_sizes(8), item_sizes(60)

    assert long.item_bytes > short.item_bytes
    # A poll of a 60-scan shipment reads half a unit; its change writes the item in one
    # unit (with a life's DueIndex moves, under 2 a change)
    assert long.poll_rru == 0.5
    assert long.change_wru == 1


@pytest.fixture
def bench() -> Iterator[Bench]:
    server = CountingMotoServer().start()
    sandbox = SandboxServer().start()
    try:
        with open(os.devnull, "w") as log, open_bench(server, sandbox, log) as opened:
            yield opened
    finally:
        sandbox.stop()
        server.stop()


@pytest.mark.slow
def test_ours_and_the_naive_poller_publish_the_same_events(bench: Bench) -> None:
    # Given a few shipments over several carriers, seeded in both designs' tables
    results = Results(replace(QUICK, shipments=12))

    # When both poll them unchanged, then once more after every shipment moved on
    requests_and_calls(bench, results)

    # Then both published the same events, ours in the fewest Clickpost calls
    assert results.same_events
    assert sum(results.events["ours"].values()) > 0
    assert results.calls["ours.unchanged"] == results.calls["lower_bound"]
    assert results.calls["naive.unchanged"] == 12
    # and an unchanged poll cost ours no write, the naive poller one per shipment
    unchanged = results.phases["ours.unchanged"].totals
    assert unchanged.get("dynamodb:wru", 0) == 0
    assert results.phases["naive.unchanged"].totals["dynamodb:PutItem"] == 12
    # and each event went to the notifier queues its shipment's contact and the rules name
    routed = bench.routed("ours.changed")
    assert {channels for _, _, channels in routed} <= {(), ("whatsapp",), ("sms",)}
    assert any(channels for _, _, channels in routed)
    # and of a change's units on the shipments table, the DueIndex moves are told apart
    # (a move is a delete and a put, two units: the journeys change class on most steps)
    changed = results.phases["ours.changed"].totals
    table = next(k for k in changed if "ShipmentsTable" in k and k.endswith(":index_wru"))
    index = changed[table]
    assert index > 0 and index % 2 == 0
    assert changed[table.replace(":index_wru", ":wru")] > index


def test_the_throughput_section_is_spliced_in_with_a_note_and_the_rest_kept() -> None:
    # Given a report with a header, a throughput section and the sections around it
    document = (
        "# Benchmarks\n\n- date: then\n\n**How it is measured.** as ever\n\n"
        "## Parse\n\nparse table\n\n"
        "## Poll throughput at 300 ms Clickpost latency\n\nold table\n\n"
        "## Scaling\n\nscaling table\n"
    )
    run = throughput.Throughput(
        awbs=500, calls=100, elapsed_s=3.2, in_flight=10, latency_s=0.3, peak_concurrency=10
    )
    plain = throughput.Throughput(
        awbs=100, calls=100, elapsed_s=4.2, in_flight=10, latency_s=0.3, peak_concurrency=10
    )

    # When the section measured again is spliced in
    spliced = report.splice_throughput(
        document, report.throughput_section([run] * 3, [plain] * 3), "measured again"
    )

    # Then the section is the new one, the header says so, and nothing else moved
    assert "old table" not in spliced
    assert "**0.94 (0.94 to 0.94)**" in spliced
    assert "- date: then\n- then: measured again\n\n**How it is measured.**" in spliced
    assert (
        spliced.index("## Parse")
        < spliced.index("## Poll throughput")
        < spliced.index("## Scaling")
    )
    assert spliced.endswith("## Scaling\n\nscaling table\n")


def test_the_throughput_section_says_whether_the_goal_is_met_and_by_how_much_if_not() -> None:
    # Given a run at 0.94 of the bound and one at 0.75 (500 AWBs at 300 ms, 10 in flight)
    def at(seconds: float) -> throughput.Throughput:
        return throughput.Throughput(
            awbs=500, calls=100, elapsed_s=seconds, in_flight=10, latency_s=0.3,
            peak_concurrency=10,
        )  # fmt: skip

    # When each is reported
    met = "\n".join(report.throughput_section([at(3.2)] * 3, [at(4.0)] * 3))
    missed = "\n".join(report.throughput_section([at(4.0)] * 3, [at(4.0)] * 3))

    # Then the first meets the goal, the second says by how much it misses it
    assert "Goal met: 0.94 of the bound." in met
    assert "Goal missed by 0.15 of the bound (0.75)" in missed


@pytest.mark.slow
def test_the_throughput_workers_poll_from_processes_of_their_own(bench: Bench) -> None:
    # Given a few steady shipments over several carriers
    seeded = shipments(12)
    bench.seed(seeded)
    bench.cycle("warmup")
    keys = [s.key for s in seeded]

    # When the product's poll worker and the naive poller are timed, each in a child process
    ours = throughput.ours(bench, 12, latency_s=0.01)
    naive = throughput.naive(bench, 6, latency_s=0.01)

    # Then ours asked the sandbox in the fewest calls (the warm-up's not counted), the naive
    # poller one call per AWB, and the emulator saw the child's requests in their phases
    assert (ours.awbs, ours.calls) == (12, lower_bound(keys))
    assert (naive.awbs, naive.calls) == (6, 6)
    assert ours.elapsed_s > 0 and naive.elapsed_s > 0
    assert ours.peak_concurrency >= 1
    assert any(r.operation == "BatchGetItem" for r in bench.server.log.of("throughput"))
    assert [r.operation for r in bench.server.log.of("naive.throughput")].count("PutItem") == 6


@pytest.mark.slow
def test_change_capture_with_webhooks_misses_nothing_and_publishes_within_two_minutes() -> None:
    # Given two shipments on the happy path, forty times faster, with the feed and webhooks
    from bench import freshness

    # When their journeys play out on the simulated clock
    with open(os.devnull, "w") as log:
        results = freshness.run(
            freshness.SMOKE, log, say=lambda _: None, modes=("feed + webhooks + sweep",)
        )

    # Then every revealed scan was published once, each within two simulated minutes
    (run,) = results.runs
    assert run.revealed > 0
    assert run.missed == 0
    assert run.duplicates == 0
    assert run.webhooks == run.revealed
    assert run.all_event_lags and max(run.all_event_lags) <= 120
    assert run.hint_awbs > 0


def test_parse_again_replaces_the_runs_parse_figures_and_says_so() -> None:
    from bench.__main__ import _measure_again

    # Given a run's results (quick: a short measure per path)
    results = Results(config=replace(QUICK, parse_min_time_s=0.01))

    # When parse and diff are measured again
    _measure_again(results, parse=True, items=False)

    # Then both bodies are measured three times, and the header will say when and how
    assert [r.shape for r in results.parse] == ["8-scan", "50-scan"]
    assert all(len(r.steady) == 3 and min(r.steady) > 0 for r in results.parse)
    assert results.items == []
    assert len(results.notes) == 1 and "python -m bench --parse`" in results.notes[0]


def test_items_again_replaces_the_runs_item_sizes_and_says_so() -> None:
    from bench.__main__ import _measure_again

    # Given a run's results whose item sizes are out of date
    results = Results(config=QUICK, items=[replace(item_sizes(60), item_bytes=1)])

    # When the item sizes are computed again
    _measure_again(results, parse=False, items=True)

    # Then they are today's, at each length, and the header will say so
    assert [i.scans for i in results.items] == [8, 30, 60]
    assert results.items[-1] == item_sizes(60)
    assert results.parse == []
    assert len(results.notes) == 1 and "python -m bench --items`" in results.notes[0]


@pytest.mark.slow
def test_coldstart_again_measures_every_function_of_todays_template(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench import coldstart
    from bench.__main__ import _measure_again

    # Given a run's results from an older template, and the measurement itself recorded
    # (what it costs is bench/coldstart.py's business; here: what it is asked to measure)
    results = Results(config=QUICK, environments={"gone": {}})
    asked: list[tuple[dict[str, dict[str, str]], int, int]] = []

    sentinel: list[Any] = [object()]

    def measured(environments: dict[str, dict[str, str]], **kwargs: int) -> list[Any]:
        asked.append((environments, kwargs["repetitions"], kwargs["runs"]))
        return sentinel

    monkeypatch.setattr(coldstart, "run", measured)

    # When the cold starts are measured again
    _measure_again(results, parse=False, items=False, coldstart=True)

    # Then every function of today's template is measured, with its environment as
    # deployed, three times, and the header will say so
    ((environments, repetitions, runs),) = asked
    template = (ROOT / "template.yaml").read_text(encoding="utf-8")
    functions = set(re.findall(r"CodeUri: functions/(\w+)/", template))
    assert set(environments) == functions and "gone" not in environments
    assert all(env.get("POWERTOOLS_SERVICE_NAME") for env in environments.values())
    assert (repetitions, runs) == (3, QUICK.coldstart_runs)
    assert results.coldstart is sentinel
    assert len(results.notes) == 1 and "python -m bench --coldstart`" in results.notes[0]


def test_the_notifiers_time_shares_a_sends_wait_among_the_sends_of_its_batch() -> None:
    # Given the template (sends side by side) and a copy that sends one at a time
    size = item_sizes(30)
    template = cost.Template.read()
    assert template.send_concurrency == 4

    def notifier_lambda(t: cost.Template) -> cost.Line:
        (line,) = [x for x in cost.ours(MEASURED, size, size, t) if "notifiers" in x.what]
        return line

    side_by_side = notifier_lambda(template)
    one_at_a_time = notifier_lambda(replace(template, send_concurrency=1))

    # Then side by side, a send is billed its wait shared by the batch's other sends (at
    # most the template's four), and the formula says by how many
    found = re.search(r"÷ ([\d.]+) at once", side_by_side.formula)
    assert found is not None and 1 < float(found[1]) <= 4
    overlap = float(found[1])
    sends = cost.starts_per_day() * cost.DAYS * cost.ASSUMED["sends_per_shipment"]
    waited = sends * cost.ASSUMED["send_seconds"] * template.memory_gb * cost.price("lambda_gb_s")
    saved = one_at_a_time.dollars - side_by_side.dollars
    assert saved == pytest.approx(waited * (1 - 1 / overlap), rel=0.03)
