"""poll_shipments: PollQueue consumer; polls Clickpost, diffs, commits changes with their events."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from trackwatch.batches import failures_response, sqs_messages
from trackwatch.bootstrap import Container, Handler, deadline_of, lambda_entry
from trackwatch.models.messages import PollRequest
from trackwatch.observability import logger, metrics, record_poll, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

#: Clickpost calls stop this long before Lambda's own timeout (at most a fifth of the time
#: left), so the batch still reports which messages failed instead of being killed whole.
DEADLINE_MARGIN_S = 5.0


def handler(container: Container) -> Handler:
    """The handler over `container`'s poller."""
    service = container.poll_service

    # A batch that fails whole is reported record by record, not raised: the source retries
    # the same records either way, and no traceback (with what it quotes) reaches the logs.
    @logger.inject_lambda_context
    @metrics.log_metrics
    @tracer.capture_lambda_handler
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        """Poll every message's calls at once; report the messages that failed."""
        requests: dict[str, PollRequest] = {}
        redelivered: set[str] = set()
        records = sqs_messages(event)
        for record in records:
            if record.receive_count > 1:
                redelivered.add(record.message_id)
            try:
                requests[record.message_id] = PollRequest.model_validate_json(record.body)
            except ValueError:
                logger.exception(
                    "poll request is malformed", extra={"message_id": record.message_id}
                )
        failures, summary = asyncio.run(
            service.poll(
                requests,
                deadline=deadline_of(context, DEADLINE_MARGIN_S, 1 / 5),
                redelivered=redelivered,
            )
        )
        record_poll(summary)
        logger.info("poll batch", extra=summary.as_log())
        # A message that is not a poll request fails too: its DLQ keeps it for a human.
        return failures_response(
            r.message_id
            for r in records
            if r.message_id not in requests or failures.get(r.message_id) is not None
        )

    return lambda_handler


lambda_handler = lambda_entry(handler)
