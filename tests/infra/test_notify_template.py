"""template.yaml, the notifiers' part: their functions, queues, idempotency table and grants."""

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

NOTIFIERS = {"NotifySmsFunction": "SmsQueue", "NotifyEmailFunction": "EmailQueue"}


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


@pytest.mark.parametrize(("function", "queue"), NOTIFIERS.items())
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
        "IDEMPOTENCY_TABLE_NAME": ids["IdempotencyTable"],
        "NOTIFY_IDEMPOTENCY_TTL_HOURS": "456",
        "NOTIFY_REPEAT_WINDOW_MINUTES": "360",
        "NOTIFY_DAILY_CAP": "5",
        "QUIET_HOURS_START": "21:00",
        "QUIET_HOURS_END": "09:00",
        "CUSTOMER_TIMEZONE": "Asia/Kolkata",
    }
    sms, email = environment["NotifySmsFunction"], environment["NotifyEmailFunction"]
    assert shared.items() <= sms.items()
    assert shared.items() <= email.items()
    assert sms["NOTIFY_QUEUE_URL"].endswith(ids["SmsQueue"].rsplit("/", 1)[1])
    assert email["NOTIFY_QUEUE_URL"].endswith(ids["EmailQueue"].rsplit("/", 1)[1])
    assert {k: email[k] for k in ("EMAIL_TRANSPORT", "EMAIL_FROM", "SMTP_SECRET_NAME")} == {
        "EMAIL_TRANSPORT": "ses",
        "EMAIL_FROM": "trackwatch@example.com",
        "SMTP_SECRET_NAME": "trackwatch/smtp",
    }


def test_idempotency_table_expires_its_records_and_survives_accidents(
    cfn_template: Template,
) -> None:
    # Given: moto drops TTL, PITR and SSE, so read the template
    properties = cfn_template["Resources"]["IdempotencyTable"]["Properties"]

    # Then: the layout powertools' DynamoDBPersistenceLayer expects by default
    assert properties["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}


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
    ((owner, statement),) = unscoped_publish
    assert owner == "NotifySmsFunctionRole"
    assert _actions(statement) == ["sns:Publish"]
    assert statement["NotResource"] == {"Fn::Sub": "arn:${AWS::Partition}:sns:*:*:*"}


@pytest.mark.parametrize("function", NOTIFIERS)
def test_notifiers_touch_the_shipments_table_only_by_key(
    cfn_template: Template, function: str
) -> None:
    # When
    on_shipments = [
        statement
        for statement in _role_statements(cfn_template, function)
        if _target(statement.get("Resource")) == "ShipmentsTable"
    ]

    # Then
    (statement,) = on_shipments
    assert _actions(statement) == ["dynamodb:GetItem", "dynamodb:UpdateItem"]


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
