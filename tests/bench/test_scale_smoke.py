"""The scale benchmark (`python -m bench.scale`) at a size that runs in a test.

No timing is asserted: the run must do the work both sides are measured on, and the report
must say what it measured.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bench import scale, scale_report
from bench.scale_emulator import operation_of


@pytest.mark.slow
def test_a_small_scale_run_polls_every_shipment_each_cycle_and_sends_every_message(
    tmp_path: Path,
) -> None:
    # Given six shipments on the five-step journey, each with a phone and an e-mail
    # When both sides run two cycles in one fresh emulator (trackwatch as `trackwatch local`)
    run = scale.run_size(6, 2, 0, tmp_path)

    # Then both polled every shipment once a cycle and published the same first steps
    assert run.ours.polls == run.naive.polls == 12
    assert run.ours.events >= run.naive.events > 0
    # and trackwatch told each customer on their phone channel and by e-mail
    assert run.ours.messages > 0 and run.ours.messages % 2 == 0
    # and the emulator's CPU was kept per operation, DynamoDB's per table
    assert run.ours.emulator_cpu_s > 0 and run.naive.emulator_cpu_s > 0
    assert any(name.startswith("UpdateItem ShipmentsTable") for name in run.ours.emulator_ops)
    assert "PutItem naive-shipments" in run.naive.emulator_ops
    # SQS's per queue, SNS's publishes per topic
    assert "ReceiveMessage EmailQueue" in run.ours.emulator_ops
    assert any(name.startswith("PublishBatch ") for name in run.ours.emulator_ops)

    # and the report's section has the size's table and where the emulator's time went
    section = scale_report.markdown(scale.ScaleResults(command="test", runs=[run]))
    assert "### 6 shipments, 2 cycles (1 run)" in section
    assert "| trackwatch polls (AWBs) | 12 |" in section
    assert "### Where the emulator's time goes (6 shipments, trackwatch, per run)" in section
    assert "Each operation over all its tables, queues and topics: " in section
    busy = 100 * run.ours.emulator_cpu_s / run.ours.seconds
    assert "| emulator busy during trackwatch, % (" in section
    assert f"one interpreter: 100 at most) | {busy:,.0f} |" in section


def test_an_operation_is_named_with_the_tables_it_names() -> None:
    def environ(target: str, body: bytes) -> dict[str, object]:
        return {
            "HTTP_X_AMZ_TARGET": target,
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        }

    get = environ("DynamoDB_20120810.GetItem", b'{"TableName": "trackwatch-local-OrdersTable-X1"}')
    batch = environ(
        "DynamoDB_20120810.BatchGetItem",
        b'{"RequestItems": {"tw-ShipmentsTable-A": {}, "tw-NotificationsTable-B": {}}}',
    )
    plain = environ("DynamoDB_20120810.GetItem", b'{"TableName": "naive-shipments"}')
    sqs = environ(
        "AmazonSQS.ReceiveMessage",
        b'{"QueueUrl": "http://127.0.0.1:5/123456789012/trackwatch-local-EmailQueue-Q7"}',
    )
    bare = environ("AmazonSQS.ListQueues", b"{}")
    publish = {
        "CONTENT_LENGTH": "80",
        "wsgi.input": io.BytesIO(
            b"Action=PublishBatch&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A1%3Atw-EventsTopic-T1"
        ),
    }

    assert operation_of(get) == "GetItem OrdersTable"
    assert operation_of(batch) == "BatchGetItem NotificationsTable,ShipmentsTable"
    assert operation_of(plain) == "GetItem naive-shipments"
    assert operation_of(sqs) == "ReceiveMessage EmailQueue"
    assert operation_of(bare) == "ListQueues"
    assert operation_of(publish) == "PublishBatch EventsTopic"
    # and the body is still there for the emulator to read
    body = get["wsgi.input"]
    assert isinstance(body, io.BytesIO)
    assert body.read() == b'{"TableName": "trackwatch-local-OrdersTable-X1"}'
