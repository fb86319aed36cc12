"""The providers that deliver messages: SNS for SMS, SES or an SMTP relay for e-mail.

Each implements trackwatch.ports.Sender and turns its provider's failures into
ProviderUnavailableError (retry later) or RecipientRejectedError (the address is
bad: record it, do not retry). Provider error messages can quote the address, so
only error codes are carried over, never the text.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from trackwatch.errors import (
    ConfigurationError,
    ProviderUnavailableError,
    RecipientRejectedError,
)
from trackwatch.models.notification import Message

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from mypy_boto3_ses import SESClient
    from mypy_boto3_sns import SNSClient

# SNS answers InvalidParameter for a number it cannot send to (we check the format first).
_SNS_REJECTS = frozenset({"InvalidParameter", "InvalidParameterValue"})
_SES_REJECTS = frozenset({"MessageRejected", "InvalidParameterValue"})


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


class SnsSmsSender:
    """SMS through SNS Publish to a phone number (E.164)."""

    def __init__(
        self,
        *,
        sms_type: str = "Transactional",
        sender_id: str | None = None,
        client: SNSClient,
    ) -> None:
        self._client = client
        self._attributes: dict[str, Any] = {
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": sms_type}
        }
        if sender_id:
            self._attributes["AWS.SNS.SMS.SenderID"] = {
                "DataType": "String",
                "StringValue": sender_id,
            }

    def send(self, message: Message) -> None:
        """Publish the SMS, or raise a NotificationProviderError."""
        client = self._client
        try:
            client.publish(
                PhoneNumber=message.to, Message=message.body, MessageAttributes=self._attributes
            )
        except ClientError as exc:
            code = _code(exc)
            if code in _SNS_REJECTS:
                raise RecipientRejectedError(f"sns_{code}") from None
            raise ProviderUnavailableError(f"SNS Publish failed: {code}") from None
        except BotoCoreError as exc:
            raise ProviderUnavailableError(f"SNS Publish failed: {type(exc).__name__}") from None


class SesEmailSender:
    """E-mail through SES SendEmail (text body, UTF-8)."""

    def __init__(
        self,
        *,
        source: str,
        configuration_set: str | None = None,
        client: SESClient,
    ) -> None:
        self._source = source
        self._configuration_set = configuration_set
        self._client = client

    def send(self, message: Message) -> None:
        """Send the e-mail, or raise a NotificationProviderError."""
        client = self._client
        extra: dict[str, Any] = {}
        if self._configuration_set:
            extra["ConfigurationSetName"] = self._configuration_set
        try:
            client.send_email(
                Source=self._source,
                Destination={"ToAddresses": [message.to]},
                Message={
                    "Subject": {"Data": message.subject or "", "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": message.body, "Charset": "UTF-8"}},
                },
                **extra,
            )
        except ClientError as exc:
            code = _code(exc)
            if code in _SES_REJECTS:
                raise RecipientRejectedError(f"ses_{code}") from None
            raise ProviderUnavailableError(f"SES SendEmail failed: {code}") from None
        except BotoCoreError as exc:
            raise ProviderUnavailableError(f"SES SendEmail failed: {type(exc).__name__}") from None


class SmtpCredentials:
    """A username and password for the relay (never logged)."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password

    def __repr__(self) -> str:
        return "SmtpCredentials(***)"


def smtp_credentials(secrets: SecretsProvider, name: str) -> SmtpCredentials | None:
    """The relay's login from the secret `name` ({"username", "password"}); None for an
    open relay (an empty username)."""
    secret = secrets.get(name, transform="json", max_age=300)
    if not isinstance(secret, dict) or not {"username", "password"} <= secret.keys():
        raise ConfigurationError(f"secret {name} must hold username and password")
    if not secret["username"]:
        return None
    return SmtpCredentials(str(secret["username"]), str(secret["password"]))


class SmtpEmailSender:
    """E-mail through an SMTP relay: the local runtime's server, or a self-hosted user's own."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        starttls: bool = True,
        credentials: Callable[[], SmtpCredentials | None] = lambda: None,
        timeout_s: float = 10.0,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._starttls = starttls
        self._credentials = credentials
        self._timeout_s = timeout_s

    def send(self, message: Message) -> None:
        """Deliver the e-mail to the relay, or raise a NotificationProviderError."""
        email = EmailMessage()
        email["From"] = self._sender
        email["To"] = message.to
        email["Subject"] = message.subject or ""
        email["Message-ID"] = make_msgid(idstring=message.event_id.replace("-", ""))
        email["X-Trackwatch-Event-Id"] = message.event_id
        email.set_content(message.body, charset="utf-8")
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout_s) as smtp:
                if self._starttls:
                    smtp.starttls(context=ssl.create_default_context())
                credentials = self._credentials()
                if credentials is not None:
                    smtp.login(credentials.username, credentials.password)
                smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            if any(code >= 500 for code in codes):
                raise RecipientRejectedError(f"smtp_{codes[-1]}") from None
            raise ProviderUnavailableError(f"SMTP refused the recipient: {codes}") from None
        except smtplib.SMTPResponseException as exc:
            raise ProviderUnavailableError(f"SMTP error {exc.smtp_code}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise ProviderUnavailableError(f"SMTP failed: {type(exc).__name__}") from None
