"""template.yaml's permissions, read from the *translated* template: what each function may do.

The SAM transform is where grants get wider than they look (policy templates expand to
`index/*`, generated roles carry AWS managed policies on "*"), so every assertion here reads
the CloudFormation that AWS would deploy. Resources are compared as patterns: intrinsic
references become `{Name}` placeholders (`{ShipmentsTable.Arn}`, `{AWS::Region}`), and a `*`
or `?` left in a pattern is a wildcard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from tests.infra.test_template import (
    ACCOUNT,
    REGION,
    ROOT,
    Template,
    _branches,
    _resources,
    _statements,
    _target,
)
from trackwatch_cli.cfn_template import load_template, translate

WILDCARD = re.compile(r"[*?]")
LOG_STREAMS = re.escape("arn:{AWS::Partition}:logs:{AWS::Region}:{AWS::AccountId}:log-group:")
SECRET = re.escape("arn:{AWS::Partition}:secretsmanager:{AWS::Region}:{AWS::AccountId}:secret:")


@dataclass(frozen=True)
class Allowed:
    """A wildcard the template may keep, and the AWS rule that makes it necessary."""

    why: str
    #: The statement's actions must all be in here (None: any action).
    actions: frozenset[str] | None
    #: A regular expression the wildcard resource pattern must match in full.
    resource: str
    #: The policy's holder: an IAM role's statement or a KMS key policy's.
    holder: str = "AWS::IAM::Role"
    element: str = "Resource"


#: Every wildcard resource the template may grant on. Anything else fails the test.
ALLOWED_WILDCARD_RESOURCES = [
    Allowed(
        why="X-Ray's PutTraceSegments and PutTelemetryRecords have no resource type in IAM: "
        "they can only be granted on '*' (the functions trace when TracingMode is Active).",
        actions=frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"}),
        resource=r"\*",
    ),
    Allowed(
        why="dynamodb:ListStreams has no resource type in IAM, so only '*' grants it; Lambda's "
        "DynamoDB event source requires it next to the stream-scoped read actions. It lists "
        "stream ARNs, never records.",
        actions=frozenset({"dynamodb:ListStreams"}),
        resource=r"\*",
    ),
    Allowed(
        why="Lambda names each log stream when it starts an execution environment, so the "
        "streams of the function's own log group can only be named by 'log-stream:*'.",
        actions=frozenset({"logs:CreateLogStream", "logs:PutLogEvents"}),
        resource=LOG_STREAMS + r"\{\w+LogGroup\}:log-stream:\*",
    ),
    Allowed(
        why="A secret created outside the stack, known by name only (its ARN parameter left "
        "empty): Secrets Manager appends '-' and six random characters to the name, and six "
        "'?' match exactly those, so only the secret with exactly this name matches.",
        actions=frozenset({"secretsmanager:GetSecretValue"}),
        resource=SECRET + r"\{(ClickpostSecretName|SmtpSecretName|WebhookSecretName)\}-\?{6}",
    ),
    Allowed(
        why="An SMS published to a phone number has no resource ARN, so IAM authorises it on "
        "'*'; NotResource on every SNS ARN (topics, endpoints, any region or account) leaves "
        "phone numbers and nothing else.",
        actions=frozenset({"sns:Publish"}),
        resource=re.escape("arn:{AWS::Partition}:sns:*:*:*"),
        element="NotResource",
    ),
    Allowed(
        why="In a KMS key policy the resource can only be '*', which means the key the policy "
        "is attached to.",
        actions=None,
        resource=r"\*",
        holder="AWS::KMS::Key",
    ),
]

#: Every wildcard action the template may grant, with its holder and principal.
ALLOWED_WILDCARD_ACTIONS = {
    ("AWS::KMS::Key", "kms:*", "account root"): "The default key policy: it lets IAM policies "
    "in this account govern the key; without it the key could become unmanageable.",
}

#: What each function's role may do to the shipments table (its items, index and stream),
#: as its code does it (layers/common/trackwatch/adapters/shipments_table.py, notify_table.py).
SHIPMENTS_TABLE_GRANTS = {
    # ShipmentsTable.due() Queries the DueIndex; active() (scope "all") Scans it, keys only.
    "DispatchPollsFunction": {
        "{ShipmentsTable.Arn}/index/DueIndex": {"dynamodb:Query", "dynamodb:Scan"},
    },
    # get_many() (BatchGetItem) and commit() (one conditional UpdateItem per change).
    "PollShipmentsFunction": {
        "{ShipmentsTable.Arn}": {"dynamodb:BatchGetItem", "dynamodb:UpdateItem"},
    },
    # The stream event source.
    "PublishEventsFunction": {
        "{ShipmentsTable.StreamArn}": {
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
        },
    },
    # The roll-up: a second stream event source.
    "RollUpOrdersFunction": {
        "{ShipmentsTable.StreamArn}": {
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
        },
    },
    # Registration: get_many(), get(), save_registration() (PutItem or UpdateItem);
    # stop: commit() (UpdateItem).
    "ShipmentsApiFunction": {
        "{ShipmentsTable.Arn}": {
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
        },
    },
    "IngestShipmentsFunction": {
        "{ShipmentsTable.Arn}": {
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
        },
    },
    # NotifyTable.recipient(): the contact, in one BatchGetItem with the channels' memory
    # (NotificationsTable); a send never writes the shipment.
    "NotifySmsFunction": {"{ShipmentsTable.Arn}": {"dynamodb:BatchGetItem"}},
    "NotifyEmailFunction": {"{ShipmentsTable.Arn}": {"dynamodb:BatchGetItem"}},
    "NotifyWhatsAppFunction": {"{ShipmentsTable.Arn}": {"dynamodb:BatchGetItem"}},
    # A number not on WhatsApp is remembered in WhatsApp's own memory of the shipment.
    "RecordWhatsAppEventsFunction": {},
    # The coalescer reads the hinted shipments (get_many); with AutoRegisterFromWebhooks it
    # registers unknown ones as the API does (the grant is conditional: see its own test).
    "CoalesceHintsFunction": {
        "{ShipmentsTable.Arn}": {
            "dynamodb:BatchGetItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
        },
    },
    # Change capture's other functions never touch shipments.
    "PollChangeFeedFunction": {},
    "ReceiveWebhooksFunction": {},
}

#: A value each parameter that ends up in an IAM resource may take (its default, if any).
PARAMETER_EXAMPLES = {
    "ClickpostSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:cp-AbC123",
    "SmtpSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:smtp-AbC123",
    "SesIdentityArn": "arn:aws:ses:us-east-1:123456789012:identity/example.com",
    "WebhookSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:hook-AbC123",
    "SmsOriginationIdentityArn": "arn:aws:sms-voice:ap-south-1:123456789012:pool/pool-abc123",
    "WhatsAppPhoneNumberId": "0123456789abcdef0123456789abcdef",
}


# --- fixtures and helpers ----------------------------------------------------------


@pytest.fixture(scope="module")
def cfn_template() -> Template:
    return translate(load_template(ROOT / "template.yaml"), REGION, ACCOUNT)


def _patterns(value: Any) -> list[str]:
    """A resource value as text, intrinsic references as `{Name}`; one per Fn::If branch."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [pattern for item in value for pattern in _patterns(item)]
    if isinstance(value, dict) and "Fn::If" in value:
        return [pattern for branch in _branches(value) for pattern in _patterns(branch)]
    if isinstance(value, dict) and "Ref" in value:
        return [f"{{{value['Ref']}}}"]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return ["{" + ".".join(value["Fn::GetAtt"]) + "}"]
    if isinstance(value, dict) and "Fn::Sub" in value:
        text, variables = (
            (value["Fn::Sub"], {})
            if isinstance(value["Fn::Sub"], str)
            else (value["Fn::Sub"][0], value["Fn::Sub"][1])
        )
        substituted = re.sub(
            r"\$\{([^}]+)\}",
            lambda m: _single(variables[m[1]]) if m[1] in variables else f"{{{m[1]}}}",
            text,
        )
        return [substituted]
    raise AssertionError(f"no pattern for {value!r}: teach _patterns this intrinsic")


def _single(value: Any) -> str:
    (pattern,) = _patterns(value)
    return pattern


def _actions(statement: Template) -> list[str]:
    action = statement.get("Action", [])
    return [action] if isinstance(action, str) else list(action)


def _every_statement(template: Template) -> list[tuple[str, str, Template]]:
    """(holder's logical id, holder's type, statement) for every policy in the template."""
    return [
        (owner, resource["Type"], statement)
        for owner, resource in template["Resources"].items()
        for _, statement in _statements(resource.get("Properties", {}), owner)
    ]


def _principal(statement: Template) -> str:
    principal = statement.get("Principal")
    aws = principal.get("AWS") if isinstance(principal, dict) else None
    if isinstance(aws, dict) and str(aws.get("Fn::Sub", "")).endswith(":root"):
        return "account root"
    return repr(principal)


def _role_of(template: Template, function: str) -> str:
    role = _target(template["Resources"][function]["Properties"]["Role"])
    assert role is not None, function
    return role


def _grants(template: Template, role: str) -> list[tuple[str, set[str]]]:
    """(resource pattern, actions) for each Allow statement of `role`'s policies."""
    policies = template["Resources"][role]["Properties"].get("Policies", [])
    return [
        (pattern, set(_actions(statement)))
        for _, statement in _statements(policies, role)
        if statement["Effect"] == "Allow"
        for pattern in _patterns(statement.get("Resource", []))
    ]


# --- wildcards -----------------------------------------------------------------------


def _wildcard_resources(template: Template) -> list[tuple[str, str, Template, str, str]]:
    """Every (owner, holder type, statement, element, pattern) naming a wildcard resource."""
    found = []
    for owner, holder, statement in _every_statement(template):
        for element in ("Resource", "NotResource"):
            for pattern in _patterns(statement.get(element, [])):
                # NotResource always reaches "everything else", a wildcard in itself.
                if element == "NotResource" or WILDCARD.search(pattern):
                    found.append((owner, holder, statement, element, pattern))
    return found


def _allowance(holder: str, statement: Template, element: str, pattern: str) -> Allowed | None:
    for allowed in ALLOWED_WILDCARD_RESOURCES:
        if (
            allowed.holder == holder
            and allowed.element == element
            and (allowed.actions is None or set(_actions(statement)) <= allowed.actions)
            and re.fullmatch(allowed.resource, pattern)
        ):
            return allowed
    return None


def test_no_statement_grants_a_wildcard_resource_outside_the_allow_list(
    cfn_template: Template,
) -> None:
    # Given
    wildcards = _wildcard_resources(cfn_template)

    # When
    refused = [
        (owner, _actions(statement), element, pattern)
        for owner, holder, statement, element, pattern in wildcards
        if _allowance(holder, statement, element, pattern) is None
    ]

    # Then
    assert wildcards, "expected the allow-listed wildcards (X-Ray, log streams) to be found"
    assert refused == []


def test_every_allow_list_entry_is_still_needed(cfn_template: Template) -> None:
    # Given
    wildcards = _wildcard_resources(cfn_template)

    # When
    used = {
        id(allowance)
        for _, holder, statement, element, pattern in wildcards
        if (allowance := _allowance(holder, statement, element, pattern)) is not None
    }

    # Then: an entry nothing needs any more is a door left open for the next change
    assert [a.why for a in ALLOWED_WILDCARD_RESOURCES if id(a) not in used] == []


def test_no_statement_grants_a_wildcard_action_outside_the_allow_list(
    cfn_template: Template,
) -> None:
    # Given
    statements = _every_statement(cfn_template)

    # When
    wildcards = {
        (holder, action, _principal(statement))
        for _, holder, statement in statements
        for action in _actions(statement)
        if WILDCARD.search(action)
    }

    # Then
    assert all("NotAction" not in statement for _, _, statement in statements)
    assert wildcards == set(ALLOWED_WILDCARD_ACTIONS)


def test_no_resource_policy_is_open_to_everyone(cfn_template: Template) -> None:
    # When
    open_to_all = [
        owner
        for owner, _, statement in _every_statement(cfn_template)
        if statement.get("Principal") in ("*", {"AWS": "*"})
    ]

    # Then
    assert open_to_all == []


def test_no_role_carries_a_managed_policy(cfn_template: Template) -> None:
    # Given: AWS managed policies are not in the template, so their "*" grants are unseen
    roles = _resources(cfn_template, "AWS::IAM::Role")

    # When
    managed = {
        role: resource["Properties"]["ManagedPolicyArns"]
        for role, resource in roles.items()
        if resource["Properties"].get("ManagedPolicyArns")
    }

    # Then
    assert managed == {}


def test_parameters_that_name_resources_in_grants_cannot_carry_wildcards(
    cfn_template: Template,
) -> None:
    # Given
    parameters = cfn_template["Parameters"]
    named = {
        match
        for _, _, statement in _every_statement(cfn_template)
        for pattern in _patterns(statement.get("Resource", []))
        for match in re.findall(r"\{(\w+)\}", pattern)
        if match in parameters
    }

    # When
    accepts_wildcards = {
        name: probe
        for name in named
        for example in [parameters[name].get("Default") or PARAMETER_EXAMPLES[name]]
        for probe in (example + "*", "*" + example, example[:-1] + "?")
        if re.fullmatch(parameters[name]["AllowedPattern"], probe)
    }

    # Then
    assert named >= {
        "ClickpostSecretName",
        "ClickpostSecretArn",
        "SenderEmail",
        "SesIdentityArn",
        "SmsSenderId",
        "SmsOriginationIdentityArn",
        "WhatsAppPhoneNumberId",
    }
    assert accepts_wildcards == {}


# --- what each function may do -------------------------------------------------------


def test_every_function_has_a_role_of_its_own(cfn_template: Template) -> None:
    # Given
    functions = _resources(cfn_template, "AWS::Lambda::Function")

    # When
    roles = {function: _role_of(cfn_template, function) for function in functions}

    # Then
    assert len(set(roles.values())) == len(functions)
    for function, role in roles.items():
        assert cfn_template["Resources"][role]["Type"] == "AWS::IAM::Role", function


def _grants_on(
    cfn_template: Template, function: str, prefixes: str | tuple[str, ...]
) -> dict[str, set[str]]:
    """The actions the function's role is granted on resources whose pattern starts with
    one of `prefixes`, by pattern."""
    found: dict[str, set[str]] = {}
    for pattern, actions in _grants(cfn_template, _role_of(cfn_template, function)):
        if pattern.startswith(prefixes):
            found.setdefault(pattern, set()).update(actions)
    return found


@pytest.mark.parametrize("function", SHIPMENTS_TABLE_GRANTS)
def test_each_function_touches_the_shipments_table_only_as_its_code_does(
    cfn_template: Template, function: str
) -> None:
    # When
    on_shipments = _grants_on(cfn_template, function, "{ShipmentsTable")

    # Then
    assert on_shipments == SHIPMENTS_TABLE_GRANTS[function]


@pytest.mark.parametrize(
    "function", ["PollShipmentsFunction", "IngestShipmentsFunction", "ShipmentsApiFunction"]
)
def test_writers_cannot_delete_scan_or_batch_write_shipments(
    cfn_template: Template, function: str
) -> None:
    # Given
    grants = _grants(cfn_template, _role_of(cfn_template, function))

    # When
    forbidden = {
        (pattern, action)
        for pattern, actions in grants
        for action in actions
        if action in {"dynamodb:DeleteItem", "dynamodb:Scan", "dynamodb:BatchWriteItem"}
        and (pattern.startswith("{ShipmentsTable") or pattern == "*")
    }

    # Then
    assert forbidden == set()


def test_each_role_writes_logs_only_to_its_function_s_group(cfn_template: Template) -> None:
    # Given
    functions = _resources(cfn_template, "AWS::Lambda::Function")

    # When
    log_groups = {
        function: {
            pattern
            for pattern, actions in _grants(cfn_template, _role_of(cfn_template, function))
            if any(action.startswith("logs:") for action in actions)
        }
        for function in functions
    }

    # Then
    for function, resource in functions.items():
        own = _target(resource["Properties"]["LoggingConfig"]["LogGroup"])
        assert log_groups[function] == {
            "arn:{AWS::Partition}:logs:{AWS::Region}:{AWS::AccountId}"
            f":log-group:{{{own}}}:log-stream:*"
        }, function


@pytest.mark.parametrize(
    ("function", "secret"),
    [
        ("PollShipmentsFunction", "Clickpost"),
        ("PollChangeFeedFunction", "Clickpost"),
        ("NotifyEmailFunction", "Smtp"),
        ("ReceiveWebhooksFunction", "Webhook"),
    ],
)
def test_a_secret_is_read_by_its_full_arn_or_its_exact_name(
    cfn_template: Template, function: str, secret: str
) -> None:
    # Given
    role = _role_of(cfn_template, function)
    policies = cfn_template["Resources"][role]["Properties"]["Policies"]

    # When
    (statement,) = [
        statement
        for _, statement in _statements(policies, role)
        if "secretsmanager:GetSecretValue" in _actions(statement)
    ]

    # Then: the ARN parameter when given, else the name and exactly six random characters
    assert _actions(statement) == ["secretsmanager:GetSecretValue"]
    assert _patterns(statement["Resource"]) == [
        f"{{{secret}SecretArn}}",
        f"arn:{{AWS::Partition}}:secretsmanager:{{AWS::Region}}:{{AWS::AccountId}}"
        f":secret:{{{secret}SecretName}}-??????",
    ]


def test_the_smtp_secret_is_granted_only_when_email_goes_through_smtp(
    cfn_template: Template,
) -> None:
    # Given
    role = _role_of(cfn_template, "NotifyEmailFunction")
    (policy,) = cfn_template["Resources"][role]["Properties"]["Policies"]

    # When
    conditional = [
        statement["Fn::If"]
        for statement in policy["PolicyDocument"]["Statement"]
        if "Fn::If" in statement
    ]

    # Then
    ((condition, granted, otherwise),) = conditional
    assert cfn_template["Conditions"][condition] == {
        "Fn::Equals": [{"Ref": "EmailTransport"}, "smtp"]
    }
    assert granted["Action"] == "secretsmanager:GetSecretValue"
    assert otherwise == {"Ref": "AWS::NoValue"}


def test_queue_consumers_may_use_only_their_own_queue(cfn_template: Template) -> None:
    # Given
    mappings = [
        mapping["Properties"]
        for mapping in _resources(cfn_template, "AWS::Lambda::EventSourceMapping").values()
        if cfn_template["Resources"][_target(mapping["Properties"]["EventSourceArn"])]["Type"]
        == "AWS::SQS::Queue"
    ]

    # When
    receivers = {
        _target(mapping["FunctionName"]): {
            pattern
            for pattern, actions in _grants(
                cfn_template, _role_of(cfn_template, str(_target(mapping["FunctionName"])))
            )
            if "sqs:ReceiveMessage" in actions
        }
        for mapping in mappings
    }

    # Then
    assert receivers == {
        _target(mapping["FunctionName"]): {f"{{{_target(mapping['EventSourceArn'])}.Arn}}"}
        for mapping in mappings
    }


#: What the delay functions may do to the tables they use, as their code does it
#: (adapters/event_log.py scan_sequences, adapters/thresholds_table.py).
DELAY_GRANTS = {
    "LearnThresholdsFunction": {
        "{EventLogTable.Arn}/index/LearnIndex": {"dynamodb:Query"},
        "{DelayThresholdsTable.Arn}": {"dynamodb:PutItem"},
    },
    "PollShipmentsFunction": {"{DelayThresholdsTable.Arn}": {"dynamodb:GetItem"}},
    "SendOpsDigestFunction": {"{OpsDigestQueue.Arn}": {"sqs:ReceiveMessage", "sqs:DeleteMessage"}},
}


#: What each function's role may do to the orders table, as its code does it
#: (layers/common/trackwatch/adapters/orders_table.py).
ORDERS_TABLE_GRANTS = {
    # OrderRollUp: get_many() for a stream batch's orders, get() for one (or after a
    # conflict), save() (conditional PutItem), published() (conditional UpdateItem).
    "RollUpOrdersFunction": {
        "{OrdersTable.Arn}": {
            "dynamodb:BatchGetItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
        }
    },
    # OrdersService.show(): get().
    "ShipmentsApiFunction": {"{OrdersTable.Arn}": {"dynamodb:GetItem"}},
    # NotifyTable.recipient(): the order's size (one attribute) in the recipient's BatchGetItem.
    "NotifySmsFunction": {"{OrdersTable.Arn}": {"dynamodb:BatchGetItem"}},
    "NotifyEmailFunction": {"{OrdersTable.Arn}": {"dynamodb:BatchGetItem"}},
    "NotifyWhatsAppFunction": {"{OrdersTable.Arn}": {"dynamodb:BatchGetItem"}},
    "PollShipmentsFunction": {},
    "PublishEventsFunction": {},
}


@pytest.mark.parametrize("function", ORDERS_TABLE_GRANTS)
def test_each_function_touches_the_orders_table_only_as_its_code_does(
    cfn_template: Template, function: str
) -> None:
    # When
    on_orders = _grants_on(cfn_template, function, "{OrdersTable")

    # Then
    assert on_orders == ORDERS_TABLE_GRANTS[function]


@pytest.mark.parametrize("function", DELAY_GRANTS)
def test_the_delay_functions_touch_their_tables_and_queue_only_as_their_code_does(
    cfn_template: Template, function: str
) -> None:
    # When
    on_delays = _grants_on(
        cfn_template, function, ("{EventLogTable", "{DelayThresholdsTable", "{OpsDigestQueue")
    )

    # Then
    assert on_delays == DELAY_GRANTS[function]


def test_the_coalescer_may_register_shipments_only_when_auto_registration_is_on(
    cfn_template: Template,
) -> None:
    # Given
    role = _role_of(cfn_template, "CoalesceHintsFunction")
    (policy,) = cfn_template["Resources"][role]["Properties"]["Policies"]

    # When
    conditional = [
        statement["Fn::If"]
        for statement in policy["PolicyDocument"]["Statement"]
        if "Fn::If" in statement
    ]

    # Then: BatchGetItem always; the registration writes only with AutoRegisterFromWebhooks
    ((condition, granted, otherwise),) = conditional
    assert cfn_template["Conditions"][condition] == {
        "Fn::Equals": [{"Ref": "AutoRegisterFromWebhooks"}, "true"]
    }
    assert set(granted["Action"]) == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
    assert otherwise == {"Ref": "AWS::NoValue"}


def test_only_the_coalescer_takes_hints_and_only_change_capture_sends_them(
    cfn_template: Template,
) -> None:
    # Given
    functions = _resources(cfn_template, "AWS::Lambda::Function")

    # When
    on_hint_queue = {
        function: set().union(
            *(
                actions
                for pattern, actions in _grants(cfn_template, _role_of(cfn_template, function))
                if pattern == "{HintQueue.Arn}"
            )
        )
        for function in functions
    }

    # Then
    assert {f: a for f, a in on_hint_queue.items() if a} == {
        "PollChangeFeedFunction": {"sqs:SendMessage"},
        "ReceiveWebhooksFunction": {"sqs:SendMessage"},
        "CoalesceHintsFunction": {"sqs:ReceiveMessage", "sqs:DeleteMessage"},
    }
