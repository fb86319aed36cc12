"""The compression of the tables' small JSON documents (adapters/packing.py)."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime

import pytest

from tests.notify_samples import KEY, status_changed
from trackwatch.adapters.orders_table import StreamMemberChanges
from trackwatch.adapters.packing import DICTIONARY, pack, unpack
from trackwatch.adapters.shipments_table import (
    decode_state,
    encode_outbox,
    encode_state,
    state_of_image,
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


def test_the_stored_format_names_its_dictionary() -> None:
    # The dictionary is part of the stored format: changing it would make old items unreadable
    assert zlib.adler32(DICTIONARY) == 0x2F88_7171, "DICTIONARY changed: add a new one instead"
    assert encode_outbox([status_changed(6)])[1] & 0x20


def test_a_stream_naming_an_unknown_dictionary_is_an_error() -> None:
    deflate = zlib.compressobj(zdict=b"another dictionary")
    stream = deflate.compress(b"{}") + deflate.flush()
    with pytest.raises(zlib.error):
        unpack(stream)


def test_every_reader_of_a_packed_state_reads_it_the_order_roll_up_too() -> None:
    # Given a shipment of an order, its state packed as the table writes it, in a stream image
    state = ShipmentState.model_validate({"order_id": "ORD-1042"})
    packed = encode_state(state)["state"]
    assert packed[1] & 0x20
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
