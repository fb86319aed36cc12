"""The Clickpost response models parse the reference sample and tolerate Clickpost's looseness."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from tests.factories import CATALOGUE
from trackwatch.bootstrap import bootstrap
from trackwatch.config import Settings
from trackwatch.errors import ConfigurationError, InvalidInputError
from trackwatch.logic.catalogue import StatusCatalogue
from trackwatch.models.clickpost import Additional, describe_validation, parse_track_order
from trackwatch.models.keys import ShipmentKey

SAMPLE = Path(__file__).parents[2] / "events" / "clickpost_track_order_sample.json"


def test_reference_sample_parses_every_field() -> None:
    # Given the sample response from Clickpost's reference
    body = SAMPLE.read_bytes()

    # When it is parsed
    response = parse_track_order(body)

    # Then every documented field is there, with zone-aware timestamps in India time
    assert response.meta.success is True
    assert response.meta.status == 200
    awb = response.result["4210610508756"]
    assert awb.valid is True
    assert len(awb.scans) == 8
    assert awb.latest_status is not None
    assert awb.latest_status.clickpost_status_code == 2
    assert awb.latest_status.timestamp is not None
    assert awb.latest_status.timestamp.utcoffset() == timedelta(hours=5, minutes=30)
    first = awb.scans[0]
    assert first.checkpoint_id == 9629321255
    assert first.tracking_id == 493656670
    assert first.created_at is not None and first.created_at.hour == 15
    extra = awb.additional
    assert extra.is_stuck is False
    assert extra.order_id == "1234556689"
    assert extra.sku == ["Footwear"]
    assert extra.edd is not None and (extra.edd.min_sla, extra.edd.max_sla) == (2, 3)
    assert extra.edd.exact_sla is None
    assert extra.invoice_number == "ABCD11111"
    assert (extra.pickup_city, extra.drop_city) == ("Delhi", "Bangalore")
    assert extra.cod_value == 1000.0
    assert extra.currency_code == "INR"
    assert extra.courier_partner_edd is None
    assert extra.channel_name == "ABCDEF"
    assert extra.qc_images == []
    assert extra.ndr is not None and extra.ndr.ndr_bucket_code == 1
    assert extra.ndr.ndr_description == "Customer Unavailable"
    assert extra.courier_partner_id == 4
    assert extra.courier_name == "Delhivery"


def test_source_zone_is_a_setting() -> None:
    # Given the sample read as UTC instead of India time
    response = parse_track_order(SAMPLE.read_bytes(), ZoneInfo("UTC"))

    # Then the same wall-clock time carries the UTC offset
    status = response.result["4210610508756"].latest_status
    assert status is not None and status.timestamp is not None
    assert status.timestamp.utcoffset() == timedelta(0)


def test_unknown_fields_and_nulls_never_break_parsing() -> None:
    # Given a response with fields Clickpost may add and nulls where it sends them
    body = {
        "meta": {"status": 200, "success": True, "message": "SUCCESS", "request_id": "x"},
        "result": {
            "AWB1": {
                "latest_status": None,
                "scans": None,
                "valid": True,
                "brand_new_field": {"a": 1},
                "additional": {
                    "is_stuck": None,
                    "order_id": 12345,
                    "sku": None,
                    "edd": {},
                    "ndr": {},
                    "qc_images": None,
                    "courier_partner_edd": "2022-11-03",
                    "cod_value": None,
                    "another_new_field": [1, 2],
                },
            },
            "AWB2": {
                "scans": [{"clickpost_status_code": 5, "timestamp": "", "checkpoint_id": "c1"}]
            },
        },
    }

    # When it is parsed
    response = parse_track_order(json.dumps(body))

    # Then the known fields are read and the rest ignored
    awb = response.result["AWB1"]
    assert awb.scans == []
    assert awb.latest_status is None
    assert awb.additional.order_id == "12345"
    assert awb.additional.edd is None and awb.additional.ndr is None
    assert awb.additional.courier_partner_edd == "2022-11-03"
    assert response.result["AWB2"].scans[0].timestamp is None
    assert response.result["AWB2"].additional.is_stuck is None


def test_an_unreadable_timestamp_keeps_the_scan_and_says_so() -> None:
    # Given a scan whose time is in a form no one can read for sure
    body = {"meta": {"success": True}, "result": {"A": {"scans": [{"timestamp": "31/10/2022"}]}}}

    # When
    scan = parse_track_order(json.dumps(body)).result["A"].scans[0]

    # Then the scan is kept, without a time, with the value as sent
    assert scan.timestamp is None
    assert scan.timestamp_raw == "31/10/2022"


def test_catalogue_knows_terminal_and_failed_delivery_codes() -> None:
    catalogue = CATALOGUE
    assert catalogue.lookup(8).terminal and catalogue.lookup(8).name == "Delivered"
    assert {c for c in (8, 14, 10, 16, 17, 23, 32) if catalogue.lookup(c).terminal} == {
        8,
        14,
        10,
        16,
        17,
        23,
        32,
    }
    assert not any(catalogue.lookup(c).terminal for c in (11, 12, 21, 13, 15, 26, 27, 5, 6))
    assert catalogue.lookup(9).failed_delivery
    assert catalogue.lookup(6).out_for_delivery


def test_unknown_code_is_kept_and_non_terminal() -> None:
    status = CATALOGUE.lookup(29, "SomethingNew")
    assert not status.known
    assert status.name == "SomethingNew"
    assert not status.terminal


def test_catalogue_file_can_be_overridden(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"statuses": []}')
    with pytest.raises(Exception, match=r"bad\.json|status catalogue"):
        StatusCatalogue.from_json(bad.read_text(), str(bad))


@pytest.mark.parametrize(
    ("cp_id", "waybill", "field", "rule"),
    [
        (4, "", "waybill", "must not be empty"),
        (4, "A" * 101, "waybill", "at most 100"),
        (4, "A1,A2", "waybill", "comma"),
        (4, "A 1", "waybill", "whitespace"),
        (0, "A1", "cp_id", "positive integer"),
        (-3, "A1", "cp_id", "positive integer"),
        ("x", "A1", "cp_id", "positive integer"),
        (True, "A1", "cp_id", "boolean"),
        (1.5, "A1", "cp_id", "positive integer"),
    ],
)
def test_bad_keys_name_the_field_and_the_rule(
    cp_id: object, waybill: object, field: str, rule: str
) -> None:
    with pytest.raises(InvalidInputError, match=rule) as caught:
        ShipmentKey.of(cp_id, waybill)
    assert caught.value.field == field


def test_a_good_key_round_trips_through_its_partition_key() -> None:
    key = ShipmentKey.of("4", "AWB-1")
    assert key.pk == "4#AWB-1"
    assert ShipmentKey.from_pk(key.pk) == key
    assert ShipmentKey.of(4, "A" * 100).waybill == "A" * 100


def test_a_deployment_can_replace_the_catalogue_file(tmp_path: Path) -> None:
    # Given a catalogue of one status, named by the override variable
    custom = tmp_path / "codes.json"
    custom.write_text('{"statuses": [{"code": 99, "name": "Teleported", "terminal": true}]}')
    settings = Settings({"TRACKWATCH_STATUS_CATALOGUE": str(custom)})

    # When the container loads the catalogue, Then it is that file
    catalogue = bootstrap(settings).catalogue
    assert len(catalogue) == 1
    assert catalogue.lookup(99).terminal
    # and a missing override names the file
    missing = Settings({"TRACKWATCH_STATUS_CATALOGUE": str(tmp_path / "missing.json")})
    with pytest.raises(ConfigurationError, match=r"status catalogue .*missing\.json"):
        _ = bootstrap(missing).catalogue


@pytest.mark.parametrize("empty", [None, "", [], {}])
def test_an_object_sent_empty_is_none_however_it_is_sent(empty: object) -> None:
    # Given objects Clickpost sends empty in any of the ways it has been seen to
    entry = {"latest_status": empty, "additional": {"edd": empty, "ndr": empty, "sku": None}}
    body = {"meta": {"success": True}, "result": {"A": entry, "B": {"additional": empty}}}

    # When the body is parsed
    response = parse_track_order(json.dumps(body))

    # Then each reads as none
    awb = response.result["A"]
    assert awb.latest_status is None
    assert (awb.additional.edd, awb.additional.ndr, awb.additional.sku) == (None, None, [])
    assert response.result["B"].additional == Additional()


def test_a_result_sent_null_is_empty() -> None:
    body = {"meta": {"success": True}, "result": None}
    assert parse_track_order(json.dumps(body)).result == {}


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"latest_status": "in transit"}, "latest_status: model_type"),
        ({"latest_status": [1]}, "latest_status: model_type"),
        (
            {"latest_status": {"clickpost_status_code": "x"}},
            "latest_status.clickpost_status_code: int_parsing",
        ),
        ({"additional": {"edd": {"min_sla": "soon"}}}, "additional.edd.min_sla: int_parsing"),
        ({"additional": 7}, "additional: model_type"),
    ],
)
def test_a_malformed_object_fails_as_the_model_would_say(
    entry: dict[str, object], reason: str
) -> None:
    # Given an object that is neither well formed nor empty
    body = json.dumps({"meta": {"success": True}, "result": {"A": entry}})

    # When the body is parsed, it fails; the reason names the field as the model alone would
    with pytest.raises(ValidationError) as caught:
        parse_track_order(body)
    assert describe_validation(caught.value) == f"result.A.{reason}"
