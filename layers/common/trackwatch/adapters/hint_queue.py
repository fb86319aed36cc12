"""HintQueue in SQS: change hints go in (the feed poller, the webhook receiver) and come
out a window at a time (the coalescer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from trackwatch.errors import StorageError
from trackwatch.models.hints import HintBatch, QueuedMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

_BATCH = 10
_ATTEMPTS = 3


class HintQueue:
    """Implements trackwatch.ports.HintSink and trackwatch.ports.HintSource."""

    def __init__(self, queue_url: str, client: SQSClient, *, wait_s: int = 1) -> None:
        self._url = queue_url
        self._client = client
        #: Long polling asks every SQS server, so an empty answer means an empty queue; a
        #: short poll samples some of them and may answer empty while messages wait.
        self._wait_s = wait_s

    def send(self, batches: Sequence[HintBatch]) -> None:
        """SendMessageBatch, ten messages a request; failed entries retried, then StorageError."""
        for start in range(0, len(batches), _BATCH):
            pending: dict[str, Any] = {
                str(i): {"Id": str(i), "MessageBody": batch.model_dump_json()}
                for i, batch in enumerate(batches[start : start + _BATCH])
            }
            last_error: Exception | None = None
            for _attempt in range(_ATTEMPTS):
                try:
                    answer = self._client.send_message_batch(
                        QueueUrl=self._url, Entries=list(pending.values())
                    )
                except (ClientError, BotoCoreError) as exc:
                    last_error = exc
                    continue
                pending = {f["Id"]: pending[f["Id"]] for f in answer.get("Failed", [])}
                if not pending:
                    break
            else:
                raise StorageError(
                    f"{len(pending)} hint messages not sent to HintQueue after {_ATTEMPTS} attempts"
                ) from last_error

    def receive(self, max_messages: int) -> list[QueuedMessage]:
        """One ReceiveMessage of up to ten messages."""
        try:
            answer = self._client.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=max(1, min(_BATCH, max_messages)),
                WaitTimeSeconds=self._wait_s,
            )
        except (ClientError, BotoCoreError) as exc:
            raise StorageError("SQS ReceiveMessage on HintQueue failed") from exc
        return [
            QueuedMessage(
                message_id=m["MessageId"], receipt=m["ReceiptHandle"], body=m.get("Body", "")
            )
            for m in answer.get("Messages", [])
        ]

    def delete(self, messages: Sequence[QueuedMessage]) -> None:
        """DeleteMessageBatch, ten at a time; entries that fail are retried, then StorageError.

        A message left undeleted comes back after the visibility timeout: a hint polled
        twice, never a change lost.
        """
        for start in range(0, len(messages), _BATCH):
            pending: dict[str, Any] = {
                str(i): {"Id": str(i), "ReceiptHandle": m.receipt}
                for i, m in enumerate(messages[start : start + _BATCH])
            }
            for _attempt in range(_ATTEMPTS):
                try:
                    answer = self._client.delete_message_batch(
                        QueueUrl=self._url, Entries=list(pending.values())
                    )
                except (ClientError, BotoCoreError) as exc:
                    raise StorageError("SQS DeleteMessageBatch on HintQueue failed") from exc
                pending = {f["Id"]: pending[f["Id"]] for f in answer.get("Failed", [])}
                if not pending:
                    break
            else:
                raise StorageError(f"{len(pending)} hint messages not deleted from HintQueue")
