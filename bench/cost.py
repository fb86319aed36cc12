"""Monthly cost for 1,000,000 active shipments, from measured request counts.

What is measured comes in as `Measured` (per poll, per change, per shipment per
scan, AWBs per second). What is assumed is the workload of docs/architecture.md
(its mix, cadences, life and changes per shipment, function sizes) and the unit
prices it cites (us-east-1, from the secondary sources listed there).
"""

from __future__ import annotations

from dataclasses import dataclass

# Unit prices, as docs/architecture.md cites them.
WRU_PER_M = 0.625
RRU_PER_M = 0.125
SQS_PER_M = 0.40
SNS_PER_M = 0.50
LAMBDA_GB_S = 0.0000133334
LAMBDA_PER_M = 0.20
DAYS = 30

# The workload of docs/architecture.md (assumptions there, marked (A)).
SHIPMENTS = 1_000_000
#: share of N per cadence class, with the template's default periods (minutes).
MIX = {"transit": (0.70, 120), "ofd": (0.10, 30), "new": (0.10, 240), "grace": (0.10, 360)}
LIFE_DAYS = 5
CHANGES_PER_SHIPMENT = 8
MEMORY_GB = 0.5
AWBS_PER_CALL = 5
CALLS_PER_MESSAGE = 10
BATCH_SIZE = 10
#: DueIndex Queries a day (architecture: 88 RRU a minute) — computed there, not measured.
DISPATCH_RRU_PER_DAY = 126_720
#: Registrations (1 WRU) and stops (3 WRU) a day, as the architecture counts them.
LIFECYCLE_WRU_PER_DAY = SHIPMENTS / LIFE_DAYS * (1 + 3)
#: Empty long polls on PollQueue (5 pollers, one per 20 s), as the architecture assumes.
EMPTY_RECEIVES_PER_DAY = 21_600
#: PublishEvents: ~10 stream records an invocation, 0.2 s each, and DispatchPolls: 1 s a run.
PUBLISH_RECORDS_PER_INVOCATION = 10
PUBLISH_SECONDS = 0.2
DISPATCH_SECONDS = 1.0
#: The naive design's cycle is 30 minutes (to honour the 30-minute cadence): 48 Scans a day.
NAIVE_SCANS_PER_DAY = 48


def polls_per_day() -> float:
    """Σ N · share · 1440 / period."""
    return sum(SHIPMENTS * share * 1440 / period for share, period in MIX.values())


def changes_per_day() -> float:
    """N / life · changes per shipment."""
    return SHIPMENTS / LIFE_DAYS * CHANGES_PER_SHIPMENT


@dataclass(frozen=True)
class Measured:
    """Per-unit figures measured by the benchmark."""

    # ours, an unchanged poll
    poll_rru: float
    poll_wru: float
    poll_sqs_billed: float
    # ours, what a change adds
    change_wru: float
    change_rru: float
    change_sns_billed: float
    events_per_change: float
    # one invocation's poll throughput, AWBs per second
    awbs_per_s: float
    # naive, per poll and per item per scan
    naive_get_rru: float
    naive_put_wru: float
    naive_scan_rru_per_item: float
    naive_awbs_per_s: float


@dataclass(frozen=True)
class Line:
    """One line of a monthly bill: what, how, how much."""

    what: str
    formula: str
    dollars: float


def ours(m: Measured) -> list[Line]:
    """The monthly bill of trackwatch."""
    p, c = polls_per_day(), changes_per_day()
    calls = p / AWBS_PER_CALL
    invocations = calls / CALLS_PER_MESSAGE / BATCH_SIZE
    poll_gb_s = p / m.awbs_per_s * MEMORY_GB
    publish_invocations = c / PUBLISH_RECORDS_PER_INVOCATION
    wru = c * m.change_wru + p * m.poll_wru + LIFECYCLE_WRU_PER_DAY
    rru = p * m.poll_rru + c * m.change_rru + DISPATCH_RRU_PER_DAY
    return [
        Line(
            "DynamoDB writes",
            f"({c / 1e6:.2f}M changes x {m.change_wru:.2f} WRU + {p / 1e6:.1f}M polls x "
            f"{m.poll_wru:.2f} + {LIFECYCLE_WRU_PER_DAY / 1e6:.1f}M lifecycle) x {DAYS} d",
            wru * DAYS / 1e6 * WRU_PER_M,
        ),
        Line(
            "DynamoDB reads",
            f"({p / 1e6:.1f}M polls x {m.poll_rru:.3f} RRU + changes x {m.change_rru:.3f} + "
            f"dispatch {DISPATCH_RRU_PER_DAY:,}) x {DAYS} d",
            rru * DAYS / 1e6 * RRU_PER_M,
        ),
        Line(
            "SQS, PollQueue",
            f"({p / 1e6:.1f}M polls x {m.poll_sqs_billed:.4f} + {EMPTY_RECEIVES_PER_DAY:,} "
            f"empty receives) x {DAYS} d",
            (p * m.poll_sqs_billed + EMPTY_RECEIVES_PER_DAY) * DAYS / 1e6 * SQS_PER_M,
        ),
        Line(
            "SNS",
            f"{c / 1e6:.2f}M changes x {m.change_sns_billed:.2f} billed publishes x {DAYS} d",
            c * m.change_sns_billed * DAYS / 1e6 * SNS_PER_M,
        ),
        Line(
            "Lambda, PollShipments",
            f"{p / 1e6:.1f}M AWBs ÷ {m.awbs_per_s:.0f} AWB/s x {MEMORY_GB} GB + "
            f"{invocations:,.0f} invocations, x {DAYS} d",
            (poll_gb_s * LAMBDA_GB_S + invocations / 1e6 * LAMBDA_PER_M) * DAYS,
        ),
        Line(
            "Lambda, PublishEvents + DispatchPolls",
            f"{publish_invocations:,.0f} x {PUBLISH_SECONDS} s + 1,440 x {DISPATCH_SECONDS} s, "
            f"{MEMORY_GB} GB, x {DAYS} d",
            (
                (publish_invocations * PUBLISH_SECONDS + 1440 * DISPATCH_SECONDS)
                * MEMORY_GB
                * LAMBDA_GB_S
                + (publish_invocations + 1440) / 1e6 * LAMBDA_PER_M
            )
            * DAYS,
        ),
    ]


def naive(m: Measured) -> list[Line]:
    """The monthly bill of the naive design at the same cadence."""
    p, c = polls_per_day(), changes_per_day()
    scan_rru = SHIPMENTS * m.naive_scan_rru_per_item * NAIVE_SCANS_PER_DAY
    gb_s = p / m.naive_awbs_per_s * MEMORY_GB
    return [
        Line(
            "DynamoDB writes (PutItem every poll)",
            f"{p / 1e6:.1f}M polls x {m.naive_put_wru:.2f} WRU x {DAYS} d",
            p * m.naive_put_wru * DAYS / 1e6 * WRU_PER_M,
        ),
        Line(
            "DynamoDB reads (Scan + GetItem)",
            f"({NAIVE_SCANS_PER_DAY} scans x 1M x {m.naive_scan_rru_per_item:.3f} RRU + "
            f"{p / 1e6:.1f}M x {m.naive_get_rru:.2f}) x {DAYS} d",
            (scan_rru + p * m.naive_get_rru) * DAYS / 1e6 * RRU_PER_M,
        ),
        Line(
            "SNS (one Publish per event)",
            f"{c / 1e6:.2f}M changes x {m.events_per_change:.2f} events x {DAYS} d",
            c * m.events_per_change * DAYS / 1e6 * SNS_PER_M,
        ),
        Line(
            "Lambda (sequential calls)",
            f"{p / 1e6:.1f}M AWBs ÷ {m.naive_awbs_per_s:.2f} AWB/s x {MEMORY_GB} GB x {DAYS} d",
            gb_s * LAMBDA_GB_S * DAYS,
        ),
    ]


def total(lines: list[Line]) -> float:
    """The bill's sum."""
    return sum(line.dollars for line in lines)
