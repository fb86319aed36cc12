"""Sending input that cannot be accepted to a dead-letter queue, with the reason."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from trackwatch.errors import StorageError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

#: SQS message attribute values are capped at 256 KB with the body; keep reasons short.
_MAX_REASON = 1000
#: SQS's limit is 256 KiB for the body and attributes together.
_MAX_BODY_BYTES = 250 * 1024
#: The characters SQS refuses in a message (XML 1.0's excluded ones).
_REFUSED = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _sqs_safe(text: str) -> str:
    return _REFUSED.sub("\ufffd", text)


class RejectQueue:
    """Implements trackwatch.ports.RejectSink on an SQS queue."""

    def __init__(self, queue_url: str, client: SQSClient) -> None:
        self._url = queue_url
        self._client = client

    def reject(self, body: str, reason: str) -> None:
        """Send `body` as it came, the reason as the `rejected_because` attribute.

        A body SQS cannot carry as it is (characters it refuses, such as NUL or a lone
        surrogate) is sent as a JSON string, and says so (`body_encoding`); one over SQS's
        size limit keeps its start, and says how long it was.
        """
        attributes: dict[str, Any] = {
            "rejected_because": {
                "DataType": "String",
                "StringValue": _sqs_safe(reason[:_MAX_REASON]) or "unknown",
            }
        }
        text = body or "(empty)"
        if _sqs_safe(text) != text:
            text = json.dumps(text)
            attributes["body_encoding"] = {"DataType": "String", "StringValue": "json-string"}
        if len(text.encode()) > _MAX_BODY_BYTES:
            attributes["body_length"] = {"DataType": "Number", "StringValue": str(len(text))}
            text = text.encode()[:_MAX_BODY_BYTES].decode(errors="ignore")
        try:
            self._client.send_message(
                QueueUrl=self._url, MessageBody=text, MessageAttributes=attributes
            )
        except (ClientError, BotoCoreError) as exc:
            raise StorageError("SQS SendMessage to the dead-letter queue failed") from exc
