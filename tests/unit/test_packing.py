"""The compression of the tables' small JSON documents (adapters/packing.py)."""

from __future__ import annotations

import base64
import struct
import zlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.notify_samples import KEY, status_changed
from trackwatch.adapters.orders_table import StreamMemberChanges
from trackwatch.adapters.packing import DICTIONARY, FRAME, pack, unpack
from trackwatch.adapters.shipments_table import (
    decode_checkpoints,
    decode_state,
    encode_checkpoints,
    encode_outbox,
    encode_state,
    state_of_image,
    stored_time,
)
from trackwatch.logic.diff import seen_key
from trackwatch.models.events import EVENT_LIST_ADAPTER
from trackwatch.models.record import StreamChange
from trackwatch.models.state import ShipmentState


def test_a_packed_document_unpacks_and_is_smaller_than_zlib_alone() -> None:
    document = EVENT_LIST_ADAPTER.dump_json([status_changed(6)])
    packed = pack(document)
    assert unpack(packed) == document
    assert len(packed) < len(zlib.compress(document)) * 0.7


def test_documents_compressed_before_the_dictionary_still_unpack() -> None:
    document = EVENT_LIST_ADAPTER.dump_json([status_changed(6)])
    assert unpack(zlib.compress(document)) == document


def test_documents_packed_in_zlibs_frame_still_unpack() -> None:
    # Given a document packed as items were before the one-byte frame (zlib's header, the
    # dictionary's Adler-32, the document's checksum: ten bytes more)
    document = EVENT_LIST_ADAPTER.dump_json([status_changed(6)])
    deflate = zlib.compressobj(9, zdict=DICTIONARY)
    before = deflate.compress(document) + deflate.flush()

    # Then it still unpacks, and packing it today takes nine bytes less
    assert unpack(before) == document
    assert len(pack(document)) == len(before) - 9


def test_the_stored_format_names_its_dictionary() -> None:
    # The dictionary is part of the stored format: changing it would make old items unreadable
    assert zlib.adler32(DICTIONARY) == 0x2F88_7171, "DICTIONARY changed: add a new one instead"
    assert encode_outbox([status_changed(6)])[0] == FRAME


def test_a_stream_naming_an_unknown_dictionary_is_an_error() -> None:
    deflate = zlib.compressobj(zdict=b"another dictionary")
    stream = deflate.compress(b"{}") + deflate.flush()
    with pytest.raises(zlib.error):
        unpack(stream)


@pytest.mark.parametrize(
    ("stream", "says"),
    [
        (b"", "empty"),
        (b"\x02" + pack(b"{}")[1:], "frame"),
        (pack(b'{"order_id": "ORD-1"}')[:-3], "ends before"),
    ],
    ids=["empty", "an unknown frame", "cut short"],
)
def test_a_packed_stream_that_cannot_be_read_is_an_error_that_says_why(
    stream: bytes, says: str
) -> None:
    with pytest.raises(zlib.error, match=says):
        unpack(stream)


def test_every_reader_of_a_packed_state_reads_it_the_order_roll_up_too() -> None:
    # Given a shipment of an order, its state packed as the table writes it, in a stream image
    state = ShipmentState.model_validate({"order_id": "ORD-1042"})
    packed = encode_state(state)["state"]
    assert packed[0] == FRAME
    image = {"pk": {"S": KEY.pk}, "version": {"N": "2"}, "state": {"B": packed}}

    # When the stream's images are read, by the publisher's decoder and the roll-up's
    change = StreamMemberChanges().change(
        StreamChange(record_id="1", new_image=image, old_image=None), datetime.now(UTC)
    )

    # Then both read the order (a roll-up that could not skipped every write as unreadable)
    assert state_of_image(image).order_id == "ORD-1042"
    assert change is not None and change.order_id == "ORD-1042"


@pytest.mark.parametrize("checkpoints", [0, 1, 2, 7, 60])
def test_a_state_reads_back_with_every_checkpoint_it_has_seen(checkpoints: int) -> None:
    # Given a state that has seen some checkpoints (their keys packed as digests)
    seen = {seen_key(f"checkpoint-{n}"): 1_764_000_000 + n for n in range(checkpoints)}
    state = ShipmentState.model_validate({"order_id": "ORD-1", "seen": seen})

    # When it is written and read back as a poll reads it
    back = decode_state(encode_state(state))

    # Then it is the same state, each checkpoint with its time
    assert back == state
    assert back.seen == seen


@pytest.mark.parametrize(
    "gaps",
    [[10_800] * 59, [0] * 10, [1, 127, 128, 16_383, 16_384, 2**21, 2**28, 86_400 * 40]],
    ids=["three hours apart", "at one time", "every varint length"],
)
def test_checkpoints_read_back_with_their_times_in_about_eight_bytes_each(
    gaps: list[int],
) -> None:
    # Given checkpoints seen at times that far apart, and some with no trusted time (0)
    times = [1_764_000_000]
    for gap in gaps:
        times.append(times[-1] + gap)
    seen = {seen_key(f"checkpoint-{n}"): at for n, at in enumerate(times)}
    seen |= {seen_key("untimed-1"): 0, seen_key("untimed-2"): 0}

    # When they are packed and read back
    packed = encode_checkpoints(seen)

    # Then every one is back with its time, in the digests' six bytes and a short delta
    assert decode_checkpoints(packed) == seen
    if gaps == [10_800] * 59:
        # format, count, digests, the untimed two's deltas (a byte each), the first time
        # (5 bytes), then two bytes a delta under 4.5 hours (the old layout: 620 bytes)
        assert len(packed) == 1 + 1 + 6 * 62 + 1 + 1 + 5 + 2 * 59


@pytest.mark.parametrize(
    ("packed", "says"),
    [
        (b"\x02\x00", "unknown format"),
        (encode_checkpoints({seen_key("a"): 1_764_000_000})[:5], "cut short"),
        (encode_checkpoints({seen_key("a"): 1_764_000_000})[:-1], "cut short"),
        (encode_checkpoints({seen_key("a"): 1_764_000_000}) + b"\x01", "past their count"),
    ],
    ids=["unknown format", "digests cut", "varint cut", "trailing bytes"],
)
def test_checkpoints_that_do_not_read_are_an_error_that_says_why(packed: bytes, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        decode_checkpoints(packed)


def test_a_state_stored_in_the_layout_before_reads_its_checkpoints() -> None:
    # Given an item written before `ckpts`: ten bytes a checkpoint in `seen`
    seen = {seen_key(f"checkpoint-{n}"): 1_764_000_000 + n for n in range(5)}
    state = ShipmentState.model_validate({"order_id": "ORD-1", "seen": seen})
    item = {
        "state": encode_state(state)["state"],
        "seen": b"".join(
            struct.pack(">6sI", base64.urlsafe_b64decode(key), epoch) for key, epoch in seen.items()
        ),
    }

    # Then a poll reads the same state from it
    assert decode_state(item) == state


def test_a_checkpoint_key_that_is_not_a_seen_key_is_refused_before_it_shifts_the_others() -> None:
    with pytest.raises(ValueError, match="not a seen_key"):
        encode_checkpoints({seen_key("a"): 1, "checkpoint-id-in-full": 2})


IST = timezone(timedelta(hours=5, minutes=30))


@pytest.mark.parametrize(
    ("at", "stored"),
    [
        (datetime(2026, 11, 25, 11, 30, 0, 123456, tzinfo=IST), "2026-11-25T06:00:00Z"),
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00Z"),
        (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "9999-12-31T23:59:59Z"),
    ],
    ids=["local, with microseconds", "year 1", "year 9999"],
)
def test_a_stored_time_is_utc_to_the_second_and_reads_back(at: datetime, stored: str) -> None:
    assert stored_time(at) == stored
    assert datetime.fromisoformat(stored) == at.replace(microsecond=0)
