"""template.yaml deployed into an emulator and driven by the local runtime.

The one way `trackwatch local`, the integration tests and the benchmarks bring the
stack up: deploy the template, put the secrets it names where it looks for them,
and hand each function its own container (the emulator's clients, a shared clock,
any ports to override).

moto has neither End User Messaging SMS nor End User Messaging Social, so the SMS and
WhatsApp notifiers get local senders (`local_senders.py`): the SMS one keeps each message,
the WhatsApp one also publishes Meta's status reports onto the stack's WhatsApp events
topic, so the events consumer and the fallback to SMS run as deployed. The stack is
deployed with a (fake) WhatsApp number and DLT entity id, so both channels are on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

import httpx

from trackwatch.adapters.aws import AwsClients
from trackwatch.bootstrap import Container, Overrides
from trackwatch.models.notification import Channel
from trackwatch.ports import Sender
from trackwatch_cli.environment import RELEASE_DELAYED_PATH, release_delayed
from trackwatch_cli.local_senders import LOCAL_PHONE_NUMBER_ID, LocalWhatsApp, RecordingSender
from trackwatch_cli.runtime import LOCAL_CONCURRENCY, Invocation, LocalRuntime
from trackwatch_cli.stack import DeployedStack, deploy

#: Parameters that turn every channel on locally (any caller's own win).
LOCAL_PARAMETERS = {
    "WhatsAppPhoneNumberId": LOCAL_PHONE_NUMBER_ID.removeprefix("phone-number-id-"),
    # An example DLT entity id: the local SMS sender checks nothing, but the SMS notifier
    # runs as it would in India, with the ids on every message.
    "DltEntityId": "1101234567890123456",
}


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
class LocalSenders:
    """The local stand-ins for End User Messaging SMS and Social."""

    sms: RecordingSender
    whatsapp: LocalWhatsApp


@dataclass
class LocalStack:
    """The deployed stack, the runtime that invokes its functions, the clock they read, and
    the local senders the SMS and WhatsApp notifiers send through."""

    stack: DeployedStack
    runtime: LocalRuntime
    clients: AwsClients
    clock: SimulatedClock
    senders: LocalSenders
    #: The key Clickpost's webhooks must present (in the stack's webhook secret).
    webhook_key: str = ""

    def container(self, function: str = "ShipmentsApiFunction") -> Container:
        """A function's container (the shipments API's sees the table, log and queue)."""
        return self.runtime.container(function)

    def release_delayed(self) -> int:
        """Make the stack's delayed queue messages visible now; returns how many.

        The emulator holds a delayed message (DelaySeconds) for real seconds, while the local
        runtime's time is simulated: a message held for quiet hours, or a WhatsApp delivery
        check, would never come back within a simulated day. Every such message carries its
        `not_before`, and its notifier holds it again (re-sent, delayed) while the simulated
        clock has not reached it, so releasing them early changes nothing but the wait.
        """
        # The functions' delayed messages wait in the runtime's delay line (delay_line.py);
        # any other (sent by a client outside the runtime) waits in the emulator.
        held = self.runtime.delay_line.release()
        names = sorted(
            {url.rsplit("/", 1)[1] for url in self.stack.physical_ids.values() if "/" in url}
        )
        endpoint = self.clients.endpoint_url
        if endpoint is None:  # moto in this process (the integration tests)
            return held + release_delayed(self.stack.region, names)
        # moto in a process of its own: it does the same there (environment.serve).
        answer = httpx.post(
            f"{endpoint}{RELEASE_DELAYED_PATH}",
            json={"region": self.stack.region, "queues": names},
            timeout=30,
        )
        answer.raise_for_status()
        released: int = answer.json()["released"]
        return held + released


class OverLocalStack:
    """What a harness built over a LocalStack (the integration tests', the benchmarks')
    exposes of it."""

    local: LocalStack

    @property
    def stack(self) -> DeployedStack:
        """The deployed stack."""
        return self.local.stack

    @property
    def runtime(self) -> LocalRuntime:
        """The local Lambda runtime driving it."""
        return self.local.runtime

    @property
    def clients(self) -> AwsClients:
        """Clients for the emulator it runs in."""
        return self.local.clients


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
    on_invoke: Callable[[Invocation], None] | None = None,
    concurrency: int = LOCAL_CONCURRENCY,
    real_time_waits: bool = True,
    hold_delayed: bool = False,
) -> LocalStack:
    """Deploy `template` into the emulator and make its secrets; raises StackError.
    `on_invoke`, `concurrency`, `real_time_waits`, `hold_delayed`: see LocalRuntime."""
    stack = deploy(
        template,
        clients,
        stack_name=stack_name,
        parameters={**LOCAL_PARAMETERS, **(parameters or {})},
    )
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
    senders = local_senders(stack, clients, clock)
    runtime = LocalRuntime(
        stack,
        clients,
        clock=clock,
        settings=local_settings,
        overrides=with_local_senders(senders, overrides or {}),
        log=log,
        on_invoke=on_invoke,
        concurrency=concurrency,
        real_time_waits=real_time_waits,
        hold_delayed=hold_delayed,
    )
    return LocalStack(
        stack=stack,
        runtime=runtime,
        clients=clients,
        clock=clock,
        senders=senders,
        webhook_key=webhook_key,
    )


def local_senders(stack: DeployedStack, clients: AwsClients, clock: SimulatedClock) -> LocalSenders:
    """The local SMS and WhatsApp senders; WhatsApp's reports go to the stack's events topic."""
    topic = stack.outputs["WhatsAppEventsTopicArn"]
    sns = clients.sns

    def publish(body: str) -> None:
        sns.publish(TopicArn=topic, Message=body)

    return LocalSenders(sms=RecordingSender("sms"), whatsapp=LocalWhatsApp(publish, clock=clock))


def with_local_senders(
    senders: LocalSenders, overrides: Mapping[str, Overrides]
) -> dict[str, Overrides]:
    """`overrides`, with the local senders for the SMS and WhatsApp notifiers unless given."""
    merged = {name: Overrides(**given) for name, given in overrides.items()}
    defaults: tuple[tuple[str, Channel, Sender], ...] = (
        ("NotifySmsFunction", "sms", senders.sms),
        ("NotifyWhatsAppFunction", "whatsapp", senders.whatsapp),
    )
    for function, channel, sender in defaults:
        own = merged.setdefault(function, Overrides())
        chosen: dict[Channel, Sender] = {channel: sender, **own.get("senders", {})}
        own["senders"] = chosen
    return merged
