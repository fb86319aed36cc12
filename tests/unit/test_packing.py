"""The compression of the tables' small JSON documents (adapters/packing.py)."""

from __future__ import annotations

import zlib

import pytest

from tests.notify_samples import status_changed
from trackwatch.adapters.packing import DICTIONARY, pack, unpack
from trackwatch.adapters.shipments_table import encode_outbox
from trackwatch.models.events import EVENT_LIST_ADAPTER


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
