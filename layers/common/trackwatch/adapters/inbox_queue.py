"""Draining a queue of events with ReceiveMessage and DeleteMessageBatch (the operations
digest's queue: a scheduled job reads what collected since its last run)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from trackwatch.errors import StorageError
from trackwatch.models.events import EVENT_ADAPTER
from trackwatch.models.messages import InboxMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import DeleteMessageBatchRequestEntryTypeDef

_BATCH = 10


class InboxQueue:
    """Implements trackwatch.ports.Inbox over one SQS queue (raw SNS deliveries)."""

    def __init__(
        self,
        queue_url: str,
        client: SQSClient,
        *,
        max_messages: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = queue_url
        self._client = client
        self._max = max_messages
        self._monotonic = monotonic

    def receive(self, deadline: float | None = None) -> list[InboxMessage]:
        """Receive until an empty answer, `max_messages`, or `deadline`. Messages stay
        invisible for the queue's visibility timeout: delete them once dealt with."""
        received: list[InboxMessage] = []
        while len(received) < self._max:
            if deadline is not None and self._monotonic() >= deadline:
                break
            try:
                answer = self._client.receive_message(
                    QueueUrl=self._url,
                    MaxNumberOfMessages=_BATCH,
                    # A short wait: an empty answer means the queue is (nearly) drained.
                    WaitTimeSeconds=1,
                )
            except (ClientError, BotoCoreError) as exc:
                code = (
                    exc.response["Error"]["Code"]
                    if isinstance(exc, ClientError)
                    else type(exc).__name__
                )
                raise StorageError(f"SQS ReceiveMessage failed: {code}") from exc
            messages = answer.get("Messages", [])
            if not messages:
                break
            for message in messages:
                try:
                    event = EVENT_ADAPTER.validate_json(message["Body"])
                except ValidationError:
                    event = None
                received.append(InboxMessage(receipt=message["ReceiptHandle"], event=event))
        return received

    def delete(self, receipts: Sequence[str]) -> None:
        """DeleteMessageBatch, ten at a time; a failed entry raises StorageError."""
        for start in range(0, len(receipts), _BATCH):
            entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
                {"Id": str(i), "ReceiptHandle": receipt}
                for i, receipt in enumerate(receipts[start : start + _BATCH])
            ]
            try:
                answer = self._client.delete_message_batch(QueueUrl=self._url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                code = (
                    exc.response["Error"]["Code"]
                    if isinstance(exc, ClientError)
                    else type(exc).__name__
                )
                raise StorageError(f"SQS DeleteMessageBatch failed: {code}") from exc
            if answer.get("Failed"):
                raise StorageError(f"SQS could not delete {len(answer['Failed'])} messages")
