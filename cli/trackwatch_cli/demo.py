"""What the local runtime tracks: the demo's shipments, or a user's CSV played by the sandbox."""

from __future__ import annotations

from datetime import date

from trackwatch.models.registration import Registration, parse_entry
from trackwatch_cli.local_senders import WhatsAppOutcome
from trackwatch_cli.sandbox import SandboxServer

#: What becomes of some demo customers' WhatsApp messages, by their place in the demo: one
#: fails, one number is not on WhatsApp, one never reports delivery. SMS takes over for each.
_DEMO_WHATSAPP: dict[int, WhatsAppOutcome] = {1: "failed", 3: "undeliverable", 4: "silent"}


#: The demo journey whose merchant promised delivery on the day it is registered.
PROMISED_TODAY = "missed_promise"


def demo_registrations(
    sandbox: SandboxServer, languages: frozenset[str], today: date | None = None
) -> list[Registration]:
    """The sandbox's demo shipments, registered with a customer each (some in Hindi); the
    boxes of one order share their customer (the first box's); the missed-promise one
    with a promise for `today` (its registration day)."""
    shipments = sandbox.add_demo_shipments()
    first_of: dict[str, int] = {}
    for i, s in enumerate(shipments):
        if s.order_id is not None:
            first_of.setdefault(s.order_id, i)
    demo = []
    for i, s in enumerate(shipments):
        customer = first_of.get(s.order_id, i) if s.order_id is not None else i
        entry: dict[str, object] = {
            "waybill": s.waybill,
            "cp_id": s.cp_id,
            "phone": f"+9198765{43210 + customer:05d}",
            "email": f"customer{customer + 1}@example.com",
            "language": "hi" if customer % 3 == 2 and "hi" in languages else "en",
        }
        if s.order_id is not None:
            entry["order_id"] = s.order_id
        if today is not None and s.journey == PROMISED_TODAY:
            entry["promised_delivery_date"] = today.isoformat()
        demo.append(parse_entry(entry, languages))
    rows = [r for r in demo if isinstance(r, Registration)]
    if len(rows) != len(demo):  # the demo's own data broke a rule: a bug here
        raise RuntimeError(f"demo shipments rejected: {demo}")
    return rows


def demo_whatsapp_outcomes(rows: list[Registration]) -> dict[str, WhatsAppOutcome]:
    """The demo's WhatsApp outcomes, by phone number."""
    return {
        row.phone: _DEMO_WHATSAPP[i]
        for i, row in enumerate(rows)
        if i in _DEMO_WHATSAPP and row.phone is not None
    }


def play_in_sandbox(sandbox: SandboxServer, row: Registration) -> None:
    """A user's shipment: the sandbox answers it on the journey its waybill picks
    (`SandboxServer.journey_for`), with the order id the user gave."""
    sandbox.expect(row.waybill, row.cp_id, row.order_id)
