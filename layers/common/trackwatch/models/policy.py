"""Plain values the logic takes: how often to poll, how to pace messages.

They are read from settings by the container (`trackwatch.config`), but the logic
only ever sees these frozen values, never the environment.
"""

from __future__ import annotations

from datetime import time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

from trackwatch.errors import ConfigurationError

#: The zone Clickpost's zone-less times are read in, and customers' quiet hours by default.
DEFAULT_SOURCE_TIMEZONE = "Asia/Kolkata"


def zone(name: str) -> ZoneInfo:
    """The IANA zone called `name`, or a ConfigurationError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(f"unknown time zone {name!r}") from exc


class Cadence(BaseModel):
    """How often each class of shipment is polled, and when tracking ends."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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
    #: Days a shipment is tracked at most (from its first poll), whatever it says.
    max_tracking_days: float = Field(default=60, gt=0)
    #: Hours a waybill whose answer cannot be read is retried before it is stopped.
    unreadable_give_up_hours: float = Field(default=72, ge=0)
    #: A scan dated further ahead than this is not trusted to order statuses.
    future_scan_margin_hours: float = Field(default=24, ge=0)

    @property
    def future_margin(self) -> timedelta:
        """The future-scan margin as a duration."""
        return timedelta(hours=self.future_scan_margin_hours)


class NotifyPolicy(BaseModel):
    """What a notifier decides with: pacing, quiet hours, and how to read a phone number."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Repeats of one customer-facing status inside this window collapse into one message.
    repeat_window_minutes: int = Field(default=360, ge=0, le=10080)
    #: Most messages one shipment gets on one channel per local day.
    daily_cap: int = Field(default=5, ge=1, le=100)
    #: Quiet hours, in the customer's zone; start after end wraps past midnight.
    quiet_hours_start: time = time(21, 0)
    quiet_hours_end: time = time(9, 0)
    #: The IANA zone of a customer whose shipment does not name one.
    customer_timezone: str = "Asia/Kolkata"
    #: The region a phone number without a country code is read in (ISO 3166 alpha-2).
    default_phone_region: str = Field(default="IN", pattern=r"^[A-Z]{2}$")

    @property
    def repeat_window(self) -> timedelta:
        """The repeat window as a duration."""
        return timedelta(minutes=self.repeat_window_minutes)


class Sweep(BaseModel):
    """The reconciliation sweep: how often each class is polled while change capture is
    healthy. Each period is a whole multiple of the class's full cadence (checked by the
    settings), so switching between the two rewrites no shipment item."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sweep_out_for_delivery_minutes: int = Field(default=480, ge=1, le=10080)
    sweep_transit_minutes: int = Field(default=1440, ge=1, le=10080)
    #: As often as the full cadence: a new shipment's first sight must not wait a day for
    #: the sweep (the feed may have listed it before it was registered).
    sweep_new_minutes: int = Field(default=240, ge=1, le=10080)
    sweep_grace_minutes: int = Field(default=1440, ge=1, le=10080)
    sweep_invalid_minutes: int = Field(default=1440, ge=1, le=10080)
    #: While the sweep stands, every active non-terminal shipment the sweep leaves alone
    #: for longer than this still has its delay checks made this often (a check-only visit,
    #: no Clickpost call), or at its class's cadence if that is longer; 0: no visits.
    delay_check_minutes: int = Field(default=120, ge=0, le=1440)


class ChangeFeedPolicy(BaseModel):
    """How the updated-order feed is read, and when it is trusted to replace the cadence."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Whether the feed is read at all; off (as when the variable is absent: a deployment
    #: from before the feed) means the full cadence, always. The template sets it.
    change_feed_enabled: bool = False
    #: How often the feed poller runs (its schedule's rate).
    change_feed_period_minutes: int = Field(default=5, ge=1, le=60)
    #: The widest window one call asks for (Clickpost allows 30 minutes).
    change_feed_window_minutes: int = Field(default=30, ge=1, le=30)
    #: Each run reads again this much before the high-water mark, for updates Clickpost
    #: lists late.
    change_feed_overlap_minutes: int = Field(default=10, ge=0, le=60)
    #: Windows one run reads at most: after an outage it catches up over several runs.
    change_feed_max_windows_per_run: int = Field(default=12, ge=1, le=200)
    #: A gap older than this is not read back (the sweep covers it).
    change_feed_max_catch_up_hours: int = Field(default=24, ge=1, le=720)
    #: Pages one window follows at most (a `next` link that never ends stops here).
    change_feed_max_pages: int = Field(default=100, ge=1, le=10000)
    #: The feed is failing when its high-water mark is this far behind.
    change_feed_stale_minutes: int = Field(default=20, ge=1, le=1440)
    #: The feed is silent when it listed nothing for this long (while shipments are active).
    change_feed_silence_minutes: int = Field(default=60, ge=1, le=10080)

    @property
    def period(self) -> timedelta:
        """The poller's period."""
        return timedelta(minutes=self.change_feed_period_minutes)

    @property
    def window(self) -> timedelta:
        """The widest window of one call."""
        return timedelta(minutes=self.change_feed_window_minutes)

    @property
    def overlap(self) -> timedelta:
        """How far back of the high-water mark a run starts."""
        return timedelta(minutes=self.change_feed_overlap_minutes)

    @property
    def stale(self) -> timedelta:
        """How far behind the high-water mark may fall before the feed counts as failing."""
        return timedelta(minutes=self.change_feed_stale_minutes)

    @property
    def silence(self) -> timedelta:
        """How long the feed may list nothing before it counts as silent."""
        return timedelta(minutes=self.change_feed_silence_minutes)

    @property
    def max_catch_up(self) -> timedelta:
        """The oldest gap read back."""
        return timedelta(hours=self.change_feed_max_catch_up_hours)
