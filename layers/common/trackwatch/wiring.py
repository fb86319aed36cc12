"""The adapters and services each function uses, built once per process from settings.

Imports are made inside the factories: each function pays at cold start only for
what it builds (the poller never loads the notifiers' templates, nor the API).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from aws_lambda_powertools.utilities import parameters

from trackwatch.config import (
    cadence_settings,
    clickpost_settings,
    dispatch_settings,
    email_settings,
    event_log_settings,
    ingest_settings,
    notify_settings,
    publish_settings,
    sms_settings,
    table_settings,
)
from trackwatch.errors import ConfigurationError

if TYPE_CHECKING:
    from trackwatch.adapters.clickpost import ClickpostClient
    from trackwatch.adapters.event_log import EventLogTable
    from trackwatch.adapters.events_topic import EventsTopic
    from trackwatch.adapters.idempotency import IdempotencyGuard
    from trackwatch.adapters.notify_table import NotifyTable
    from trackwatch.adapters.poll_queue import PollQueue
    from trackwatch.adapters.reject_queue import RejectQueue
    from trackwatch.adapters.senders import SmtpCredentials
    from trackwatch.adapters.shipments_table import ShipmentsTable
    from trackwatch.models.notification import Channel
    from trackwatch.models.registration import Registration, Rejected
    from trackwatch.ports import Sender
    from trackwatch.services.notify import Notifier
    from trackwatch.services.poll import PollService
    from trackwatch.services.registration import EntryResult
    from trackwatch.services.shipments import ShipmentsService

_clock: Callable[[], datetime] | None = None


def set_clock(clock: Callable[[], datetime] | None) -> None:
    """Replace the wall clock (the local runtime's simulated time); None restores it."""
    global _clock
    _clock = clock


def utc_now() -> datetime:
    """The current time, zone-aware: the wall clock, or the simulated one."""
    return _clock() if _clock is not None else datetime.now(UTC)


@lru_cache(maxsize=1)
def shipments_table() -> ShipmentsTable:
    """The shipments table."""
    from trackwatch.adapters.shipments_table import ShipmentsTable

    settings = table_settings()
    return ShipmentsTable(settings.shipments_table_name, settings.due_index_name)


@lru_cache(maxsize=1)
def poll_queue() -> PollQueue:
    """PollQueue."""
    from trackwatch.adapters.poll_queue import PollQueue

    return PollQueue(dispatch_settings().poll_queue_url)


@lru_cache(maxsize=1)
def events_topic() -> EventsTopic:
    """The shipment events topic."""
    from trackwatch.adapters.events_topic import EventsTopic

    return EventsTopic(publish_settings().events_topic_arn)


@lru_cache(maxsize=1)
def event_log() -> EventLogTable:
    """The event log (every published event, for replay)."""
    from trackwatch.adapters.event_log import EventLogTable

    settings = event_log_settings()
    return EventLogTable(settings.event_log_table_name, settings.event_log_retention_days)


@lru_cache(maxsize=1)
def ingest_rejects() -> RejectQueue:
    """Where IngestQueue messages that can never be accepted go."""
    from trackwatch.adapters.reject_queue import RejectQueue

    return RejectQueue(ingest_settings().ingest_dead_letter_queue_url)


@lru_cache(maxsize=1)
def shipments_service() -> ShipmentsService:
    """Register, show, stop, refresh and replay shipments."""
    from trackwatch.services.shipments import ShipmentsService

    return ShipmentsService(
        shipments_table(),
        poll_queue(),
        event_log(),
        events_topic(),
        cadence_settings(),
        utc_now,
        dispatch_settings().calls_per_message,
    )


def register_entries(entries: Sequence[Registration | Rejected]) -> list[EntryResult]:
    """Register entries in the shipments table (all a registering function needs)."""
    from trackwatch.services.registration import register_all

    return register_all(entries, shipments_table(), utc_now(), cadence_settings())


@lru_cache(maxsize=1)
def poll_service() -> PollService:
    """The poller, over the shipments table."""
    from trackwatch.logic.catalogue import default_catalogue
    from trackwatch.services.poll import PollService

    return PollService(shipments_table(), default_catalogue(), cadence_settings(), utc_now)


def clickpost_client() -> ClickpostClient:
    """A Clickpost client; one per invocation, since it belongs to that invocation's event loop."""
    from trackwatch.adapters.clickpost import ClickpostClient

    return ClickpostClient.from_settings(clickpost_settings())


def reset() -> None:
    """Forget everything built (tests and the local runtime change the environment)."""
    from trackwatch import config
    from trackwatch.adapters import aws
    from trackwatch.logic.catalogue import default_catalogue

    for factory in (
        shipments_table,
        poll_queue,
        events_topic,
        poll_service,
        event_log,
        ingest_rejects,
        shipments_service,
    ):
        factory.cache_clear()
    for settings in (
        config.cadence_settings,
        config.clickpost_settings,
        config.dispatch_settings,
        config.event_log_settings,
        config.ingest_settings,
        config.registration_settings,
        config.publish_settings,
        config.table_settings,
    ):
        settings.cache_clear()
    default_catalogue.cache_clear()
    aws.reset()
    reset_notifiers()
    # powertools caches secrets per process; a new endpoint means a new secret store.
    parameters.clear_caches()  # type: ignore[no-untyped-call]


# --- notifiers ----------------------------------------------------------------


@lru_cache(maxsize=1)
def notify_table() -> NotifyTable:
    """The shipments table, as the notifiers read and write it."""
    from trackwatch.adapters.notify_table import NotifyTable

    return NotifyTable(table_settings().shipments_table_name)


@lru_cache(maxsize=1)
def idempotency_guard() -> IdempotencyGuard:
    """Exactly one message per event and channel."""
    from trackwatch.adapters.idempotency import IdempotencyGuard

    settings = notify_settings()
    return IdempotencyGuard(
        settings.idempotency_table_name, settings.notify_idempotency_ttl_hours * 3600
    )


def smtp_credentials() -> SmtpCredentials | None:
    """The relay's login from Secrets Manager (cached by powertools); None for an open relay."""
    from trackwatch.adapters.senders import SmtpCredentials

    name = email_settings().smtp_secret_name
    if name is None:
        return None
    secret = parameters.get_secret(name, transform="json", max_age=300)
    if not isinstance(secret, dict) or not {"username", "password"} <= secret.keys():
        raise ConfigurationError(f"secret {name} must hold username and password")
    if not secret["username"]:
        return None  # an open relay
    return SmtpCredentials(str(secret["username"]), str(secret["password"]))


def sender(channel: Channel) -> Sender:
    """SNS for SMS; SES or the SMTP relay for e-mail, as EMAIL_TRANSPORT says."""
    from trackwatch.adapters.senders import SesEmailSender, SmtpEmailSender, SnsSmsSender

    if channel == "sms":
        sms = sms_settings()
        return SnsSmsSender(sms_type=sms.sms_type, sender_id=sms.sms_sender_id)
    email = email_settings()
    if email.email_transport == "ses":
        return SesEmailSender(
            source=email.email_from, configuration_set=email.ses_configuration_set
        )
    assert email.smtp_host is not None  # EmailSettings checks it
    return SmtpEmailSender(
        host=email.smtp_host,
        port=email.smtp_port,
        sender=email.email_from,
        starttls=email.smtp_starttls,
        credentials=smtp_credentials,
        timeout_s=email.smtp_timeout_s,
    )


@lru_cache(maxsize=2)
def notifier(channel: Channel) -> Notifier:
    """The notifier of one channel."""
    from trackwatch.adapters.notify_queue import NotifyQueue
    from trackwatch.logic.notify_rules import default_rules
    from trackwatch.logic.render import default_renderer
    from trackwatch.services.notify import Notifier

    settings = notify_settings()
    return Notifier(
        channel,
        rules=default_rules(),
        settings=settings,
        recipients=notify_table(),
        sender=sender(channel),
        deferrer=NotifyQueue(settings.queue_url(channel)),
        guard=idempotency_guard(),
        renderer=default_renderer(),
        clock=utc_now,
    )


def reset_notifiers() -> None:
    """Forget the notifiers and their settings."""
    from trackwatch import config
    from trackwatch.logic.notify_rules import default_rules
    from trackwatch.logic.render import default_renderer

    for factory in (notify_table, idempotency_guard, notifier):
        factory.cache_clear()
    for settings in (config.notify_settings, config.sms_settings, config.email_settings):
        settings.cache_clear()
    default_rules.cache_clear()
    default_renderer.cache_clear()
