"""The urllib3 transport against a real socket: answers, and each way an answer fails to come."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from payments_dr.client import Failure, TransportError
from payments_dr.client.transport import Urllib3Transport

RELEASE = threading.Event()  # a hanging handler waits for this, so the test never waits long


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/drop":
            self.close_connection = True  # read the request, never answer
            return
        if self.path == "/hang":
            RELEASE.wait(30)
            return
        payload = b'{"echo": "' + body + b'"}'
        self.send_response(503)
        self.send_header("Retry-After", "2")
        self.send_header("X-Payments-Region", "us-east-1")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    RELEASE.set()
    httpd.shutdown()
    httpd.server_close()


def send(url: str, read_timeout: float = 10.0) -> object:
    transport = Urllib3Transport()
    try:
        return transport.send("POST", url, {"X-Test": "1"}, b"abc", 10.0, read_timeout)
    finally:
        transport.close()


def test_an_answer_comes_back_with_lower_case_headers(server: str) -> None:
    reply = send(f"{server}/pay")
    assert reply.status == 503  # type: ignore[attr-defined]
    assert reply.headers["retry-after"] == "2"  # type: ignore[attr-defined]
    assert reply.headers["x-payments-region"] == "us-east-1"  # type: ignore[attr-defined]
    assert reply.body == b'{"echo": "abc"}'  # type: ignore[attr-defined]


def test_a_closed_port_is_a_connect_failure_nothing_was_sent() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free, and nobody listens once closed
    with pytest.raises(TransportError) as raised:
        send(f"http://127.0.0.1:{port}/pay")
    assert raised.value.failure is Failure.CONNECT
    assert not raised.value.failure.request_sent


def test_a_dropped_answer_is_no_answer_after_sending(server: str) -> None:
    with pytest.raises(TransportError) as raised:
        send(f"{server}/drop")
    assert raised.value.failure is Failure.NO_ANSWER
    assert raised.value.failure.request_sent


def test_a_silent_server_is_a_read_timeout(server: str) -> None:
    with pytest.raises(TransportError) as raised:
        send(f"{server}/hang", read_timeout=0.2)
    assert raised.value.failure is Failure.READ_TIMEOUT
    assert raised.value.failure.request_sent
