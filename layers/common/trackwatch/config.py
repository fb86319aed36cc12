"""Settings: read once from a mapping of environment variables into frozen models.

`Settings(environ)` holds the variables; each section (`settings.clickpost`,
`settings.cadence`, ...) is validated the first time it is asked for and kept.
A function reads only the sections its services need, so a variable another
function needs is never required of it; a missing or bad one fails loudly, as a
ConfigurationError naming the variable, when the service that needs it is built.

Plain pydantic models rather than pydantic-settings: the mapping is the only
source, and parsing it is a dozen lines that cost nothing at cold start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import time
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, model_validator

from trackwatch.errors import ConfigurationError
from trackwatch.models.clickpost import DEFAULT_RECORD_TIMEZONE
from trackwatch.models.policy import (
    DEFAULT_SOURCE_TIMEZONE,
    Cadence,
    ChangeFeedPolicy,
    NotifyPolicy,
    Sweep,
    zone,
)


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _OptionalSection(_Section):
    """A section whose empty variables mean "not set" (CloudFormation cannot leave a
    variable out, so an empty parameter stands for none)."""

    @model_validator(mode="before")
    @classmethod
    def _empty_values(cls, data: object) -> object:
        if isinstance(data, dict):
            return {k: _empty_is_none(v) for k, v in data.items()}
        return data


def parse[M: BaseModel](model: type[M], environ: Mapping[str, str], prefix: str = "") -> M:
    """`model` from the variables named PREFIX + FIELD (upper case); a ConfigurationError
    naming each variable that is missing or breaks a rule."""
    values = {
        name: environ[variable]
        for name in model.model_fields
        if (variable := f"{prefix}{name}".upper()) in environ
    }
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_variable(prefix, err['loc']) or model.__name__}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)
        )
        raise ConfigurationError(f"{model.__name__}: {problems}") from None


def _variable(prefix: str, location: tuple[int | str, ...]) -> str:
    return f"{prefix}{location[0]}".upper() if location else ""


class ClickpostSettings(_Section):
    """How to reach Clickpost and how hard to try (variables CLICKPOST_*)."""

    base_url: HttpUrl
    #: Name of the Secrets Manager secret holding {"key": ..., "username": ...}.
    secret_name: str = Field(min_length=1)
    source_timezone: str = DEFAULT_SOURCE_TIMEZONE
    #: The zone of Clickpost's own record times (created_at, updated_at); see models/clickpost.
    record_timezone: str = DEFAULT_RECORD_TIMEZONE
    max_in_flight: int = Field(default=10, ge=1, le=200)
    connect_timeout_s: float = Field(default=3.0, gt=0)
    read_timeout_s: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=4, ge=1, le=10)
    backoff_base_s: float = Field(default=0.5, gt=0)
    backoff_cap_s: float = Field(default=8.0, gt=0)
    #: Total time one call may spend, retries and waits included.
    retry_budget_s: float = Field(default=30.0, gt=0)
    secret_max_age_s: int = Field(default=300, ge=0)
    #: A body larger than this is refused unread (streamed, never held whole).
    max_response_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024)

    @model_validator(mode="after")
    def _known_zone(self) -> Self:
        zone(self.source_timezone)
        zone(self.record_timezone)
        return self


class TableSettings(_Section):
    """Where shipments live."""

    shipments_table_name: str = Field(min_length=3)
    due_index_name: str = "DueIndex"


class PollQueueSettings(_Section):
    """Where poll requests go."""

    poll_queue_url: str = Field(min_length=1)


class DispatchSettings(_Section):
    """How poll requests are packed."""

    #: Clickpost calls (of up to 5 AWBs each) packed into one PollQueue message.
    calls_per_message: int = Field(default=10, ge=1, le=100)


class PublishSettings(_Section):
    """Where events are published."""

    events_topic_arn: str = Field(pattern=r"^arn:[^:]+:sns:")


class PoisonSettings(_Section):
    """Where the publisher sets aside events that cannot be published for their content."""

    publish_dead_letter_queue_url: str = Field(min_length=1)


class EventLogSettings(_Section):
    """Where every published event is kept, for replay."""

    event_log_table_name: str = Field(min_length=3)
    #: Days an event stays replayable before DynamoDB's TTL deletes it.
    event_log_retention_days: int = Field(default=30, ge=1, le=3650)


class RegistrationSettings(_Section):
    """What a registration may ask for."""

    #: Comma-separated language codes notifications can be written in.
    supported_languages: str = Field(
        default="en,hi", pattern=r"^[a-z]{2,3}(-[A-Za-z]{2,4})?(,[a-z]{2,3}(-[A-Za-z]{2,4})?)*$"
    )

    @property
    def languages(self) -> frozenset[str]:
        """The supported languages as a set."""
        return frozenset(self.supported_languages.split(","))


class IngestSettings(_Section):
    """Where the ingest consumer puts messages it cannot accept."""

    ingest_dead_letter_queue_url: str = Field(min_length=1)


class NotifySettings(_Section):
    """Where a notifier holds messages for quiet hours (what it sent is in the notification
    records: ChannelSettings)."""

    #: The notifier's own queue: a message held for quiet hours is sent back to it.
    notify_queue_url: str = Field(min_length=1)


class NotifyPolicySettings(_Section):
    """Pacing and quiet hours, as variables; `policy` is what the logic takes."""

    notify_repeat_window_minutes: int = Field(default=360, ge=0, le=10080)
    notify_daily_cap: int = Field(default=5, ge=1, le=100)
    quiet_hours_start: time = time(21, 0)
    quiet_hours_end: time = time(9, 0)
    customer_timezone: str = DEFAULT_SOURCE_TIMEZONE
    default_phone_region: str = Field(default="IN", pattern=r"^[A-Z]{2}$")

    @model_validator(mode="after")
    def _known_zone(self) -> Self:
        zone(self.customer_timezone)
        return self

    @property
    def policy(self) -> NotifyPolicy:
        """The plain value the notifier's logic takes."""
        return NotifyPolicy(
            repeat_window_minutes=self.notify_repeat_window_minutes,
            daily_cap=self.notify_daily_cap,
            quiet_hours_start=self.quiet_hours_start,
            quiet_hours_end=self.quiet_hours_end,
            customer_timezone=self.customer_timezone,
            default_phone_region=self.default_phone_region,
        )


def _empty_is_none(value: object) -> object:
    # CloudFormation cannot leave a variable out; an empty parameter means "none".
    return value or None


class SmsSettings(_OptionalSection):
    """How SMS are sent: End User Messaging SMS (the default) or SNS, with India's DLT ids."""

    #: end-user-messaging: pinpoint-sms-voice-v2 SendTextMessage; sns: SNS Publish.
    sms_transport: Literal["end-user-messaging", "sns"] = "end-user-messaging"
    #: The registered sender id (DLT header), the origination identity of every SMS.
    sms_sender_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,11}$")
    #: An origination identity to use instead (a pool or phone number, id or ARN).
    sms_origination_identity: str | None = Field(default=None, min_length=1, max_length=256)
    #: The DLT principal entity id every SMS to an Indian number carries.
    dlt_entity_id: str | None = Field(default=None, pattern=r"^[0-9]{1,30}$")
    sms_configuration_set: str | None = Field(default=None, min_length=1, max_length=256)
    #: SNS only: transactional messages are delivered even to numbers on DND lists.
    sms_type: Literal["Transactional", "Promotional"] = "Transactional"

    @property
    def origination_identity(self) -> str | None:
        """What SendTextMessage sends from: the identity given, else the sender id."""
        return self.sms_origination_identity or self.sms_sender_id


class MessageSettings(_Section):
    """How long a message may be."""

    #: Most SMS segments one message may take; Clickpost's text is shortened to fit.
    sms_max_segments: int = Field(default=3, ge=1, le=10)


class WhatsAppSettings(_Section):
    """How WhatsApp messages are sent: End User Messaging Social."""

    #: The End User Messaging Social id of the WABA phone number messages come from.
    whatsapp_phone_number_id: str = Field(pattern=r"^phone-number-id-[0-9a-zA-Z]{1,64}$")
    #: The Meta Graph API version of the messages (v{number}).
    meta_api_version: str = Field(default="v20.0", pattern=r"^v[0-9]+(\.[0-9]+)?$")


class ChannelSettings(_OptionalSection):
    """Which channels this deployment sends on, and how WhatsApp and SMS stand in for each
    other (variables NOTIFY_CHANNELS, WHATSAPP_DELIVERY_WINDOW_MINUTES, ...)."""

    #: Comma-separated: the channels sent on (WhatsApp is left out when not configured).
    notify_channels: str = Field(
        default="whatsapp,sms,email", pattern=r"^(whatsapp|sms|email)(,(whatsapp|sms|email))*$"
    )
    #: How long a WhatsApp message may go unreported as delivered before SMS takes over.
    whatsapp_delivery_window_minutes: int = Field(default=30, ge=1, le=1440)
    #: Messages of one batch sent at once (each shipment's in turn): the function's time is
    #: the provider's answers. Its concurrency times this is the most sends in flight, which
    #: the provider's rate (SMS, WhatsApp) must allow: a throttled send is retried.
    notify_send_concurrency: int = Field(default=4, ge=1, le=10)
    #: The notification records and opt-outs (NotificationsTable).
    notifications_table_name: str | None = Field(default=None, min_length=3)
    #: How long a notification record (so "this event was sent") is remembered: longer than
    #: a message can live (4 days on its queue, 14 in its DLQ, plus margin).
    notify_idempotency_ttl_hours: int = Field(default=456, ge=24, le=8760)
    #: The queues a fallback is handed to.
    sms_queue_url: str | None = Field(default=None, min_length=1)
    whatsapp_queue_url: str | None = Field(default=None, min_length=1)

    @property
    def enabled(self) -> frozenset[str]:
        """The channels sent on, as a set."""
        return frozenset(self.notify_channels.split(","))


class EmailSettings(_Section):
    """How e-mail is sent: through SES, or through an SMTP relay."""

    email_transport: Literal["ses", "smtp"]
    #: The From address (SES: a verified identity).
    email_from: str = Field(min_length=3)
    ses_configuration_set: str | None = None
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    #: Upgrade the connection with STARTTLS (off only for a local test server).
    smtp_starttls: bool = True
    #: Secrets Manager secret with {"username", "password"}; empty for an open relay.
    smtp_secret_name: str | None = None
    smtp_timeout_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _empty_values(cls, data: object) -> object:
        if isinstance(data, dict):
            optional = ("ses_configuration_set", "smtp_host", "smtp_secret_name")
            return {k: _empty_is_none(v) if k in optional else v for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _smtp_needs_a_host(self) -> Self:
        if self.email_transport == "smtp" and not self.smtp_host:
            raise ValueError("SMTP_HOST is required when EMAIL_TRANSPORT is smtp")
        return self


class OrderSettings(_Section):
    """Where orders are rolled up, and how long siblings' changes are collected into one
    event (variables ORDERS_TABLE_NAME, ORDER_WINDOW_MINUTES, ...)."""

    orders_table_name: str = Field(min_length=3)
    #: Steps of an order's members are collected this long before the order is told; SQS
    #: delays a settle tick at most 15 minutes, and one tick is enough.
    order_window_minutes: int = Field(default=10, ge=1, le=15)
    #: Days an order's item is kept after its last change (DynamoDB's TTL).
    order_retention_days: int = Field(default=90, ge=1, le=3650)


class OrderRollUpSettings(_Section):
    """Where the roll-up queues its settle ticks (ORDER_SETTLE_QUEUE_URL)."""

    order_settle_queue_url: str = Field(min_length=1)


class DelaySettings(_OptionalSection):
    """Our own stuck and late checks, as a poller makes them (variables DELAY_*)."""

    #: Off only where a shipment's times mean nothing to the clock: a harness whose sandbox
    #: journeys advance a step per poll, not per hour (tests/integration, bench).
    delay_checks: bool = True
    #: The learned thresholds' table; required while the checks are on.
    delay_thresholds_table_name: str | None = Field(default=None, min_length=3)
    #: How long a process keeps the learned thresholds before reading them again.
    delay_thresholds_refresh_minutes: int = Field(default=60, ge=1, le=1440)


class LearningSettings(_Section):
    """The daily threshold job: its window and quantile (variables DELAY_*)."""

    delay_thresholds_table_name: str = Field(min_length=3)
    #: The quantile of the gaps between scans that becomes a status's threshold.
    delay_threshold_quantile: float = Field(default=0.9, gt=0, lt=1)
    #: Fewer samples than this for a carrier and status: the rules' threshold stands.
    delay_min_samples: int = Field(default=30, ge=1, le=100_000)
    #: Days of the event log each run learns from.
    delay_window_days: int = Field(default=30, ge=1, le=365)


class DigestSettings(_OptionalSection):
    """The daily operations digest (variables OPS_DIGEST_*)."""

    ops_digest_queue_url: str = Field(min_length=1)
    #: Where the digest goes; None (empty): it is written to the log only.
    ops_digest_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    #: The zone the digest's times are written in.
    ops_digest_timezone: str = DEFAULT_SOURCE_TIMEZONE

    @model_validator(mode="after")
    def _known_zone(self) -> Self:
        zone(self.ops_digest_timezone)
        return self


class FeedStateSettings(_Section):
    """Where the change feed's high-water mark and health are kept."""

    change_feed_table_name: str = Field(min_length=3)


class HintQueueSettings(_Section):
    """Where change hints wait for the coalescer."""

    hint_queue_url: str = Field(min_length=1)


class CoalesceSettings(_Section):
    """How the coalescer takes a window's hints, and what it does with the odd ones."""

    #: ReceiveMessage's long-poll wait: an empty answer then means an empty queue.
    hint_receive_wait_seconds: int = Field(default=1, ge=0, le=20)
    #: Messages one coalescer run takes at most (the rest wait for the next window).
    hint_max_messages_per_run: int = Field(default=5000, ge=10, le=100_000)
    #: Register an unknown waybill seen on a webhook (with no contact).
    auto_register_from_webhooks: bool = False


class HintRejectSettings(_Section):
    """Where hint messages that cannot be read go, with the reason."""

    hint_dead_letter_queue_url: str = Field(min_length=1)


class WebhookSecretSettings(_Section):
    """Where the webhook's shared key is."""

    webhook_secret_name: str = Field(min_length=1)
    webhook_secret_max_age_s: int = Field(default=300, ge=0)


class WebhookSettings(_Section):
    """How large a webhook body the receiver reads."""

    webhook_max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)


class DataFiles(_OptionalSection):
    """Data files a deployment may replace (variables TRACKWATCH_*); None: the packaged one."""

    status_catalogue: Path | None = None
    notify_rules: Path | None = None
    message_registry: Path | None = None
    order_stages: Path | None = None
    holiday_calendar: Path | None = None
    delay_rules: Path | None = None


class Settings:
    """Every section of the settings, each validated on first use and then kept."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = MappingProxyType(dict(environ))

    @classmethod
    def from_environ(cls) -> Settings:
        """The process's environment, as Lambda sets it from the template."""
        return cls(os.environ)

    def replace(self, **variables: str) -> Settings:
        """A copy with some variables set (tests and the local runtime's overrides)."""
        return Settings({**self._environ, **variables})

    def get(self, variable: str) -> str | None:
        """One raw variable, or None."""
        return self._environ.get(variable)

    @cached_property
    def clickpost(self) -> ClickpostSettings:
        """CLICKPOST_*."""
        return parse(ClickpostSettings, self._environ, "CLICKPOST_")

    @cached_property
    def cadence(self) -> Cadence:
        """CADENCE_*, TERMINAL_GRACE_HOURS, INVALID_GIVE_UP_HOURS, DUE_SHARDS, ..."""
        return parse(Cadence, self._environ)

    @cached_property
    def table(self) -> TableSettings:
        """SHIPMENTS_TABLE_NAME, DUE_INDEX_NAME."""
        return parse(TableSettings, self._environ)

    @cached_property
    def poll_queue(self) -> PollQueueSettings:
        """POLL_QUEUE_URL."""
        return parse(PollQueueSettings, self._environ)

    @cached_property
    def dispatch(self) -> DispatchSettings:
        """CALLS_PER_MESSAGE."""
        return parse(DispatchSettings, self._environ)

    @cached_property
    def publish(self) -> PublishSettings:
        """EVENTS_TOPIC_ARN."""
        return parse(PublishSettings, self._environ)

    @cached_property
    def poison(self) -> PoisonSettings:
        """PUBLISH_DEAD_LETTER_QUEUE_URL."""
        return parse(PoisonSettings, self._environ)

    @cached_property
    def event_log(self) -> EventLogSettings:
        """EVENT_LOG_TABLE_NAME, EVENT_LOG_RETENTION_DAYS."""
        return parse(EventLogSettings, self._environ)

    @cached_property
    def registration(self) -> RegistrationSettings:
        """SUPPORTED_LANGUAGES."""
        return parse(RegistrationSettings, self._environ)

    @cached_property
    def ingest(self) -> IngestSettings:
        """INGEST_DEAD_LETTER_QUEUE_URL."""
        return parse(IngestSettings, self._environ)

    @cached_property
    def notify(self) -> NotifySettings:
        """NOTIFY_QUEUE_URL."""
        return parse(NotifySettings, self._environ)

    @cached_property
    def notify_policy(self) -> NotifyPolicy:
        """NOTIFY_REPEAT_WINDOW_MINUTES, NOTIFY_DAILY_CAP, QUIET_HOURS_*, CUSTOMER_TIMEZONE, ..."""
        return parse(NotifyPolicySettings, self._environ).policy

    @cached_property
    def sms(self) -> SmsSettings:
        """SMS_TRANSPORT, SMS_SENDER_ID, SMS_ORIGINATION_IDENTITY, DLT_ENTITY_ID, ..."""
        return parse(SmsSettings, self._environ)

    @cached_property
    def messages(self) -> MessageSettings:
        """SMS_MAX_SEGMENTS."""
        return parse(MessageSettings, self._environ)

    @cached_property
    def whatsapp(self) -> WhatsAppSettings:
        """WHATSAPP_PHONE_NUMBER_ID, META_API_VERSION."""
        return parse(WhatsAppSettings, self._environ)

    @cached_property
    def channels(self) -> ChannelSettings:
        """NOTIFY_CHANNELS, WHATSAPP_DELIVERY_WINDOW_MINUTES, NOTIFICATIONS_TABLE_NAME, ..."""
        return parse(ChannelSettings, self._environ)

    @cached_property
    def email(self) -> EmailSettings:
        """EMAIL_TRANSPORT, EMAIL_FROM, SES_*, SMTP_*."""
        return parse(EmailSettings, self._environ)

    @cached_property
    def orders(self) -> OrderSettings:
        """ORDERS_TABLE_NAME, ORDER_WINDOW_MINUTES, ORDER_RETENTION_DAYS."""
        return parse(OrderSettings, self._environ)

    @cached_property
    def order_roll_up(self) -> OrderRollUpSettings:
        """ORDER_SETTLE_QUEUE_URL."""
        return parse(OrderRollUpSettings, self._environ)

    @cached_property
    def change_feed(self) -> ChangeFeedPolicy:
        """CHANGE_FEED_*."""
        return parse(ChangeFeedPolicy, self._environ)

    @cached_property
    def sweep(self) -> Sweep:
        """SWEEP_*_MINUTES (the dispatcher checks each is a whole multiple of its cadence)."""
        return parse(Sweep, self._environ)

    @cached_property
    def feed_state(self) -> FeedStateSettings:
        """CHANGE_FEED_TABLE_NAME."""
        return parse(FeedStateSettings, self._environ)

    @cached_property
    def hint_queue(self) -> HintQueueSettings:
        """HINT_QUEUE_URL."""
        return parse(HintQueueSettings, self._environ)

    @cached_property
    def coalesce(self) -> CoalesceSettings:
        """HINT_*, AUTO_REGISTER_FROM_WEBHOOKS."""
        return parse(CoalesceSettings, self._environ)

    @cached_property
    def hint_rejects(self) -> HintRejectSettings:
        """HINT_DEAD_LETTER_QUEUE_URL."""
        return parse(HintRejectSettings, self._environ)

    @cached_property
    def webhook_secret(self) -> WebhookSecretSettings:
        """WEBHOOK_SECRET_NAME, WEBHOOK_SECRET_MAX_AGE_S."""
        return parse(WebhookSecretSettings, self._environ)

    @cached_property
    def webhooks(self) -> WebhookSettings:
        """WEBHOOK_MAX_BODY_BYTES."""
        return parse(WebhookSettings, self._environ)

    @cached_property
    def data_files(self) -> DataFiles:
        """TRACKWATCH_STATUS_CATALOGUE, TRACKWATCH_NOTIFY_RULES, TRACKWATCH_MESSAGE_REGISTRY,
        TRACKWATCH_ORDER_STAGES, TRACKWATCH_HOLIDAY_CALENDAR, TRACKWATCH_DELAY_RULES."""
        return parse(DataFiles, self._environ, "TRACKWATCH_")

    @cached_property
    def delays(self) -> DelaySettings:
        """DELAY_CHECKS, DELAY_THRESHOLDS_TABLE_NAME, DELAY_THRESHOLDS_REFRESH_MINUTES."""
        return parse(DelaySettings, self._environ)

    @cached_property
    def learning(self) -> LearningSettings:
        """DELAY_THRESHOLDS_TABLE_NAME, DELAY_THRESHOLD_QUANTILE, DELAY_MIN_SAMPLES, ..."""
        return parse(LearningSettings, self._environ)

    @cached_property
    def digest(self) -> DigestSettings:
        """OPS_DIGEST_QUEUE_URL, OPS_DIGEST_EMAIL, OPS_DIGEST_TIMEZONE."""
        return parse(DigestSettings, self._environ)
