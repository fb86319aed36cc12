"""The shipments API's OpenAPI document (docs/openapi.json), from the routes it serves.

powertools' OpenAPI resolver describes `trackwatch.api.shipments.ROUTES`: each route is
registered on it with a stand-in of the route's signature (its parameters, typed and
constrained as the router validates them), never called. Only the `trackwatch openapi`
command and the drift test import this module; the function never does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi.models import APIKey, Server
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from trackwatch.api.shipments import (
    CP_ID_DESCRIPTION,
    JSON,
    ORDER_ID_DESCRIPTION,
    ORDER_ID_PATH_MAX_LENGTH,
    ROUTES,
    SINCE_DESCRIPTION,
    TITLE,
    VERSION,
    WAYBILL_DESCRIPTION,
    WAYBILL_PATH_MAX_LENGTH,
    Route,
)
from trackwatch.models.keys import MAX_CP_ID
from trackwatch.models.registration import MAX_BATCH, Registration

CpIdPath = Annotated[int, Path(ge=1, le=MAX_CP_ID, description=CP_ID_DESCRIPTION)]
WaybillPath = Annotated[
    str, Path(min_length=1, max_length=WAYBILL_PATH_MAX_LENGTH, description=WAYBILL_DESCRIPTION)
]
SinceQuery = Annotated[datetime | None, Query(description=SINCE_DESCRIPTION)]
OrderIdPath = Annotated[
    str, Path(min_length=1, max_length=ORDER_ID_PATH_MAX_LENGTH, description=ORDER_ID_DESCRIPTION)
]


def _stand_in(params: tuple[str, ...]) -> Callable[..., Any]:
    """A function with the signature the resolver reads a route's parameters from."""
    if params == ():

        def no_parameters() -> None:
            raise NotImplementedError

        return no_parameters
    if params == ("cp_id", "waybill"):

        def shipment(cp_id: CpIdPath, waybill: WaybillPath) -> None:
            raise NotImplementedError

        return shipment
    if params == ("cp_id", "waybill", "since"):

        def shipment_since(cp_id: CpIdPath, waybill: WaybillPath, since: SinceQuery = None) -> None:
            raise NotImplementedError

        return shipment_since
    if params == ("order_id",):

        def order(order_id: OrderIdPath) -> None:
            raise NotImplementedError

        return order
    raise ValueError(f"no stand-in for the parameters {params}: add one")


def resolver(routes: tuple[Route, ...] = ROUTES) -> APIGatewayHttpResolver:
    """powertools' resolver with every route declared on it, as the OpenAPI document's source."""
    app = APIGatewayHttpResolver(enable_validation=True)
    for route in routes:
        app.route(
            route.rule,
            route.method,
            summary=route.summary,
            description=route.description,
            responses=route.responses,
            operation_id=route.operation_id,
            tags=[route.tag],
        )(_stand_in(route.params))
    return app


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document, as committed in docs/openapi.json."""
    document: dict[str, Any] = json.loads(
        resolver().get_openapi_json_schema(
            title=TITLE,
            version=VERSION,
            description=(
                "Register and manage the shipments trackwatch tracks. Every request is signed "
                "with AWS Signature Version 4 (IAM); there is no anonymous access."
            ),
            servers=[Server(url="/")],
            security_schemes={
                "sigv4": APIKey.model_validate(
                    {
                        "type": "apiKey",
                        "name": "Authorization",
                        "in": "header",
                        "description": "AWS Signature Version 4, checked by API Gateway (AWS_IAM).",
                    }
                )
            },
            security=[{"sigv4": []}],
        )
    )
    # The registration body is read by the route itself (see trackwatch.api.shipments), so
    # powertools cannot describe it: add it here.
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    registration = Registration.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(registration.pop("$defs", {}))
    schemas["Registration"] = registration
    reference = {"$ref": "#/components/schemas/Registration"}
    document["paths"]["/shipments"]["post"]["requestBody"] = {
        "required": True,
        "content": {
            JSON: {
                "schema": {
                    "oneOf": [
                        reference,
                        {"type": "array", "items": reference, "minItems": 1, "maxItems": MAX_BATCH},
                    ]
                }
            }
        },
    }
    return document


def render_openapi() -> str:
    """The committed OpenAPI document's exact text."""
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"
