"""The HTTP server the local stack's loopback endpoints share (the sandbox, the API)."""

from __future__ import annotations

from http.server import ThreadingHTTPServer


class LoopbackHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer (daemon connection threads) with a real server's listen backlog.

    socketserver listens with a backlog of 5: a client opening ten connections at once (a
    poll worker's fresh client) had some of its SYNs dropped and re-sent a second later, a
    delay no production server's backlog makes. Linux caps this at net.core.somaxconn.
    """

    request_queue_size = 128
