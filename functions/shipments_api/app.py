"""shipments_api: the shipments HTTP API (API Gateway HTTP API, IAM-authorized)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import correlation_paths

from trackwatch.api.shipments import ApiContext, resolve
from trackwatch.bootstrap import Container, Handler, lambda_entry
from trackwatch.observability import logger, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


def handler(container: Container) -> Handler:
    """The handler over `container`'s shipments and orders services."""
    api = ApiContext(
        service=container.shipments_service,
        languages=container.languages,
        orders=lambda: container.orders_service,
    )

    # No @metrics.log_metrics: the routes emit their counts with single metrics, and an
    # empty flush would warn on every request.
    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    @tracer.capture_lambda_handler
    def lambda_handler(event: dict[str, Any], lambda_context: LambdaContext) -> dict[str, Any]:
        """Route the request to its handler in trackwatch.api.shipments."""
        return resolve(api, event)

    return lambda_handler


lambda_handler = lambda_entry(handler)
