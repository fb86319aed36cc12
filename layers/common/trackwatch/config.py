"""Settings, parsed once from the environment into frozen pydantic models.

Each concern has its own model so that a function reads only the settings it
needs, and a missing one fails loudly when the function starts.
"""

from __future__ import annotations

from datetime import time
from functools import lru_cache
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, HttpUrl, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from trackwatch.errors import ConfigurationError

DEFAULT_SOURCE_TIMEZONE = "Asia/Kolkata"


def zone(name: str) -> ZoneInfo:
    """The IANA zone called `name`, or a ConfigurationError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(f"unknown time zone {name!r}") from exc


class _Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)


class ClickpostSettings(_Settings):
    """How to reach Clickpost and how hard to try."""

    model_config = SettingsConfigDict(env_prefix="CLICKPOST_", frozen=True, extra="ignore")

    base_url: HttpUrl
    #: Name of the Secrets Manager secret holding {"key": ..., "username": ...}.
    secret_name: str = Field(min_length=1)
    source_timezone: str = DEFAULT_SOURCE_TIMEZONE
    max_in_flight: int = Field(default=10, ge=1, le=200)
    connect_timeout_s: float = Field(default=3.0, gt=0)
    read_timeout_s: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=4, ge=1, le=10)
    backoff_base_s: float = Field(default=0.5, gt=0)
    backoff_cap_s: float = Field(default=8.0, gt=0)
    #: Total time one call may spend, retries and waits included.
    retry_budget_s: float = Field(default=30.0, gt=0)
    secret_max_age_s: int = Field(default=300, ge=0)

    @field_validator("source_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value


@lru_cache(maxsize=1)
def clickpost_settings() -> ClickpostSettings:
    """The Clickpost settings, parsed once."""
    return load(ClickpostSettings)


def load[S: BaseSettings](model: type[S]) -> S:
    """Parse `model` from the environment, turning a failure into a ConfigurationError."""
    try:
        return model()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigurationError(f"{model.__name__}: {problems}") from exc


class CadenceSettings(_Settings):
    """How often each class of shipment is polled, and when tracking ends."""

    cadence_out_for_delivery_minutes: int = Field(default=30, ge=1, le=1440)
    cadence_transit_minutes: int = Field(default=120, ge=1, le=1440)
    cadence_new_minutes: int = Field(default=240, ge=1, le=1440)
    cadence_grace_minutes: int = Field(default=360, ge=1, le=1440)
    cadence_invalid_minutes: int = Field(default=720, ge=1, le=1440)
    terminal_grace_hours: float = Field(default=72, ge=0)
    invalid_give_up_hours: float = Field(default=168, ge=0)
    #: Shards per (class, slot) in the due index: spreads a slot over partitions.
    due_shards: int = Field(default=16, ge=1, le=256)
    #: Days a stopped shipment's item is kept before DynamoDB's TTL deletes it.
    stopped_retention_days: int = Field(default=30, ge=1)


class TableSettings(_Settings):
    """Where shipments live."""

    shipments_table_name: str = Field(min_length=3)
    due_index_name: str = "DueIndex"


class DispatchSettings(_Settings):
    """Where the dispatcher sends its poll requests."""

    poll_queue_url: str = Field(min_length=1)
    #: Clickpost calls (of up to 5 AWBs each) packed into one PollQueue message.
    calls_per_message: int = Field(default=10, ge=1, le=100)


class PublishSettings(_Settings):
    """Where events are published."""

    events_topic_arn: str = Field(pattern=r"^arn:[^:]+:sns:")


class EventLogSettings(_Settings):
    """Where every published event is kept, for replay."""

    event_log_table_name: str = Field(min_length=3)
    #: Days an event stays replayable before DynamoDB's TTL deletes it.
    event_log_retention_days: int = Field(default=90, ge=1, le=3650)


class RegistrationSettings(_Settings):
    """What a registration may ask for."""

    #: Comma-separated language codes notifications can be written in.
    supported_languages: str = Field(
        default="en,hi", pattern=r"^[a-z]{2,3}(-[A-Za-z]{2,4})?(,[a-z]{2,3}(-[A-Za-z]{2,4})?)*$"
    )

    @property
    def languages(self) -> frozenset[str]:
        """The supported languages as a set."""
        return frozenset(self.supported_languages.split(","))


class IngestSettings(_Settings):
    """Where the ingest consumer puts messages it cannot accept."""

    ingest_dead_letter_queue_url: str = Field(min_length=1)


@lru_cache(maxsize=1)
def event_log_settings() -> EventLogSettings:
    """The event log's settings, parsed once."""
    return load(EventLogSettings)


@lru_cache(maxsize=1)
def registration_settings() -> RegistrationSettings:
    """The registration settings, parsed once."""
    return load(RegistrationSettings)


@lru_cache(maxsize=1)
def ingest_settings() -> IngestSettings:
    """The ingest consumer's settings, parsed once."""
    return load(IngestSettings)


@lru_cache(maxsize=1)
def cadence_settings() -> CadenceSettings:
    """The cadence settings, parsed once."""
    return load(CadenceSettings)


@lru_cache(maxsize=1)
def table_settings() -> TableSettings:
    """The table settings, parsed once."""
    return load(TableSettings)


@lru_cache(maxsize=1)
def dispatch_settings() -> DispatchSettings:
    """The dispatcher's settings, parsed once."""
    return load(DispatchSettings)


@lru_cache(maxsize=1)
def publish_settings() -> PublishSettings:
    """The publisher's settings, parsed once."""
    return load(PublishSettings)


# --- notifiers ----------------------------------------------------------------


class NotifySettings(_Settings):
    """What the SMS and e-mail notifiers share: state, pacing and quiet hours."""

    idempotency_table_name: str = Field(min_length=3)
    #: Each notifier's own queue: a message held for quiet hours is sent back to it.
    #: (Two names, not one: the local runtime hosts both functions in one process.)
    sms_queue_url: str | None = None
    email_queue_url: str | None = None
    #: Repeats of one customer-facing status inside this window collapse into one message.
    notify_repeat_window_minutes: int = Field(default=360, ge=0, le=10080)
    #: Most messages one shipment gets on one channel per local day.
    notify_daily_cap: int = Field(default=5, ge=1, le=100)
    #: How long "this event was sent" is remembered: longer than a message can live (4 days
    #: on its queue, 14 in its DLQ, plus margin); template.yaml sets the same.
    notify_idempotency_ttl_hours: int = Field(default=456, ge=24, le=8760)
    #: Quiet hours, in the customer's zone; start after end wraps past midnight.
    quiet_hours_start: time = time(21, 0)
    quiet_hours_end: time = time(9, 0)
    #: The zone of a customer whose shipment does not name one.
    customer_timezone: str = DEFAULT_SOURCE_TIMEZONE
    #: The region a phone number without a country code is read in (ISO 3166 alpha-2).
    default_phone_region: str = Field(default="IN", pattern=r"^[A-Z]{2}$")

    @field_validator("customer_timezone")
    @classmethod
    def _known_customer_zone(cls, value: str) -> str:
        zone(value)
        return value

    def queue_url(self, channel: str) -> str:
        """The queue of `channel`'s notifier; a ConfigurationError if it is not set."""
        url = self.sms_queue_url if channel == "sms" else self.email_queue_url
        if not url:
            raise ConfigurationError(f"{channel.upper()}_QUEUE_URL is not set")
        return url


class SmsSettings(_Settings):
    """How SMS are sent through SNS."""

    #: Transactional messages are delivered even to numbers on DND lists where allowed.
    sms_type: Literal["Transactional", "Promotional"] = "Transactional"
    sms_sender_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,11}$")

    @field_validator("sms_sender_id", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return value or None


class EmailSettings(_Settings):
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

    @field_validator("ses_configuration_set", "smtp_host", "smtp_secret_name", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        # CloudFormation cannot leave a variable out; an empty parameter means "none".
        return value or None

    @model_validator(mode="after")
    def _smtp_needs_a_host(self) -> Self:
        if self.email_transport == "smtp" and not self.smtp_host:
            raise ValueError("SMTP_HOST is required when EMAIL_TRANSPORT is smtp")
        return self


@lru_cache(maxsize=1)
def notify_settings() -> NotifySettings:
    """The notifiers' shared settings, parsed once."""
    return load(NotifySettings)


@lru_cache(maxsize=1)
def sms_settings() -> SmsSettings:
    """The SMS settings, parsed once."""
    return load(SmsSettings)


@lru_cache(maxsize=1)
def email_settings() -> EmailSettings:
    """The e-mail settings, parsed once."""
    return load(EmailSettings)
