"""template.yaml deployed into an emulator and driven by the local runtime.

The one way `trackwatch local`, the integration tests and the benchmarks bring the
stack up: deploy the template, put the secrets it names where it looks for them,
and hand each function its own container (the emulator's clients, a shared clock,
any ports to override).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from trackwatch.adapters.aws import AwsClients
from trackwatch.bootstrap import Container, Overrides
from trackwatch_cli.runtime import LocalRuntime
from trackwatch_cli.stack import DeployedStack, deploy


class SimulatedClock:
    """A clock that moves only when told: every function of a local stack reads it."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        """Move the clock on."""
        self.now += delta


@dataclass
class LocalStack:
    """The deployed stack, the runtime that invokes its functions, and the clock they read."""

    stack: DeployedStack
    runtime: LocalRuntime
    clients: AwsClients
    clock: SimulatedClock
    #: The key Clickpost's webhooks must present (in the stack's webhook secret).
    webhook_key: str = ""

    def container(self, function: str = "ShipmentsApiFunction") -> Container:
        """A function's container (the shipments API's sees the table, log and queue)."""
        return self.runtime.container(function)


def start_stack(
    template: Path,
    clients: AwsClients,
    clock: SimulatedClock,
    *,
    stack_name: str = "trackwatch-local",
    parameters: Mapping[str, str] | None = None,
    clickpost_credentials: tuple[str, str] = ("sandbox-key", "sandbox-user"),
    webhook_key: str = "sandbox-webhook-key-0123456789",
    settings: Mapping[str, str] | None = None,
    overrides: Mapping[str, Overrides] | None = None,
    log: IO[str] | None = None,
) -> LocalStack:
    """Deploy `template` into the emulator and make its secrets; raises StackError."""
    stack = deploy(template, clients, stack_name=stack_name, parameters=dict(parameters or {}))
    key, username = clickpost_credentials
    secrets = clients.secretsmanager
    poll = stack.functions["PollShipmentsFunction"].environment
    secrets.create_secret(
        Name=poll["CLICKPOST_SECRET_NAME"],
        SecretString=json.dumps({"key": key, "username": username}),
    )
    receiver = stack.functions.get("ReceiveWebhooksFunction")
    if receiver is not None:
        secrets.create_secret(
            Name=receiver.environment["WEBHOOK_SECRET_NAME"],
            SecretString=json.dumps({"webhook_key": webhook_key}),
        )
    smtp_secret = stack.functions["NotifyEmailFunction"].environment.get("SMTP_SECRET_NAME")
    if smtp_secret:
        # The local relay is open: an empty username says so.
        secrets.create_secret(
            Name=smtp_secret, SecretString=json.dumps({"username": "", "password": ""})
        )
    local_settings = {
        # moto's queue is one server: a short poll sees every message, and a long poll
        # would only cost real time on every coalescer run.
        "HINT_RECEIVE_WAIT_SECONDS": "0",
        **(settings or {}),
    }
    runtime = LocalRuntime(
        stack, clients, clock=clock, settings=local_settings, overrides=overrides, log=log
    )
    return LocalStack(
        stack=stack, runtime=runtime, clients=clients, clock=clock, webhook_key=webhook_key
    )
