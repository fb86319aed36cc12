"""record_whatsapp_events: WhatsAppEventsQueue consumer; records Meta's reports on our messages
(sent, delivered, read, failed), hands undelivered ones to SMS, and takes "STOP" as an opt-out."""

from __future__ import annotations

from trackwatch.bootstrap import lambda_entry
from trackwatch.whatsapp_batch import whatsapp_events_handler

handler = whatsapp_events_handler
lambda_handler = lambda_entry(handler)
