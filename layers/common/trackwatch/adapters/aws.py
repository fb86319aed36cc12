"""boto3 clients, built once per process on first use (never at import time)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ses import SESClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

# Standard retry mode backs off on throttling; a few attempts keep a Lambda
# inside its timeout while riding out a short burst.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=32)


@lru_cache(maxsize=1)
def dynamodb() -> DynamoDBClient:
    """The DynamoDB client."""
    return boto3.client("dynamodb", config=_CONFIG)


@lru_cache(maxsize=1)
def sqs() -> SQSClient:
    """The SQS client."""
    return boto3.client("sqs", config=_CONFIG)


@lru_cache(maxsize=1)
def sns() -> SNSClient:
    """The SNS client."""
    return boto3.client("sns", config=_CONFIG)


@lru_cache(maxsize=1)
def ses() -> SESClient:
    """The SES client."""
    return boto3.client("ses", config=_CONFIG)


def reset() -> None:
    """Forget every client (tests and the local runtime switch endpoints)."""
    for factory in (dynamodb, sqs, sns, ses):
        factory.cache_clear()
