"""The adapters and services each function uses, built once per process from settings."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from trackwatch.adapters.clickpost import ClickpostClient
from trackwatch.adapters.events_topic import EventsTopic
from trackwatch.adapters.poll_queue import PollQueue
from trackwatch.adapters.shipments_table import ShipmentsTable
from trackwatch.config import (
    cadence_settings,
    clickpost_settings,
    dispatch_settings,
    publish_settings,
    table_settings,
)
from trackwatch.logic.catalogue import default_catalogue
from trackwatch.services.poll import PollService


def utc_now() -> datetime:
    """The current time, zone-aware."""
    return datetime.now(UTC)


@lru_cache(maxsize=1)
def shipments_table() -> ShipmentsTable:
    """The shipments table."""
    settings = table_settings()
    return ShipmentsTable(settings.shipments_table_name, settings.due_index_name)


@lru_cache(maxsize=1)
def poll_queue() -> PollQueue:
    """PollQueue."""
    return PollQueue(dispatch_settings().poll_queue_url)


@lru_cache(maxsize=1)
def events_topic() -> EventsTopic:
    """The shipment events topic."""
    return EventsTopic(publish_settings().events_topic_arn)


@lru_cache(maxsize=1)
def poll_service() -> PollService:
    """The poller, over the shipments table."""
    return PollService(shipments_table(), default_catalogue(), cadence_settings(), utc_now)


def clickpost_client() -> ClickpostClient:
    """A Clickpost client; one per invocation, since it belongs to that invocation's event loop."""
    return ClickpostClient.from_settings(clickpost_settings())


def reset() -> None:
    """Forget everything built (tests and the local runtime change the environment)."""
    from trackwatch import config
    from trackwatch.adapters import aws

    for factory in (shipments_table, poll_queue, events_topic, poll_service):
        factory.cache_clear()
    for settings in (
        config.cadence_settings,
        config.clickpost_settings,
        config.dispatch_settings,
        config.publish_settings,
        config.table_settings,
    ):
        settings.cache_clear()
    default_catalogue.cache_clear()
    aws.reset()
