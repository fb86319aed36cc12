"""Sending input that cannot be accepted to a dead-letter queue, with the reason."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from trackwatch.errors import StorageError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

#: SQS message attribute values are capped at 256 KB with the body; keep reasons short.
_MAX_REASON = 1000


class RejectQueue:
    """Implements trackwatch.ports.RejectSink on an SQS queue."""

    def __init__(self, queue_url: str, client: SQSClient) -> None:
        self._url = queue_url
        self._client = client

    def reject(self, body: str, reason: str) -> None:
        """Send `body` as it came, the reason as the `rejected_because` attribute."""
        client = self._client
        try:
            client.send_message(
                QueueUrl=self._url,
                MessageBody=body or "(empty)",
                MessageAttributes={
                    "rejected_because": {
                        "DataType": "String",
                        "StringValue": reason[:_MAX_REASON] or "unknown",
                    }
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise StorageError("SQS SendMessage to the dead-letter queue failed") from exc
