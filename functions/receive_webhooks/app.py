"""receive_webhooks: Clickpost's status webhooks (an open HTTP API route, authenticated by
the shared key) become change hints on HintQueue."""

from __future__ import annotations

import base64
import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.typing import LambdaContext

from trackwatch.bootstrap import Container, Handler, lambda_entry
from trackwatch.models.webhook import WebhookRequest
from trackwatch.observability import count_by, logger, tracer


def handler(container: Container) -> Handler:
    """The handler over `container`'s webhook receiver."""
    service = container.webhook_service

    # No @metrics.log_metrics: the outcome goes out as a single metric, and an empty flush
    # would warn on every request.
    @logger.inject_lambda_context
    @tracer.capture_lambda_handler
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        """Check the key, enqueue the hint, answer; log the waybill and status code only."""
        request = APIGatewayProxyEventV2(event)
        raw = request.body or ""
        # As sent: a base64 body is decoded to bytes, never read as text first.
        body = base64.b64decode(raw) if request.is_base64_encoded else raw.encode()
        reply = service.receive(
            WebhookRequest(
                headers={k.lower(): v for k, v in (request.headers or {}).items()},
                query=dict(request.query_string_parameters or {}),
                body=body,
            )
        )
        count_by("Webhooks", "outcome", {reply.outcome.value: 1})
        webhook = reply.webhook
        logger.info(
            "webhook",
            extra={
                "outcome": reply.outcome.value,
                "waybill": webhook.key.waybill if webhook else None,
                "cp_id": webhook.key.cp_id if webhook else None,
                "clickpost_status_code": webhook.clickpost_status_code if webhook else None,
                "problem": reply.problem,
                "error": reply.error,
            },
        )
        # No detail: a caller with the wrong key learns nothing but the status.
        answer = {"message": HTTPStatus(reply.status_code).phrase}
        return {
            "statusCode": reply.status_code,
            "headers": {"content-type": "application/json"},
            "body": json.dumps(answer),
        }

    return lambda_handler


lambda_handler = lambda_entry(handler)
