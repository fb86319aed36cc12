"""Monthly bill for 1,000,000 active shipments: every billed line, from measured units.

What is measured comes in as `Measured` (per poll and per change, from the emulator's
request log; AWBs per second; the notifiable events per change) and `ItemSizes` (the
product's own items at 8, 30 and 60 scans, sized by DynamoDB's rules). What is assumed is
the workload of docs/architecture.md (marked (A) there and in `ASSUMED` here), and what is
read from template.yaml (function memory, alarms, keys, queues) comes from the template.

Prices are us-east-1 list prices, free tiers ignored, a month is 30 days; each price names
its source in `PRICES`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from bench.items import STORAGE_OVERHEAD, ItemSizes
from trackwatch.logic.cadence import CadenceClass
from trackwatch.logic.change_capture import check_factor, sweep_factor
from trackwatch.models.policy import Cadence, Sweep

ROOT = Path(__file__).resolve().parents[1]
DAYS = 30
GB = 1024**3


@dataclass(frozen=True)
class Price:
    """One unit price and where it comes from."""

    dollars: float
    unit: str
    source: int


#: The sources, numbered as docs/architecture.md's "Sources" lists them.
SOURCES = {
    1: "https://aws.amazon.com/dynamodb/pricing/on-demand/ (Nov 2024 cut: "
    "https://airbyte.com/data-engineering-resources/dynamodb-pricing); Standard-IA at 1.25x "
    "Standard for requests, as the China-region price list shows "
    "(https://www.amazonaws.cn/en/dynamodb/pricing/: 0.0725 vs 0.058)",
    2: "https://cloudburn.io/blog/amazon-sqs-pricing",
    3: "https://www.factualminds.com/blog/amazon-sns-pricing-publishes-fanout-protocols/",
    4: "https://cloudchipr.com/blog/aws-lambda-pricing",
    5: "https://cloudburn.io/blog/amazon-eventbridge-pricing",
    6: "https://finops.com.py/services/dynamodb/backups (PITR $0.20 per GB-month of table)",
    7: "https://signoz.io/guides/cloudwatch-pricing and "
    "https://www.factualminds.com/blog/amazon-cloudwatch-pricing-metrics-logs-alarms-dashboards/",
    8: "https://aws.amazon.com/kms/pricing/ ($1 a key-month, $0.03 per 10,000 requests)",
    9: "https://aws.amazon.com/secrets-manager/pricing/ ($0.40 a secret-month, "
    "$0.05 per 10,000 calls)",
    10: "https://aws.amazon.com/api-gateway/pricing/ (HTTP APIs, $1.00 per million)",
}

PRICES = {
    "wru": Price(0.625e-6, "WRU, Standard", 1),
    "rru": Price(0.125e-6, "RRU, Standard", 1),
    "wru_ia": Price(0.78125e-6, "WRU, Standard-IA", 1),
    "rru_ia": Price(0.15625e-6, "RRU, Standard-IA", 1),
    "storage": Price(0.25, "GB-month, Standard", 1),
    "storage_ia": Price(0.10, "GB-month, Standard-IA", 1),
    "pitr": Price(0.20, "GB-month of table, PITR", 6),
    "sqs": Price(0.40e-6, "request (64 KB chunk)", 2),
    "sns": Price(0.50e-6, "publish (64 KB chunk)", 3),
    "lambda_gb_s": Price(0.0000133334, "GB-s, arm64", 4),
    "lambda_request": Price(0.20e-6, "request", 4),
    "scheduler": Price(1.00e-6, "invocation", 5),
    "metric": Price(0.30, "custom metric-month", 7),
    "log_ingest": Price(0.50, "GB ingested", 7),
    "log_storage": Price(0.03, "GB-month stored", 7),
    "alarm": Price(0.10, "standard alarm-month", 7),
    "kms_key": Price(1.00, "key-month", 8),
    "kms_request": Price(0.03e-4, "request", 8),
    "secret": Price(0.40, "secret-month", 9),
    "secret_call": Price(0.05e-4, "API call", 9),
    "http_api": Price(1.00e-6, "HTTP API request", 10),
}


def price(name: str) -> float:
    """The unit price called `name`."""
    return PRICES[name].dollars


# --------------------------------------------------------------------------- the workload

SHIPMENTS = 1_000_000
#: share of N per cadence class, with the template's default periods (minutes).
MIX = {"transit": (0.70, 120), "ofd": (0.10, 30), "new": (0.10, 240), "grace": (0.10, 360)}
LIFE_DAYS = 5
CHANGES_PER_SHIPMENT = 8
AWBS_PER_CALL = 5
CALLS_PER_MESSAGE = 10
BATCH_SIZE = 10
#: DueIndex Queries a day (docs/architecture.md: 88 RRU a minute) — computed there.
DISPATCH_RRU_PER_DAY = 126_720
#: Registration (1 WRU, and its index entry: 1) and stop (3 WRU, and the entry's removal:
#: 1) per shipment, as the architecture counts them; the index's moves when a change
#: changes the cadence class are counted per change (below).
LIFECYCLE_WRU_PER_SHIPMENT = 1 + 1 + 3 + 1
#: What change capture (the feed healthy) takes off a month: PollShipments ≈ $13 and the
#: state reads ≈ $11, less the feed and its hints ≈ $1 (docs/architecture.md, "With change
#: capture"); the writes, the event log and the notification side are the same.
CHANGE_CAPTURE_SAVING = 13 + 11 - 1
#: (A) Changes of cadence class in a life of CHANGES_PER_SHIPMENT changes: new -> transit,
#: transit -> out for delivery, out for delivery -> grace, and for the one shipment in
#: three with a failed delivery, back to transit and out again (2 more). Each moves the
#: shipment's DueIndex entry: a delete and a put of a KEYS_ONLY entry, 2 WRU (DynamoDB's
#: rule, as the bench's emulator counts it). The bench's own five-step journeys change class
#: on most changes, so the index units it measures per change are not a life's.
CLASS_MOVES_PER_SHIPMENT = 3 + 2 / 3
INDEX_MOVE_WRU = 2
#: Registration reads (BatchGetItem, consistent): 1 RRU a shipment.
REGISTRATION_RRU_PER_SHIPMENT = 1
#: Empty long polls by Lambda's SQS pollers: 5 pollers, one receive per 20 s, per queue.
EMPTY_RECEIVES_PER_QUEUE_DAY = 5 * 3 * 1440

ASSUMED = {
    "publish_records_per_invocation": 10,
    "publish_seconds": 0.2,
    "dispatch_seconds": 1.0,
    "api_seconds": 0.05,
    #: Messages a shipment's customer gets: shipped, out for delivery, delivered, a failed
    #: delivery for one in three, on one channel; WhatsApp's SMS fallback for 10 %.
    "sends_per_shipment": 4.4,
    #: Of those, the events that make a message (before the fallback).
    "message_events_per_shipment": 4,
    #: Half the customers are on WhatsApp (as the bench's contacts): each WhatsApp message
    #: queues a delivery check to SMS, delayed 15 minutes (SQS's most). A check whose message
    #: was reported delivered by then (WhatsApp reports in seconds: every message that does
    #: not fall back, so 1 - fallbacks / WhatsApp messages) reads the WhatsApp record and
    #: ends; the others arrive twice (the notifier holds the first for the rest of the
    #: 30-minute window), each reading the recipient and the record. Fallbacks arrive once.
    "whatsapp_share": 0.5,
    "check_deliveries_per_undelivered": 2,
    #: Every other delivery a notifier takes reads the recipient, consistently, in one
    #: BatchGetItem: the shipment item and, for WhatsApp and SMS, both phone channels'
    #: memories (1 RRU each), plus WhatsApp's opt-out lookup (½): ≈ 3 RRU.
    "recipient_rru": 3,
    #: SQS messages per notifier receive (low traffic: small batches).
    "notify_batch": 5,
    #: A delivery that makes no message: the registry says so, no I/O.
    "delivery_seconds": 0.01,
    #: A send: the provider's API call dominates.
    "send_seconds": 0.2,
    #: A send's writes: the channel's log (1 WRU) and the notification record, which is the
    #: once-guard too (put `pending`, then `sent` with the provider's id: 1 WRU each since
    #: the record is compressed, ~600 B; 2 before). Until 29 November a powertools
    #: idempotency record (put, complete) added 2 WRU: 5 in all.
    "send_wru": 3,
    #: WhatsApp status reports per send (sent, delivered, read; half the sends on WhatsApp),
    #: each a consistent read of the notification record.
    "whatsapp_reports_per_send": 1.5,
    #: Of those, the ones that write the record (1 WRU): delivered and read. The sent report
    #: finds it noted `sent` with the provider's id already and writes nothing (a test says
    #: so; until 29 November the bill counted a write for every report).
    "whatsapp_report_writes_share": 2 / 3,
    #: Consistent reads of the notification record (< 4 KB: 1 RRU): each report, each
    #: delivery check's arrival and fallback (the provider's id is noted on the record the
    #: send wrote, on a version condition, without reading it).
    "record_rru": 1,
    #: Log bytes per invocation: the handler's one summary line and Lambda's START, END and
    #: REPORT lines.
    "log_bytes_per_invocation": 900,
    #: Distinct metric series (name x dimension values) the functions emit: 92 in the
    #: local runtime's demo (a simulated day of every journey, channel, change capture,
    #: delays and orders; `python -m bench.metric_series` on its log, 29 November 2026).
    #: A lower bound: error kinds and outcomes the demo never meets add more. (60 before:
    #: a guess.)
    "metric_series": 92,
    #: KMS requests: SQS and SNS reuse a data key for 5 minutes per queue and topic.
    "kms_requests_per_day": 40 * 12 * 24 * 2,
    #: Secrets Manager: each warm container reads the Clickpost secret every 5 minutes.
    "secret_calls_per_day": 10 * 12 * 24,
    "secrets": 1,
    #: The naive design Scans every 30 minutes (its shortest cadence).
    "naive_scans_per_day": 48,
    #: Notifications table: one item per shipment and channel, ~300 bytes.
    "notification_item_bytes": 300,
    "stopped_retention_days": 30,
    "event_log_retention_days": 30,
    #: Orders: every shipment carries an order id (the registration's, or Clickpost's
    #: `additional.order_id`), and one in ten is a box of an order of several.
    "order_share": 1.0,
    "multi_box_share": 0.10,
    #: The roll-up reads its order's item (consistent, < 4 KB: 1 RRU) for each stream record of
    #: a life (registration, 8 changes, the stop) and writes it (< 1 KB: 1 WRU) when the step
    #: is new to the order: the join and a new status, not a scan that keeps the status
    #: (bench/items: an order item of 1-3 boxes is 430-730 B).
    "order_reads_per_shipment": 10,
    "order_writes_per_shipment": 7,
    "order_item_bytes": 450,
    #: An order of several boxes: each write opens or joins a window, whose settle tick is a
    #: delayed SQS message (sent, received, deleted), a read, a write and a PublishBatch.
    "rollup_seconds": 0.2,
    #: Of the recipient reads, those for a kind an order of several says once (shipped, out
    #: for delivery, delivered): each reads the order's size too (½ RRU, in the same
    #: BatchGetItem).
    "said_per_order_share": 0.75,
}


@dataclass(frozen=True)
class Template:
    """What template.yaml sets that the bill depends on."""

    memory_gb: float
    #: Notifier queues subscribed to the topic (each filters on its channel in `notify`).
    notifier_queues: int
    alarms: int
    kms_keys: int
    queues: int
    log_retention_days: int
    #: The event log's table class is Standard-IA (else Standard).
    event_log_ia: bool = False
    #: Messages of one notifier batch sent at once (NotifySendConcurrency's default).
    send_concurrency: int = 1

    @classmethod
    def read(cls, path: Path = ROOT / "template.yaml") -> Template:
        """Counted off the template's text."""
        text = path.read_text(encoding="utf-8")
        memory = re.search(r"MemorySize: (\d+)", text)
        retention = re.search(r"LogRetentionDays:\n(?:.*\n)*?\s+Default: (\d+)", text)
        event_log = re.search(r"^  EventLogTable:\n((?:    .*\n|\s*\n)*)", text, re.MULTILINE)
        sends = re.search(
            r"^  NotifySendConcurrency:\n(?:    .*\n)*?    Default: (\d+)", text, re.MULTILINE
        )
        return cls(
            memory_gb=int(memory[1]) / 1024 if memory else 0.5,
            notifier_queues=len(re.findall(r"^\s+(?:- )?notify: \[\w+\]$", text, re.MULTILINE)),
            alarms=text.count("Type: AWS::CloudWatch::Alarm"),
            kms_keys=text.count("Type: AWS::KMS::Key"),
            queues=text.count("Type: AWS::SQS::Queue"),
            log_retention_days=int(retention[1]) if retention else 30,
            event_log_ia=bool(
                event_log and "TableClass: STANDARD_INFREQUENT_ACCESS" in event_log[1]
            ),
            send_concurrency=int(sends[1]) if sends else 1,
        )


def polls_per_day() -> float:
    """Σ N · share · 1440 / period."""
    return sum(SHIPMENTS * share * 1440 / period for share, period in MIX.values())


def check_visits_per_day(cadence: Cadence | None = None, sweep: Sweep | None = None) -> float:
    """Check-only visits a day with change capture healthy (the template's periods, and
    `DelayCheckMinutes`): per class, a visit every c cycles, less the sweep's polls that
    fall on a visit's cycle (docs/architecture.md, "Staleness without polling more")."""
    cadence, sweep = cadence or Cadence(), sweep or Sweep()
    visits = 0.0
    for name, (share, period) in MIX.items():
        klass = CadenceClass(name)
        every = check_factor(klass, cadence, sweep)
        if every == 0:
            continue
        factor = sweep_factor(klass, cadence, sweep)
        polls_on_visits = 1440 / (period * factor) if factor % every == 0 else 0
        visits += SHIPMENTS * share * (1440 / (period * every) - polls_on_visits)
    return visits


def changes_per_day() -> float:
    """N / life · changes per shipment."""
    return SHIPMENTS / LIFE_DAYS * CHANGES_PER_SHIPMENT


def starts_per_day() -> float:
    """Shipments registered (and stopped) a day."""
    return SHIPMENTS / LIFE_DAYS


@dataclass(frozen=True)
class Measured:
    """Per-unit figures measured by the benchmark (at its own journeys' lengths)."""

    # ours, an unchanged poll
    poll_rru: float
    poll_sqs_billed: float
    # ours, what a change adds
    change_wru_shipments: float
    change_wru_event_log: float
    change_sns_billed: float
    events_per_change: float
    #: Events per change of the types the notifiers send messages about.
    notifiable_per_change: float
    #: Deliveries to notifier queues per change: each event goes to the channels its
    #: `notify` attribute names (the rules, the shipment's contact).
    routed_per_change: float
    # one invocation's poll throughput, AWBs per second
    awbs_per_s: float
    # naive
    naive_awbs_per_s: float
    #: Of change_wru_shipments, the DueIndex's units (the moves of the bench's journeys);
    #: the bill replaces them by a life's moves (`index_wru_per_change`).
    change_index_wru_shipments: float = 0.0


@dataclass(frozen=True)
class Line:
    """One line of a monthly bill: what, how, how much, and which part of the system."""

    part: str
    what: str
    formula: str
    dollars: float


def _lambda(invocations: float, seconds: float, memory_gb: float) -> float:
    """Requests and GB-s of `invocations` a month."""
    return invocations * (price("lambda_request") + seconds * memory_gb * price("lambda_gb_s"))


def index_wru_per_change() -> float:
    """A change's share of a life's DueIndex moves."""
    return CLASS_MOVES_PER_SHIPMENT * INDEX_MOVE_WRU / CHANGES_PER_SHIPMENT


def change_wru(m: Measured, size: ItemSizes, base: ItemSizes) -> float:
    """A change's units on the shipments table with items of `size`'s length: the item's
    units as measured (the bench's journeys, whose items `base` stands for), plus what a
    longer item adds, plus a life's DueIndex moves shared over its changes."""
    item = m.change_wru_shipments - m.change_index_wru_shipments
    return item + size.change_wru - base.change_wru + index_wru_per_change()


def ours(m: Measured, size: ItemSizes, base: ItemSizes, t: Template | None = None) -> list[Line]:
    """trackwatch's monthly bill with items of `size`'s length (`base`: the bench's own)."""
    t = t or Template.read()
    a = ASSUMED
    p, c, s = polls_per_day() * DAYS, changes_per_day() * DAYS, starts_per_day() * DAYS
    v = check_visits_per_day() * DAYS
    calls = p / AWBS_PER_CALL
    poll_invocations = calls / CALLS_PER_MESSAGE / BATCH_SIZE
    publish_invocations = c / a["publish_records_per_invocation"]
    per_change = change_wru(m, size, base)
    sends = s * a["sends_per_shipment"]
    checks = s * a["message_events_per_shipment"] * a["whatsapp_share"]
    fallbacks = s * (a["sends_per_shipment"] - a["message_events_per_shipment"])
    delivered_first = checks - fallbacks  # checks that end on their first arrival
    handovers = (
        delivered_first
        + (checks - delivered_first) * a["check_deliveries_per_undelivered"]
        + fallbacks
    )
    deliveries = c * m.routed_per_change + handovers
    recipient_reads = deliveries - delivered_first
    reports = sends * a["whatsapp_reports_per_send"]
    report_writes = reports * a["whatsapp_report_writes_share"]
    record_reads = reports + handovers
    # A batch's sends go side by side, up to the template's NotifySendConcurrency: a send's
    # billed time is the provider's answer shared by those in flight with it.
    sends_per_batch = a["notify_batch"] * sends / deliveries
    overlap = max(1.0, min(float(t.send_concurrency), sends_per_batch))
    shipments_gb = (
        (SHIPMENTS + starts_per_day() * a["stopped_retention_days"])
        * (size.item_bytes + STORAGE_OVERHEAD)
        / GB
    )
    log_gb = (
        changes_per_day()
        * a["event_log_retention_days"]
        * (size.event_log_bytes + STORAGE_OVERHEAD)
    ) / GB
    notifications_gb = SHIPMENTS * (a["notification_item_bytes"] + STORAGE_OVERHEAD) / GB
    log_class, log_wru, log_storage = (
        ("Standard-IA", "wru_ia", "storage_ia")
        if t.event_log_ia
        else ("Standard", "wru", "storage")
    )
    lives = s * a["order_share"]
    order_reads = lives * a["order_reads_per_shipment"]
    order_writes = lives * a["order_writes_per_shipment"]
    ticks = order_writes * a["multi_box_share"]
    rollup_invocations = publish_invocations * a["order_share"]
    size_reads = recipient_reads * a["said_per_order_share"] * a["order_share"]
    orders_gb = (
        (SHIPMENTS + starts_per_day() * a["event_log_retention_days"])
        * a["order_share"]
        * (a["order_item_bytes"] + STORAGE_OVERHEAD)
        / GB
    )
    invocations = (
        poll_invocations
        + publish_invocations
        + rollup_invocations
        + ticks / BATCH_SIZE
        + 1440 * DAYS
        + s
        + deliveries / a["notify_batch"]
        + reports / BATCH_SIZE
    )
    log_gb_month = invocations * a["log_bytes_per_invocation"] / GB
    mem = t.memory_gb
    return [
        Line(
            "polling",
            "DynamoDB reads, shipments (Standard)",
            f"{p / 1e6:.0f}M polls x {size.poll_rru} RRU + dispatch "
            f"{DISPATCH_RRU_PER_DAY * DAYS / 1e6:.1f}M + registrations {s / 1e6:.0f}M x "
            f"{REGISTRATION_RRU_PER_SHIPMENT}",
            (p * size.poll_rru + DISPATCH_RRU_PER_DAY * DAYS + s * REGISTRATION_RRU_PER_SHIPMENT)
            * price("rru"),
        ),
        Line(
            "polling",
            "DynamoDB writes, shipments (Standard)",
            f"{c / 1e6:.0f}M changes x {per_change:.2f} WRU (the item: measured "
            f"{m.change_wru_shipments - m.change_index_wru_shipments:.2f} + "
            f"{size.change_wru - base.change_wru} for a {size.change_bytes} B item; DueIndex: "
            f"{CLASS_MOVES_PER_SHIPMENT:.2f} class moves a life x {INDEX_MOVE_WRU} WRU over "
            f"{CHANGES_PER_SHIPMENT} changes) + "
            f"{s / 1e6:.0f}M lives x {LIFECYCLE_WRU_PER_SHIPMENT} (register, stop, index entry)",
            (c * per_change + s * LIFECYCLE_WRU_PER_SHIPMENT) * price("wru"),
        ),
        Line(
            "polling",
            "DynamoDB storage + PITR, shipments",
            f"{shipments_gb:.2f} GB (1M active + {a['stopped_retention_days']} d of stopped, "
            f"{size.item_bytes} B + 100) x (${price('storage')} + ${price('pitr')} PITR)",
            shipments_gb * (price("storage") + price("pitr")),
        ),
        Line(
            "polling",
            "Lambda, PollShipments",
            f"{p / 1e6:.0f}M AWBs ÷ {m.awbs_per_s:.0f} AWB/s x {mem} GB + "
            f"{poll_invocations / 1e6:.2f}M requests",
            p / m.awbs_per_s * mem * price("lambda_gb_s")
            + poll_invocations * price("lambda_request"),
        ),
        Line(
            "polling",
            "Lambda, DispatchPolls + Scheduler",
            f"{1440 * DAYS:,} runs x {a['dispatch_seconds']} s x {mem} GB, + as many "
            "Scheduler invocations",
            _lambda(1440 * DAYS, a["dispatch_seconds"], mem) + 1440 * DAYS * price("scheduler"),
        ),
        Line(
            "polling",
            "SQS, PollQueue",
            f"{p / 1e6:.0f}M polls x {m.poll_sqs_billed:.4f} billed + empty receives",
            (p * m.poll_sqs_billed + EMPTY_RECEIVES_PER_QUEUE_DAY * DAYS) * price("sqs"),
        ),
        Line(
            "delays",
            "DynamoDB reads + SQS, check-only visits (change capture on)",
            f"{v / 1e6:.0f}M visits x {size.poll_rru} RRU (a poll's read; no call, no write "
            f"without news; none at the full cadence) + x {m.poll_sqs_billed:.4f} SQS billed",
            v * (size.poll_rru * price("rru") + m.poll_sqs_billed * price("sqs")),
        ),
        Line(
            "events",
            f"DynamoDB writes, event log ({log_class})",
            f"{c / 1e6:.0f}M changes x {m.change_wru_event_log:.2f} WRU (measured: one item "
            "per change and its LearnIndex entry)",
            c * m.change_wru_event_log * price(log_wru),
        ),
        Line(
            "events",
            f"DynamoDB storage, event log ({log_class}, no PITR)",
            f"{log_gb:.1f} GB ({a['event_log_retention_days']} d of changes) x "
            f"${price(log_storage)}",
            log_gb * price(log_storage),
        ),
        Line(
            "events",
            "Lambda, PublishEvents",
            f"{publish_invocations / 1e6:.2f}M invocations x {a['publish_seconds']} s x {mem} GB",
            _lambda(publish_invocations, a["publish_seconds"], mem),
        ),
        Line(
            "events",
            "SNS, ShipmentEventsTopic",
            f"{c / 1e6:.0f}M changes x {m.change_sns_billed:.2f} billed publishes (PublishBatch; "
            "deliveries to SQS are free)",
            c * m.change_sns_billed * price("sns"),
        ),
        Line(
            "notifications",
            "SQS, notifier queues + WhatsApp events queue",
            f"{deliveries / 1e6:.0f}M deliveries ({c * m.routed_per_change / 1e6:.0f}M routed "
            f"to {t.notifier_queues} queues + {handovers / 1e6:.0f}M delivery checks and "
            f"fallbacks) x (1 enqueue + 2 "
            f"÷ {a['notify_batch']}) + {reports / 1e6:.0f}M WhatsApp reports x 1.2 + 4 queues' "
            "empty receives",
            (
                deliveries * (1 + 2 / a["notify_batch"])
                + reports * 1.2
                + 4 * EMPTY_RECEIVES_PER_QUEUE_DAY * DAYS
            )
            * price("sqs"),
        ),
        Line(
            "notifications",
            "Lambda, notifiers + WhatsApp events",
            f"{deliveries / a['notify_batch'] / 1e6:.1f}M invocations: {deliveries / 1e6:.0f}M "
            f"deliveries x {a['delivery_seconds']} s + {sends / 1e6:.1f}M sends x "
            f"{a['send_seconds']} s ÷ {overlap:.1f} at once ({sends_per_batch:.1f} a batch, "
            f"{t.send_concurrency} sent at once at most); "
            f"{reports / BATCH_SIZE / 1e6:.1f}M report batches x 0.1 s; {mem} GB",
            deliveries / a["notify_batch"] * price("lambda_request")
            + (deliveries * a["delivery_seconds"] + sends * a["send_seconds"] / overlap)
            * mem
            * price("lambda_gb_s")
            + _lambda(reports / BATCH_SIZE, 0.1, mem),
        ),
        Line(
            "notifications",
            "DynamoDB, notification records and memory (Standard)",
            f"{recipient_reads / 1e6:.0f}M recipient reads (a delivery's, but a check's "
            f"whose message arrived) x "
            f"{a['recipient_rru']} RRU + {record_reads / 1e6:.0f}M record reads x "
            f"{a['record_rru']} RRU + "
            f"{sends / 1e6:.1f}M sends x {a['send_wru']} WRU + {report_writes / 1e6:.0f}M of "
            f"{reports / 1e6:.0f}M reports (delivered, read) x 1 WRU; {notifications_gb:.2f} GB "
            "+ PITR",
            (recipient_reads * a["recipient_rru"] + record_reads * a["record_rru"]) * price("rru")
            + (sends * a["send_wru"] + report_writes) * price("wru")
            + notifications_gb * (price("storage") + price("pitr")),
        ),
        Line(
            "orders",
            "DynamoDB, orders (Standard)",
            f"{lives / 1e6:.0f}M lives x ({a['order_reads_per_shipment']} reads x 1 RRU + "
            f"{a['order_writes_per_shipment']} writes x 1 WRU); {ticks / 1e6:.1f}M settle ticks "
            f"(boxes of orders of several: {a['multi_box_share']:.0%}) x (1 RRU + 1 WRU); "
            f"{size_reads / 1e6:.0f}M notifier reads of an order's size x ½ RRU; "
            f"{orders_gb:.2f} GB + PITR",
            (order_reads + ticks + size_reads / 2) * price("rru")
            + (order_writes + ticks) * price("wru")
            + orders_gb * (price("storage") + price("pitr")),
        ),
        Line(
            "orders",
            "Lambda, RollUpOrders; SQS, OrderSettleQueue; SNS, order events",
            f"{rollup_invocations / 1e6:.2f}M stream batches x {a['rollup_seconds']} s x {mem} "
            f"GB + {ticks / BATCH_SIZE / 1e6:.2f}M tick batches x 0.1 s; {ticks / 1e6:.1f}M "
            "ticks x (1 send + 2 ÷ 10) SQS requests + as many PublishBatch",
            _lambda(rollup_invocations, a["rollup_seconds"], mem)
            + _lambda(ticks / BATCH_SIZE, 0.1, mem)
            + ticks * (1 + 2 / BATCH_SIZE) * price("sqs")
            + ticks * price("sns"),
        ),
        Line(
            "operations",
            "API (HTTP API) + ShipmentsApi/Ingest Lambda",
            f"{s / 1e6:.0f}M registrations x (1 request + {a['api_seconds']} s x {mem} GB)",
            s * price("http_api") + _lambda(s, a["api_seconds"], mem),
        ),
        Line(
            "operations",
            "CloudWatch Logs",
            f"{invocations / 1e6:.2f}M invocations x {a['log_bytes_per_invocation']} B = "
            f"{log_gb_month:.2f} GB x (${price('log_ingest')} + {t.log_retention_days} d "
            f"stored x ${price('log_storage')})",
            log_gb_month
            * (price("log_ingest") + price("log_storage") * t.log_retention_days / DAYS),
        ),
        Line(
            "operations",
            "CloudWatch metrics + alarms",
            f"{a['metric_series']} metric series x ${price('metric')} + {t.alarms} alarms x "
            f"${price('alarm')}",
            a["metric_series"] * price("metric") + t.alarms * price("alarm"),
        ),
        Line(
            "operations",
            "KMS + Secrets Manager",
            f"{t.kms_keys} keys + {a['kms_requests_per_day'] * DAYS / 1e6:.2f}M requests; "
            f"{a['secrets']} secret + {a['secret_calls_per_day'] * DAYS:,} calls",
            t.kms_keys * price("kms_key")
            + a["kms_requests_per_day"] * DAYS * price("kms_request")
            + a["secrets"] * price("secret")
            + a["secret_calls_per_day"] * DAYS * price("secret_call"),
        ),
    ]


def naive(m: Measured, size: ItemSizes, base: ItemSizes, t: Template | None = None) -> list[Line]:
    """The naive poller's monthly bill at the same cadence, with the same orders, notification
    side and operations as ours (it needs them as much), items of `size`'s length."""
    t = t or Template.read()
    a = ASSUMED
    p, c = polls_per_day() * DAYS, changes_per_day() * DAYS
    scan_rru = SHIPMENTS * size.naive_scan_rru * a["naive_scans_per_day"] * DAYS
    naive_gb = SHIPMENTS * (size.naive_bytes + STORAGE_OVERHEAD) / GB
    own = [
        Line(
            "polling",
            "DynamoDB writes (PutItem every poll)",
            f"{p / 1e6:.0f}M polls x {size.naive_put_wru} WRU ({size.naive_bytes} B)",
            p * size.naive_put_wru * price("wru"),
        ),
        Line(
            "polling",
            "DynamoDB reads (Scan, no second read)",
            f"{a['naive_scans_per_day']} scans a day x 1M x {size.naive_scan_rru:.3f} RRU",
            scan_rru * price("rru"),
        ),
        Line(
            "polling",
            "DynamoDB storage + PITR",
            f"{naive_gb:.2f} GB x (${price('storage')} + ${price('pitr')})",
            naive_gb * (price("storage") + price("pitr")),
        ),
        Line(
            "polling",
            "Lambda (10 calls in flight, as measured)",
            f"{p / 1e6:.0f}M AWBs ÷ {m.naive_awbs_per_s:.1f} AWB/s x {t.memory_gb} GB",
            p / m.naive_awbs_per_s * t.memory_gb * price("lambda_gb_s"),
        ),
        Line(
            "events",
            "SNS (one Publish per event)",
            f"{c / 1e6:.0f}M changes x {m.events_per_change:.2f} events",
            c * m.events_per_change * price("sns"),
        ),
    ]
    shared = [
        line
        for line in ours(m, size, base, t)
        if line.part in ("orders", "notifications", "operations")
    ]
    return own + shared


def total(lines: list[Line], parts: tuple[str, ...] | None = None) -> float:
    """The bill's sum (of the lines of `parts`, if given)."""
    return sum(line.dollars for line in lines if parts is None or line.part in parts)


def goal_gap(dollars: float, goal: float = 150.0) -> str:
    """How far a total is from the goal, in words."""
    if dollars <= goal:
        return f"under the ${goal:.0f} goal by ${goal - dollars:,.0f}"
    over = math.ceil(dollars / goal * 100) - 100
    return f"over the ${goal:.0f} goal by ${dollars - goal:,.0f} ({over} %)"
