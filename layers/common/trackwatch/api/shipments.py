"""The shipments HTTP API: routes over the shipments service, and its OpenAPI document.

Each route turns HTTP into a service call and the answer (or a typed error)
back into HTTP; the rules live in the models and services. The routes are declared
once, on the module's resolver (the OpenAPI document is read from it); the service
they call rides in the resolver's context, set by the handler for each request. POST /shipments
reads its body itself rather than through powertools' body validation, because
a batch must store its good entries and report each bad one, where a
validated body would be refused whole.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import APIKey, Server
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from trackwatch.errors import (
    ConflictError,
    InvalidInputError,
    MalformedInputError,
    NotFoundError,
    TrackwatchError,
)
from trackwatch.models.inputs import check_printable, check_since
from trackwatch.models.keys import MAX_CP_ID, MAX_WAYBILL_LENGTH, WAYBILL_CHARACTERS, ShipmentKey
from trackwatch.models.order_views import OrderView
from trackwatch.models.registration import (
    MAX_BATCH,
    MAX_ORDER_ID_LENGTH,
    Outcome,
    Problem,
    Registration,
    parse_body,
    parse_entry,
)
from trackwatch.models.views import (
    BatchView,
    EntryView,
    ErrorView,
    RefreshView,
    ReplayView,
    ShipmentView,
)
from trackwatch.observability import count_by, logger
from trackwatch.services.orders import OrdersService
from trackwatch.services.registration import EntryResult
from trackwatch.services.shipments import ShipmentsService

TITLE = "trackwatch shipments API"
VERSION = "1.0.0"
JSON = "application/json"

app = APIGatewayHttpResolver(enable_validation=True)


@dataclass(frozen=True)
class ApiContext:
    """What the routes work with, for one request."""

    service: ShipmentsService
    languages: frozenset[str]
    #: The orders service, built on the first orders request (None: the API shows none).
    orders: Callable[[], OrdersService] | None = None


def use(context: ApiContext) -> None:
    """Give the next request its service (the resolver clears it after each request)."""
    app.context["api"] = context


def _context() -> ApiContext:
    context = app.context.get("api")
    if not isinstance(context, ApiContext):
        raise RuntimeError("the shipments API was invoked without its service (see use())")
    return context


CpIdPath = Annotated[
    int, Path(ge=1, le=MAX_CP_ID, description="Clickpost's carrier id: a positive integer.")
]
WaybillPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=3 * MAX_WAYBILL_LENGTH,  # percent-encoded; checked again once decoded
        description=(
            f"The AWB, percent-encoded: once decoded, NFKC-normalised and trimmed, 1-100 "
            f"{WAYBILL_CHARACTERS} other than a comma."
        ),
    ),
]


def _error(
    status: HTTPStatus, message: str, problems: list[Problem] | None = None
) -> Response[Any]:
    view = ErrorView(message=message, errors=problems or [])
    return Response(
        status_code=status,
        content_type=JSON,
        body=view.model_dump_json(),
        headers={"Retry-After": "1"} if status is HTTPStatus.SERVICE_UNAVAILABLE else None,
    )


def _json(status: HTTPStatus, view: Any) -> Response[Any]:
    return Response(status_code=status, content_type=JSON, body=view.model_dump_json())


def _responses(ok: int, model: type, *errors: int) -> dict[int, Any]:
    described = {
        400: "The body is not JSON.",
        404: "No such shipment is registered (for an order: no shipment carries it).",
        409: "Tracking of this shipment has stopped.",
        422: "A field breaks a rule; each problem names the field and the rule.",
        503: "Storage was briefly unavailable; retry.",
    }
    responses: dict[int, Any] = {
        ok: {"description": "OK", "content": {JSON: {"model": model}}},
    }
    for status in (*errors, 503):
        responses[status] = {
            "description": described[status],
            "content": {JSON: {"model": ErrorView}},
        }
    return responses


def _raw_body() -> bytes | str | None:
    # Not powertools' decoded_body: it assumes UTF-8, and a body that is not must be a 400.
    event = app.current_event
    if event.body is None or not event.is_base64_encoded:
        return event.body
    try:
        return base64.b64decode(event.body, validate=True)
    except binascii.Error as exc:
        raise MalformedInputError("body", "not valid base64") from exc


def _key(cp_id: int, waybill: str) -> ShipmentKey:
    # The path arrives percent-encoded; the registration's rules apply to the decoded
    # waybill (bytes that are not UTF-8 decode to U+FFFD, which the rules refuse).
    return ShipmentKey.parse(cp_id, unquote(waybill))


#: The rule of a path or query parameter, in the same words as the registration's.
_PARAMETER_RULES = {
    "cp_id": "must be a positive integer",
    "waybill": f"must be 1 to {3 * MAX_WAYBILL_LENGTH} characters, percent-encoded",
    "since": "must be an ISO 8601 date-time with an offset",
    "order_id": f"must be 1 to {3 * MAX_ORDER_ID_LENGTH} characters, percent-encoded",
}


def _invalid_request(exc: RequestValidationError) -> Response[Any]:
    problems = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ())][1:] or ["request"]
        field = ".".join(location)
        rule = _PARAMETER_RULES.get(field) or str(error.get("msg", "is not valid")).lower()
        problems.append(Problem(field=field, rule=rule))
    return _error(HTTPStatus.UNPROCESSABLE_ENTITY, "; ".join(map(str, problems)), problems)


def _malformed(exc: MalformedInputError) -> Response[Any]:
    return _error(HTTPStatus.BAD_REQUEST, str(exc), [Problem(field=exc.field, rule=exc.rule)])


def _invalid(exc: InvalidInputError) -> Response[Any]:
    return _error(
        HTTPStatus.UNPROCESSABLE_ENTITY, str(exc), [Problem(field=exc.field, rule=exc.rule)]
    )


def _not_found(exc: NotFoundError) -> Response[Any]:
    return _error(HTTPStatus.NOT_FOUND, str(exc))


def _conflict(exc: ConflictError) -> Response[Any]:
    return _error(HTTPStatus.CONFLICT, str(exc))


def _failed(exc: TrackwatchError) -> Response[Any]:
    if not exc.retryable:
        raise exc
    logger.warning("request failed, retryable", extra={"kind": exc.kind})
    return _error(HTTPStatus.SERVICE_UNAVAILABLE, f"temporarily unavailable ({exc.kind}); retry")


# powertools' exception_handler decorator is untyped; register the handlers by call.
app.exception_handler(RequestValidationError)(_invalid_request)
app.exception_handler(MalformedInputError)(_malformed)
app.exception_handler(InvalidInputError)(_invalid)
app.exception_handler(NotFoundError)(_not_found)
app.exception_handler(ConflictError)(_conflict)
app.exception_handler(TrackwatchError)(_failed)


def entry_view(result: EntryResult, entry: Registration | None) -> EntryView:
    """One entry's result as the API shows it."""
    rejected = result.rejected
    return EntryView(
        index=result.index,
        outcome=(result.outcome or Outcome.REJECTED).value,
        waybill=entry.waybill if entry else (rejected.waybill if rejected else None),
        cp_id=entry.cp_id if entry else (rejected.cp_id if rejected else None),
        tracked=result.tracked,
        errors=list(rejected.problems) if rejected else [],
    )


@app.post(
    "/shipments",
    summary="Register one shipment, or a batch of up to 100",
    description=(
        "Registering a known (cp_id, waybill) again updates its contact and preferences: "
        "fields left out keep their value, null clears one. One shipment answers 201 "
        "(created) or 200 (updated or unchanged), 422 if it breaks a rule. A batch answers "
        "207 with each entry's outcome: the good ones are stored, each bad one is reported."
    ),
    responses={
        201: {"description": "Created", "content": {JSON: {"model": EntryView}}},
        200: {"description": "Updated or unchanged", "content": {JSON: {"model": EntryView}}},
        207: {
            "description": "A batch: each entry's outcome",
            "content": {JSON: {"model": BatchView}},
        },
        400: {"description": "The body is not JSON.", "content": {JSON: {"model": ErrorView}}},
        422: {
            "description": "A rule is broken (the whole body, or the one shipment).",
            "content": {JSON: {"model": ErrorView}},
        },
        503: {
            "description": "Storage was briefly unavailable; retry.",
            "content": {JSON: {"model": ErrorView}},
        },
    },
    operation_id="registerShipments",
    tags=["shipments"],
)
def register_shipments() -> Response[Any]:
    """POST /shipments."""
    batch, raw_entries = parse_body(_raw_body())
    api = _context()
    entries = [parse_entry(raw, api.languages) for raw in raw_entries]
    results = api.service.register(entries)
    views = [
        entry_view(r, e if isinstance(e, Registration) else None)
        for r, e in zip(results, entries, strict=True)
    ]
    failed = [r.error for r in results if r.error is not None]
    if failed:
        # A storage failure is nobody's input: the caller retries, and re-registering is safe.
        raise failed[0]
    counts: Counter[str] = Counter(v.outcome for v in views)
    count_by("ShipmentsRegistered", "outcome", counts)
    logger.info("registered", extra={"entries": len(views), "outcomes": dict(counts)})
    if batch:
        return _json(
            HTTPStatus.MULTI_STATUS,
            BatchView(
                created=counts["created"],
                updated=counts["updated"],
                unchanged=counts["unchanged"],
                rejected=counts["rejected"],
                results=views,
            ),
        )
    (view,) = views
    if view.outcome == "rejected":
        return _error(
            HTTPStatus.UNPROCESSABLE_ENTITY, "; ".join(map(str, view.errors)), view.errors
        )
    status = HTTPStatus.CREATED if view.outcome == "created" else HTTPStatus.OK
    return _json(status, view)


@app.get(
    "/shipments/<cp_id>/<waybill>",
    summary="A shipment's status, NDRs, expected delivery, timeline, and why tracking stopped",
    responses=_responses(200, ShipmentView, 404, 422),
    operation_id="getShipment",
    tags=["shipments"],
)
def get_shipment(cp_id: CpIdPath, waybill: WaybillPath) -> Response[Any]:
    """GET /shipments/{cp_id}/{waybill}."""
    return _json(HTTPStatus.OK, _context().service.show(_key(cp_id, waybill)))


@app.delete(
    "/shipments/<cp_id>/<waybill>",
    summary="Stop tracking a shipment",
    description="Idempotent: stopping a stopped shipment changes nothing and answers 200.",
    responses=_responses(200, ShipmentView, 404, 422),
    operation_id="stopShipment",
    tags=["shipments"],
)
def stop_shipment(cp_id: CpIdPath, waybill: WaybillPath) -> Response[Any]:
    """DELETE /shipments/{cp_id}/{waybill}."""
    view = _context().service.stop(_key(cp_id, waybill))
    logger.info("stopped by request", extra={"cp_id": view.cp_id})
    return _json(HTTPStatus.OK, view)


@app.post(
    "/shipments/<cp_id>/<waybill>/refresh",
    summary="Poll a shipment now, by the dispatcher's own path",
    responses=_responses(202, RefreshView, 404, 409, 422),
    operation_id="refreshShipment",
    tags=["shipments"],
)
def refresh_shipment(cp_id: CpIdPath, waybill: WaybillPath) -> Response[Any]:
    """POST /shipments/{cp_id}/{waybill}/refresh."""
    return _json(HTTPStatus.ACCEPTED, _context().service.refresh(_key(cp_id, waybill)))


@app.post(
    "/shipments/<cp_id>/<waybill>/replay",
    summary="Publish a shipment's events again, with their original event_ids",
    description="Events are kept 90 days. `since` replays only those that occurred from then on.",
    responses=_responses(200, ReplayView, 404, 422),
    operation_id="replayShipment",
    tags=["shipments"],
)
def replay_shipment(
    cp_id: CpIdPath,
    waybill: WaybillPath,
    since: Annotated[
        datetime | None,
        Query(description="ISO 8601 with an offset; only events that occurred from then on."),
    ] = None,
) -> Response[Any]:
    """POST /shipments/{cp_id}/{waybill}/replay."""
    key = _key(cp_id, waybill)
    view = _context().service.replay(key, None if since is None else check_since("since", since))
    logger.info("replayed", extra={"cp_id": view.cp_id, "events": view.replayed})
    return _json(HTTPStatus.OK, view)


OrderIdPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=3 * MAX_ORDER_ID_LENGTH,  # percent-encoded; checked again once decoded
        description=(
            f"The order_id, percent-encoded: once decoded, 1-{MAX_ORDER_ID_LENGTH} characters "
            "of printable text, exactly as the shipments carry it."
        ),
    ),
]


def _order_id(raw: str) -> str:
    order_id = unquote(raw)
    if not 1 <= len(order_id) <= MAX_ORDER_ID_LENGTH:
        raise InvalidInputError("order_id", f"must be 1 to {MAX_ORDER_ID_LENGTH} characters")
    return check_printable("order_id", order_id)


@app.get(
    "/orders/<order_id>",
    summary="An order: its shipments, where each stands, counts, milestone and timeline",
    description=(
        "An order is the shipments that share an order_id (as registered, or from "
        "Clickpost's additional.order_id), across carriers. `milestone` and the timeline's "
        "order events are what was told; `members` and `counts` are as the roll-up last saw "
        "them, including changes still in their collection window."
    ),
    responses=_responses(200, OrderView, 404, 422),
    operation_id="getOrder",
    tags=["orders"],
)
def get_order(order_id: OrderIdPath) -> Response[Any]:
    """GET /orders/{order_id}."""
    orders = _context().orders
    if orders is None:
        raise NotFoundError("orders are not served here")
    return _json(HTTPStatus.OK, orders().show(_order_id(order_id)))


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document, as committed in docs/openapi.json."""
    document: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
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
    # The registration body is read by the route itself (see the module docstring), so
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
