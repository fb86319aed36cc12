"""Progress for long local runs: a live bar on a terminal, a plain line now and then otherwise.

The bar counts what the run is made of (rows registered, cycles, simulated minutes); the
status under it says what has happened so far and what is being waited on, from the
runtime's own counts, so it never shows more progress than there is.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

#: Without a terminal, a status line at most this often (and at each step's end).
PLAIN_EVERY_S = 30.0


class RunProgress:
    """One phase's progress: `advance()` the bar, `status()` the line under it."""

    def __init__(self, console: Console, description: str, total: int | None) -> None:
        self.console = console
        self.description = description
        self.total = total
        self.completed = 0
        self._live = console.is_terminal
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._last_plain = time.monotonic()
        self._status = ""

    def __enter__(self) -> RunProgress:
        if self._live:
            self._progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[status]}"),
                console=self.console,
                transient=True,
                # The runtime routes the functions' output itself (isolation.py).
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total, status="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, steps: int = 1) -> None:
        """`steps` more of the total are done."""
        self.completed += steps
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, steps)

    def status(self, text: str, *, force: bool = False) -> None:
        """What is happening; without a terminal, printed at most every PLAIN_EVERY_S
        (or now, with `force`)."""
        self._status = text
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, status=text)
            return
        now = time.monotonic()
        if force or now - self._last_plain >= PLAIN_EVERY_S:
            self._last_plain = now
            done = f"{self.completed:,}/{self.total:,}" if self.total else f"{self.completed:,}"
            self.console.print(f"{self.description} {done}: {text}", highlight=False)


@contextmanager
def progress(console: Console, description: str, total: int | None) -> Iterator[RunProgress]:
    """A RunProgress for the block."""
    with RunProgress(console, description, total) as shown:
        yield shown
