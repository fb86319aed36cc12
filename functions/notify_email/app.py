"""notify_email: EmailQueue consumer; tells each shipment's customer the news by e-mail."""

from __future__ import annotations

from trackwatch.bootstrap import lambda_entry
from trackwatch.notify_batch import notify_handler

handler = notify_handler("email")
lambda_handler = lambda_entry(handler)
