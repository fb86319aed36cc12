"""notify_sms: SmsQueue consumer; tells each shipment's customer the news by SMS."""

from __future__ import annotations

from trackwatch.bootstrap import lambda_entry
from trackwatch.notify_batch import notify_handler

handler = notify_handler("sms")
lambda_handler = lambda_entry(handler)
