"""boto3 clients for one container: built on first use (never at import), then kept.

Where the clients point is a value, not the process's environment: the local
runtime and the tests give an emulator's endpoint here, Lambda gives nothing and
boto3 reads the function's own region and role.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_pinpoint_sms_voice_v2 import PinpointSMSVoiceV2Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_ses import SESClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_socialmessaging import EndUserMessagingSocialClient
    from mypy_boto3_sqs import SQSClient

# Standard retry mode backs off on throttling; a few attempts keep a Lambda
# inside its timeout while riding out a short burst.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=32)


class AwsClients:
    """The AWS clients of one process (or one emulated function)."""

    def __init__(
        self,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self._session = boto3.session.Session(
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
        )

    @classmethod
    def emulator(cls, endpoint_url: str | None, region: str = "us-east-1") -> AwsClients:
        """Clients for an AWS emulator (moto), which takes any credentials."""
        return cls(
            region=region,
            endpoint_url=endpoint_url,
            access_key_id="local",
            secret_access_key="local",  # noqa: S106 - the emulator's, not a secret
        )

    def client(self, service: str, endpoint_url: str | None = None) -> Any:
        """A new client of any service, pointed where these clients point (or at
        `endpoint_url`)."""
        return self._session.client(  # type: ignore[call-overload]
            service, endpoint_url=endpoint_url or self.endpoint_url, config=_CONFIG
        )

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        """The DynamoDB client."""
        client: DynamoDBClient = self.client("dynamodb")
        return client

    @cached_property
    def sqs(self) -> SQSClient:
        """The SQS client."""
        client: SQSClient = self.client("sqs")
        return client

    @cached_property
    def sns(self) -> SNSClient:
        """The SNS client."""
        client: SNSClient = self.client("sns")
        return client

    @cached_property
    def ses(self) -> SESClient:
        """The SES client."""
        client: SESClient = self.client("ses")
        return client

    @cached_property
    def sms_voice(self) -> PinpointSMSVoiceV2Client:
        """The End User Messaging SMS client (pinpoint-sms-voice-v2)."""
        client: PinpointSMSVoiceV2Client = self.client("pinpoint-sms-voice-v2")
        return client

    @cached_property
    def socialmessaging(self) -> EndUserMessagingSocialClient:
        """The End User Messaging Social client (WhatsApp)."""
        client: EndUserMessagingSocialClient = self.client("socialmessaging")
        return client

    @cached_property
    def secretsmanager(self) -> SecretsManagerClient:
        """The Secrets Manager client."""
        client: SecretsManagerClient = self.client("secretsmanager")
        return client
