"""Local sender adapters: they keep each message instead of handing it to a provider.

The local runtime uses them where the emulator has no service to send through (and
where reading what was "sent" back out of the emulator would mean reaching into its
internals). Each implements trackwatch.ports.Sender.
"""

from __future__ import annotations

import threading

from trackwatch.models.notification import Channel, Message


class RecordingSender:
    """Keeps every message it is given, in order; thread-safe."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._messages: list[Message] = []
        self._lock = threading.Lock()

    def send(self, message: Message) -> None:
        """Keep the message."""
        with self._lock:
            self._messages.append(message)

    @property
    def messages(self) -> list[Message]:
        """Every message sent so far."""
        with self._lock:
            return list(self._messages)

    def since(self, seen: int) -> list[Message]:
        """The messages after the first `seen`."""
        with self._lock:
            return self._messages[seen:]

    def take(self) -> list[Message]:
        """Every message kept so far, forgotten here (a long run keeps none)."""
        with self._lock:
            taken, self._messages = self._messages, []
            return taken
