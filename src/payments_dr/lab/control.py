"""`lab up`'s control endpoint: read the lab's state, switch faults, enrol merchants, with curl.

    GET  /status                      DNS answer, health, faults, conflict records
    POST /faults     {"region": "us-east-1", "fault": "outage", "active": true}
    POST /merchants  {"merchant_id": "acme"}   -> {"merchant_id", "api_key"}

It listens on its own loopback port, apart from the failover endpoint, so the payment API
stays exactly what the OpenAPI document describes. Bodies are JSON objects; anything else,
an unknown field, a wrong method or path is refused with a JSON 4xx naming the problem.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from payments_dr.lab.faults import Fault
from payments_dr.lab.httpserver import JsonRequestHandler, LoopbackServer
from payments_dr.lab.lab import Lab
from payments_dr.service.model import MERCHANT_ID_PATTERN

ROUTES: dict[str, str] = {"/status": "GET", "/faults": "POST", "/merchants": "POST"}
Answer = tuple[int, dict[str, Any]]


class BadRequest(ValueError):
    """A control request that cannot be carried out as sent."""


def _object(body: bytes, fields: dict[str, type]) -> dict[str, Any]:
    """The body as a JSON object holding only `fields`, each of its type when present."""
    try:
        request = json.loads(body or b"{}")
    except ValueError as error:
        raise BadRequest(f"the body is not JSON: {error}") from error
    if not isinstance(request, dict):
        raise BadRequest("the body must be a JSON object")
    unknown = sorted(set(request) - set(fields))
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}; fields: {', '.join(fields)}")
    for name, kind in fields.items():
        if name in request and not isinstance(request[name], kind):
            raise BadRequest(f"{name} must be a {kind.__name__}")
    return request


class ControlServer(LoopbackServer):
    def __init__(self, lab: Lab) -> None:
        self._lab = lab
        super().__init__(self._request_handler_class(), "lab-control")

    def handle(self, method: str, path: str, body: bytes) -> Answer:
        if path not in ROUTES:
            return 404, {"message": f"no {path}; try {', '.join(ROUTES)}"}
        if method != ROUTES[path]:
            return 405, {"message": f"{path} takes {ROUTES[path]}"}
        handlers: dict[str, Callable[[bytes], Answer]] = {
            "/status": lambda _: (200, self._lab.status()),
            "/faults": self._fault,
            "/merchants": self._merchant,
        }
        try:
            return handlers[path](body)
        except BadRequest as error:
            return 400, {"message": str(error)}

    def _fault(self, body: bytes) -> Answer:
        request = _object(body, {"region": str, "fault": str, "active": bool})
        choices = ", ".join(fault.value for fault in Fault)
        if "fault" not in request or "active" not in request:
            raise BadRequest(f"fault and active are required; fault is one of {choices}")
        try:
            fault = Fault(request["fault"])
        except ValueError as error:
            raise BadRequest(f"{error}; fault is one of {choices}") from error
        try:
            self._lab.set_fault(request.get("region", self._lab.primary), fault, request["active"])
        except ValueError as error:  # an unknown region
            raise BadRequest(str(error)) from error
        return 200, self._lab.status()

    def _merchant(self, body: bytes) -> Answer:
        merchant_id = _object(body, {"merchant_id": str}).get("merchant_id", "")
        if not MERCHANT_ID_PATTERN.fullmatch(merchant_id):
            raise BadRequest(
                "merchant_id must be 3-64 letters, digits, '_' or '-', starting with a letter"
                " or digit"
            )
        # A throwaway key of the simulation, stored hashed in the primary and replicated.
        return 201, {"merchant_id": merchant_id, "api_key": self._lab.enrol_merchant(merchant_id)}

    def _request_handler_class(self) -> type[BaseHTTPRequestHandler]:
        control = self

        class RequestHandler(JsonRequestHandler):
            server_version = "lab-control"
            disable_nagle_algorithm = True

            def __getattr__(self, name: str) -> Callable[[], None]:
                # Every method reaches `handle`, which answers 405 for the wrong one.
                if name.startswith("do_"):
                    return lambda: self._answer(name.removeprefix("do_"))
                raise AttributeError(name)

            def _answer(self, method: str) -> None:
                body = self.read_body()
                if body is None:
                    return
                status, answer = control.handle(method, self.path, body)
                payload = json.dumps(answer, indent=2).encode() + b"\n"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if status == 405:
                    self.send_header("Allow", ROUTES[self.path])
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return  # curl users see the answer; the lab's own output stays readable

        return RequestHandler
