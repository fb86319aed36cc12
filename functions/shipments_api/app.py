"""shipments_api: the shipments HTTP API (API Gateway HTTP API, IAM-authorized)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from trackwatch.api.shipments import app
from trackwatch.observability import logger, tracer


# No @metrics.log_metrics: the routes emit their counts with single metrics, and an
# empty flush would warn on every request.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Route the request to its handler in trackwatch.api.shipments."""
    return app.resolve(event, context)
