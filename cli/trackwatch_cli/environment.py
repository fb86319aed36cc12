"""The local environment: an emulated AWS account, and an SMTP server that keeps what it gets.

Shared by `trackwatch local`, the integration tests and the benchmarks. Where the
emulator is is a value (its endpoint, and `AwsClients` pointed at it), never the
process's environment.
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from types import TracebackType
from typing import Any, Self

from trackwatch.adapters.aws import AwsClients

REGION = "us-east-1"


class Emulator:
    """moto's server on a free loopback port, and clients pointed at it."""

    def __init__(self, region: str = REGION) -> None:
        self.region = region
        self._server: Any = None
        self.endpoint_url = ""
        self.clients = AwsClients.emulator(None, region)

    def start(self) -> Self:
        """Start the server; `clients` and `endpoint_url` then point at it."""
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self.clients = AwsClients.emulator(self.endpoint_url, self.region)
        return self

    def stop(self) -> None:
        """Stop the server."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass
class Mailbox:
    """E-mails the local SMTP server received."""

    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd's hook: keep the message."""
        with self.lock:
            message = message_from_bytes(envelope.content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def since(self, seen: int) -> list[EmailMessage]:
        """The messages after the first `seen`."""
        with self.lock:
            return self.messages[seen:]


class SmtpServer:
    """aiosmtpd on a free loopback port, keeping every message in `mailbox`."""

    def __init__(self) -> None:
        self.mailbox = Mailbox()
        self.port = 0
        self._controller: Any = None

    def start(self) -> Self:
        """Start the server on a free port."""
        from aiosmtpd.controller import Controller

        # aiosmtpd checks its server by connecting to the port it was given, so port 0
        # will not do: ask the OS for a free port first.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop the server."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
