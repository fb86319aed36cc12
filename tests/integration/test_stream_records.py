"""The local runtime's read of a table's stream, where moto's own numbering clashes.

moto numbers a stream record by the stream's length when it starts building the record
and appends it when done, with no lock: two writes to one table at once can take the
same number. The 10,000-shipment scale run met exactly that, and its publisher then read
the stream's last record again and again (about 24,000 times in half an hour). Here the
clash is made to happen (the first write waits inside moto's record building until the
second has appended its record), and the reads must see each record once, in the
stream's order, with numbers that only grow.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from unittest.mock import patch

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import table as moto_table
from moto.server import ThreadedMotoServer

from trackwatch_cli.environment import EmulatorError, stream_records
from trackwatch_cli.runtime import StreamReader

REGION = "us-east-1"
TABLE = "clashing"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        yield client


def _clashing_writes(client: Any, first: str, second: str) -> None:
    """Write `first` and `second` so that moto gives their records one number: `first`
    takes its number, waits while `second` takes the same one and is appended, then is
    appended itself (after `second`)."""
    real = moto_table.StreamRecord
    building = threading.Event()
    appended = threading.Event()
    calls: list[str] = []

    def record(*args: Any, **kwargs: Any) -> Any:
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            building.set()
            appended.wait(10)
        return real(*args, **kwargs)

    def put(pk: str) -> None:
        client.put_item(TableName=TABLE, Item={"pk": {"S": pk}})

    with patch.object(moto_table, "StreamRecord", record):
        writer = threading.Thread(target=put, args=(first,), name="first")
        writer.start()
        assert building.wait(10)
        put(second)
        appended.set()
        writer.join(10)


def _moto_numbers() -> list[int]:
    from moto.dynamodb.models import dynamodb_backends

    shard = dynamodb_backends["123456789012"][REGION].get_table(TABLE).stream_shard
    assert shard is not None
    return [int(r.record["dynamodb"]["SequenceNumber"]) for r in shard.items]


def _read_all(limit: int, most_reads: int = 20) -> list[tuple[str, int]]:
    """Every record read one `limit` at a time until a read finds none: (pk, number)."""
    read: list[tuple[str, int]] = []
    after: int | None = None
    for _ in range(most_reads):
        records = stream_records(TABLE, REGION, after, limit)
        if not records:
            return read
        read += [
            (r["dynamodb"]["Keys"]["pk"]["S"], int(r["dynamodb"]["SequenceNumber"]))
            for r in records
        ]
        after = int(records[-1]["dynamodb"]["SequenceNumber"])
    raise AssertionError(f"the stream was still giving records after {most_reads} reads: {read}")


def test_moto_gives_two_writes_at_once_one_number(dynamodb: Any) -> None:
    # What the reads below work around: if moto stops doing this, this test says so.
    _clashing_writes(dynamodb, "a", "b")
    numbers = _moto_numbers()
    assert len(numbers) == 2
    assert numbers[0] == numbers[1]


@pytest.mark.parametrize("limit", [1, 2, 100])
def test_a_clash_on_the_last_record_is_read_once(dynamodb: Any, limit: int) -> None:
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "before"}})
    _clashing_writes(dynamodb, "a", "b")

    read = _read_all(limit)

    assert [pk for pk, _ in read] == ["before", "b", "a"]
    numbers = [n for _, n in read]
    assert numbers == sorted(set(numbers))
    assert stream_records(TABLE, REGION, numbers[-1], limit) == []


@pytest.mark.parametrize("limit", [1, 3, 100])
def test_records_after_a_clash_are_read_once_each_in_the_streams_order(
    dynamodb: Any, limit: int
) -> None:
    _clashing_writes(dynamodb, "a", "b")
    for pk in ("c", "d"):
        dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": pk}})
    _clashing_writes(dynamodb, "e", "f")
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "g"}})

    read = _read_all(limit)

    assert [pk for pk, _ in read] == ["b", "a", "c", "d", "f", "e", "g"]
    numbers = [n for _, n in read]
    assert numbers == sorted(set(numbers))


def test_a_number_once_given_is_kept(dynamodb: Any) -> None:
    _clashing_writes(dynamodb, "a", "b")
    first = [r["dynamodb"]["SequenceNumber"] for r in stream_records(TABLE, REGION, None, 10)]
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "c"}})
    again = [r["dynamodb"]["SequenceNumber"] for r in stream_records(TABLE, REGION, None, 10)]
    assert again[:2] == first
    assert len(again) == 3


def test_the_runtimes_reader_in_this_process_reads_the_same(dynamodb: Any) -> None:
    _clashing_writes(dynamodb, "a", "b")
    reader = StreamReader.of(None, REGION)
    first = reader.read(TABLE, None, 1)
    rest = reader.read(TABLE, int(first[0]["dynamodb"]["SequenceNumber"]), 10)
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in first + rest] == ["b", "a"]
    assert reader.read(TABLE, int(rest[-1]["dynamodb"]["SequenceNumber"]), 10) == []


def test_an_emulator_without_the_stream_read_is_refused_by_name() -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        with pytest.raises(EmulatorError, match="does not serve /_trackwatch/stream-records"):
            StreamReader.of(f"http://{host}:{port}", REGION)
    finally:
        server.stop()
