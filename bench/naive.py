"""The naive baseline: the poller docs/architecture.md prices as "the naive design".

It lives in bench/ only, never in the product. Each cycle it Scans the whole table,
and for every item the Scan returned, with `IN_FLIGHT` of them at a time (a thread pool,
as a team would write it): one Clickpost call for that one AWB, the same diff engine as
the product over the item as scanned (no second read), PutItem of the whole item (it
records `last_polled_at`, so every poll writes), and one SNS Publish per event.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx

from trackwatch.adapters.clickpost import TRACK_ORDER_PATH
from trackwatch.adapters.events_topic import message_attributes, message_body
from trackwatch.adapters.shipments_table import decode_state, from_item, to_item
from trackwatch.data import load_catalogue
from trackwatch.logic.catalogue import StatusCatalogue
from trackwatch.logic.diff import diff
from trackwatch.models.clickpost import DEFAULT_SOURCE_TIMEZONE, parse_track_order
from trackwatch.models.events import ShipmentEvent
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.policy import zone
from trackwatch.models.state import ShipmentState
from trackwatch_cli.sandbox import DEFAULT_KEY, DEFAULT_USERNAME

#: Clickpost calls in flight: as many as the product's poll worker keeps.
IN_FLIGHT = 10

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sns import SNSClient

    from trackwatch.adapters.aws import AwsClients


@dataclass
class NaiveSummary:
    """What one naive cycle did."""

    polled: int = 0
    calls: int = 0
    written: int = 0
    events: Counter[str] = field(default_factory=Counter)
    published: list[ShipmentEvent] = field(default_factory=list)


def against_sandbox(
    *,
    table: str,
    topic_arn: str,
    base_url: str,
    clients: AwsClients,
    clock: Callable[[], datetime],
) -> NaivePoller:
    """The naive poller of `table` and `topic_arn`, polling the sandbox at `base_url` with its
    default credentials, Clickpost's status catalogue and source time zone."""
    return NaivePoller(
        table=table,
        topic_arn=topic_arn,
        base_url=base_url,
        key=DEFAULT_KEY,
        username=DEFAULT_USERNAME,
        catalogue=load_catalogue(),
        source_tz=zone(DEFAULT_SOURCE_TIMEZONE),
        clock=clock,
        dynamodb=clients.dynamodb,
        sns=clients.sns,
    )


class NaivePoller:
    """Scan, then per AWB, 10 at a time: one call, diff, PutItem, one Publish per event."""

    def __init__(
        self,
        *,
        table: str,
        topic_arn: str,
        base_url: str,
        key: str,
        username: str,
        catalogue: StatusCatalogue,
        source_tz: ZoneInfo,
        clock: Callable[[], datetime],
        dynamodb: DynamoDBClient,
        sns: SNSClient,
    ) -> None:
        self._table = table
        self._topic = topic_arn
        self._params = {"key": key, "username": username}
        self._base_url = base_url
        self._catalogue = catalogue
        self._tz = source_tz
        self._clock = clock
        self._dynamodb = dynamodb
        self._sns = sns

    def cycle(self, limit: int | None = None) -> NaiveSummary:
        """Poll every item of the table once (or the first `limit` of the scan)."""
        summary = NaiveSummary()
        items: list[dict[str, Any]] = []
        for page in self._dynamodb.get_paginator("scan").paginate(TableName=self._table):
            items.extend(page.get("Items", []))
        if limit is not None:
            items = items[:limit]
        lock = threading.Lock()
        limits = httpx.Limits(max_connections=IN_FLIGHT)
        with (
            httpx.Client(base_url=self._base_url, timeout=30, limits=limits) as http,
            ThreadPoolExecutor(max_workers=IN_FLIGHT) as pool,
        ):
            # list(): every poll waited for, and the first failure raised here.
            list(pool.map(lambda item: self._poll(http, item, summary, lock), items))
        return summary

    def _poll(
        self,
        http: httpx.Client,
        item: dict[str, Any],
        summary: NaiveSummary,
        lock: threading.Lock,
    ) -> None:
        key = ShipmentKey.from_pk(item["pk"]["S"])
        response = http.get(
            TRACK_ORDER_PATH,
            params={**self._params, "waybill": key.waybill, "cp_id": str(key.cp_id)},
        )
        result = parse_track_order(response.content, self._tz).result.get(key.waybill)
        with lock:
            summary.calls += 1
            summary.polled += 1
        if result is None:
            return
        plain = from_item(item)
        now = self._clock()
        # Seeded in our layout; the naive design then keeps its state as plain JSON.
        stored_state = (
            ShipmentState.model_validate_json(plain["naive_state"])
            if "naive_state" in plain
            else decode_state(plain)
        )
        outcome = diff(stored_state, key, result, now, self._catalogue)
        plain = {k: v for k, v in plain.items() if k not in ("state", "ckpts", "seen")}
        plain["naive_state"] = outcome.state.model_dump_json(exclude_defaults=True)
        plain["last_polled_at"] = now.isoformat()
        self._dynamodb.put_item(TableName=self._table, Item=to_item(plain))
        for event in outcome.events:
            self._sns.publish(
                TopicArn=self._topic,
                Message=message_body(event),
                MessageAttributes=message_attributes(event),  # type: ignore[arg-type]
            )
        with lock:
            summary.written += 1
            for event in outcome.events:
                summary.events[event.event_type] += 1
                summary.published.append(event)
