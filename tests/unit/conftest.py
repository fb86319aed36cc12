"""Unit tests are pure code and fakes: any socket (a real server, an AWS call that slipped
past a fake) fails the test. Fakes beat mocks and emulators here: they are type-checked
against the ports, and a test that passes offline passes everywhere."""

from __future__ import annotations

import pytest
import pytest_socket


@pytest.fixture(autouse=True)
def _no_sockets() -> object:
    # Unix sockets stay allowed: asyncio's event loop wakes itself through a socketpair.
    pytest_socket.disable_socket(allow_unix_socket=True)
    yield
    pytest_socket.enable_socket()
