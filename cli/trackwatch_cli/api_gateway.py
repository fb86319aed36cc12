"""The stack's HTTP API on a local port: requests become API Gateway HTTP API (v2) events.

moto does not serve API Gateway, so the local runtime does: each request is matched
against the routes of the template's HttpApi events, turned into the payload-format
2.0 event API Gateway would send, and given to the function through `LocalRuntime`.
Only loopback is bound, and no IAM signature is checked: it is a laptop's API.
"""

from __future__ import annotations

import base64
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from trackwatch_cli.loopback import LoopbackHTTPServer
from trackwatch_cli.runtime import LocalRuntime
from trackwatch_cli.stack import Route


def _pattern(path: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", path)
    regex = "".join(
        f"(?P<{p[1:-1].rstrip('+')}>.+)"
        if p.endswith("+}")
        else f"(?P<{p[1:-1]}>[^/]+)"
        if p.startswith("{")
        else re.escape(p)
        for p in parts
    )
    return re.compile(f"^{regex}$")


class ApiGateway:
    """Serves `routes` on 127.0.0.1, invoking their functions with v2 events."""

    def __init__(self, runtime: LocalRuntime, routes: list[Route], port: int = 0) -> None:
        self.runtime = runtime
        self.routes = [(route, _pattern(route.path)) for route in routes]
        self._server = LoopbackHTTPServer(("127.0.0.1", port), self._handler_class())
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """Where the API listens."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ApiGateway:
        """Serve in a daemon thread."""
        # A short poll interval makes stop() quick (it waits for one poll).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """One request, as API Gateway and Lambda would answer it."""
        split = urlsplit(target)
        for route, pattern in self.routes:
            match = pattern.match(split.path)
            if match and route.method in (method, "ANY"):
                event = self.event(route, method, split.path, split.query, headers, body)
                result = self.runtime.invoke(route.function, event)
                return self._response(result)
        return 404, {"content-type": "application/json"}, b'{"message":"Not Found"}'

    def event(
        self,
        route: Route,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
    ) -> dict[str, Any]:
        """The payload-format 2.0 event for one request."""
        match = _pattern(route.path).match(path)
        now = time.time()
        text = body.decode("utf-8", errors="replace") if body else None
        return {
            "version": "2.0",
            "routeKey": f"{route.method} {route.path}",
            "rawPath": path,
            "rawQueryString": query,
            "headers": {k.lower(): v for k, v in headers.items()},
            "queryStringParameters": dict(parse_qsl(query)) or None,
            "pathParameters": match.groupdict() if match else None,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "local",
                "domainName": "127.0.0.1",
                "domainPrefix": "local",
                "http": {
                    "method": method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": headers.get("User-Agent", ""),
                },
                "requestId": str(uuid.uuid4()),
                "routeKey": f"{route.method} {route.path}",
                "stage": "$default",
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "timeEpoch": int(now * 1000),
            },
            "body": text,
            "isBase64Encoded": False,
        }

    @staticmethod
    def _response(result: Any) -> tuple[int, dict[str, str], bytes]:
        if not isinstance(result, dict) or "statusCode" not in result:
            # A crashed or malformed handler: API Gateway answers 500.
            return 500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}'
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        return int(result["statusCode"]), headers, raw

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = gateway.handle(
                    self.command, self.path, dict(self.headers.items()), body
                )
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return  # the timeline says what matters

        return Handler
