"""The shipments HTTP API: routes over the shipments service, and a small router for them.

Each route turns HTTP into a service call and the answer (or a typed error) back into
HTTP; the rules live in the models and services. The routes are declared once, in
`ROUTES`: the router below serves them, and `trackwatch.api.openapi` describes the same
declarations through powertools' OpenAPI resolver (docs/openapi.json, checked for drift).

Why not that resolver at run time too: with validation on it imports powertools' whole
OpenAPI model (pydantic models of the OpenAPI specification, every event source's data
class), which made this function's cold start twice the others'. Five routes need a path
match, three typed parameters and an error mapping; this router does exactly what the
resolver did for them: the same path pattern (a segment that does not match is a 404), the
same lax pydantic validation of each parameter, every problem reported at once as a 422,
the same exception handlers, the same response payload.

POST /shipments reads its body itself rather than through body validation, because a batch
must store its good entries and report each bad one, where a validated body would be
refused whole.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs, unquote

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from trackwatch.errors import (
    ConflictError,
    InvalidInputError,
    MalformedInputError,
    NotFoundError,
    TrackwatchError,
)
from trackwatch.models.inputs import check_since
from trackwatch.models.keys import MAX_CP_ID, MAX_WAYBILL_LENGTH, WAYBILL_CHARACTERS, ShipmentKey
from trackwatch.models.order_views import OrderView
from trackwatch.models.registration import (
    MAX_ORDER_ID_LENGTH,
    Outcome,
    Problem,
    Registration,
    parse_body,
    parse_entry,
    parse_order_id,
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
from trackwatch.services.registration import EntryResult
from trackwatch.services.shipments import ShipmentsService

if TYPE_CHECKING:  # built on the first orders request only
    from trackwatch.services.orders import OrdersService

TITLE = "trackwatch shipments API"
VERSION = "1.0.0"
JSON = "application/json"

#: The path parameters' rules, as the OpenAPI document states them.
CP_ID_DESCRIPTION = "Clickpost's carrier id: a positive integer."
#: Percent-encoded: checked again once decoded.
WAYBILL_PATH_MAX_LENGTH = 3 * MAX_WAYBILL_LENGTH
WAYBILL_DESCRIPTION = (
    f"The AWB, percent-encoded: once decoded, NFKC-normalised and trimmed, 1-100 "
    f"{WAYBILL_CHARACTERS} other than a comma."
)
SINCE_DESCRIPTION = "ISO 8601 with an offset; only events that occurred from then on."
ORDER_ID_PATH_MAX_LENGTH = 3 * MAX_ORDER_ID_LENGTH
ORDER_ID_DESCRIPTION = (
    f"The order_id, percent-encoded: once decoded, 1-{MAX_ORDER_ID_LENGTH} characters of "
    "printable text, exactly as the shipments carry it."
)

#: The rule of a path or query parameter, in the same words as the registration's.
PARAMETER_RULES = {
    "cp_id": "must be a positive integer",
    "waybill": f"must be 1 to {WAYBILL_PATH_MAX_LENGTH} characters, percent-encoded",
    "since": "must be an ISO 8601 date-time with an offset",
    "order_id": f"must be 1 to {ORDER_ID_PATH_MAX_LENGTH} characters, percent-encoded",
}
#: Each parameter as the resolver validated it: pydantic, lax (text to int, to datetime).
PARAMETERS: dict[str, tuple[str, TypeAdapter[Any]]] = {
    "cp_id": ("path", TypeAdapter(Annotated[int, Field(ge=1, le=MAX_CP_ID)])),
    "waybill": (
        "path",
        TypeAdapter(Annotated[str, Field(min_length=1, max_length=WAYBILL_PATH_MAX_LENGTH)]),
    ),
    "since": ("query", TypeAdapter(datetime | None)),
    "order_id": (
        "path",
        TypeAdapter(Annotated[str, Field(min_length=1, max_length=ORDER_ID_PATH_MAX_LENGTH)]),
    ),
}

# A path parameter is what powertools' resolver matched: RFC 3986's unreserved and
# sub-delimiter characters, the unsafe ones API Gateway passes on encoded, and word
# characters; anything else in a segment (a "/", a quote, a control character) matches no
# route.
_SEGMENT = r"[-._~()'!*:@,;=+&$%<> \[\]{}|^\w]+"


@dataclass(frozen=True)
class ApiContext:
    """What the routes work with, for one request."""

    service: ShipmentsService
    languages: frozenset[str]
    #: The orders service, built on the first orders request (None: the API shows none).
    orders: Callable[[], OrdersService] | None = None


@dataclass(frozen=True)
class Request:
    """One request as a route sees it: its event and its validated parameters."""

    event: Mapping[str, Any]
    params: Mapping[str, Any]


@dataclass(frozen=True)
class ApiResponse:
    """What a route answers."""

    status: HTTPStatus
    body: str
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = JSON

    def payload(self) -> dict[str, Any]:
        """API Gateway's payload format 2.0 response, as powertools' resolver wrote it."""
        return {
            "statusCode": int(self.status),
            "body": self.body,
            "isBase64Encoded": False,
            "headers": {"Content-Type": self.content_type, **self.headers},
            "cookies": [],
        }


@dataclass(frozen=True)
class Route:
    """One route: where it is, what it does, and how the OpenAPI document describes it."""

    method: str
    #: In the resolver's form, "/shipments/<cp_id>/<waybill>".
    rule: str
    call: Callable[[ApiContext, Request], ApiResponse]
    #: Its parameters, in the order they are validated (and documented).
    params: tuple[str, ...]
    summary: str
    operation_id: str
    responses: dict[int, Any]
    description: str | None = None
    #: The OpenAPI document's tag.
    tag: str = "shipments"

    @property
    def pattern(self) -> re.Pattern[str]:
        """The rule as a regular expression, parameters as named groups."""
        named = re.sub(r"<(\w+)>", lambda m: f"(?P<{m[1]}>{_SEGMENT})", self.rule)
        return re.compile(f"^{named}$")


def _error(status: HTTPStatus, message: str, problems: list[Problem] | None = None) -> ApiResponse:
    view = ErrorView(message=message, errors=problems or [])
    return ApiResponse(
        status=status,
        body=view.model_dump_json(),
        headers={"Retry-After": "1"} if status is HTTPStatus.SERVICE_UNAVAILABLE else {},
    )


def _json(status: HTTPStatus, view: BaseModel) -> ApiResponse:
    return ApiResponse(status=status, body=view.model_dump_json())


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


def _raw_body(event: Mapping[str, Any]) -> bytes | str | None:
    # Not decoded as UTF-8 blindly: a body that is not must be a 400.
    body = event.get("body")
    if body is None or not event.get("isBase64Encoded"):
        return body
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error as exc:
        raise MalformedInputError("body", "not valid base64") from exc


def _key(request: Request) -> ShipmentKey:
    # The path arrives percent-encoded; the registration's rules apply to the decoded
    # waybill (bytes that are not UTF-8 decode to U+FFFD, which the rules refuse).
    return ShipmentKey.parse(request.params["cp_id"], unquote(request.params["waybill"]))


class ParameterError(Exception):
    """Parameters that break their rules: every one of them, as problems."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(map(str, problems)))
        self.problems = problems


def _invalid_request(exc: ParameterError) -> ApiResponse:
    return _error(HTTPStatus.UNPROCESSABLE_ENTITY, str(exc), exc.problems)


def _malformed(exc: MalformedInputError) -> ApiResponse:
    return _error(HTTPStatus.BAD_REQUEST, str(exc), [Problem(field=exc.field, rule=exc.rule)])


def _invalid(exc: InvalidInputError) -> ApiResponse:
    return _error(
        HTTPStatus.UNPROCESSABLE_ENTITY, str(exc), [Problem(field=exc.field, rule=exc.rule)]
    )


def _not_found(exc: NotFoundError) -> ApiResponse:
    return _error(HTTPStatus.NOT_FOUND, str(exc))


def _conflict(exc: ConflictError) -> ApiResponse:
    return _error(HTTPStatus.CONFLICT, str(exc))


def _failed(exc: TrackwatchError) -> ApiResponse:
    if not exc.retryable:
        raise exc
    logger.warning("request failed, retryable", extra={"kind": exc.kind})
    return _error(HTTPStatus.SERVICE_UNAVAILABLE, f"temporarily unavailable ({exc.kind}); retry")


#: The most specific handler of an exception's classes wins; an exception none handles
#: propagates (API Gateway answers 500, the function's Errors alarm counts it).
EXCEPTION_HANDLERS: dict[type[Exception], Callable[[Any], ApiResponse]] = {
    ParameterError: _invalid_request,
    MalformedInputError: _malformed,
    InvalidInputError: _invalid,
    NotFoundError: _not_found,
    ConflictError: _conflict,
    TrackwatchError: _failed,
}


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


def register_shipments(api: ApiContext, request: Request) -> ApiResponse:
    """POST /shipments."""
    batch, raw_entries = parse_body(_raw_body(request.event))
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


def get_shipment(api: ApiContext, request: Request) -> ApiResponse:
    """GET /shipments/{cp_id}/{waybill}."""
    return _json(HTTPStatus.OK, api.service.show(_key(request)))


def stop_shipment(api: ApiContext, request: Request) -> ApiResponse:
    """DELETE /shipments/{cp_id}/{waybill}."""
    view = api.service.stop(_key(request))
    logger.info("stopped by request", extra={"cp_id": view.cp_id})
    return _json(HTTPStatus.OK, view)


def refresh_shipment(api: ApiContext, request: Request) -> ApiResponse:
    """POST /shipments/{cp_id}/{waybill}/refresh."""
    return _json(HTTPStatus.ACCEPTED, api.service.refresh(_key(request)))


def replay_shipment(api: ApiContext, request: Request) -> ApiResponse:
    """POST /shipments/{cp_id}/{waybill}/replay."""
    since: datetime | None = request.params["since"]
    view = api.service.replay(_key(request), None if since is None else check_since("since", since))
    logger.info("replayed", extra={"cp_id": view.cp_id, "events": view.replayed})
    return _json(HTTPStatus.OK, view)


def get_order(api: ApiContext, request: Request) -> ApiResponse:
    """GET /orders/{order_id}."""
    if api.orders is None:
        raise NotFoundError("orders are not served here")
    return _json(
        HTTPStatus.OK, api.orders().show(parse_order_id(unquote(request.params["order_id"])))
    )


_SHIPMENT = ("cp_id", "waybill")
ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/shipments",
        register_shipments,
        (),
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
    ),
    Route(
        "GET",
        "/shipments/<cp_id>/<waybill>",
        get_shipment,
        _SHIPMENT,
        summary="A shipment's status, NDRs, expected delivery, timeline, and why tracking stopped",
        responses=_responses(200, ShipmentView, 404, 422),
        operation_id="getShipment",
    ),
    Route(
        "DELETE",
        "/shipments/<cp_id>/<waybill>",
        stop_shipment,
        _SHIPMENT,
        summary="Stop tracking a shipment",
        description="Idempotent: stopping a stopped shipment changes nothing and answers 200.",
        responses=_responses(200, ShipmentView, 404, 422),
        operation_id="stopShipment",
    ),
    Route(
        "POST",
        "/shipments/<cp_id>/<waybill>/refresh",
        refresh_shipment,
        _SHIPMENT,
        summary="Poll a shipment now, by the dispatcher's own path",
        responses=_responses(202, RefreshView, 404, 409, 422),
        operation_id="refreshShipment",
    ),
    Route(
        "POST",
        "/shipments/<cp_id>/<waybill>/replay",
        replay_shipment,
        (*_SHIPMENT, "since"),
        summary="Publish a shipment's events again, with their original event_ids",
        description=(
            "Events are kept EventLogRetentionDays (30 by default). `since` replays only "
            "those that occurred from then on."
        ),
        responses=_responses(200, ReplayView, 404, 422),
        operation_id="replayShipment",
    ),
    Route(
        "GET",
        "/orders/<order_id>",
        get_order,
        ("order_id",),
        summary="An order: its shipments, where each stands, counts, milestone and timeline",
        description=(
            "An order is the shipments that share an order_id (as registered, or from "
            "Clickpost's additional.order_id), across carriers. `milestone` and the timeline's "
            "order events are what was told; `members` and `counts` are as the roll-up last "
            "saw them, including changes still in their collection window."
        ),
        responses=_responses(200, OrderView, 404, 422),
        operation_id="getOrder",
        tag="orders",
    ),
)
_MATCHERS = [(route, route.pattern) for route in ROUTES]
#: What the resolver answered when no route matched.
NOT_FOUND = ApiResponse(
    status=HTTPStatus.NOT_FOUND,
    body=json.dumps({"statusCode": 404, "message": "Not found"}, separators=(",", ":")),
)


def _path(event: Mapping[str, Any]) -> str:
    raw: str = event.get("rawPath") or "/"
    stage = (event.get("requestContext") or {}).get("stage", "$default")
    return raw if stage == "$default" else raw[len("/" + stage) :]


def _parameters(route: Route, event: Mapping[str, Any], matched: Mapping[str, str]) -> Request:
    """The route's parameters validated, or a ParameterError with every problem."""
    query = event.get("queryStringParameters") or {}
    # A parameter given twice arrives joined by a comma; the raw query tells it apart.
    repeated = {
        name
        for name, values in parse_qs(event.get("rawQueryString") or "", True).items()
        if len(values) > 1
    }
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for name in route.params:
        where, adapter = PARAMETERS[name]
        raw: Any = matched.get(name) if where == "path" else query.get(name)
        if where == "query" and name in repeated and isinstance(raw, str):
            raw = raw.split(",")
        try:
            values[name] = adapter.validate_python(raw)
        except ValidationError:
            problems.append(Problem(field=name, rule=PARAMETER_RULES[name]))
    if problems:
        raise ParameterError(problems)
    return Request(event=event, params=values)


def _handled(exc: Exception) -> ApiResponse:
    """The response the most specific handler gives `exc`; `exc` again if none handles it."""
    for cls in type(exc).__mro__:
        handler = EXCEPTION_HANDLERS.get(cls)
        if handler is not None:
            return handler(exc)
    raise exc


def resolve(api: ApiContext, event: Mapping[str, Any]) -> dict[str, Any]:
    """Route one payload-format 2.0 event to its route; the response payload."""
    method = str((event.get("requestContext") or {}).get("http", {}).get("method", "")).upper()
    path = _path(event)
    for route, pattern in _MATCHERS:
        if route.method != method:
            continue
        matched = pattern.match(path)
        if matched is None:
            continue
        try:
            response = route.call(api, _parameters(route, event, matched.groupdict()))
        except Exception as exc:  # the handlers decide; the rest propagates
            response = _handled(exc)
        return response.payload()
    return NOT_FOUND.payload()
