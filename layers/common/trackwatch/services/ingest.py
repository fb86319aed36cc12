"""IngestQueue: register the shipments a message carries; set aside what can never be accepted."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from trackwatch.errors import InvalidInputError
from trackwatch.models.registration import Registration, Rejected, parse_body, parse_entry
from trackwatch.ports import RejectSink
from trackwatch.services.registration import EntryResult

Register = Callable[[Sequence[Registration | Rejected]], list[EntryResult]]


class IngestService:
    """IngestQueue's use case: register what a message carries, set aside what never can be."""

    def __init__(self, register: Register, rejects: RejectSink, languages: Iterable[str]) -> None:
        self._register = register
        self._rejects = rejects
        self._languages = frozenset(languages)

    def ingest(self, body: str) -> Counter[str]:
        """Register the message's shipments; returns the count of each outcome.

        A message that is not JSON, or not one registration or a list of them, goes
        to the dead-letter queue whole; in a list, each rejected entry goes there on
        its own, with its reasons, and the good ones are stored. Input that breaks a
        rule will break it on every retry, so it is set aside at once instead of
        being received five times. A storage failure raises (before anything is set
        aside), and the message is retried: registering again is harmless.
        """
        try:
            _batch, raw_entries = parse_body(body)
        except InvalidInputError as exc:
            self._rejects.reject(body, str(exc))
            return Counter({"rejected": 1})
        entries = [parse_entry(raw, self._languages) for raw in raw_entries]
        results = self._register(entries)
        failures = [r.error for r in results if r.error is not None]
        if failures:
            raise failures[0]
        counts: Counter[str] = Counter()
        for result in results:
            counts[result.outcome.value if result.outcome else "failed"] += 1
            if result.rejected is not None:
                self._rejects.reject(json.dumps(raw_entries[result.index]), str(result.rejected))
        return counts
