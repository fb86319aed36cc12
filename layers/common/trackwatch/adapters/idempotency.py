"""Exactly one message per event and channel: powertools Idempotency on DynamoDB.

The record is keyed on event_id + channel (not on the function's name, so renaming
a function does not forget what was sent). Only an action that returns is recorded:
one that raises (a provider error) leaves no record, so the event is retried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from trackwatch.errors import StaleStateError
from trackwatch.models.notification import Channel

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

KEY_PREFIX = "notify"


class IdempotencyGuard:
    """Implements trackwatch.ports.OnceGuard on an idempotency table."""

    def __init__(self, table_name: str, expires_after_s: int, client: DynamoDBClient) -> None:
        self._config = IdempotencyConfig(
            event_key_jmespath="[event_id, channel]",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=expires_after_s,
        )
        self._persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=client)

        def once(*, delivery: dict[str, str], action: Callable[[], str]) -> str:
            return action()

        # Wrapped here, not at import: the persistence layer needs settings and a client.
        self._once: Callable[..., Any] = idempotent_function(
            once,
            data_keyword_argument="delivery",
            persistence_store=self._persistence,
            config=self._config,
            key_prefix=KEY_PREFIX,
        )

    def begin(self, context: LambdaContext) -> None:
        """Let in-progress records expire with the invocation (a crashed run is retried)."""
        self._config.register_lambda_context(context)

    def once(self, event_id: str, channel: Channel, action: Callable[[], str]) -> str:
        """Run `action` unless it already completed for this event and channel; its result."""
        try:
            result: Any = self._once(
                delivery={"event_id": event_id, "channel": channel}, action=action
            )
        except IdempotencyAlreadyInProgressError as exc:
            # A twin delivery is being sent right now: come back later and find it done.
            raise StaleStateError(f"event {event_id} is being sent on {channel}") from exc
        return str(result)
