"""Holding a message back for quiet hours: a delayed copy sent to the notifier's own queue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from trackwatch.errors import StorageError
from trackwatch.models.events import EVENT_ADAPTER
from trackwatch.models.notification import NOT_BEFORE_ATTRIBUTE, Deferral, NotificationRequest

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class NotifyQueue:
    """Implements trackwatch.ports.Deferrer on SQS SendMessage with DelaySeconds."""

    def __init__(self, queue_url: str, client: SQSClient) -> None:
        self._url = queue_url
        self._client = client

    def defer(self, request: NotificationRequest, deferral: Deferral) -> None:
        """Send the event back to the queue, invisible for `deferral.delay_s`, marked not_before."""
        client = self._client
        attributes: dict[str, Any] = {
            name: {"DataType": data_type, "StringValue": value}
            for name, (data_type, value) in request.attributes.items()
            if name != NOT_BEFORE_ATTRIBUTE
        }
        attributes[NOT_BEFORE_ATTRIBUTE] = {
            "DataType": "String",
            "StringValue": deferral.not_before.isoformat(),
        }
        try:
            client.send_message(
                QueueUrl=self._url,
                MessageBody=EVENT_ADAPTER.dump_json(request.event).decode(),
                DelaySeconds=deferral.delay_s,
                MessageAttributes=attributes,
            )
        except ClientError as exc:
            raise StorageError(f"SQS SendMessage failed: {exc.response['Error']['Code']}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"SQS SendMessage failed: {type(exc).__name__}") from exc
