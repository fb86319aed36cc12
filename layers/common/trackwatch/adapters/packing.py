"""Compressing the small JSON documents the tables keep (a shipment's state, its outbox, a
notification record) with a preset dictionary.

zlib alone halves a document of ~700 bytes: it has no history to find the field names in.
Primed with a dictionary of the names and values these documents repeat, it quarters it
(the state 355 → 193 bytes, a one-event outbox 402 → 195), which keeps a shipment item
under 1 KB, one write unit, up to ≈ 30 scans.

The dictionary is part of the stored format: never edit `DICTIONARY`. A stream names the
dictionary it was made with (zlib's DICTID, its Adler-32), so a new one can be added beside
it later; streams made without one (items written before) inflate as they are.
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


def pack(document: bytes) -> bytes:
    """`document` compressed with the preset dictionary."""
    deflate = zlib.compressobj(9, zdict=DICTIONARY)
    return deflate.compress(document) + deflate.flush()


def unpack(stream: bytes) -> bytes:
    """A packed document, or one compressed without a dictionary, inflated.

    Raises zlib.error when `stream` is neither (or names a dictionary we do not have)."""
    if len(stream) >= 6 and stream[1] & _FDICT:
        dictionary = _DICTIONARIES.get(int.from_bytes(stream[2:6], "big"))
        if dictionary is None:
            raise zlib.error("the stream names a dictionary this version does not have")
        inflate = zlib.decompressobj(zdict=dictionary)
        return inflate.decompress(stream) + inflate.flush()
    return zlib.decompress(stream)
