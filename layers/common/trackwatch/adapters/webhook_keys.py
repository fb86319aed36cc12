"""The webhook's shared key, from a Secrets Manager secret, cached.

The secret is `{"webhook_key": "...", "previous_webhook_key": "..."}`: the key set in
Clickpost's dashboard, and optionally the one before it, accepted while Clickpost's
side is being changed over. Keys are bytes here, compared in constant time by the
service, and never logged.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import (
    GetParameterError,
    TransformParameterError,
)

from trackwatch.errors import ConfigurationError

_FIELDS = ("webhook_key", "previous_webhook_key")
#: A key shorter than this is refused: it could be guessed.
MIN_KEY_LENGTH = 16


class SecretsManagerWebhookKeys:
    """Implements trackwatch.ports.WebhookKeys."""

    def __init__(
        self, secret_name: str, max_age_s: int, provider: parameters.SecretsProvider
    ) -> None:
        self.secret_name = secret_name
        self.max_age_s = max_age_s
        self._provider = provider

    def accepted(self) -> tuple[bytes, ...]:
        """The accepted keys (powertools caches the secret for `max_age_s`)."""
        name = self.secret_name
        try:
            raw = self._provider.get(name, transform="json", max_age=self.max_age_s)
        except TransformParameterError:
            raise ConfigurationError(f"secret {name!r} is not valid JSON") from None
        except GetParameterError as exc:
            raise ConfigurationError(f"cannot read secret {name!r}: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigurationError(f"secret {name!r} must be a JSON object with 'webhook_key'")
        keys = tuple(
            value.encode()
            for field in _FIELDS
            if isinstance(value := raw.get(field), str) and value
        )
        if not isinstance(raw.get("webhook_key"), str) or not keys:
            raise ConfigurationError(f"secret {name!r} lacks field 'webhook_key'")
        if any(len(key) < MIN_KEY_LENGTH for key in keys):
            raise ConfigurationError(
                f"secret {name!r}: a webhook key must be at least {MIN_KEY_LENGTH} characters"
            )
        return keys
