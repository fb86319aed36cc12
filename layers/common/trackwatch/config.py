"""Settings, parsed once from the environment into frozen pydantic models.

Each concern has its own model so that a function reads only the settings it
needs, and a missing one fails loudly when the function starts.
"""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, HttpUrl, ValidationError, field_validator
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
