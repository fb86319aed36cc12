"""template.yaml's operations: nothing fails silently, and someone hears about it.

Read from the translated template: moto's CloudFormation creates no alarms, event invoke
configs, subscriptions or queue policies, and drops a log group's key.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.infra.test_template import (
    ACCOUNT,
    REGION,
    ROOT,
    Template,
    _resources,
    _target,
)
from trackwatch_cli.cfn_template import load_template, translate

DAY_MS = 24 * 3600 * 1000

#: Services that invoke a function asynchronously (Lambda retries, then drops the event).
ASYNC_PRINCIPALS = {
    "events.amazonaws.com",
    "sns.amazonaws.com",
    "s3.amazonaws.com",
    "ses.amazonaws.com",
    "iot.amazonaws.com",
    "logs.amazonaws.com",
}

#: What an access-log line may contain: who called which route, and how it went. Not the
#: path (it carries waybills) and nothing of the request line or its query string, which can
#: carry credentials.
ACCESS_LOG_VARIABLES = {
    "$context.requestId",
    "$context.requestTimeEpoch",
    "$context.httpMethod",
    "$context.routeKey",
    "$context.status",
    "$context.protocol",
    "$context.responseLength",
    "$context.responseLatency",
    "$context.integrationStatus",
    "$context.integrationLatency",
    "$context.integrationErrorMessage",
    "$context.error.message",
    "$context.identity.userArn",
    "$context.identity.sourceIp",
}


@pytest.fixture(scope="module")
def cfn_template() -> Template:
    return translate(load_template(ROOT / "template.yaml"), REGION, ACCOUNT)


def _alarms(template: Template) -> list[Template]:
    return [
        alarm["Properties"] for alarm in _resources(template, "AWS::CloudWatch::Alarm").values()
    ]


def _alarmed_queues(template: Template) -> set[str | None]:
    """Queues with an alarm that fires on the first visible message."""
    return {
        _target(alarm["Dimensions"][0]["Value"])
        for alarm in _alarms(template)
        if alarm["Namespace"] == "AWS/SQS"
        and alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
        and alarm["Threshold"] == 0
        and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    }


def _function_alarms(template: Template, metric: str) -> dict[str | None, Template]:
    return {
        _target(alarm["Dimensions"][0]["Value"]): alarm
        for alarm in _alarms(template)
        if alarm["Namespace"] == "AWS/Lambda"
        and alarm["MetricName"] == metric
        and [d["Name"] for d in alarm["Dimensions"]] == ["FunctionName"]
    }


def _async_invoked(template: Template) -> set[str | None]:
    """Functions something invokes asynchronously: schedules, rules, SNS, other services."""
    invoked: set[str | None] = set()
    for schedule in _resources(template, "AWS::Scheduler::Schedule").values():
        invoked.add(_target(schedule["Properties"]["Target"]["Arn"]))
    for rule in _resources(template, "AWS::Events::Rule").values():
        invoked.update(_target(t["Arn"]) for t in rule["Properties"].get("Targets", []))
    for subscription in _resources(template, "AWS::SNS::Subscription").values():
        if subscription["Properties"]["Protocol"] == "lambda":
            invoked.add(_target(subscription["Properties"]["Endpoint"]))
    for permission in _resources(template, "AWS::Lambda::Permission").values():
        if permission["Properties"]["Principal"] in ASYNC_PRINCIPALS:
            invoked.add(_target(permission["Properties"]["FunctionName"]))
    functions = _resources(template, "AWS::Lambda::Function")
    return {function for function in invoked if function in functions}


# --- failures go somewhere --------------------------------------------------------------


def test_every_async_invoked_function_sends_failures_to_an_alarmed_queue(
    cfn_template: Template,
) -> None:
    # Given
    invoked = _async_invoked(cfn_template)
    configs = {
        _target(config["Properties"]["FunctionName"]): config["Properties"]
        for config in _resources(cfn_template, "AWS::Lambda::EventInvokeConfig").values()
    }

    # When
    destinations = {
        function: _target(
            configs.get(function, {})
            .get("DestinationConfig", {})
            .get("OnFailure", {})
            .get("Destination")
        )
        for function in invoked
    }

    # Then: the scheduled ones (EventBridge Scheduler: the dispatcher, change capture, the
    # daily delay jobs); a run that raises is not dropped
    assert invoked == {
        "DispatchPollsFunction",
        "PollChangeFeedFunction",
        "CoalesceHintsFunction",
        "LearnThresholdsFunction",
        "SendOpsDigestFunction",
    }
    assert destinations == {
        "DispatchPollsFunction": "DispatchDeadLetterQueue",
        "PollChangeFeedFunction": "ChangeCaptureDeadLetterQueue",
        "CoalesceHintsFunction": "ChangeCaptureDeadLetterQueue",
        "LearnThresholdsFunction": "DelayJobsDeadLetterQueue",
        "SendOpsDigestFunction": "DelayJobsDeadLetterQueue",
    }
    for function in invoked:
        assert configs[function]["Qualifier"] == "$LATEST", function
    assert set(destinations.values()) <= _alarmed_queues(cfn_template)


def test_every_schedule_retries_and_sends_what_it_cannot_deliver_to_an_alarmed_queue(
    cfn_template: Template,
) -> None:
    # Given
    schedules = _resources(cfn_template, "AWS::Scheduler::Schedule")

    # When
    dead_letters = {
        _target(schedule["Properties"]["Target"]["Arn"]): _target(
            schedule["Properties"]["Target"]["DeadLetterConfig"]["Arn"]
        )
        for schedule in schedules.values()
    }

    # Then
    assert set(dead_letters) == {
        "DispatchPollsFunction",
        "PollChangeFeedFunction",
        "CoalesceHintsFunction",
        "LearnThresholdsFunction",
        "SendOpsDigestFunction",
    }
    assert set(dead_letters.values()) <= _alarmed_queues(cfn_template)
    for schedule in schedules.values():
        assert schedule["Properties"]["Target"]["RetryPolicy"]["MaximumRetryAttempts"] >= 1


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_every_function_has_an_alarm_on_its_errors_and_throttles(
    cfn_template: Template, metric: str
) -> None:
    # Given
    functions = set(_resources(cfn_template, "AWS::Lambda::Function"))

    # When
    alarms = _function_alarms(cfn_template, metric)

    # Then: the first one in five minutes
    assert set(alarms) == functions
    for function, alarm in alarms.items():
        assert alarm["Statistic"] == "Sum", function
        assert alarm["Threshold"] == 0, function
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold", function
        assert alarm["Period"] * alarm["EvaluationPeriods"] <= 300, function


def test_stream_consumers_are_alarmed_well_before_records_expire(cfn_template: Template) -> None:
    # Given: a DynamoDB stream keeps a record for 24 hours
    stream_consumers = {
        _target(mapping["Properties"]["FunctionName"])
        for mapping in _resources(cfn_template, "AWS::Lambda::EventSourceMapping").values()
        if mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][1] == "StreamArn"
    }

    # When
    alarms = _function_alarms(cfn_template, "IteratorAge")

    # Then: fired within the first hour of falling behind, leaving most of the day to act
    assert stream_consumers == {"PublishEventsFunction", "RollUpOrdersFunction"}
    assert set(alarms) == stream_consumers
    for function, alarm in alarms.items():
        fires_after_ms = alarm["Threshold"] + alarm["Period"] * alarm["EvaluationPeriods"] * 1000
        assert alarm["Statistic"] == "Maximum", function
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold", function
        assert fires_after_ms < DAY_MS, function
        assert fires_after_ms <= 3600 * 1000, function


def test_every_queue_subscription_redrives_to_an_alarmed_queue_sns_may_write(
    cfn_template: Template,
) -> None:
    # Given
    subscriptions = {
        name: subscription["Properties"]
        for name, subscription in _resources(cfn_template, "AWS::SNS::Subscription").items()
        if subscription["Properties"]["Protocol"] == "sqs"
    }
    policies = [
        policy["Properties"]
        for policy in _resources(cfn_template, "AWS::SQS::QueuePolicy").values()
    ]

    # When
    dead_letter_queues = {
        name: _target(properties.get("RedrivePolicy", {}).get("deadLetterTargetArn"))
        for name, properties in subscriptions.items()
    }

    # Then: one each, never the subscriber queue itself, alarmed, and open to the topic only
    assert set(subscriptions) == {
        "SmsSubscription",
        "WhatsAppSubscription",
        "EmailSubscription",
        "AllEventsSubscription",
        "WhatsAppEventsSubscription",
        "OpsDigestSubscription",
    }
    assert None not in dead_letter_queues.values()
    assert len(set(dead_letter_queues.values())) == len(subscriptions)
    assert set(dead_letter_queues.values()) <= _alarmed_queues(cfn_template)
    for name, queue in dead_letter_queues.items():
        properties = subscriptions[name]
        assert queue != _target(properties["Endpoint"]), name
        assert cfn_template["Resources"][queue]["Type"] == "AWS::SQS::Queue", name
        assert cfn_template["Resources"][queue]["Properties"]["MessageRetentionPeriod"] == 1209600
        (policy,) = [p for p in policies if [_target(q) for q in p["Queues"]] == [queue]]
        (statement,) = policy["PolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Service": "sns.amazonaws.com"}, name
        assert statement["Action"] == "sqs:SendMessage", name
        assert _target(statement["Resource"]) == queue, name
        assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == properties["TopicArn"]


def test_the_only_subscription_without_a_dead_letter_queue_is_the_alarm_e_mail(
    cfn_template: Template,
) -> None:
    # When
    without = {
        name: subscription
        for name, subscription in _resources(cfn_template, "AWS::SNS::Subscription").items()
        if "RedrivePolicy" not in subscription["Properties"]
    }

    # Then: its undelivered alarms could only be reported through the same topic
    assert set(without) == {"AlarmEmailSubscription"}
    assert _target(without["AlarmEmailSubscription"]["Properties"]["TopicArn"]) == "AlarmTopic"


# --- someone hears about it ---------------------------------------------------------------


def test_every_alarm_notifies_the_alarm_topic(cfn_template: Template) -> None:
    # When
    actions = {json.dumps(alarm["AlarmActions"]) for alarm in _alarms(cfn_template)}

    # Then
    assert actions == {json.dumps([{"Ref": "AlarmTopic"}])}


def test_an_empty_alarm_email_is_a_deploy_time_warning(cfn_template: Template) -> None:
    # Given
    parameter = cfn_template["Parameters"]["AlarmEmail"]
    conditions = cfn_template["Conditions"]
    resources = cfn_template["Resources"]

    # When
    warning = cfn_template["Outputs"]["AlarmEmailMissing"]
    interface = cfn_template["Metadata"]["AWS::CloudFormation::Interface"]

    # Then: empty subscribes no one, and the deployment says so in its outputs
    assert parameter["Default"] == ""
    assert "no one" in parameter["Description"]
    assert conditions[warning["Condition"]] == {"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}
    assert conditions[resources["AlarmEmailSubscription"]["Condition"]] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]
    }
    assert "Export" not in warning
    # `sam deploy --guided` asks in the order of template.yaml; the console, the interface's
    assert next(iter(load_template(ROOT / "template.yaml")["Parameters"])) == "AlarmEmail"
    assert interface["ParameterGroups"][0]["Parameters"][0] == "AlarmEmail"


# --- logs -------------------------------------------------------------------------------


def _access_logs(template: Template) -> dict[str, Template]:
    """Each HTTP API's access-log settings, by its stage."""
    stages = _resources(template, "AWS::ApiGatewayV2::Stage")
    return {name: stage["Properties"]["AccessLogSettings"] for name, stage in stages.items()}


def test_there_are_two_apis_the_shipments_and_the_webhooks(cfn_template: Template) -> None:
    assert set(_resources(cfn_template, "AWS::ApiGatewayV2::Api")) == {
        "ShipmentsHttpApi",
        "WebhooksHttpApi",
    }
    assert len(_access_logs(cfn_template)) == 2


@pytest.mark.parametrize("api", ["ShipmentsHttpApi", "WebhooksHttpApi"])
def test_api_access_log_goes_to_a_group_with_retention(cfn_template: Template, api: str) -> None:
    # Given
    settings = _access_logs(cfn_template)[f"{api}ApiGatewayDefaultStage"]

    # When
    destination = settings["DestinationArn"]["Fn::Sub"]
    (group,) = re.findall(r":log-group:\$\{(\w+)\}$", destination)

    # Then
    log_group = cfn_template["Resources"][group]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


@pytest.mark.parametrize("api", ["ShipmentsHttpApi", "WebhooksHttpApi"])
def test_api_access_log_leaves_out_the_path_and_query_string(
    cfn_template: Template, api: str
) -> None:
    # Given: the webhook's key may ride in its query string
    settings = _access_logs(cfn_template)[f"{api}ApiGatewayDefaultStage"]

    # When
    line: dict[str, Any] = json.loads(settings["Format"])

    # Then: JSON, the route key instead of the path, nothing of the request's own text
    assert set(line.values()) <= ACCESS_LOG_VARIABLES
    assert "$context.routeKey" in line.values()
    assert not re.search(r"querystring|\$context\.path|\$request|\$input", settings["Format"])


def test_every_log_group_keeps_its_logs_for_a_while_under_the_logs_key(
    cfn_template: Template,
) -> None:
    # Given
    groups = _resources(cfn_template, "AWS::Logs::LogGroup")
    key_policy = cfn_template["Resources"]["LogsKey"]["Properties"]["KeyPolicy"]

    # When
    (logs_statement,) = [
        statement
        for statement in key_policy["Statement"]
        if statement["Principal"] == {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}}
    ]
    allowed_groups = {
        arn["Fn::Sub"].split(":log-group:")[1]
        for arn in logs_statement["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
    }

    # Then: the key serves exactly these groups (a new group must be added, or creating it fails)
    for name, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["LogsKey", "Arn"]}, name
    assert allowed_groups == {
        group["Properties"]["LogGroupName"]["Fn::Sub"] for group in groups.values()
    }


def test_a_failing_change_feed_is_alarmed_and_so_are_hints_that_wait(
    cfn_template: Template,
) -> None:
    # When
    alarms = _alarms(cfn_template)
    (fallback,) = [a for a in alarms if a["MetricName"] == "ChangeFeedFallback"]
    waiting = {
        _target(a["Dimensions"][0]["Value"]): a
        for a in alarms
        if a["MetricName"] == "ApproximateAgeOfOldestMessage"
    }

    # Then: the fallback within a quarter of an hour; hints older than ten minutes
    assert fallback["Namespace"] == "Trackwatch"
    assert fallback["Statistic"] == "Maximum"
    assert fallback["Threshold"] == 0
    assert fallback["Period"] * fallback["EvaluationPeriods"] <= 900
    assert set(waiting) == {"PollQueue", "HintQueue"}
    assert waiting["HintQueue"]["Threshold"] <= 600
