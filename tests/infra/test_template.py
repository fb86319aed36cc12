"""template.yaml: its wiring, deployed into moto, and its hygiene, read from the template.

The SAM template is translated to plain CloudFormation (as the SAM transform would)
and created as a stack in moto; the wiring is then asserted through the AWS APIs.
Some resource types are not created by moto's CloudFormation (AWS::Scheduler::Schedule,
AWS::SNS::Subscription, AWS::SQS::QueuePolicy, AWS::CloudWatch::Alarm,
AWS::Lambda::EventInvokeConfig) and some properties are dropped (a table's TTL, PITR and
SSE; a function's architecture, layers and logging config; a log group's key): those are
asserted from the translated template instead.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from trackwatch_cli.cfn_template import LOCAL_CODE_BUCKET, load_template, translate

Template = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
STACK_NAME = "trackwatch-test"

SUBSCRIBER_QUEUES = ["SmsQueue", "EmailQueue", "AllEventsQueue"]
NOTIFYING_EVENT_TYPES = [
    "shipment.status_changed",
    "shipment.ndr_raised",
    "shipment.stuck",
    "shipment.delay_predicted",
    "order.status_changed",
    "order.partially_delivered",
]

pytestmark = pytest.mark.filterwarnings(
    # moto warns for each resource type its CloudFormation does not create; see the docstring.
    "ignore:Tried to parse .* but it's not supported by moto:UserWarning"
)


@dataclass(frozen=True)
class Stack:
    """A stack created in moto: its resources' physical ids and its outputs."""

    physical_ids: dict[str, str]
    outputs: dict[str, dict[str, str]]


# --- fixtures -----------------------------------------------------------------


@pytest.fixture(scope="module")
def sam_template() -> Template:
    return load_template(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def cfn_template(sam_template: Template) -> Template:
    return translate(sam_template, REGION, ACCOUNT)


@pytest.fixture(scope="module")
def stack(cfn_template: Template) -> Iterator[Stack]:
    with mock_aws():
        yield _deploy(cfn_template)


def _deploy(template: Template) -> Stack:
    """Create `template` as a stack in moto, every parameter at its default."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=LOCAL_CODE_BUCKET)
    for key in _code_keys(template):
        s3.put_object(Bucket=LOCAL_CODE_BUCKET, Key=key, Body=_tiny_zip())

    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(
        StackName=STACK_NAME,
        TemplateBody=json.dumps(template),
        Capabilities=["CAPABILITY_IAM"],
    )
    description = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    assert description["StackStatus"] == "CREATE_COMPLETE", description.get("StackStatusReason")

    summaries = cloudformation.list_stack_resources(StackName=STACK_NAME)["StackResourceSummaries"]
    return Stack(
        physical_ids={
            summary["LogicalResourceId"]: summary["PhysicalResourceId"]
            for summary in summaries
            if summary.get("LogicalResourceId")  # moto lists the types it skipped without ids
        },
        outputs={
            output["OutputKey"]: {
                "value": output["OutputValue"],
                "export": output.get("ExportName", ""),
            }
            for output in description.get("Outputs", [])
        },
    )


def _code_keys(template: Template) -> set[str]:
    """The S3 keys `translate` gave the functions' and layers' code."""
    keys: set[str] = set()
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        location = properties.get("Code") or properties.get("Content") or {}
        if location.get("S3Bucket") == LOCAL_CODE_BUCKET:
            keys.add(location["S3Key"])
    return keys


def _tiny_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    return None\n")
    return buffer.getvalue()


# --- helpers over the translated template --------------------------------------


def _resources(template: Template, resource_type: str) -> dict[str, Template]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def _target(value: Any) -> str | None:
    """The logical id a `Ref` or `Fn::GetAtt` points at, else None."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def _dead_letter_queues(template: Template) -> set[str]:
    """Queues that something sends its failures to: redrive, on-failure or schedule DLQs."""
    targets: set[str | None] = set()
    for queue in _resources(template, "AWS::SQS::Queue").values():
        redrive = queue["Properties"].get("RedrivePolicy", {})
        targets.add(_target(redrive.get("deadLetterTargetArn")))
    for subscription in _resources(template, "AWS::SNS::Subscription").values():
        redrive = subscription["Properties"].get("RedrivePolicy", {})
        targets.add(_target(redrive.get("deadLetterTargetArn")))
    for kind in ("AWS::Lambda::EventSourceMapping", "AWS::Lambda::EventInvokeConfig"):
        for config in _resources(template, kind).values():
            on_failure = config["Properties"].get("DestinationConfig", {}).get("OnFailure", {})
            targets.add(_target(on_failure.get("Destination")))
    for schedule in _resources(template, "AWS::Scheduler::Schedule").values():
        dead_letter = schedule["Properties"]["Target"].get("DeadLetterConfig", {})
        targets.add(_target(dead_letter.get("Arn")))
    # Queues a function itself sets messages aside in (named *_DEAD_LETTER_QUEUE_URL).
    for function in _resources(template, "AWS::Lambda::Function").values():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        for name, value in variables.items():
            if name.endswith("DEAD_LETTER_QUEUE_URL") and isinstance(value, dict):
                targets.add(value.get("Ref"))
    return {target for target in targets if target is not None}


def _branches(value: Any) -> list[Any]:
    """Every value `value` can take: both sides of each Fn::If, without AWS::NoValue."""
    if isinstance(value, dict) and "Fn::If" in value:
        _, when_true, when_false = value["Fn::If"]
        return _branches(when_true) + _branches(when_false)
    if value == {"Ref": "AWS::NoValue"}:
        return []
    return [value]


def _statements(node: Any, owner: str) -> Iterator[tuple[str, Template]]:
    """Every policy statement under `node`, with the logical id of the resource holding it.

    A statement inside Fn::If counts whichever way the condition goes.
    """
    if isinstance(node, dict):
        statements = node.get("Statement")
        if isinstance(statements, list):
            for statement in statements:
                for branch in _branches(statement):
                    yield owner, branch
        for value in node.values():
            yield from _statements(value, owner)
    elif isinstance(node, list):
        for item in node:
            yield from _statements(item, owner)


def _is_account_root(principal: Any) -> bool:
    aws = principal.get("AWS") if isinstance(principal, dict) else None
    return isinstance(aws, dict) and str(aws.get("Fn::Sub", "")).endswith(":root")


# --- the table -----------------------------------------------------------------


def test_table_keys_shipments_by_pk_and_indexes_due_ones_sparsely(stack: Stack) -> None:
    # Given
    dynamodb = boto3.client("dynamodb", region_name=REGION)

    # When
    table = dynamodb.describe_table(TableName=stack.physical_ids["ShipmentsTable"])["Table"]

    # Then
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    (due_index,) = table["GlobalSecondaryIndexes"]
    assert due_index["IndexName"] == "DueIndex"
    assert due_index["KeySchema"] == [
        {"AttributeName": "due_key", "KeyType": "HASH"},
        {"AttributeName": "pk", "KeyType": "RANGE"},
    ]
    assert due_index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert table["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }


def test_table_expires_stopped_shipments_and_survives_accidents(cfn_template: Template) -> None:
    # Given: moto's CloudFormation drops TTL, point-in-time recovery and SSE, so read the template
    table = cfn_template["Resources"]["ShipmentsTable"]

    # When
    properties = table["Properties"]

    # Then
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


# --- queues --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("queue", "dead_letter_queue"),
    [
        ("PollQueue", "PollDeadLetterQueue"),
        ("SmsQueue", "SmsDeadLetterQueue"),
        ("EmailQueue", "EmailDeadLetterQueue"),
        ("AllEventsQueue", "AllEventsDeadLetterQueue"),
        ("IngestQueue", "IngestDeadLetterQueue"),
        ("HintQueue", "HintDeadLetterQueue"),
    ],
)
def test_queue_redrives_to_its_own_dead_letter_queue(
    stack: Stack, queue: str, dead_letter_queue: str
) -> None:
    # Given
    sqs = boto3.client("sqs", region_name=REGION)
    dead_letter_arn = sqs.get_queue_attributes(
        QueueUrl=stack.physical_ids[dead_letter_queue], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]

    # When
    attributes = sqs.get_queue_attributes(
        QueueUrl=stack.physical_ids[queue], AttributeNames=["RedrivePolicy"]
    )["Attributes"]

    # Then
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": dead_letter_arn,
        "maxReceiveCount": 5,
    }


def test_every_queue_is_encrypted_with_the_events_key(stack: Stack, cfn_template: Template) -> None:
    # Given
    sqs = boto3.client("sqs", region_name=REGION)
    queues = _resources(cfn_template, "AWS::SQS::Queue")

    # When
    keys = {
        queue: sqs.get_queue_attributes(
            QueueUrl=stack.physical_ids[queue], AttributeNames=["KmsMasterKeyId"]
        )["Attributes"].get("KmsMasterKeyId")
        for queue in queues
    }

    # Then: the key the topics use, since the queues hold what the topics carry
    assert keys == dict.fromkeys(queues, stack.physical_ids["EventsKey"])
    for queue, resource in queues.items():
        assert "SqsManagedSseEnabled" not in resource["Properties"], queue


# --- event sources -------------------------------------------------------------


def test_poll_queue_feeds_poll_shipments_within_the_concurrency_cap(stack: Stack) -> None:
    # Given
    lambda_client = boto3.client("lambda", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=stack.physical_ids["PollQueue"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]

    # When
    mappings = lambda_client.list_event_source_mappings(
        FunctionName=stack.physical_ids["PollShipmentsFunction"]
    )["EventSourceMappings"]

    # Then
    (mapping,) = mappings
    assert mapping["EventSourceArn"] == queue_arn
    assert mapping["BatchSize"] == 10
    assert mapping["MaximumBatchingWindowInSeconds"] == 1
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 10}


def test_table_stream_feeds_publish_events_with_outbox_records_only(stack: Stack) -> None:
    # Given
    lambda_client = boto3.client("lambda", region_name=REGION)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    stream_arn = dynamodb.describe_table(TableName=stack.physical_ids["ShipmentsTable"])["Table"][
        "LatestStreamArn"
    ]
    failure_queue_arn = sqs.get_queue_attributes(
        QueueUrl=stack.physical_ids["StreamFailureQueue"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]

    # When
    mappings = lambda_client.list_event_source_mappings(
        FunctionName=stack.physical_ids["PublishEventsFunction"]
    )["EventSourceMappings"]

    # Then
    (mapping,) = mappings
    assert mapping["EventSourceArn"] == stream_arn
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["MaximumRetryAttempts"] == 10
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": failure_queue_arn}}
    (only_filter,) = mapping["FilterCriteria"]["Filters"]
    assert json.loads(only_filter["Pattern"]) == {
        "dynamodb": {"NewImage": {"outbox_seq": {"N": [{"exists": True}]}}}
    }


def test_dispatcher_runs_every_minute_with_retries_and_a_dead_letter_queue(
    cfn_template: Template,
) -> None:
    # Given: moto's CloudFormation does not create AWS::Scheduler::Schedule, so read the template
    schedules = _resources(cfn_template, "AWS::Scheduler::Schedule")

    # When
    (schedule,) = [
        s
        for s in schedules.values()
        if _target(s["Properties"]["Target"]["Arn"]) == "DispatchPollsFunction"
    ]
    properties = schedule["Properties"]
    role = cfn_template["Resources"][_target(properties["Target"]["RoleArn"])]

    # Then
    assert properties["ScheduleExpression"] == "rate(1 minute)"
    assert _target(properties["Target"]["Arn"]) == "DispatchPollsFunction"
    assert properties["Target"]["RetryPolicy"] == {
        "MaximumRetryAttempts": 2,
        "MaximumEventAgeInSeconds": 120,
    }
    assert _target(properties["Target"]["DeadLetterConfig"]["Arn"]) == "DispatchDeadLetterQueue"
    granted = set()
    for _, statement in _statements(role["Properties"]["Policies"], "role"):
        actions = statement["Action"]
        actions = [actions] if isinstance(actions, str) else actions
        granted.add((tuple(sorted(actions)), _target(statement["Resource"])))
    assert granted == {
        (("lambda:InvokeFunction",), "DispatchPollsFunction"),
        (("sqs:SendMessage",), "DispatchDeadLetterQueue"),
        # The dead-letter queue is encrypted with the events key.
        (("kms:Decrypt", "kms:GenerateDataKey"), "EventsKey"),
    }


# --- functions -------------------------------------------------------------------


def test_functions_get_the_settings_their_handlers_read(stack: Stack) -> None:
    # Given
    lambda_client = boto3.client("lambda", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    ids = stack.physical_ids

    # When
    environment = {
        function: {
            name: str(value)  # moto keeps numbers as numbers; AWS would give strings
            for name, value in lambda_client.get_function_configuration(FunctionName=ids[function])[
                "Environment"
            ]["Variables"].items()
        }
        for function in ["DispatchPollsFunction", "PollShipmentsFunction", "PublishEventsFunction"]
    }

    # Then
    cadence = {
        "CADENCE_OUT_FOR_DELIVERY_MINUTES": "30",
        "CADENCE_TRANSIT_MINUTES": "120",
        "CADENCE_NEW_MINUTES": "240",
        "CADENCE_GRACE_MINUTES": "360",
        "CADENCE_INVALID_MINUTES": "720",
        "TERMINAL_GRACE_HOURS": "72",
        "INVALID_GIVE_UP_HOURS": "168",
        "UNREADABLE_GIVE_UP_HOURS": "72",
        "MAX_TRACKING_DAYS": "60",
        "FUTURE_SCAN_MARGIN_HOURS": "24",
        "DUE_SHARDS": "16",
    }
    common = {
        "POWERTOOLS_SERVICE_NAME": "trackwatch",
        "POWERTOOLS_METRICS_NAMESPACE": "Trackwatch",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PYDANTIC_DISABLE_PLUGINS": "__all__",
        "LOG_LEVEL": "INFO",
        "CLICKPOST_SOURCE_TIMEZONE": "Asia/Kolkata",
        "CLICKPOST_RECORD_TIMEZONE": "UTC",
    }
    assert environment["DispatchPollsFunction"] == {
        **common,
        **cadence,
        "SHIPMENTS_TABLE_NAME": ids["ShipmentsTable"],
        "DUE_INDEX_NAME": "DueIndex",
        "POLL_QUEUE_URL": sqs.get_queue_url(QueueName=ids["PollQueue"].rsplit("/", 1)[1])[
            "QueueUrl"
        ],
        "CHANGE_FEED_TABLE_NAME": ids["ChangeFeedTable"],
        "CHANGE_FEED_ENABLED": "true",
        "CHANGE_FEED_STALE_MINUTES": "20",
        "CHANGE_FEED_SILENCE_MINUTES": "60",
        "SWEEP_OUT_FOR_DELIVERY_MINUTES": "480",
        "SWEEP_TRANSIT_MINUTES": "1440",
        "SWEEP_NEW_MINUTES": "240",
        "SWEEP_GRACE_MINUTES": "1440",
        "SWEEP_INVALID_MINUTES": "1440",
        "DELAY_CHECK_MINUTES": "120",
    }
    assert environment["PollShipmentsFunction"] == {
        **common,
        **cadence,
        "SHIPMENTS_TABLE_NAME": ids["ShipmentsTable"],
        "CLICKPOST_BASE_URL": "https://api.clickpost.in",
        "CLICKPOST_SECRET_NAME": "trackwatch/clickpost",
        "CLICKPOST_MAX_IN_FLIGHT": "10",
        "CLICKPOST_MAX_RESPONSE_BYTES": "5242880",
        "DELAY_THRESHOLDS_TABLE_NAME": ids["DelayThresholdsTable"],
    }
    assert environment["PublishEventsFunction"] == {
        **common,
        **cadence,
        "EVENTS_TOPIC_ARN": ids["ShipmentEventsTopic"],
        "EVENT_LOG_TABLE_NAME": ids["EventLogTable"],
        "EVENT_LOG_RETENTION_DAYS": "30",
        "PUBLISH_DEAD_LETTER_QUEUE_URL": ids["PublishDeadLetterQueue"],
    }


def test_function_log_groups_expire_their_logs(stack: Stack, cfn_template: Template) -> None:
    # Given
    logs = boto3.client("logs", region_name=REGION)
    log_groups = _resources(cfn_template, "AWS::Logs::LogGroup")

    # When
    retention = {
        group: logs.describe_log_groups(logGroupNamePrefix=stack.physical_ids[group])["logGroups"][
            0
        ].get("retentionInDays")
        for group in log_groups
    }

    # Then
    assert retention == dict.fromkeys(
        [
            "DispatchPollsLogGroup",
            "PollShipmentsLogGroup",
            "PublishEventsLogGroup",
            "NotifySmsLogGroup",
            "NotifyWhatsAppLogGroup",
            "RecordWhatsAppEventsLogGroup",
            "NotifyEmailLogGroup",
            "ShipmentsApiLogGroup",
            "IngestShipmentsLogGroup",
            "RollUpOrdersLogGroup",
            "ShipmentsHttpApiAccessLogGroup",
            "LearnThresholdsLogGroup",
            "SendOpsDigestLogGroup",
            "PollChangeFeedLogGroup",
            "CoalesceHintsLogGroup",
            "ReceiveWebhooksLogGroup",
            "WebhooksHttpApiAccessLogGroup",
        ],
        30,
    )


# --- events ----------------------------------------------------------------------


def test_events_topic_is_encrypted_with_the_customer_managed_key(stack: Stack) -> None:
    # Given
    sns = boto3.client("sns", region_name=REGION)

    # When
    attributes = sns.get_topic_attributes(TopicArn=stack.physical_ids["ShipmentEventsTopic"])[
        "Attributes"
    ]

    # Then
    assert attributes["KmsMasterKeyId"] == stack.physical_ids["EventsKey"]


@pytest.mark.parametrize(
    ("subscription", "queue", "filter_policy"),
    [
        ("SmsSubscription", "SmsQueue", {"event_type": NOTIFYING_EVENT_TYPES}),
        ("EmailSubscription", "EmailQueue", {"event_type": NOTIFYING_EVENT_TYPES}),
        ("AllEventsSubscription", "AllEventsQueue", None),
    ],
)
def test_subscriber_queue_receives_raw_events_it_filters_for(
    cfn_template: Template, subscription: str, queue: str, filter_policy: Template | None
) -> None:
    # Given: moto's CloudFormation does not create AWS::SNS::Subscription, so read the template
    resource = cfn_template["Resources"][subscription]

    # When
    properties = resource["Properties"]

    # Then
    assert resource["Type"] == "AWS::SNS::Subscription"
    assert _target(properties["TopicArn"]) == "ShipmentEventsTopic"
    assert properties["Protocol"] == "sqs"
    assert _target(properties["Endpoint"]) == queue
    assert properties["RawMessageDelivery"] is True
    assert properties.get("FilterPolicy") == filter_policy
    if filter_policy is not None:
        assert properties["FilterPolicyScope"] == "MessageAttributes"


@pytest.mark.parametrize("queue", SUBSCRIBER_QUEUES)
def test_only_the_events_topic_may_send_to_a_subscriber_queue(
    cfn_template: Template, queue: str
) -> None:
    # Given: moto's CloudFormation does not create AWS::SQS::QueuePolicy, so read the template
    policies = [
        policy["Properties"]
        for policy in _resources(cfn_template, "AWS::SQS::QueuePolicy").values()
        if [_target(q) for q in policy["Properties"]["Queues"]] == [queue]
    ]

    # When
    (policy,) = policies
    (statement,) = policy["PolicyDocument"]["Statement"]

    # Then
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert _target(statement["Resource"]) == queue
    assert _target(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == "ShipmentEventsTopic"


def test_outputs_are_exported_under_the_stack_name(stack: Stack) -> None:
    # Given
    expected = {
        "ShipmentEventsTopicArn",
        "SmsQueueUrl",
        "EmailQueueUrl",
        "AllEventsQueueUrl",
        "ShipmentsTableName",
        "PollQueueUrl",
        "PollDeadLetterQueueUrl",
        "DispatchDeadLetterQueueUrl",
        "StreamFailureQueueUrl",
        "SmsDeadLetterQueueUrl",
        "EmailDeadLetterQueueUrl",
        "AllEventsDeadLetterQueueUrl",
        "ShipmentsApiUrl",
        "IngestQueueUrl",
        "IngestDeadLetterQueueUrl",
        "PublishDeadLetterQueueUrl",
        "EventLogTableName",
        "SmsSubscriptionDeadLetterQueueUrl",
        "EmailSubscriptionDeadLetterQueueUrl",
        "AllEventsSubscriptionDeadLetterQueueUrl",
        "AlarmTopicArn",
        "EventsKeyArn",
        "WebhookUrl",
        "HintQueueUrl",
        "HintDeadLetterQueueUrl",
        "ChangeCaptureDeadLetterQueueUrl",
        "ChangeFeedTableName",
        "WhatsAppQueueUrl",
        "WhatsAppDeadLetterQueueUrl",
        "WhatsAppSubscriptionDeadLetterQueueUrl",
        "WhatsAppEventsTopicArn",
        "WhatsAppEventsQueueUrl",
        "WhatsAppEventsDeadLetterQueueUrl",
        "WhatsAppEventsSubscriptionDeadLetterQueueUrl",
        "NotificationsTableName",
        "OrdersTableName",
        "OrderSettleDeadLetterQueueUrl",
        "DelayThresholdsTableName",
        "OpsDigestQueueUrl",
        "OpsDigestDeadLetterQueueUrl",
        "OpsDigestSubscriptionDeadLetterQueueUrl",
        "DelayJobsDeadLetterQueueUrl",
    }
    # Deployed with the defaults (empty AlarmEmail, WhatsAppPhoneNumberId, DltEntityId,
    # OpsDigestEmail): warnings, not exports.
    warnings = {"AlarmEmailMissing", "WhatsAppOff", "DltEntityIdMissing", "OpsDigestOff"}

    # When
    outputs = stack.outputs

    # Then
    assert set(outputs) == expected | warnings
    assert {name: output["export"] for name, output in outputs.items()} == {
        **{name: f"{STACK_NAME}-{name}" for name in expected},
        **dict.fromkeys(warnings, ""),
    }
    assert outputs["ShipmentsTableName"]["value"] == stack.physical_ids["ShipmentsTable"]


# --- hygiene -----------------------------------------------------------------------


def test_every_queue_but_a_dead_letter_queue_redrives(cfn_template: Template) -> None:
    # Given
    dead_letter_queues = _dead_letter_queues(cfn_template)

    # When
    without_redrive = {
        queue
        for queue, resource in _resources(cfn_template, "AWS::SQS::Queue").items()
        if "RedrivePolicy" not in resource["Properties"]
    }

    # Then
    assert without_redrive == dead_letter_queues
    assert dead_letter_queues == {
        "PollDeadLetterQueue",
        "DispatchDeadLetterQueue",
        "StreamFailureQueue",
        "SmsDeadLetterQueue",
        "EmailDeadLetterQueue",
        "AllEventsDeadLetterQueue",
        "IngestDeadLetterQueue",
        "PublishDeadLetterQueue",
        "SmsSubscriptionDeadLetterQueue",
        "EmailSubscriptionDeadLetterQueue",
        "WhatsAppDeadLetterQueue",
        "WhatsAppEventsDeadLetterQueue",
        "WhatsAppSubscriptionDeadLetterQueue",
        "WhatsAppEventsSubscriptionDeadLetterQueue",
        "AllEventsSubscriptionDeadLetterQueue",
        "OrderSettleDeadLetterQueue",
        "DelayJobsDeadLetterQueue",
        "OpsDigestDeadLetterQueue",
        "OpsDigestSubscriptionDeadLetterQueue",
        "HintDeadLetterQueue",
        "ChangeCaptureDeadLetterQueue",
    }


def test_every_dead_letter_queue_keeps_14_days_and_raises_an_alarm(cfn_template: Template) -> None:
    # Given
    queues = _resources(cfn_template, "AWS::SQS::Queue")
    dead_letter_queues = _dead_letter_queues(cfn_template)

    # When
    alarmed = {
        _target(alarm["Properties"]["Dimensions"][0]["Value"])
        for alarm in _resources(cfn_template, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
        and alarm["Properties"]["Threshold"] == 0
        and alarm["Properties"]["ComparisonOperator"] == "GreaterThanThreshold"
    }

    # Then
    for queue in dead_letter_queues:
        assert queues[queue]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600, queue
    assert alarmed == dead_letter_queues


def test_sqs_visibility_timeout_is_six_times_the_consumer_timeout(cfn_template: Template) -> None:
    # Given
    resources = cfn_template["Resources"]
    sqs_mappings = [
        mapping["Properties"]
        for mapping in _resources(cfn_template, "AWS::Lambda::EventSourceMapping").values()
        if resources[_target(mapping["Properties"]["EventSourceArn"])]["Type"] == "AWS::SQS::Queue"
    ]

    # When
    pairs = {
        _target(mapping["EventSourceArn"]): (
            resources[_target(mapping["EventSourceArn"])]["Properties"]["VisibilityTimeout"],
            resources[_target(mapping["FunctionName"])]["Properties"]["Timeout"],
        )
        for mapping in sqs_mappings
    }

    # Then
    assert pairs, "expected at least one SQS event source"
    for queue, (visibility_timeout, function_timeout) in pairs.items():
        assert visibility_timeout >= 6 * function_timeout, queue


def test_every_function_logs_to_its_own_group_with_retention(cfn_template: Template) -> None:
    # Given
    resources = cfn_template["Resources"]
    functions = _resources(cfn_template, "AWS::Lambda::Function")

    # When
    groups = {
        function: _target(resource["Properties"]["LoggingConfig"]["LogGroup"])
        for function, resource in functions.items()
    }

    # Then
    assert len(set(groups.values())) == len(functions)
    for function, group in groups.items():
        log_group = resources[group]
        assert log_group["Type"] == "AWS::Logs::LogGroup", function
        assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, function
    assert cfn_template["Parameters"]["LogRetentionDays"]["Default"] == 30


def test_no_policy_statement_grants_a_wildcard_action(cfn_template: Template) -> None:
    # Given
    statements = [
        (owner, statement)
        for owner, resource in cfn_template["Resources"].items()
        for _, statement in _statements(resource.get("Properties", {}), owner)
    ]

    # When
    wildcards = [
        (owner, action)
        for owner, statement in statements
        for action in (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
        if (action == "*" or action.endswith(":*"))
        # The default key policy: the account administers its own key through IAM.
        and not (
            cfn_template["Resources"][owner]["Type"] == "AWS::KMS::Key"
            and _is_account_root(statement.get("Principal"))
        )
    ]

    # Then
    assert statements, "expected policy statements to inspect"
    assert all("NotAction" not in statement for _, statement in statements)
    assert wildcards == []


def test_every_function_runs_python_313_on_arm64_with_the_common_layer(
    cfn_template: Template,
) -> None:
    # Given
    (layer_id, layer), *others = _resources(cfn_template, "AWS::Lambda::LayerVersion").items()

    # When
    functions = _resources(cfn_template, "AWS::Lambda::Function")

    # Then
    assert others == []
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert len(functions) == 15
    for name, function in functions.items():
        properties = function["Properties"]
        assert properties["Runtime"] == "python3.13", name
        assert properties["Architectures"] == ["arm64"], name
        assert properties["Layers"] == [{"Ref": layer_id}], name
        assert properties["TracingConfig"] == {"Mode": {"Ref": "TracingMode"}}, name
        # Lambda sets the daemon's address everywhere: the switch says whether to trace
        variables = properties["Environment"]["Variables"]
        assert variables["POWERTOOLS_TRACE_DISABLED"] == {"Fn::If": ["Traced", "false", "true"]}


# --- the template reader -----------------------------------------------------------


def test_translate_points_code_at_the_local_folders(cfn_template: Template) -> None:
    # Given
    functions = _resources(cfn_template, "AWS::Lambda::Function")

    # When
    code = {name: function["Properties"]["Code"] for name, function in functions.items()}

    # Then
    assert {name: location["S3Key"] for name, location in code.items()} == {
        "DispatchPollsFunction": "functions/dispatch_polls",
        "PollShipmentsFunction": "functions/poll_shipments",
        "PublishEventsFunction": "functions/publish_events",
        "NotifySmsFunction": "functions/notify_sms",
        "NotifyWhatsAppFunction": "functions/notify_whatsapp",
        "RecordWhatsAppEventsFunction": "functions/record_whatsapp_events",
        "NotifyEmailFunction": "functions/notify_email",
        "ShipmentsApiFunction": "functions/shipments_api",
        "IngestShipmentsFunction": "functions/ingest_shipments",
        "RollUpOrdersFunction": "functions/roll_up_orders",
        "LearnThresholdsFunction": "functions/learn_thresholds",
        "SendOpsDigestFunction": "functions/send_ops_digest",
        "PollChangeFeedFunction": "functions/poll_change_feed",
        "CoalesceHintsFunction": "functions/coalesce_hints",
        "ReceiveWebhooksFunction": "functions/receive_webhooks",
    }
    assert {location["S3Bucket"] for location in code.values()} == {LOCAL_CODE_BUCKET}


def test_load_template_reads_short_form_intrinsics(tmp_path: Path) -> None:
    # Given
    path = tmp_path / "template.yaml"
    path.write_text(
        "AWSTemplateFormatVersion: 2010-09-09\n"
        "Resources:\n"
        "  Thing:\n"
        "    Type: AWS::SQS::Queue\n"
        "    Condition: IsProd\n"
        "    Properties:\n"
        "      A: !Ref Other\n"
        "      B: !GetAtt Other.Nested.Attr\n"
        "      C: !Sub arn:${AWS::Partition}:x\n"
        "      D: !Select [3, !Split ['/', !GetAtt Table.StreamArn]]\n"
        "      E: !If [IsProd, !Ref AWS::NoValue, 1]\n"
        "      F: !Equals [!Condition Other, true]\n",
        encoding="utf-8",
    )

    # When
    template = load_template(path)

    # Then
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"
    assert template["Resources"]["Thing"]["Properties"] == {
        "A": {"Ref": "Other"},
        "B": {"Fn::GetAtt": ["Other", "Nested.Attr"]},
        "C": {"Fn::Sub": "arn:${AWS::Partition}:x"},
        "D": {"Fn::Select": [3, {"Fn::Split": ["/", {"Fn::GetAtt": ["Table", "StreamArn"]}]}]},
        "E": {"Fn::If": ["IsProd", {"Ref": "AWS::NoValue"}, 1]},
        "F": {"Fn::Equals": [{"Condition": "Other"}, True]},
    }


# --- registration: the shipments API, IngestQueue, the event log ---------------------


def test_shipments_api_requires_iam_on_every_route(cfn_template: Template) -> None:
    # Given: moto's CloudFormation does not create AWS::ApiGatewayV2::Api, so read the template
    api = _resources(cfn_template, "AWS::ApiGatewayV2::Api")["ShipmentsHttpApi"]

    # When
    body = api["Properties"]["Body"]
    operations = {
        (method.upper(), path): operation
        for path, methods in body["paths"].items()
        for method, operation in methods.items()
    }

    # Then every route is the function's, and none is reachable without SigV4
    assert set(operations) == {
        ("POST", "/shipments"),
        ("GET", "/shipments/{cp_id}/{waybill}"),
        ("DELETE", "/shipments/{cp_id}/{waybill}"),
        ("POST", "/shipments/{cp_id}/{waybill}/refresh"),
        ("POST", "/shipments/{cp_id}/{waybill}/replay"),
        ("GET", "/orders/{order_id}"),
    }
    for route, operation in operations.items():
        assert operation["security"] == [{"AWS_IAM": []}], route
        assert operation["x-amazon-apigateway-integration"]["type"] == "aws_proxy", route


def test_the_webhook_route_is_open_to_clickpost_and_only_it(cfn_template: Template) -> None:
    # Given: Clickpost cannot sign requests; the function checks the shared key itself
    api = _resources(cfn_template, "AWS::ApiGatewayV2::Api")["WebhooksHttpApi"]

    # When
    body = api["Properties"]["Body"]
    operations = {
        (method.upper(), path): operation
        for path, methods in body["paths"].items()
        for method, operation in methods.items()
    }

    # Then one route, to the receiver, throttled
    assert set(operations) == {("POST", "/webhooks/clickpost")}
    (operation,) = operations.values()
    assert operation["x-amazon-apigateway-integration"]["type"] == "aws_proxy"
    assert "ReceiveWebhooksFunction" in json.dumps(operation["x-amazon-apigateway-integration"])
    stage = cfn_template["Resources"]["WebhooksHttpApiApiGatewayDefaultStage"]["Properties"]
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0


def test_change_capture_runs_on_its_schedules_and_keeps_its_hints_apart(
    cfn_template: Template,
) -> None:
    # Given
    resources = cfn_template["Resources"]
    schedules = {
        _target(s["Properties"]["Target"]["Arn"]): s["Properties"]
        for s in _resources(cfn_template, "AWS::Scheduler::Schedule").values()
    }

    # When
    feed = schedules["PollChangeFeedFunction"]
    window = schedules["CoalesceHintsFunction"]
    hint_queue = resources["HintQueue"]["Properties"]

    # Then: the feed every ChangeFeedPeriodMinutes (off with the feed), hints every minute
    assert feed["ScheduleExpression"] == {"Fn::Sub": "rate(${ChangeFeedPeriodMinutes} minutes)"}
    assert feed["State"] == {"Fn::If": ["ChangeFeedEnabled", "ENABLED", "DISABLED"]}
    assert window["ScheduleExpression"] == "rate(1 minute)"
    # The coalescer receives itself (no event source): a window is not handed out twice
    timeout = resources["CoalesceHintsFunction"]["Properties"]["Timeout"]
    assert hint_queue["VisibilityTimeout"] >= 6 * timeout
    assert _target(hint_queue["RedrivePolicy"]["deadLetterTargetArn"]) == "HintDeadLetterQueue"


def test_event_log_keeps_each_change_once_without_point_in_time_recovery(
    cfn_template: Template,
) -> None:
    # Given
    table = cfn_template["Resources"]["EventLogTable"]

    # When
    properties = table["Properties"]

    # Then
    assert properties["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    # Published events, immutable and expiring (the template says why there is no recovery).
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": False}
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert cfn_template["Parameters"]["EventLogRetentionDays"]["Default"] == 30


def test_ingest_queue_feeds_ingest_shipments_reporting_item_failures(stack: Stack) -> None:
    # Given
    lambda_client = boto3.client("lambda", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=stack.physical_ids["IngestQueue"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]

    # When
    mappings = lambda_client.list_event_source_mappings(
        FunctionName=stack.physical_ids["IngestShipmentsFunction"]
    )["EventSourceMappings"]

    # Then
    (mapping,) = mappings
    assert mapping["EventSourceArn"] == queue_arn
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_the_roll_up_reads_the_whole_stream_and_its_own_settle_queue(stack: Stack) -> None:
    # Given
    lambda_client = boto3.client("lambda", region_name=REGION)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    ids = stack.physical_ids
    stream_arn = dynamodb.describe_table(TableName=ids["ShipmentsTable"])["Table"][
        "LatestStreamArn"
    ]
    settle_arn = sqs.get_queue_attributes(
        QueueUrl=ids["OrderSettleQueue"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]

    # When
    mappings = lambda_client.list_event_source_mappings(FunctionName=ids["RollUpOrdersFunction"])[
        "EventSourceMappings"
    ]
    environment = lambda_client.get_function_configuration(
        FunctionName=ids["RollUpOrdersFunction"]
    )["Environment"]["Variables"]

    # Then: every write of the stream (order_id is inside the state: no filter can see it)
    by_source = {mapping["EventSourceArn"]: mapping for mapping in mappings}
    assert set(by_source) == {stream_arn, settle_arn}
    stream = by_source[stream_arn]
    assert stream["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert stream["BisectBatchOnFunctionError"] is True
    assert "FilterCriteria" not in stream or not stream["FilterCriteria"].get("Filters")
    assert by_source[settle_arn]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert environment["ORDERS_TABLE_NAME"] == ids["OrdersTable"]
    assert str(environment["ORDER_WINDOW_MINUTES"]) == "10"
    assert environment["EVENTS_TOPIC_ARN"] == ids["ShipmentEventsTopic"]
    key = dynamodb.describe_table(TableName=ids["OrdersTable"])["Table"]["KeySchema"]
    assert key == [{"AttributeName": "pk", "KeyType": "HASH"}]


def test_every_table_says_whether_it_can_be_recovered_and_why_not(cfn_template: Template) -> None:
    # Given every DynamoDB table
    tables = {
        name: resource
        for name, resource in cfn_template["Resources"].items()
        if resource["Type"] == "AWS::DynamoDB::Table"
    }

    # Then point-in-time recovery is on or off explicitly, and off only with its reason
    for name, table in tables.items():
        enabled = table["Properties"]["PointInTimeRecoverySpecification"][
            "PointInTimeRecoveryEnabled"
        ]
        skips = table.get("Metadata", {}).get("checkov", {}).get("skip", [])
        reasons = [s.get("comment", "") for s in skips if s["id"] == "CKV_AWS_28"]
        assert enabled is True or (enabled is False and reasons and all(reasons)), name
    # The data only this stack holds: registrations and contacts, and customers' opt-outs
    for name in ("ShipmentsTable", "NotificationsTable"):
        assert tables[name]["Properties"]["PointInTimeRecoverySpecification"] == {
            "PointInTimeRecoveryEnabled": True
        }


# --- delays ------------------------------------------------------------------------


def test_the_daily_delay_jobs_run_once_a_day_with_retries_and_a_dead_letter_queue(
    cfn_template: Template,
) -> None:
    # Given
    schedules = {
        _target(s["Properties"]["Target"]["Arn"]): s["Properties"]
        for s in _resources(cfn_template, "AWS::Scheduler::Schedule").values()
    }

    # When
    learn = schedules["LearnThresholdsFunction"]
    digest = schedules["SendOpsDigestFunction"]

    # Then: at a fixed hour (02:00 in India) and at the deployment's chosen one
    assert learn["ScheduleExpression"] == "cron(30 20 * * ? *)"
    assert digest["ScheduleExpression"] == {"Ref": "OpsDigestSchedule"}
    assert cfn_template["Parameters"]["OpsDigestSchedule"]["Default"] == "cron(30 12 * * ? *)"
    for properties in (learn, digest):
        target = properties["Target"]
        assert _target(target["DeadLetterConfig"]["Arn"]) == "DelayJobsDeadLetterQueue"
        assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2
        assert _target(target["RoleArn"]) == "DelayJobsScheduleRole"


def test_the_event_log_indexes_only_changes_with_scans_and_projects_only_them(
    cfn_template: Template,
) -> None:
    # Given
    properties = cfn_template["Resources"]["EventLogTable"]["Properties"]

    # When
    (index,) = properties["GlobalSecondaryIndexes"]

    # Then: a sparse index (learn_key is only on changes with carrier-timed scans)
    assert index["IndexName"] == "LearnIndex"
    assert index["KeySchema"] == [
        {"AttributeName": "learn_key", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["scans"]}


def test_the_ops_digest_queue_collects_delay_events_for_a_day_and_more(
    cfn_template: Template,
) -> None:
    # Given
    resources = cfn_template["Resources"]

    # When
    queue = resources["OpsDigestQueue"]["Properties"]
    subscription = resources["OpsDigestSubscription"]["Properties"]
    consumer = resources["SendOpsDigestFunction"]["Properties"]

    # Then: a digest that failed a day still has its cases; a run's messages stay hidden
    assert queue["MessageRetentionPeriod"] >= 2 * 24 * 3600
    assert queue["VisibilityTimeout"] >= 6 * consumer["Timeout"]
    assert subscription["FilterPolicy"] == {
        "event_type": [
            "shipment.stuck",
            "shipment.unstuck",
            "shipment.sla_breached",
            "shipment.delay_predicted",
        ]
    }
