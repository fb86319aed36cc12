"""The local stack's loopback servers' listening sockets, as the kernel sees them."""

from __future__ import annotations

import socket
import struct
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import cast

import pytest

from trackwatch_cli.api_gateway import ApiGateway
from trackwatch_cli.runtime import LocalRuntime
from trackwatch_cli.sandbox import SandboxServer

#: struct tcp_info's head: eight one-byte fields, then rto, ato, snd_mss, rcv_mss, unacked,
#: sacked. For a listening socket Linux reports its backlog limit in `tcpi_sacked`.
_TCP_INFO_HEAD = struct.Struct("=8B6I")
_SACKED = 8 + 5


def _backlog(listening: socket.socket) -> int:
    info = listening.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_HEAD.size)
    backlog: int = _TCP_INFO_HEAD.unpack(info)[_SACKED]
    return backlog


@contextmanager
def _sandbox() -> Iterator[socket.socket]:
    sandbox = SandboxServer().start()
    try:
        yield sandbox._http.socket  # type: ignore[union-attr]
    finally:
        sandbox.stop()


@contextmanager
def _api() -> Iterator[socket.socket]:
    # Listening is all this test asks of it: no runtime, no routes, not started.
    api = ApiGateway(cast(LocalRuntime, None), [])
    try:
        yield api._server.socket
    finally:
        api._server.server_close()


@pytest.mark.skipif(sys.platform != "linux", reason="TCP_INFO of a listening socket is Linux's")
@pytest.mark.parametrize("server", [_sandbox, _api], ids=["sandbox", "api"])
def test_listen_backlog_takes_a_fresh_clients_connections_at_once(
    server: Callable[[], AbstractContextManager[socket.socket]],
) -> None:
    """A poll worker's fresh client opens its ten connections at once; with socketserver's
    backlog of 5 some SYNs were dropped and re-sent a second later (the benchmark's
    throughput lost 0.5 s an invocation to it)."""
    with server() as listening:
        assert _backlog(listening) >= 64
