"""The lab's HTTP servers: threaded, on loopback, quiet about clients that hang up."""

from __future__ import annotations

import logging
from http.server import ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

# How often serve_forever checks for shutdown; the default half second slows every stop.
SHUTDOWN_POLL_SECONDS = 0.05


class QuietHTTPServer(ThreadingHTTPServer):
    """Health checkers and clients give up on slow answers; that is normal here, not an error."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended early", client_address, exc_info=True)
