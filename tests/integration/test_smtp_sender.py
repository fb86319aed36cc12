"""The SMTP sender against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from trackwatch.adapters.senders import SmtpEmailSender
from trackwatch.errors import ProviderUnavailableError, RecipientRejectedError
from trackwatch.models.notification import Message

MAIL = Message(
    channel="email",
    to="priya@example.in",
    subject="Your order",
    body="Body ₹ हिंदी\n",
    event_id="e-1",
)


class Inbox:
    """An aiosmtpd handler that keeps messages and refuses one mailbox."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse = "nobody@example.in"
        self.busy = False

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.busy:
            return "451 try again later"
        if address == self.refuse:
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=default_policy))
        return "250 Message accepted"


def free_port() -> int:
    """A port nothing listens on (aiosmtpd's controller cannot take port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _smtp(port: int) -> SmtpEmailSender:
    return SmtpEmailSender(
        host="127.0.0.1", port=port, sender="Shop <shop@example.com>", starttls=False
    )


def test_an_email_reaches_the_smtp_server_with_its_subject_and_utf8_body(
    smtp_server: tuple[Inbox, int],
) -> None:
    # Given
    inbox, port = smtp_server

    # When
    _smtp(port).send(MAIL)

    # Then
    (received,) = inbox.messages
    assert received["Subject"] == "Your order"
    assert received["To"] == "priya@example.in"
    assert received["X-Trackwatch-Event-Id"] == "e-1"
    body = received.get_body(("plain",))
    assert body is not None
    assert body.get_content().splitlines() == ["Body ₹ हिंदी"]


def test_a_refused_mailbox_is_permanent_and_a_busy_server_is_retryable(
    smtp_server: tuple[Inbox, int],
) -> None:
    inbox, port = smtp_server
    with pytest.raises(RecipientRejectedError) as rejected:
        _smtp(port).send(MAIL.model_copy(update={"to": "nobody@example.in"}))
    assert rejected.value.reason == "smtp_550"
    assert "nobody" not in str(rejected.value)

    inbox.busy = True
    with pytest.raises(ProviderUnavailableError):
        _smtp(port).send(MAIL)


def test_an_unreachable_relay_is_retryable() -> None:
    with pytest.raises(ProviderUnavailableError):
        SmtpEmailSender(host="127.0.0.1", port=1, sender="s@example.com", starttls=False).send(MAIL)
