"""Sending poll requests to PollQueue with SendMessageBatch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from trackwatch.errors import StorageError
from trackwatch.models.messages import PollRequest

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

_BATCH = 10
_ATTEMPTS = 3


class PollQueue:
    """Implements trackwatch.ports.PollQueueWriter."""

    def __init__(self, queue_url: str, client: SQSClient) -> None:
        self._url = queue_url
        self._client = client

    def send(self, requests: Sequence[PollRequest]) -> None:
        """Send every request; failed entries are retried, then StorageError."""
        client = self._client
        for start in range(0, len(requests), _BATCH):
            pending: dict[str, Any] = {
                str(i): {"Id": str(i), "MessageBody": request.model_dump_json()}
                for i, request in enumerate(requests[start : start + _BATCH])
            }
            last_error: Exception | None = None
            for _attempt in range(_ATTEMPTS):
                try:
                    answer = client.send_message_batch(
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
                    f"{len(pending)} poll requests not sent to PollQueue after {_ATTEMPTS} attempts"
                ) from last_error
