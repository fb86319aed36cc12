"""BatchGetItem to the end: the keys DynamoDB leaves unprocessed are asked for again.

One loop for every adapter that reads several items in one request (the shipments of a
poll batch, a notifier's recipient and its channels' memory, the orders of a roll-up
batch); boto3 has no paginator for BatchGetItem's `UnprocessedKeys`, so it is written here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from trackwatch.errors import StorageError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: Keys in one BatchGetItem: DynamoDB's limit.
BATCH_GET_LIMIT = 100
#: Requests for one batch's keys before the unprocessed rest is an error.
BATCH_GET_ATTEMPTS = 8


def batch_get(
    client: DynamoDBClient,
    request: Mapping[str, Any],
    error: Callable[[str, Exception], StorageError],
) -> dict[str, list[dict[str, Any]]]:
    """The items found for `request` (BatchGetItem's `RequestItems`, at most 100 keys), by
    table; `error(action, exc)` names a failed request. A StorageError if keys are still
    unprocessed after BATCH_GET_ATTEMPTS requests."""
    found: dict[str, list[dict[str, Any]]] = {table: [] for table in request}
    pending: dict[str, Any] = dict(request)
    for _attempt in range(BATCH_GET_ATTEMPTS):
        try:
            answer = client.batch_get_item(RequestItems=pending)
        except (ClientError, BotoCoreError) as exc:
            raise error("BatchGetItem", exc) from exc
        for table, items in answer.get("Responses", {}).items():
            found.setdefault(table, []).extend(items)
        pending = dict(answer.get("UnprocessedKeys") or {})
        if not pending:
            return found
    raise StorageError(
        f"DynamoDB BatchGetItem left keys unprocessed after {BATCH_GET_ATTEMPTS} attempts"
    )
