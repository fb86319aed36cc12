"""The learned delay thresholds in DynamoDB: one small item, replaced by each daily run.

Item layout: ``pk`` "current"; ``table`` (B): the ThresholdTable as JSON, zlib-compressed
(a few hundred rows: carriers by statuses); ``computed_at`` (S), for a human reading the
console. Pollers read it with one GetItem per container and refresh period.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from trackwatch.errors import StorageError
from trackwatch.models.delays import ThresholdTable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_KEY = {"pk": {"S": "current"}}


def _failed(action: str, exc: Exception) -> StorageError:
    code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
    return StorageError(f"DynamoDB {action} of the delay thresholds failed: {code}")


class ThresholdsTable:
    """Implements trackwatch.ports.ThresholdStore."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self._table = table_name
        self._client = client

    def load(self) -> ThresholdTable | None:
        """The latest table; None before the first run (or if what is stored does not read)."""
        try:
            answer = self._client.get_item(TableName=self._table, Key=_KEY)
        except (ClientError, BotoCoreError) as exc:
            raise _failed("GetItem", exc) from exc
        item = answer.get("Item")
        if item is None:
            return None
        try:
            return ThresholdTable.model_validate_json(zlib.decompress(item["table"]["B"]))
        except (KeyError, zlib.error, ValidationError) as exc:
            raise StorageError(f"the stored delay thresholds do not read: {exc}") from exc

    def save(self, table: ThresholdTable) -> None:
        """Replace the table (PutItem)."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    **_KEY,
                    "table": {"B": zlib.compress(table.model_dump_json().encode())},
                    "computed_at": {"S": table.computed_at.isoformat()},
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise _failed("PutItem", exc) from exc
