"""The lab's HTTP servers: threaded, on loopback, quiet about clients that hang up."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

# How often serve_forever checks for shutdown; the default half second slows every stop.
SHUTDOWN_POLL_SECONDS = 0.05


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
