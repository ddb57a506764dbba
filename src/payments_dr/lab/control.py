"""`lab up`'s control endpoint: read the lab's state and switch faults, with curl.

    GET  /status                      DNS answer, health and faults per region
    POST /faults  {"region": "us-east-1", "fault": "outage", "active": true}

It listens on its own loopback port, apart from the failover endpoint, so the payment API
stays exactly what the OpenAPI document describes.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from payments_dr.lab.httpserver import LoopbackServer
from payments_dr.lab.lab import Fault, Lab


class ControlServer(LoopbackServer):
    def __init__(self, lab: Lab) -> None:
        self._lab = lab
        super().__init__(self._request_handler_class(), "lab-control")

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if (method, path) == ("GET", "/status"):
            return 200, self._lab.status()
        if (method, path) == ("POST", "/faults"):
            try:
                request = json.loads(body or b"{}")
                fault = Fault(request["fault"])
                active = request["active"]
                if not isinstance(active, bool):
                    raise TypeError("active must be true or false")
                self._lab.set_fault(str(request.get("region", self._lab.primary)), fault, active)
            except (ValueError, KeyError, TypeError) as error:
                choices = ", ".join(fault.value for fault in Fault)
                return 400, {"message": f"{error}; fault is one of {choices}"}
            return 200, self._lab.status()
        return 404, {"message": "GET /status or POST /faults"}

    def _request_handler_class(self) -> type[BaseHTTPRequestHandler]:
        control = self

        class RequestHandler(BaseHTTPRequestHandler):
            server_version = "lab-control"
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

            def _answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, body = control.handle(
                    method, self.path, self.rfile.read(length) if length else b""
                )
                payload = json.dumps(body, indent=2).encode() + b"\n"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return  # curl users see the answer; the lab's own output stays readable

        return RequestHandler
