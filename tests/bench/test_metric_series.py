"""Counting the metric series in a log (bench/metric_series.py)."""

from __future__ import annotations

import json

from bench.metric_series import series


def emf(**values: object) -> str:
    return json.dumps(
        {
            "_aws": {
                "Timestamp": 1,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "Trackwatch",
                        "Dimensions": [["service", "outcome"]],
                        "Metrics": [{"Name": "SmsNotifications", "Unit": "Count"}],
                    }
                ],
            },
            "service": "trackwatch",
            **values,
        }
    )


def test_each_name_and_dimension_values_is_one_series_however_often_it_comes() -> None:
    lines = [
        emf(outcome="sent", SmsNotifications=[1.0]),
        "2026-11-29 notify_sms " + emf(outcome="sent", SmsNotifications=[2.0]),
        emf(outcome="repeat", SmsNotifications=[1.0]),
        "INFO whatsapp batch",
        '{"_aws": not json',
        json.dumps({"_aws": {}}),
    ]

    found = series(lines)

    assert found == {
        ("Trackwatch", "SmsNotifications", (("service", "trackwatch"), ("outcome", "sent"))),
        ("Trackwatch", "SmsNotifications", (("service", "trackwatch"), ("outcome", "repeat"))),
    }
