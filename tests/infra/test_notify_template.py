"""template.yaml, the notifiers' part: their functions, queues, tables and grants.

moto deploys the queues, topics, tables and functions; what it cannot check (End User
Messaging SMS and Social have no moto backend, IAM is not enforced) is asserted from the
translated template.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.infra.test_template import (
    ACCOUNT,
    REGION,
    ROOT,
    Stack,
    Template,
    _deploy,
    _resources,
    _statements,
    _target,
)
from trackwatch_cli.cfn_template import load_template, translate

pytestmark = pytest.mark.filterwarnings(
    "ignore:Tried to parse .* but it's not supported by moto:UserWarning"
)

NOTIFIERS = {
    "NotifySmsFunction": "SmsQueue",
    "NotifyWhatsAppFunction": "WhatsAppQueue",
    "NotifyEmailFunction": "EmailQueue",
}
#: Every SQS consumer of the notifications part, with its queue.
CONSUMERS = {**NOTIFIERS, "RecordWhatsAppEventsFunction": "WhatsAppEventsQueue"}


@pytest.fixture(scope="module")
def cfn_template() -> Template:
    return translate(load_template(ROOT / "template.yaml"), REGION, ACCOUNT)


@pytest.fixture(scope="module")
def stack(cfn_template: Template) -> Iterator[Stack]:
    with mock_aws():
        yield _deploy(cfn_template)


def _role_statements(cfn_template: Template, function: str) -> list[Template]:
    role = _target(cfn_template["Resources"][function]["Properties"]["Role"])
    assert role is not None
    policies = cfn_template["Resources"][role]["Properties"]["Policies"]
    return [statement for _, statement in _statements(policies, role)]


def _actions(statement: Template) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


@pytest.mark.parametrize(("function", "queue"), CONSUMERS.items())
def test_each_notifier_consumes_its_queue_reporting_partial_failures(
    stack: Stack, function: str, queue: str
) -> None:
    # Given
    lambda_client = boto3.client("lambda", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=stack.physical_ids[queue], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]

    # When
    mappings = lambda_client.list_event_source_mappings(FunctionName=stack.physical_ids[function])[
        "EventSourceMappings"
    ]

    # Then
    (mapping,) = mappings
    assert mapping["EventSourceArn"] == queue_arn
    assert mapping["BatchSize"] == 10
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_notifiers_get_the_settings_their_handlers_read(stack: Stack) -> None:
    # Given
    lambda_client = boto3.client("lambda", region_name=REGION)
    ids = stack.physical_ids

    # When
    environment = {
        function: {
            name: str(value)
            for name, value in lambda_client.get_function_configuration(FunctionName=ids[function])[
                "Environment"
            ]["Variables"].items()
        }
        for function in NOTIFIERS
    }

    # Then
    shared = {
        "SHIPMENTS_TABLE_NAME": ids["ShipmentsTable"],
        "NOTIFICATIONS_TABLE_NAME": ids["NotificationsTable"],
        "NOTIFY_IDEMPOTENCY_TTL_HOURS": "456",
        "NOTIFY_REPEAT_WINDOW_MINUTES": "360",
        "NOTIFY_DAILY_CAP": "5",
        "NOTIFY_SEND_CONCURRENCY": "4",
        "QUIET_HOURS_START": "21:00",
        "QUIET_HOURS_END": "09:00",
        "CUSTOMER_TIMEZONE": "Asia/Kolkata",
        "SUPPORTED_LANGUAGES": "en,hi",
        # Deployed without a WhatsApp number: WhatsApp is off, SMS comes first.
        "NOTIFY_CHANNELS": "sms,email",
    }
    sms, email = environment["NotifySmsFunction"], environment["NotifyEmailFunction"]
    whatsapp = environment["NotifyWhatsAppFunction"]
    for notifier in (sms, whatsapp, email):
        assert shared.items() <= notifier.items()
    assert sms["NOTIFY_QUEUE_URL"].endswith(ids["SmsQueue"].rsplit("/", 1)[1])
    assert whatsapp["NOTIFY_QUEUE_URL"].endswith(ids["WhatsAppQueue"].rsplit("/", 1)[1])
    assert email["NOTIFY_QUEUE_URL"].endswith(ids["EmailQueue"].rsplit("/", 1)[1])
    # each hands fallbacks to the other phone channel, and both keep notification records
    assert sms["WHATSAPP_QUEUE_URL"].endswith(ids["WhatsAppQueue"].rsplit("/", 1)[1])
    assert whatsapp["SMS_QUEUE_URL"].endswith(ids["SmsQueue"].rsplit("/", 1)[1])
    assert sms["NOTIFICATIONS_TABLE_NAME"] == whatsapp["NOTIFICATIONS_TABLE_NAME"]
    assert sms["NOTIFICATIONS_TABLE_NAME"] == ids["NotificationsTable"]
    assert {k: sms[k] for k in ("SMS_TRANSPORT", "SMS_SENDER_ID", "SMS_MAX_SEGMENTS")} == {
        "SMS_TRANSPORT": "end-user-messaging",
        "SMS_SENDER_ID": "TRKWCH",
        "SMS_MAX_SEGMENTS": "3",
    }
    assert {k: email[k] for k in ("EMAIL_TRANSPORT", "EMAIL_FROM", "SMTP_SECRET_NAME")} == {
        "EMAIL_TRANSPORT": "ses",
        "EMAIL_FROM": "trackwatch@example.com",
        "SMTP_SECRET_NAME": "trackwatch/smtp",
    }


def test_the_notification_records_are_the_only_once_guard(cfn_template: Template) -> None:
    # No table of its own for idempotency: the records keep a message to one per event and
    # channel, so every notifier writes and reads them (e-mail too) and nothing else
    resources = cfn_template["Resources"]
    assert "IdempotencyTable" not in resources
    for role in ("NotifySmsFunctionRole", "NotifyWhatsAppFunctionRole", "NotifyEmailFunctionRole"):
        statements = resources[role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        (records,) = [s for s in statements if s.get("Sid") == "NotificationRecords"]
        assert {"dynamodb:GetItem", "dynamodb:PutItem"} <= set(records["Action"]), role
        assert records["Resource"] == {"Fn::GetAtt": ["NotificationsTable", "Arn"]}, role


def test_notification_records_expire_and_survive_accidents(cfn_template: Template) -> None:
    properties = cfn_template["Resources"]["NotificationsTable"]["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}


def test_sms_leave_from_the_registered_sender_id_only(cfn_template: Template) -> None:
    # When
    (statement,) = [
        s
        for s in _role_statements(cfn_template, "NotifySmsFunction")
        if "sms-voice:SendTextMessage" in _actions(s)
    ]

    # Then: a pool or number if one is given, else the sender id registered for India
    assert _actions(statement) == ["sms-voice:SendTextMessage"]
    condition, given, default = statement["Resource"]["Fn::If"]
    assert condition == "HasSmsOriginationIdentityArn"
    assert given == {"Ref": "SmsOriginationIdentityArn"}
    assert default["Fn::Sub"].endswith(":sender-id/${SmsSenderId}/IN")


def test_whatsapp_leaves_from_the_stacks_number_only(cfn_template: Template) -> None:
    # When
    (statement,) = [
        s
        for s in _role_statements(cfn_template, "NotifyWhatsAppFunction")
        if any(a.startswith("social-messaging:") for a in _actions(s))
    ]

    # Then
    assert _actions(statement) == ["social-messaging:SendWhatsAppMessage"]
    assert statement["Resource"]["Fn::Sub"].endswith(":phone-number-id/${WhatsAppPhoneNumberId}")
    for function in ("NotifySmsFunction", "NotifyEmailFunction", "RecordWhatsAppEventsFunction"):
        assert not any(
            a.startswith("social-messaging:")
            for s in _role_statements(cfn_template, function)
            for a in _actions(s)
        ), function


def test_only_end_user_messaging_social_of_this_account_publishes_whatsapp_events(
    cfn_template: Template,
) -> None:
    # Given
    resources = cfn_template["Resources"]
    (policy,) = [
        r["Properties"]
        for r in _resources(cfn_template, "AWS::SNS::TopicPolicy").values()
        if r["Properties"]["Topics"] == [{"Ref": "WhatsAppEventsTopic"}]
    ]

    # When
    (statement,) = policy["PolicyDocument"]["Statement"]
    key_services = [
        s["Principal"]["Service"]
        for s in resources["EventsKey"]["Properties"]["KeyPolicy"]["Statement"]
        if s["Principal"].get("Service")
    ]

    # Then the service may publish (encrypted under EventsKey), and only for this account
    assert statement["Principal"] == {"Service": "social-messaging.amazonaws.com"}
    assert statement["Action"] == "sns:Publish"
    assert statement["Resource"] == {"Ref": "WhatsAppEventsTopic"}
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    }
    assert any("social-messaging.amazonaws.com" in services for services in key_services)
    assert resources["WhatsAppEventsTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "EventsKey"}


def test_the_stack_deploys_the_whatsapp_resources(stack: Stack) -> None:
    # moto deploys the queues, the events topic and the table; the WhatsApp number and the
    # DLT registration live outside the stack (parameters).
    for name in (
        "WhatsAppQueue",
        "WhatsAppDeadLetterQueue",
        "WhatsAppEventsTopic",
        "WhatsAppEventsQueue",
        "NotificationsTable",
        "NotifyWhatsAppFunction",
        "RecordWhatsAppEventsFunction",
    ):
        assert stack.physical_ids.get(name), name
    assert (
        stack.outputs["WhatsAppEventsTopicArn"]["value"]
        == stack.physical_ids["WhatsAppEventsTopic"]
    )


def test_sms_publishing_reaches_phone_numbers_and_no_topic(cfn_template: Template) -> None:
    # Given
    statements = [
        (owner, statement)
        for owner, resource in _resources(cfn_template, "AWS::IAM::Role").items()
        for _, statement in _statements(resource["Properties"].get("Policies", []), owner)
    ]

    # When
    unscoped_publish = [
        (owner, statement)
        for owner, statement in statements
        if "sns:Publish" in _actions(statement) and "Resource" not in statement
    ]

    # Then: an SMS goes to a phone number, which has no ARN, so IAM only authorises it on
    # "*"; NotResource takes every SNS ARN (topics, endpoints) out of that "*".
    # (Only when SmsTransport is sns.)
    ((owner, statement),) = unscoped_publish
    assert owner == "NotifySmsFunctionRole"
    assert _actions(statement) == ["sns:Publish"]
    assert statement["NotResource"] == {"Fn::Sub": "arn:${AWS::Partition}:sns:*:*:*"}


@pytest.mark.parametrize("function", NOTIFIERS)
def test_notifiers_only_read_the_shipments_table_by_key(
    cfn_template: Template, function: str
) -> None:
    # When
    on_shipments = [
        statement
        for statement in _role_statements(cfn_template, function)
        if _target(statement.get("Resource")) == "ShipmentsTable"
    ]

    # Then: the contact, read with the channels' memory; a send never writes the shipment
    (statement,) = on_shipments
    assert _actions(statement) == ["dynamodb:BatchGetItem"]


def test_email_notifier_sends_only_as_its_identity(cfn_template: Template) -> None:
    # When
    ses: list[Any] = [
        statement
        for statement in _role_statements(cfn_template, "NotifyEmailFunction")
        if any(action.startswith("ses:") for action in _actions(statement))
    ]

    # Then
    (statement,) = ses
    assert _actions(statement) == ["ses:SendEmail", "ses:SendRawEmail"]
    condition, given, default = statement["Resource"]["Fn::If"]
    assert condition == "HasSesIdentityArn"
    assert given == {"Ref": "SesIdentityArn"}
    assert default["Fn::Sub"].endswith(":identity/${SenderEmail}")
