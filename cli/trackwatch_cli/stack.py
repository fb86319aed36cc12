"""Deploy template.yaml into an AWS emulator (moto) and read back its wiring.

The local runtime and the integration tests never describe the system a second
time: they create it from the template, then ask the emulator what was made —
function settings, event sources, subscriptions — and drive the handlers from
that. What moto's CloudFormation skips is created here from the translated
template: SNS subscriptions (with their filter policies). Queue policies are
skipped (moto does not enforce them). Event source mappings are taken out of
the template before it is created — moto would try to run the functions in
Docker on every message and every table write — and kept as data: the local
runtime invokes the functions with their batch sizes and response types.
"""

from __future__ import annotations

import io
import json
import logging
import re
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trackwatch.adapters.aws import AwsClients
from trackwatch_cli.cfn_template import LOCAL_CODE_BUCKET, load_template, translate

ACCOUNT = "123456789012"  # moto's default account


class StackError(RuntimeError):
    """The template could not be deployed into the emulator; the message says why."""


@dataclass(frozen=True)
class FunctionSpec:
    """One function as the template defines it."""

    logical_id: str
    physical_name: str
    handler: str
    code_dir: Path
    environment: dict[str, str]
    timeout_s: int


@dataclass(frozen=True)
class EventSource:
    """An event source mapping: which function consumes which queue or stream, and how."""

    function: str
    kind: str  # "sqs" or "dynamodb"
    source_arn: str
    batch_size: int
    report_batch_item_failures: bool
    maximum_concurrency: int | None = None
    queue_url: str | None = None
    #: MaximumBatchingWindowInSeconds: how long a batch may wait to fill.
    batching_window_s: float = 0.0


@dataclass(frozen=True)
class Schedule:
    """A schedule that invokes a function."""

    function: str
    expression: str
    input: dict[str, Any] = field(default_factory=dict)
    #: False for a schedule created DISABLED (its State, as the parameters decide it).
    enabled: bool = True

    @property
    def every_minutes(self) -> int:
        """The period of a `rate(N minute[s]|hour[s])` expression, in minutes (else 1)."""
        match = re.fullmatch(r"rate\((\d+) (minute|hour)s?\)", self.expression.strip())
        if match is None:
            return 1
        return int(match[1]) * (60 if match[2] == "hour" else 1)

    def due_at(self, moment: datetime) -> bool:
        """Whether the schedule fires in the minute of `moment` (UTC): never when disabled;
        `rate(N unit)` every N minutes of the epoch, `cron(...)` as EventBridge Scheduler
        reads its six fields."""
        return self.enabled and schedule_due(self.expression, moment)


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_MINUTES = {"minute": 1, "hour": 60, "day": 1440}
_WEEKDAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


def schedule_due(expression: str, moment: datetime) -> bool:
    """Whether a Scheduler expression fires in the minute of `moment`; an expression this
    reader does not know never fires (and says so when the stack is read)."""
    utc = moment.astimezone(UTC)
    rate = _RATE.match(expression)
    if rate:
        every = int(rate[1]) * _UNIT_MINUTES[rate[2].rstrip("s")]
        return (int(utc.timestamp()) // 60) % every == 0
    if not (expression.startswith("cron(") and expression.endswith(")")):
        return False
    fields = expression[5:-1].split()
    if len(fields) != 6:
        return False
    minute, hour, day, month, weekday, year = fields
    # AWS numbers weekdays 1 (Sunday) to 7 (Saturday).
    sunday_first = utc.isoweekday() % 7 + 1
    return (
        _matches(minute, utc.minute)
        and _matches(hour, utc.hour)
        and _matches(day, utc.day)
        and _matches(month, utc.month)
        and _matches(weekday, sunday_first, _WEEKDAYS)
        and _matches(year, utc.year)
    )


def _matches(field_: str, value: int, names: dict[str, int] | None = None) -> bool:
    """One cron field: `*`, `?`, numbers, lists, ranges and `/` steps."""
    for part in field_.split(","):
        if part in ("*", "?"):
            return True
        base, _, step = part.partition("/")
        if base == "*":
            low, high = 0, 10_000
        else:
            first, _, last = base.partition("-")
            low = _cron_number(first, names)
            high = _cron_number(last, names) if last else (10_000 if step else low)
        if low <= value <= high and (value - low) % int(step or 1) == 0:
            return True
    return False


def _cron_number(text: str, names: dict[str, int] | None) -> int:
    """A cron field's number, or a name for one (MON)."""
    if names and text.upper() in names:
        return names[text.upper()]
    return int(text)


@dataclass(frozen=True)
class Route:
    """An HTTP API route: method and path template (`/shipments/{cp_id}`) to a function."""

    function: str
    method: str
    path: str


@dataclass
class DeployedStack:
    """What the template created in the emulator."""

    name: str
    region: str
    physical_ids: dict[str, str]
    outputs: dict[str, str]
    functions: dict[str, FunctionSpec]
    event_sources: list[EventSource]
    schedules: list[Schedule]
    template: dict[str, Any]
    routes: list[Route] = field(default_factory=list)

    def queue_url(self, logical_id: str) -> str:
        """The URL of the queue `logical_id`."""
        return self.physical_ids[logical_id]

    def sources_of(self, function: str) -> list[EventSource]:
        """The event sources feeding `function`."""
        return [s for s in self.event_sources if s.function == function]


def _zip() -> bytes:
    # The emulator only needs some code to exist; the runtime loads the real code from disk.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    return None\n")
    return buffer.getvalue()


def deploy(
    template_path: Path,
    clients: AwsClients,
    *,
    stack_name: str = "trackwatch-local",
    parameters: dict[str, str] | None = None,
) -> DeployedStack:
    """Translate and create the stack in the emulator `clients` point at; create what the
    emulator skips; read back the wiring."""
    region = clients.region or "us-east-1"
    try:
        sam = load_template(template_path)
    except (OSError, ValueError) as exc:
        raise StackError(f"cannot read template {template_path}: {exc}") from exc
    cfn = translate(sam, region, ACCOUNT, parameter_values=dict(parameters or {}))
    resources: dict[str, Any] = cfn["Resources"]
    mappings = {
        logical_id: resources.pop(logical_id)["Properties"]
        for logical_id in [
            k for k, r in resources.items() if r.get("Type") == "AWS::Lambda::EventSourceMapping"
        ]
    }

    s3 = clients.client("s3")
    s3.create_bucket(Bucket=LOCAL_CODE_BUCKET)
    for resource in resources.values():
        props = resource.get("Properties", {})
        location = props.get("Code") or props.get("Content") or {}
        if location.get("S3Bucket") == LOCAL_CODE_BUCKET:
            s3.put_object(Bucket=LOCAL_CODE_BUCKET, Key=location["S3Key"], Body=_zip())

    cloudformation = clients.client("cloudformation")
    # moto logs a warning per resource type it skips; what it skips is handled below.
    logging.getLogger("moto.cloudformation.parsing").setLevel(logging.ERROR)
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(cfn),
        Parameters=[
            {"ParameterKey": k, "ParameterValue": str(v)} for k, v in (parameters or {}).items()
        ],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    description = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    if description["StackStatus"] != "CREATE_COMPLETE":
        raise StackError(
            f"stack {stack_name}: {description['StackStatus']} "
            f"{description.get('StackStatusReason', '')}"
        )
    physical_ids: dict[str, str] = {}
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for summary in page["StackResourceSummaries"]:
            if summary.get("LogicalResourceId") and summary.get("PhysicalResourceId"):
                physical_ids[summary["LogicalResourceId"]] = summary["PhysicalResourceId"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}

    base = template_path.resolve().parent
    functions = _functions(resources, physical_ids, base, clients)
    values = {
        name: str(declared.get("Default", ""))
        for name, declared in cfn.get("Parameters", {}).items()
    }
    values.update({k: str(v) for k, v in (parameters or {}).items()})
    event_sources = _event_sources(mappings, physical_ids, clients, values)
    stack = DeployedStack(
        name=stack_name,
        region=region,
        physical_ids=physical_ids,
        outputs=outputs,
        functions=functions,
        event_sources=event_sources,
        schedules=_schedules(resources, _parameter_values(cfn, parameters), cfn),
        template=cfn,
        routes=_routes(sam),
    )
    _subscribe(stack, resources, clients)
    return stack


def _functions(
    resources: dict[str, Any], physical_ids: dict[str, str], base: Path, clients: AwsClients
) -> dict[str, FunctionSpec]:
    lambda_ = clients.client("lambda")
    functions: dict[str, FunctionSpec] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        props = resource["Properties"]
        name = physical_ids[logical_id]
        config = lambda_.get_function_configuration(FunctionName=name)
        functions[logical_id] = FunctionSpec(
            logical_id=logical_id,
            physical_name=name,
            handler=props["Handler"],
            code_dir=base / props["Code"]["S3Key"],
            # The emulator hands numbers back as numbers; Lambda's environment is strings.
            environment={
                k: str(v) for k, v in config.get("Environment", {}).get("Variables", {}).items()
            },
            timeout_s=int(props.get("Timeout", 3)),
        )
    return functions


def _number(value: Any, parameters: dict[str, str]) -> int | None:
    """A number in a mapping's properties: literal, or a Ref to a parameter."""
    if isinstance(value, dict) and "Ref" in value:
        value = parameters.get(value["Ref"])
    return None if value in (None, "") else int(value)


def _event_sources(
    mappings: dict[str, Any],
    physical_ids: dict[str, str],
    clients: AwsClients,
    parameters: dict[str, str],
) -> list[EventSource]:
    sources: list[EventSource] = []
    for props in mappings.values():
        function = props["FunctionName"]["Ref"]
        arn_ref = props["EventSourceArn"]["Fn::GetAtt"]
        logical_id, attribute = arn_ref
        if attribute == "StreamArn":
            table = clients.dynamodb.describe_table(TableName=physical_ids[logical_id])
            kind, arn, queue_url = "dynamodb", table["Table"]["LatestStreamArn"], None
        else:
            queue_url = physical_ids[logical_id]
            arn = clients.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            kind = "sqs"
        sources.append(
            EventSource(
                function=function,
                kind=kind,
                source_arn=arn,
                batch_size=int(props.get("BatchSize", 10 if kind == "sqs" else 100)),
                report_batch_item_failures="ReportBatchItemFailures"
                in props.get("FunctionResponseTypes", []),
                maximum_concurrency=_number(
                    props.get("ScalingConfig", {}).get("MaximumConcurrency"), parameters
                ),
                queue_url=queue_url,
                batching_window_s=float(
                    _number(props.get("MaximumBatchingWindowInSeconds"), parameters) or 0
                ),
            )
        )
    return sources


def _routes(sam: dict[str, Any]) -> list[Route]:
    """The HttpApi events of the SAM template's functions (moto does not serve APIs)."""
    routes: list[Route] = []
    for logical_id, resource in sam.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event.get("Type") == "HttpApi":
                props = event.get("Properties", {})
                routes.append(
                    Route(logical_id, str(props.get("Method", "ANY")).upper(), props["Path"])
                )
    return routes


def _parameter_values(cfn: dict[str, Any], given: dict[str, str] | None) -> dict[str, str]:
    """Every parameter's value: as given, else its default."""
    values = {
        name: str(declared.get("Default", ""))
        for name, declared in cfn.get("Parameters", {}).items()
    }
    values.update({k: str(v) for k, v in (given or {}).items()})
    return values


def _evaluate(value: Any, parameters: dict[str, str], conditions: dict[str, Any]) -> Any:
    """The few intrinsics a schedule's properties use, given the parameters: Ref to a
    parameter, Fn::Sub of parameters, Fn::If on a condition (Fn::Equals, Fn::Not)."""
    if not isinstance(value, dict):
        return value
    if "Ref" in value and value["Ref"] in parameters:
        return parameters[value["Ref"]]
    if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return re.sub(r"\$\{([^}]+)\}", lambda m: parameters.get(m[1], m[0]), value["Fn::Sub"])
    if "Fn::If" in value:
        name, then, otherwise = value["Fn::If"]
        return _evaluate(
            then if _holds(conditions[name], parameters, conditions) else otherwise,
            parameters,
            conditions,
        )
    return value


def _holds(condition: Any, parameters: dict[str, str], conditions: dict[str, Any]) -> bool:
    if "Fn::Equals" in condition:
        left, right = (_evaluate(v, parameters, conditions) for v in condition["Fn::Equals"])
        return str(left) == str(right)
    if "Fn::Not" in condition:
        return not _holds(condition["Fn::Not"][0], parameters, conditions)
    if "Condition" in condition:
        return _holds(conditions[condition["Condition"]], parameters, conditions)
    raise StackError(f"cannot evaluate the condition {condition!r}")


def _schedules(
    resources: dict[str, Any], parameters: dict[str, str], cfn: dict[str, Any]
) -> list[Schedule]:
    conditions = cfn.get("Conditions", {})
    schedules: list[Schedule] = []
    for resource in resources.values():
        if resource.get("Type") != "AWS::Scheduler::Schedule":
            continue
        props = resource["Properties"]
        target = props["Target"]
        arn = target["Arn"]
        function = arn["Fn::GetAtt"][0] if isinstance(arn, dict) else str(arn)
        raw_input = target.get("Input")
        state = _evaluate(props.get("State", "ENABLED"), parameters, conditions)
        schedules.append(
            Schedule(
                function=function,
                expression=str(_evaluate(props["ScheduleExpression"], parameters, conditions)),
                input=json.loads(raw_input) if isinstance(raw_input, str) else {},
                enabled=state != "DISABLED",
            )
        )
    return schedules


def _resolve(value: Any, stack: DeployedStack, clients: AwsClients) -> str:
    """The few intrinsic functions a subscription uses: Ref and GetAtt <queue>.Arn."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return stack.physical_ids[value["Ref"]]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        if attribute == "Arn":
            attributes = clients.sqs.get_queue_attributes(
                QueueUrl=stack.physical_ids[logical_id], AttributeNames=["QueueArn"]
            )
            return attributes["Attributes"]["QueueArn"]
    raise StackError(f"cannot resolve {value!r} in a subscription")


def _subscribe(stack: DeployedStack, resources: dict[str, Any], clients: AwsClients) -> None:
    sns = clients.sns
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::SNS::Subscription":
            continue
        props = resource["Properties"]
        if props.get("Protocol") != "sqs":
            # Only queue subscriptions mean something locally (alarm e-mails do not).
            continue
        attributes: dict[str, str] = {}
        if props.get("RawMessageDelivery") in (True, "true", "True"):
            attributes["RawMessageDelivery"] = "true"
        if "FilterPolicy" in props:
            policy = props["FilterPolicy"]
            attributes["FilterPolicy"] = policy if isinstance(policy, str) else json.dumps(policy)
            attributes["FilterPolicyScope"] = props.get("FilterPolicyScope", "MessageAttributes")
        answer = sns.subscribe(
            TopicArn=_resolve(props["TopicArn"], stack, clients),
            Protocol=props["Protocol"],
            Endpoint=_resolve(props["Endpoint"], stack, clients),
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )
        stack.physical_ids[logical_id] = answer["SubscriptionArn"]
