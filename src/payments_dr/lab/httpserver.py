"""The lab's HTTP servers: threaded, on loopback, quiet about clients that hang up."""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

# How often serve_forever checks for shutdown; the default half second slows every stop.
SHUTDOWN_POLL_SECONDS = 0.05
# API Gateway refuses payloads over 10 MB; the lab refuses far less, a payment is < 4 KiB.
MAX_BODY_BYTES = 1024 * 1024


class JsonRequestHandler(BaseHTTPRequestHandler):
    """A handler whose own refusals (bad request line, over-long header, bad or missing
    Content-Length, chunked body) answer JSON in the service's error shape, not HTML."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        status = HTTPStatus(code)
        kind = "not_found" if code in (404, 405) else "bad_request" if code < 500 else "unavailable"
        payload = json.dumps({"code": kind, "message": message or status.phrase}).encode()
        self.close_connection = True
        self.send_response(code, status.phrase)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(payload)

    def read_body(self) -> bytes | None:
        """The request body, or None after refusing the request (the answer is sent)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.send_error(411, "chunked bodies are not accepted: send Content-Length")
            return None
        declared = self.headers.get("Content-Length")
        try:
            length = int(declared) if declared is not None else 0
        except ValueError:
            length = -1
        if length < 0:
            self.send_error(400, f"Content-Length {declared!r} is not a byte count")
            return None
        if length > MAX_BODY_BYTES:
            self.send_error(413, f"a body may hold at most {MAX_BODY_BYTES} bytes")
            return None
        return self.rfile.read(length) if length else b""


class QuietHTTPServer(ThreadingHTTPServer):
    """Health checkers and clients give up on slow answers; that is normal here, not an error."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended early", client_address, exc_info=True)


class LoopbackServer:
    """An HTTP server on 127.0.0.1 (a free port) serving from its own thread."""

    def __init__(self, handler_class: type[BaseHTTPRequestHandler], thread_name: str) -> None:
        self._server = QuietHTTPServer(("127.0.0.1", 0), handler_class)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
            name=thread_name,
            daemon=True,
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever, so only if it runs
            self._server.shutdown()
        self._server.server_close()
