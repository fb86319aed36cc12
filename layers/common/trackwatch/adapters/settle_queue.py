"""The roll-up's settle ticks: a delayed message on its own queue for each window to close."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from trackwatch.errors import StorageError
from trackwatch.logic.pacing import MAX_SQS_DELAY_S
from trackwatch.models.orders import SettleRequest

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


def delay_until(at: datetime, now: datetime) -> int:
    """SQS's DelaySeconds towards `at`: at most its 15 minutes (the roll-up asks again for
    the rest), and at least a second, so that a tick that came early never spins."""
    return max(1, min(MAX_SQS_DELAY_S, math.ceil((at - now).total_seconds())))


class SettleQueue:
    """Implements trackwatch.ports.SettleScheduler on SQS SendMessage with DelaySeconds."""

    def __init__(self, queue_url: str, client: SQSClient, clock: Callable[[], datetime]) -> None:
        self._url = queue_url
        self._client = client
        self._clock = clock

    def schedule(self, order_id: str, at: datetime) -> None:
        """Send the order's settle request, invisible until `at` (or SQS's longest delay)."""
        try:
            self._client.send_message(
                QueueUrl=self._url,
                MessageBody=SettleRequest(order_id=order_id, settle_at=at).model_dump_json(),
                DelaySeconds=delay_until(at, self._clock()),
            )
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            raise StorageError(f"SQS SendMessage of a settle tick failed: {code}") from exc
        except BotoCoreError as exc:
            raise StorageError(
                f"SQS SendMessage of a settle tick failed: {type(exc).__name__}"
            ) from exc
