"""The sandbox's listening socket, as the kernel sees it."""

from __future__ import annotations

import socket
import struct
import sys

import pytest

from trackwatch_cli.sandbox import SandboxServer


@pytest.mark.skipif(sys.platform != "linux", reason="TCP_INFO of a listening socket is Linux's")
def test_listen_backlog_takes_a_fresh_clients_connections_at_once() -> None:
    """A poll worker's fresh client opens its ten connections at once; with socketserver's
    backlog of 5 some SYNs were dropped and re-sent a second later (the benchmark's
    throughput lost 0.5 s an invocation to it). For a listening socket Linux reports its
    backlog limit in tcp_info's `tcpi_sacked`."""
    sandbox = SandboxServer().start()
    try:
        listening = sandbox._http.socket  # type: ignore[union-attr]
        info = listening.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        backlog = struct.unpack_from("=8B6I", info)[8 + 5]
    finally:
        sandbox.stop()
    assert backlog >= 64
