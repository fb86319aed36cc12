"""notify_whatsapp: WhatsAppQueue consumer; tells each shipment's customer the news on WhatsApp."""

from __future__ import annotations

from trackwatch.bootstrap import lambda_entry
from trackwatch.notify_batch import notify_handler

handler = notify_handler("whatsapp")
lambda_handler = lambda_entry(handler)
