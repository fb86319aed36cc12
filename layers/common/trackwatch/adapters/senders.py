"""The providers that deliver messages: End User Messaging SMS (or SNS) for SMS, End User
Messaging Social for WhatsApp, SES or an SMTP relay for e-mail.

Each implements trackwatch.ports.Sender: it returns the provider's id of the message and
turns the provider's failures into the recipient's fault (RecipientRejectedError), ours
(ProviderRejectedError) or a passing one (ProviderUnavailableError), code by code
(provider_faults.py). Provider error messages can quote the address, so only codes are
carried over, never the text.

An SMS to an Indian number carries the DLT entity id and the id of the registered template
its text was made from; operators block any that does not. Numbers elsewhere get neither.
"""

from __future__ import annotations

import json
import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from trackwatch.adapters.provider_faults import (
    SES_SEND_EMAIL,
    SNS_PUBLISH,
    SOCIAL_SEND_WHATSAPP,
    code_of,
    error_for,
    fault_of,
    sms_voice_fault,
)
from trackwatch.errors import (
    ConfigurationError,
    ProviderUnavailableError,
    RecipientRejectedError,
)
from trackwatch.logic.delivery import callback_data
from trackwatch.models.notification import Message

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from mypy_boto3_pinpoint_sms_voice_v2 import PinpointSMSVoiceV2Client
    from mypy_boto3_ses import SESClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_socialmessaging import EndUserMessagingSocialClient

#: Numbers that need DLT ids: India's country code.
DLT_PREFIX = "+91"


def dlt_ids(message: Message, entity_id: str | None) -> tuple[str, str] | None:
    """(entity id, template id) for an SMS to an Indian number; None elsewhere. Without
    them an Indian operator drops the message, so their absence is a ConfigurationError."""
    if not message.to.startswith(DLT_PREFIX):
        return None
    if not entity_id:
        raise ConfigurationError("DLT_ENTITY_ID is empty: an SMS to an Indian number needs it")
    if not message.dlt_template_id:
        raise ConfigurationError(f"{message.kind}: no DLT template id for an Indian number")
    return entity_id, message.dlt_template_id


class EndUserMessagingSmsSender:
    """SMS through End User Messaging SMS (pinpoint-sms-voice-v2 SendTextMessage).

    TRANSACTIONAL, from the registered sender id (or pool), with IN_ENTITY_ID and
    IN_TEMPLATE_ID for Indian numbers. The event id and kind go as Context, which the
    service hands back in its delivery events (no personal data).
    """

    def __init__(
        self,
        *,
        origination_identity: str | None,
        entity_id: str | None,
        configuration_set: str | None = None,
        client: PinpointSMSVoiceV2Client,
    ) -> None:
        self._origination = origination_identity
        self._entity_id = entity_id
        self._configuration_set = configuration_set
        self._client = client

    def request(self, message: Message) -> dict[str, Any]:
        """The SendTextMessage parameters for `message`."""
        params: dict[str, Any] = {
            "DestinationPhoneNumber": message.to,
            "MessageBody": message.body,
            "MessageType": "TRANSACTIONAL",
            "Context": {"event_id": message.event_id, "kind": message.kind},
        }
        if self._origination:
            params["OriginationIdentity"] = self._origination
        if self._configuration_set:
            params["ConfigurationSetName"] = self._configuration_set
        ids = dlt_ids(message, self._entity_id)
        if ids is not None:
            params["DestinationCountryParameters"] = {
                "IN_ENTITY_ID": ids[0],
                "IN_TEMPLATE_ID": ids[1],
            }
        return params

    def send(self, message: Message) -> str | None:
        """Send the SMS; its message id, or a NotificationProviderError."""
        params = self.request(message)
        try:
            answer = self._client.send_text_message(**params)
        except ClientError as exc:
            raise error_for(sms_voice_fault(exc), "sms", code_of(exc)) from None
        except BotoCoreError as exc:
            raise ProviderUnavailableError(
                f"SendTextMessage failed: {type(exc).__name__}"
            ) from None
        return answer.get("MessageId")


class SnsSmsSender:
    """SMS through SNS Publish to a phone number (E.164), with the DLT message attributes
    AWS.MM.SMS.EntityId and AWS.MM.SMS.TemplateId for Indian numbers."""

    def __init__(
        self,
        *,
        sms_type: str = "Transactional",
        sender_id: str | None = None,
        entity_id: str | None = None,
        client: SNSClient,
    ) -> None:
        self._client = client
        self._entity_id = entity_id
        self._attributes: dict[str, Any] = {
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": sms_type}
        }
        if sender_id:
            self._attributes["AWS.SNS.SMS.SenderID"] = {
                "DataType": "String",
                "StringValue": sender_id,
            }

    def attributes(self, message: Message) -> dict[str, Any]:
        """The message attributes of `message`'s Publish."""
        attributes = dict(self._attributes)
        ids = dlt_ids(message, self._entity_id)
        if ids is not None:
            attributes["AWS.MM.SMS.EntityId"] = {"DataType": "String", "StringValue": ids[0]}
            attributes["AWS.MM.SMS.TemplateId"] = {"DataType": "String", "StringValue": ids[1]}
        return attributes

    def send(self, message: Message) -> str | None:
        """Publish the SMS; its message id, or a NotificationProviderError."""
        attributes = self.attributes(message)
        try:
            answer = self._client.publish(
                PhoneNumber=message.to, Message=message.body, MessageAttributes=attributes
            )
        except ClientError as exc:
            code = code_of(exc)
            raise error_for(fault_of(SNS_PUBLISH, code), "sns", code) from None
        except BotoCoreError as exc:
            raise ProviderUnavailableError(f"SNS Publish failed: {type(exc).__name__}") from None
        return answer.get("MessageId")


def whatsapp_payload(message: Message) -> dict[str, Any]:
    """The Meta Cloud API message of a template message (what `message=` carries)."""
    template = message.whatsapp
    if template is None:
        raise ConfigurationError(f"{message.kind}: a WhatsApp message needs its template")
    body: dict[str, Any] = {
        "name": template.name,
        "language": {"code": template.language_code},
    }
    if template.parameters:
        body["components"] = [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": value} for value in template.parameters],
            }
        ]
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.to,
        "type": "template",
        "template": body,
        # Meta hands this back on every status of the message: how a report finds its event.
        "biz_opaque_callback_data": callback_data(message.event_id),
    }


class WhatsAppSender:
    """WhatsApp template messages through End User Messaging Social (SendWhatsAppMessage)."""

    def __init__(
        self,
        *,
        phone_number_id: str,
        meta_api_version: str,
        client: EndUserMessagingSocialClient,
    ) -> None:
        self._phone_number_id = phone_number_id
        self._meta_api_version = meta_api_version
        self._client = client

    def send(self, message: Message) -> str | None:
        """Send the template message; its id, or a NotificationProviderError."""
        payload = json.dumps(whatsapp_payload(message), ensure_ascii=False).encode("utf-8")
        try:
            answer = self._client.send_whatsapp_message(
                originationPhoneNumberId=self._phone_number_id,
                message=payload,
                metaApiVersion=self._meta_api_version,
            )
        except ClientError as exc:
            code = code_of(exc)
            raise error_for(fault_of(SOCIAL_SEND_WHATSAPP, code), "whatsapp", code) from None
        except BotoCoreError as exc:
            raise ProviderUnavailableError(
                f"SendWhatsAppMessage failed: {type(exc).__name__}"
            ) from None
        return answer.get("messageId")


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

    def send(self, message: Message) -> str | None:
        """Send the e-mail; its message id, or a NotificationProviderError."""
        client = self._client
        extra: dict[str, Any] = {}
        if self._configuration_set:
            extra["ConfigurationSetName"] = self._configuration_set
        try:
            answer = client.send_email(
                Source=self._source,
                Destination={"ToAddresses": [message.to]},
                Message={
                    "Subject": {"Data": message.subject or "", "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": message.body, "Charset": "UTF-8"}},
                },
                **extra,
            )
        except ClientError as exc:
            code = code_of(exc)
            raise error_for(fault_of(SES_SEND_EMAIL, code), "ses", code) from None
        except BotoCoreError as exc:
            raise ProviderUnavailableError(f"SES SendEmail failed: {type(exc).__name__}") from None
        return answer.get("MessageId")


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

    def send(self, message: Message) -> str | None:
        """Deliver the e-mail to the relay; its Message-ID, or a NotificationProviderError."""
        email = EmailMessage()
        email["From"] = self._sender
        email["To"] = message.to
        email["Subject"] = message.subject or ""
        message_id = make_msgid(idstring=message.event_id.replace("-", ""))
        email["Message-ID"] = message_id
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
        return message_id
