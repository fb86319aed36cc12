"""Answer bodies built from pieces: JSON with raw bytes spliced in, long runs made on the fly.

Some hostile answers cannot come out of `json.dumps`: a key twice in one
object, bytes that are not UTF-8, arrays nested deeper than the encoder
recurses, tens of megabytes nobody should hold in memory to send. The
`Splicer` lets the sandbox build the document as usual with a marker where
such a value goes, then swaps each marker for its raw pieces; a `Repeat`
piece is produced chunk by chunk only while it is being sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

#: Pieces are written to the socket in chunks of at most this size.
CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class Repeat:
    """`unit` `times` times over, made in chunks while it is sent, never held whole."""

    unit: bytes
    times: int

    def __post_init__(self) -> None:
        if not self.unit or self.times < 0:
            raise ValueError("a Repeat needs a non-empty unit and a non-negative count")

    def __len__(self) -> int:
        return len(self.unit) * self.times

    def chunks(self) -> Iterator[bytes]:
        """The run, in chunks of about CHUNK_BYTES."""
        per_chunk = max(1, CHUNK_BYTES // len(self.unit))
        full, rest = divmod(self.times, per_chunk)
        block = self.unit * per_chunk
        for _ in range(full):
            yield block
        if rest:
            yield self.unit * rest


type Piece = bytes | Repeat


def body_length(pieces: Iterable[Piece]) -> int:
    """The byte length of a body, without building it."""
    return sum(len(piece) for piece in pieces)


def body_chunks(pieces: Iterable[Piece]) -> Iterator[bytes]:
    """The body's bytes in order; small pieces are joined into chunks of up to CHUNK_BYTES."""
    pending = bytearray()
    for piece in pieces:
        parts = piece.chunks() if isinstance(piece, Repeat) else iter((piece,))
        for part in parts:
            if pending and len(pending) + len(part) > CHUNK_BYTES:
                yield bytes(pending)
                pending.clear()
            if len(part) >= CHUNK_BYTES:
                yield part
            else:
                pending += part
    if pending:
        yield bytes(pending)


class Splicer:
    """Marks places in a JSON document where raw pieces go, then encodes it with them."""

    def __init__(self) -> None:
        self._raw: dict[bytes, tuple[Piece, ...]] = {}

    def splice(self, *pieces: Piece) -> str:
        """A marker to use as a value or key; in the encoded body it becomes `pieces` verbatim.

        The pieces replace the marker's quotes too: a string value must bring its own.
        """
        # Private-use characters: no carrier data and no journey file holds them.
        marker = f"\ue000{len(self._raw)}\ue001"
        self._raw[json.dumps(marker).encode()] = pieces
        return marker

    def encode(self, document: Any) -> tuple[Piece, ...]:
        """`document` as JSON (json.dumps' default layout), markers swapped for their pieces."""
        data = json.dumps(document).encode()
        if not self._raw:
            return (data,)
        pattern = re.compile(b"|".join(re.escape(marker) for marker in self._raw))
        pieces: list[Piece] = []
        position = 0
        for match in pattern.finditer(data):
            pieces.append(data[position : match.start()])
            pieces.extend(self._raw[match.group()])
            position = match.end()
        pieces.append(data[position:])
        return tuple(piece for piece in pieces if len(piece))
