"""What a Lambda execution environment has to itself, given to threads of one process.

Lambda runs each concurrent invocation in an environment of its own: a process, with
its own standard output (which goes to the function's log stream) and its own module
globals. The local runtime runs concurrent invocations as threads of one process, so
the few process-wide things the handlers touch are made per thread here:

- standard output: `sys.stdout` becomes a `ThreadRoutedStream`, which sends what an
  invocation's thread prints (EMF metrics, the powertools logger's lines) to that
  runtime's log file and everything else (the timeline, progress) where it went before;
- powertools' metric set: `Metrics` keeps one dictionary for every instance in the
  process, so two invocations flushing at once would publish (or clear) each other's
  metrics, or fail iterating it while the other adds; it becomes one per thread;
- the powertools logger's keys: `inject_lambda_context` appends the invocation's
  function name, ARN and request id to the one formatter of the process, so each line
  would carry whichever function was invoked last (the poll worker's "poll batch"
  lines named the publisher); they become one set per thread, each starting from the
  keys the logger was built with.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import IO, Any


class ThreadRoutedStream(io.TextIOBase):
    """A text stream that writes to a per-thread target, or to `default`."""

    def __init__(self, default: IO[str]) -> None:
        self.default = default
        self._local = threading.local()

    def _target(self) -> IO[str]:
        target: IO[str] | None = getattr(self._local, "target", None)
        return target if target is not None else self.default

    def write(self, text: str) -> int:
        """Write to this thread's target; a closed target (a run that ended) drops it."""
        target = self._target()
        try:
            return target.write(text)
        except ValueError:  # I/O operation on a closed file
            return len(text)

    def flush(self) -> None:
        """Flush this thread's target."""
        try:
            self._target().flush()
        except ValueError:
            return

    def isatty(self) -> bool:
        """Whether this thread's target is a terminal."""
        try:
            return self._target().isatty()
        except ValueError:
            return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        """The default stream's encoding."""
        return getattr(self.default, "encoding", "utf-8") or "utf-8"

    def fileno(self) -> int:
        """The default stream's descriptor (for libraries that ask)."""
        return self.default.fileno()

    @contextmanager
    def into(self, target: IO[str] | None) -> Iterator[None]:
        """Within the block, this thread writes to `target` (None: the default)."""
        before = getattr(self._local, "target", None)
        self._local.target = target
        try:
            yield
        finally:
            self._local.target = before


class PerThreadDict(MutableMapping[str, Any]):
    """A dictionary of which each thread sees its own contents, at first a copy of
    `initial`."""

    def __init__(self, initial: Mapping[str, Any] | None = None) -> None:
        self._initial = dict(initial or {})
        self._local = threading.local()

    def _data(self) -> dict[str, Any]:
        data: dict[str, Any] | None = getattr(self._local, "data", None)
        if data is None:
            data = dict(self._initial)
            self._local.data = data
        return data

    def __getitem__(self, key: str) -> Any:
        return self._data()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._data()))

    def __len__(self) -> int:
        return len(self._data())


_installed = threading.Lock()


def routed_stdout() -> ThreadRoutedStream:
    """`sys.stdout` as a ThreadRoutedStream (installed on first use, kept afterwards).

    If something replaced `sys.stdout` since (a test's capture), a new router wraps the
    new stream. The powertools logger keeps the stream it found at import; its handlers
    that write to the stream being wrapped are pointed at the router too.
    """
    with _installed:
        current = sys.stdout
        if isinstance(current, ThreadRoutedStream):
            return current
        router = ThreadRoutedStream(current)
        sys.stdout = router
        from trackwatch.observability import SERVICE

        for handler in logging.getLogger(SERVICE).handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream in (
                current,
                sys.__stdout__,
            ):
                handler.setStream(router)
        return router


def isolate_metrics() -> None:
    """Give each thread its own powertools metric set (see the module's docstring)."""
    from trackwatch.observability import metrics

    with _installed:
        provider = metrics.provider
        if not isinstance(provider.metric_set, PerThreadDict):
            per_thread: Any = PerThreadDict()
            provider.metric_set = per_thread
            metrics.metric_set = per_thread


def isolate_logger_keys() -> None:
    """Give each thread its own set of the powertools logger's keys (see the module's
    docstring). The logger's `clear_state` would put back one set for all; no handler
    calls it."""
    from trackwatch.observability import logger

    with _installed:
        formatter: Any = logger.registered_formatter
        if not isinstance(formatter.log_format, PerThreadDict):
            formatter.log_format = PerThreadDict(formatter.log_format)
