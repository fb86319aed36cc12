"""The SNS and SES senders: provider errors become typed errors (stubbed clients)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from trackwatch.adapters.senders import SesEmailSender, SnsSmsSender
from trackwatch.errors import ProviderUnavailableError, RecipientRejectedError
from trackwatch.models.notification import Message


def offline_client(service: str) -> Any:
    """A client with static credentials: a stubbed client must not look for real ones
    (that lookup is a network call)."""
    return boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="unit", aws_secret_access_key="unit"
    ).client(service)  # type: ignore[call-overload]


SMS = Message(channel="sms", to="+919876543210", body="Hello", event_id="e-1")
MAIL = Message(
    channel="email",
    to="priya@example.in",
    subject="Your order",
    body="Body ₹ हिंदी\n",
    event_id="e-1",
)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("Throttling", ProviderUnavailableError),
        ("InternalError", ProviderUnavailableError),
        ("InvalidParameter", RecipientRejectedError),
    ],
)
def test_sns_errors_are_typed(code: str, error: type[Exception]) -> None:
    # Given
    client = offline_client("sns")
    stubber = Stubber(client)
    stubber.add_client_error("publish", service_error_code=code, service_message=f"bad {SMS.to}")

    # When / Then: typed, and the provider's text (which may quote the number) is dropped
    with stubber, pytest.raises(error) as raised:
        SnsSmsSender(client=client).send(SMS)
    assert SMS.to not in str(raised.value)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("Throttling", ProviderUnavailableError),
        ("MessageRejected", RecipientRejectedError),
        ("InvalidParameterValue", RecipientRejectedError),
    ],
)
def test_ses_errors_are_typed(code: str, error: type[Exception]) -> None:
    client = offline_client("ses")
    stubber = Stubber(client)
    stubber.add_client_error(
        "send_email", service_error_code=code, service_message=f"bad {MAIL.to}"
    )
    with stubber, pytest.raises(error) as raised:
        SesEmailSender(source="shop@example.com", client=client).send(MAIL)
    assert MAIL.to not in str(raised.value)
