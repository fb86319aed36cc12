"""The change feed's state in DynamoDB: one small item, written by the feed poller after
each window it reads, read by the dispatcher every minute."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from trackwatch.errors import StorageError
from trackwatch.models.change_feed import FeedState

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: The item's key: one feed per account (and stack).
FEED_ITEM = "updated-order"


class FeedStateTable:
    """Implements trackwatch.ports.FeedStateStore."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self._table = table_name
        self._client = client

    def load(self) -> FeedState | None:
        """The state (eventually consistent: a minute-old reading is good enough)."""
        try:
            answer = self._client.get_item(TableName=self._table, Key={"pk": {"S": FEED_ITEM}})
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"DynamoDB GetItem on the feed state failed: {_code(exc)}") from exc
        item = answer.get("Item")
        if not item or "state" not in item:
            return None
        try:
            return FeedState.model_validate_json(item["state"]["S"])
        except ValidationError:
            # A state this code cannot read is no state: the next run starts afresh.
            return None

    def save(self, state: FeedState) -> None:
        """PutItem of the whole (small) state."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={"pk": {"S": FEED_ITEM}, "state": {"S": state.model_dump_json()}},
            )
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"DynamoDB PutItem on the feed state failed: {_code(exc)}") from exc


def _code(exc: Exception) -> str:
    return exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
