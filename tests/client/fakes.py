"""A clock that only moves when the client sleeps, and a transport that answers from a script."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias
from urllib.parse import urlsplit

from payments_dr.client import (
    ClientEvent,
    Failure,
    HttpReply,
    PaymentsClient,
    TransportError,
)

PRIMARY, SECONDARY = "us-east-1", "us-east-2"
ENDPOINTS = {PRIMARY: "https://api.us-east-1.pay.test", SECONDARY: "https://api.us-east-2.pay.test"}
API_KEY = "pdr.acme.k1.s3cr3tvalue"
PAYMENT = {"amount": 1250, "currency": "EUR", "payment_token": "tok_4f9a2c1e7bd0"}


@dataclass
class FakeClock:
    """Simulated seconds; `sleep` advances them and is recorded."""

    time: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += seconds


@dataclass(frozen=True)
class Sent:
    region: str
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes | None


Answer: TypeAlias = HttpReply | Failure


def payment_json(region: str, key: str = "k", status: str = "accepted") -> dict[str, Any]:
    return {
        "id": "pay_" + "0" * 32,
        "status": status,
        "merchant_id": "acme",
        "amount": 1250,
        "currency": "EUR",
        "region": region,
        "created_at": "2026-01-01T00:00:00.000Z",
    }


def reply(status: int, body: Any = None, **headers: str) -> HttpReply:
    raw = b"" if body is None else json.dumps(body).encode()
    return HttpReply(
        status, {name.replace("_", "-").lower(): v for name, v in headers.items()}, raw
    )


def created(region: str) -> HttpReply:
    return reply(201, payment_json(region))


HEALTHY = reply(200, {"status": "ok", "region": PRIMARY, "reasons": []})
FENCED = reply(503, {"status": "unhealthy", "region": PRIMARY, "reasons": ["region fenced"]})


class ScriptedTransport:
    """Per region and path kind ("api" or "health"), answers in order; the last one repeats."""

    def __init__(self, clock: FakeClock | None = None, seconds_per_request: float = 0.0) -> None:
        self._scripts: dict[tuple[str, str], deque[Answer]] = {}
        self._clock = clock
        self._seconds = seconds_per_request
        self._lock = threading.Lock()
        self.sent: list[Sent] = []
        self.closed = False

    def script(self, region: str, *answers: Answer, kind: str = "api") -> ScriptedTransport:
        self._scripts[(region, kind)] = deque(answers)
        return self

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        connect_timeout: float,
        read_timeout: float,
    ) -> HttpReply:
        region = next(name for name, base in ENDPOINTS.items() if url.startswith(base))
        path = urlsplit(url).path
        kind = "health" if path.endswith("/health") else "api"
        with self._lock:
            self.sent.append(Sent(region, method, path, dict(headers), body))
            script = self._scripts.get((region, kind))
            if not script:
                raise AssertionError(f"no answer scripted for {kind} in {region}")
            answer = script.popleft() if len(script) > 1 else script[0]
        if self._clock is not None:
            self._clock.time += self._seconds
        if isinstance(answer, Failure):
            raise TransportError(answer, "scripted")
        return answer

    def close(self) -> None:
        self.closed = True

    def api_requests(self) -> list[Sent]:
        return [s for s in self.sent if not s.path.endswith("/health")]

    def regions(self) -> list[str]:
        return [s.region for s in self.api_requests()]


def make_client(
    transport: ScriptedTransport,
    clock: FakeClock,
    events: list[ClientEvent] | None = None,
    unit_random: float = 0.5,
    **options: Any,
) -> PaymentsClient:
    return PaymentsClient(
        ENDPOINTS,
        API_KEY,
        clock=clock,
        unit_random=lambda: unit_random,
        transport=transport,
        on_event=events.append if events is not None else None,
        **options,
    )
