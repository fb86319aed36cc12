"""The shipments API served on a local port by the local runtime: curl works."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.conftest import Pipeline
from trackwatch_cli.api_gateway import ApiGateway


@pytest.fixture
def api(pipeline: Pipeline) -> Iterator[httpx.Client]:
    gateway = ApiGateway(pipeline.runtime, pipeline.stack.routes).start()
    try:
        with httpx.Client(base_url=gateway.base_url, timeout=30) as client:
            yield client
    finally:
        gateway.stop()


def test_every_route_of_the_template_is_served(pipeline: Pipeline) -> None:
    served = {(r.method, r.path) for r in pipeline.stack.routes}
    assert ("POST", "/shipments") in served
    assert ("GET", "/shipments/{cp_id}/{waybill}") in served
    assert ("POST", "/shipments/{cp_id}/{waybill}/refresh") in served


def test_register_poll_and_look_up_over_http(pipeline: Pipeline, api: httpx.Client) -> None:
    # Given a shipment the sandbox knows, registered over HTTP
    pipeline.sandbox.add_shipment("HTTP0001", 4, "delivered_smoothly")
    created = api.post("/shipments", json={"waybill": "HTTP0001", "cp_id": 4})
    assert created.status_code < 300, created.text

    # When it is refreshed over HTTP and the stack settles
    refreshed = api.post("/shipments/4/HTTP0001/refresh")
    assert refreshed.status_code == 202, refreshed.text
    pipeline.runtime.settle(only={"PollShipmentsFunction", "PublishEventsFunction"})

    # Then the API shows its status, and its events were published
    shown = api.get("/shipments/4/HTTP0001")
    assert shown.status_code == 200, shown.text
    assert "Order Placed" in shown.text
    assert any(m["body"]["waybill"] == "HTTP0001" for m in pipeline.drain("AllEventsQueue"))


def test_unknown_paths_and_bad_input_are_4xx(api: httpx.Client) -> None:
    assert api.get("/nowhere").status_code == 404
    bad = api.post("/shipments", content=b"{not json", headers={"content-type": "application/json"})
    assert 400 <= bad.status_code < 500
