"""Compressing the small JSON documents the tables keep (a shipment's state, its outbox, a
notification record) with a preset dictionary.

zlib alone halves a document of ~700 bytes: it has no history to find the field names in.
Primed with a dictionary of the names and values these documents repeat, it quarters it
(the state 355 → 193 bytes, a one-event outbox 402 → 195; nine bytes less each in the
one-byte frame below), which with the checkpoints' compact layout (adapters/shipments_table.py)
keeps a shipment item under 1 KB, one write unit, up to 60 scans.

The dictionary is part of the stored format: never edit `DICTIONARY`. A packed document is
one byte naming the dictionary (`FRAME`), then raw deflate: zlib's own frame would add ten
bytes (a two-byte header, the dictionary's Adler-32, the document's) to every item, which
DynamoDB bills by the kilobyte, and the table already checks what it stores. A new
dictionary gets a new first byte. Documents packed before (zlib's frame, naming the
dictionary by its Adler-32, or none) still inflate: a zlib stream's first byte is never
a frame byte (its low four bits are 8, deflate).
"""

from __future__ import annotations

import zlib

#: The field names and common values of ShipmentState and the events, most common last
#: (zlib finds the nearest copy cheapest). Frozen: see the module's docstring.
DICTIONARY = (
    b'{"order_id":"","courier_name":"","first_polled_at":"","current":{"clickpost_status_code":'
    b',"clickpost_status_description":"","clickpost_status_bucket":,'
    b'"clickpost_status_bucket_description":"","status":"",'
    b'"location":"","remark":"","timestamp":"","clock":""},"scan_count":,"scans_digest":"",'
    b'"is_stuck":false,"edd":{"min_sla":,"max_sla":},'
    b'"moved_at":"","status_since":"","recorded_until":"","ndr":[]'
    b'[{"event_id":"","schema_version":1,"waybill":"","cp_id":,"order_id":"","courier_name":"",'
    b'"occurred_at":"","detected_at":"",'
    b'"time_quality":"carrier","reported_time":null,"recorded_at":"","published_at":null,'
    b'"event_type":"shipment.scan_added","checkpoint_id":,"tracking_id":,'
    b'"scan":{"clickpost_status_code":,"clickpost_status_description":"InTransit",'
    b'"clickpost_status_bucket":3,"clickpost_status_bucket_description":"In transit",'
    b'"status":"In Transit","location":"","remark":""},"is_terminal":false}'
    b'"event_type":"shipment.status_changed","from_bucket":,"from_bucket_description":"",'
    b'"to_bucket":,"to_bucket_description":"","is_terminal":false}]'
    b"T00:00:00+05:30T00:00:00Z2026-2025-"
)
_DICTIONARIES = {zlib.adler32(DICTIONARY): DICTIONARY}
_FDICT = 0x20
#: The first byte of a document packed with `DICTIONARY` (raw deflate follows).
FRAME = 0x01
_FRAMES = {FRAME: DICTIONARY}


def pack(document: bytes) -> bytes:
    """`document` compressed with the preset dictionary."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15, zdict=DICTIONARY)
    return bytes((FRAME,)) + deflate.compress(document) + deflate.flush()


def unpack(stream: bytes) -> bytes:
    """A packed document, or one compressed by zlib (with the dictionary or without), inflated.

    Raises zlib.error when `stream` is none of these (or names a dictionary we do not have)."""
    if not stream:
        raise zlib.error("an empty stream")
    if stream[0] & 0x0F != zlib.DEFLATED:
        dictionary = _FRAMES.get(stream[0])
        if dictionary is None:
            raise zlib.error(f"the stream names a frame this version does not have: {stream[0]}")
        inflate = zlib.decompressobj(-15, zdict=dictionary)
        document = inflate.decompress(stream[1:]) + inflate.flush()
        if not inflate.eof:
            raise zlib.error("the stream ends before its document")
        return document
    if len(stream) >= 6 and stream[1] & _FDICT:
        dictionary = _DICTIONARIES.get(int.from_bytes(stream[2:6], "big"))
        if dictionary is None:
            raise zlib.error("the stream names a dictionary this version does not have")
        inflate = zlib.decompressobj(zdict=dictionary)
        return inflate.decompress(stream) + inflate.flush()
    return zlib.decompress(stream)
