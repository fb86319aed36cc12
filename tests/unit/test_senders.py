"""The senders against the real service models (stubbed clients validate every parameter), and
each provider error code mapped to whose fault it is: the recipient's, ours or transient."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from trackwatch.adapters import provider_faults
from trackwatch.adapters.provider_faults import Fault
from trackwatch.adapters.senders import (
    EndUserMessagingSmsSender,
    SesEmailSender,
    SnsSmsSender,
    WhatsAppSender,
    whatsapp_payload,
)
from trackwatch.errors import (
    ConfigurationError,
    ProviderRejectedError,
    ProviderUnavailableError,
    RecipientRejectedError,
)
from trackwatch.models.notification import Message, WhatsAppTemplate

ENTITY_ID = "1101234567890123456"
ORIGINATION = "TRKWCH"
PHONE_NUMBER_ID = "phone-number-id-0123456789abcdef0123456789abcdef"
ERROR_FOR = {
    Fault.RECIPIENT: RecipientRejectedError,
    Fault.OURS: ProviderRejectedError,
    Fault.TRANSIENT: ProviderUnavailableError,
}


@cache
def offline_client(service: str) -> Any:
    """A client with static credentials: a stubbed client must not look for real ones
    (that lookup is a network call). One per service: each test stubs it afresh."""
    return boto3.session.Session(
        region_name="ap-south-1", aws_access_key_id="unit", aws_secret_access_key="unit"
    ).client(service)  # type: ignore[call-overload]


def sms(to: str = "+919876543210") -> Message:
    return Message(
        channel="sms",
        to=to,
        body="Your order ORD-1042 is out for delivery today with Delhivery.",
        event_id="e-1",
        kind="out_for_delivery",
        dlt_template_id="1107161234501000002",
        encoding="gsm7",
        segments=1,
    )


WHATSAPP = Message(
    channel="whatsapp",
    to="+919876543210",
    body="Your order ORD-1042 is out for delivery",
    event_id="e-1",
    kind="out_for_delivery",
    language="hi",
    whatsapp=WhatsAppTemplate(
        name="trackwatch_out_for_delivery",
        language_code="hi",
        parameters=("ORD-1042", "Delhivery"),
    ),
)
MAIL = Message(
    channel="email",
    to="priya@example.in",
    subject="Your order",
    body="Body ₹ हिंदी\n",
    event_id="e-1",
)


def modelled_errors(service: str, operation: str) -> set[str]:
    """The error codes botocore's model declares for one operation."""
    model = (
        boto3.session.Session()
        .client(  # type: ignore[call-overload]
            service,
            region_name="ap-south-1",
            aws_access_key_id="unit",
            aws_secret_access_key="unit",
        )
        .meta.service_model
    )
    shapes = model.operation_model(operation).error_shapes
    return {shape.metadata.get("error", {}).get("code", shape.name) for shape in shapes}


# --------------------------------------------------------------------------- request shapes


def test_an_sms_to_india_carries_the_dlt_ids_end_user_messaging_expects() -> None:
    # Given
    client = offline_client("pinpoint-sms-voice-v2")
    sender = EndUserMessagingSmsSender(
        origination_identity=ORIGINATION, entity_id=ENTITY_ID, client=client
    )
    expected = {
        "DestinationPhoneNumber": "+919876543210",
        "OriginationIdentity": ORIGINATION,
        "MessageBody": sms().body,
        "MessageType": "TRANSACTIONAL",
        "Context": {"event_id": "e-1", "kind": "out_for_delivery"},
        "DestinationCountryParameters": {
            "IN_ENTITY_ID": ENTITY_ID,
            "IN_TEMPLATE_ID": "1107161234501000002",
        },
    }

    # When / Then: the stub checks the parameters against the service model, and ours
    with Stubber(client) as stubber:
        stubber.add_response("send_text_message", {"MessageId": "m-1"}, expected)
        assert sender.send(sms()) == "m-1"
        stubber.assert_no_pending_responses()


def test_an_sms_elsewhere_carries_no_dlt_ids() -> None:
    client = offline_client("pinpoint-sms-voice-v2")
    sender = EndUserMessagingSmsSender(
        origination_identity=ORIGINATION, entity_id=ENTITY_ID, client=client
    )
    message = sms(to="+447700900123")
    expected = {
        "DestinationPhoneNumber": "+447700900123",
        "OriginationIdentity": ORIGINATION,
        "MessageBody": message.body,
        "MessageType": "TRANSACTIONAL",
        "Context": {"event_id": "e-1", "kind": "out_for_delivery"},
    }
    with Stubber(client) as stubber:
        stubber.add_response("send_text_message", {"MessageId": "m-2"}, expected)
        assert sender.send(message) == "m-2"


def test_an_sms_to_india_without_an_entity_id_is_refused_before_sending() -> None:
    sender = EndUserMessagingSmsSender(
        origination_identity=ORIGINATION,
        entity_id=None,
        client=offline_client("pinpoint-sms-voice-v2"),
    )
    with pytest.raises(ConfigurationError, match="DLT_ENTITY_ID"):
        sender.send(sms())


def test_sns_sms_to_india_carries_the_dlt_message_attributes() -> None:
    client = offline_client("sns")
    sender = SnsSmsSender(sender_id=ORIGINATION, entity_id=ENTITY_ID, client=client)
    expected = {
        "PhoneNumber": "+919876543210",
        "Message": sms().body,
        "MessageAttributes": {
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
            "AWS.SNS.SMS.SenderID": {"DataType": "String", "StringValue": ORIGINATION},
            "AWS.MM.SMS.EntityId": {"DataType": "String", "StringValue": ENTITY_ID},
            "AWS.MM.SMS.TemplateId": {
                "DataType": "String",
                "StringValue": "1107161234501000002",
            },
        },
    }
    with Stubber(client) as stubber:
        stubber.add_response("publish", {"MessageId": "s-1"}, expected)
        assert sender.send(sms()) == "s-1"


def test_a_whatsapp_template_message_is_what_meta_expects() -> None:
    # Given
    client = offline_client("socialmessaging")
    sender = WhatsAppSender(
        phone_number_id=PHONE_NUMBER_ID, meta_api_version="v20.0", client=client
    )
    payload = whatsapp_payload(WHATSAPP)

    # Then the Cloud API message: a template in Hindi, its parameters in order, our callback
    assert payload == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+919876543210",
        "type": "template",
        "template": {
            "name": "trackwatch_out_for_delivery",
            "language": {"code": "hi"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "ORD-1042"},
                        {"type": "text", "text": "Delhivery"},
                    ],
                }
            ],
        },
        "biz_opaque_callback_data": "trackwatch:e-1",
    }

    # And End User Messaging Social gets it as bytes, with the phone number id and version
    expected = {
        "originationPhoneNumberId": PHONE_NUMBER_ID,
        "message": json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        "metaApiVersion": "v20.0",
    }
    with Stubber(client) as stubber:
        stubber.add_response("send_whatsapp_message", {"messageId": "w-1"}, expected)
        assert sender.send(WHATSAPP) == "w-1"


def test_ses_sends_text_in_utf_8() -> None:
    client = offline_client("ses")
    expected = {
        "Source": "shop@example.com",
        "Destination": {"ToAddresses": [MAIL.to]},
        "Message": {
            "Subject": {"Data": "Your order", "Charset": "UTF-8"},
            "Body": {"Text": {"Data": MAIL.body, "Charset": "UTF-8"}},
        },
    }
    with Stubber(client) as stubber:
        stubber.add_response("send_email", {"MessageId": "x"}, expected)
        assert SesEmailSender(source="shop@example.com", client=client).send(MAIL) == "x"


# --------------------------------------------------------------------------- error codes


@pytest.mark.parametrize(
    ("service", "operation", "table"),
    [
        ("sns", "Publish", provider_faults.SNS_PUBLISH),
        ("ses", "SendEmail", provider_faults.SES_SEND_EMAIL),
        ("pinpoint-sms-voice-v2", "SendTextMessage", provider_faults.SMS_VOICE_SEND_TEXT),
        ("socialmessaging", "SendWhatsAppMessage", provider_faults.SOCIAL_SEND_WHATSAPP),
    ],
)
def test_every_modelled_error_has_a_decision(
    service: str, operation: str, table: Mapping[str, Fault]
) -> None:
    # Given the errors botocore's model declares for the operation
    declared = modelled_errors(service, operation)

    # Then each is in the table: a new one fails here until someone decides whose fault it is
    assert declared - set(table) == set()


def _raises(stubber: Stubber, method: str, code: str, **fields: Any) -> None:
    stubber.add_client_error(
        method,
        service_error_code=code,
        service_message="Invalid parameter: PhoneNumber +919876543210 is not valid",
        modeled_fields=fields or None,
    )


@pytest.mark.parametrize(("code", "fault"), sorted(provider_faults.SNS_PUBLISH.items()))
def test_each_sns_error_is_the_right_fault(code: str, fault: Fault) -> None:
    # Given SNS answering with `code` (and prose quoting the number)
    client = offline_client("sns")
    sender = SnsSmsSender(entity_id=ENTITY_ID, client=client)
    with Stubber(client) as stubber:
        _raises(stubber, "publish", code)
        with pytest.raises(ERROR_FOR[fault]) as raised:
            sender.send(sms())

    # Then typed by whose fault it is, and the provider's text (with the number) dropped
    assert "+919876543210" not in str(raised.value)


def test_sns_invalid_parameter_is_not_blamed_on_the_number() -> None:
    # SNS answers InvalidParameter for a message too long as for a number it will not take:
    # it must not disable SMS for the shipment for good.
    assert provider_faults.SNS_PUBLISH["InvalidParameter"] is Fault.OURS


@pytest.mark.parametrize(("code", "fault"), sorted(provider_faults.SES_SEND_EMAIL.items()))
def test_each_ses_error_is_the_right_fault(code: str, fault: Fault) -> None:
    client = offline_client("ses")
    sender = SesEmailSender(source="shop@example.com", client=client)
    with Stubber(client) as stubber:
        _raises(stubber, "send_email", code)
        with pytest.raises(ERROR_FOR[fault]) as raised:
            sender.send(MAIL)
    assert MAIL.to not in str(raised.value)


@pytest.mark.parametrize(
    ("code", "fields", "fault"),
    [
        ("ThrottlingException", {}, Fault.TRANSIENT),
        ("InternalServerException", {"RequestId": "r"}, Fault.TRANSIENT),
        ("AccessDeniedException", {"Reason": "ACCOUNT_DISABLED"}, Fault.OURS),
        ("AccessDeniedException", {"Reason": "INSUFFICIENT_ACCOUNT_REPUTATION"}, Fault.OURS),
        (
            "ServiceQuotaExceededException",
            {"Reason": "MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT"},
            Fault.OURS,
        ),
        ("ResourceNotFoundException", {"ResourceType": "sender-id", "ResourceId": "x"}, Fault.OURS),
        (
            "ConflictException",
            {"Reason": "DESTINATION_PHONE_NUMBER_OPTED_OUT", "ResourceType": "opted-out-number"},
            Fault.RECIPIENT,
        ),
        ("ConflictException", {"Reason": "DESTINATION_PHONE_NUMBER_NOT_VERIFIED"}, Fault.OURS),
        ("ConflictException", {"Reason": "RESOURCE_NOT_ACTIVE"}, Fault.OURS),
        (
            "ValidationException",
            {
                "Reason": "INVALID_PARAMETER",
                "Fields": [{"Name": "DestinationPhoneNumber", "Message": "invalid"}],
            },
            Fault.RECIPIENT,
        ),
        ("ValidationException", {"Reason": "SENDER_ID_NOT_REGISTERED"}, Fault.OURS),
        ("ValidationException", {"Reason": "INVALID_IDENTITY_FOR_DESTINATION_COUNTRY"}, Fault.OURS),
        ("ValidationException", {"Reason": "DESTINATION_COUNTRY_BLOCKED"}, Fault.OURS),
        ("ValidationException", {"Reason": "MAXIMUM_SIZE_EXCEEDED"}, Fault.OURS),
        (
            "ValidationException",
            {
                "Reason": "FIELD_VALIDATION_FAILED",
                "Fields": [{"Name": "MessageBody", "Message": "x"}],
            },
            Fault.OURS,
        ),
    ],
)
def test_each_end_user_messaging_sms_error_is_the_right_fault(
    code: str, fields: dict[str, Any], fault: Fault
) -> None:
    # Given End User Messaging answering with `code`, its structured Reason and Fields
    client = offline_client("pinpoint-sms-voice-v2")
    sender = EndUserMessagingSmsSender(
        origination_identity=ORIGINATION, entity_id=ENTITY_ID, client=client
    )

    # When / Then
    with Stubber(client) as stubber:
        _raises(stubber, "send_text_message", code, **fields)
        with pytest.raises(ERROR_FOR[fault]) as raised:
            sender.send(sms())
    assert "+919876543210" not in str(raised.value)


@pytest.mark.parametrize(("code", "fault"), sorted(provider_faults.SOCIAL_SEND_WHATSAPP.items()))
def test_each_whatsapp_error_is_the_right_fault(code: str, fault: Fault) -> None:
    client = offline_client("socialmessaging")
    sender = WhatsAppSender(
        phone_number_id=PHONE_NUMBER_ID, meta_api_version="v20.0", client=client
    )
    with Stubber(client) as stubber:
        _raises(stubber, "send_whatsapp_message", code)
        with pytest.raises(ERROR_FOR[fault]):
            sender.send(WHATSAPP)


@pytest.mark.parametrize(("code", "fault"), sorted(provider_faults.COMMON.items()))
def test_each_common_aws_error_is_the_right_fault(code: str, fault: Fault) -> None:
    assert provider_faults.fault_of({}, code) is fault


def test_an_unknown_code_is_transient_never_the_recipients() -> None:
    assert provider_faults.fault_of(provider_faults.SNS_PUBLISH, "SomethingNew") is Fault.TRANSIENT
