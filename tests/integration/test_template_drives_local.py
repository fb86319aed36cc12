"""The local stack is template.yaml itself: change the template, and local behaviour changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, Pipeline, open_pipeline
from trackwatch.models.keys import ShipmentKey
from trackwatch_cli.sandbox import SandboxServer


@pytest.fixture(scope="module")
def ndr_only_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of template.yaml whose SMS subscription passes failed deliveries only."""
    folder = tmp_path_factory.mktemp("template")
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    default = (
        "        event_type: [shipment.status_changed, shipment.ndr_raised, shipment.stuck, "
        "shipment.delay_predicted, order.status_changed, order.partially_delivered]\n"
        "\n  # --- E-mail"
    )
    assert default in text, "the SMS filter policy moved; update this test"
    copy = folder / "template.yaml"
    copy.write_text(
        text.replace(
            default,
            '        event_type: ["shipment.ndr_raised"]\n\n  # --- E-mail',
        ),
        encoding="utf-8",
    )
    # The functions' and layer's code stay where template.yaml points: beside it.
    for folder_name in ("functions", "layers"):
        (folder / folder_name).symlink_to(ROOT / folder_name)
    return copy


def run_journeys(pipeline: Pipeline) -> set[str]:
    shipments = pipeline.sandbox.add_demo_shipments()
    pipeline.register(*(ShipmentKey.of(s.cp_id, s.waybill) for s in shipments))
    for _ in range(8):
        pipeline.cycle()
    return {m["body"]["event_type"] for m in pipeline.drain("SmsQueue")}


def test_the_default_template_sends_status_changes_to_the_sms_queue(pipeline: Pipeline) -> None:
    assert run_journeys(pipeline) == {
        "shipment.status_changed",
        "shipment.ndr_raised",
        "shipment.stuck",
    }


def test_a_changed_filter_policy_changes_what_reaches_the_sms_queue(
    ndr_only_template: Path, sandbox: SandboxServer
) -> None:
    with open_pipeline(ndr_only_template, sandbox) as pipeline:
        assert run_journeys(pipeline) == {"shipment.ndr_raised"}
