"""Synthetic payments through the failover URL, as a client would send them, every answer kept.

The drill on AWS uses them to see which region serves while it switches traffic.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from payments_dr.contract import AUTH_HEADER, AUTH_SCHEME, IDEMPOTENCY_HEADER, REGION_HEADER
from payments_dr.drill_report import RequestSample
from payments_dr.service.model import PAYMENT_ID_PATTERN

REQUEST_TIMEOUT_SECONDS = 5.0
ATTEMPTS_PER_PAYMENT = 4  # a client retries with the same Idempotency-Key
RETRY_BACKOFF_SECONDS = 1.0
RETRYABLE = frozenset({0, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class HttpAnswer:
    status: int  # 0 when no answer arrived
    headers: dict[str, str]
    body: dict[str, Any]


class Sender(Protocol):
    def __call__(self, url: str, headers: dict[str, str], body: bytes) -> HttpAnswer: ...


def post_json(url: str, headers: dict[str, str], body: bytes) -> HttpAnswer:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            return HttpAnswer(response.status, dict(response.headers), _json(response.read()))
    except urllib.error.HTTPError as error:
        return HttpAnswer(error.code, dict(error.headers), _json(error.read()))
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        return HttpAnswer(0, {}, {})


def _json(raw: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(raw or b"{}")
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


@dataclass
class SyntheticTraffic:
    """Sends payments at a steady rate through the failover URL and records every answer.

    `run_for` is also the drill's way to wait: traffic keeps flowing while it watches DNS.
    """

    url: str
    merchant_id: str
    api_key: str  # the merchant's key, issued for this drill and revoked after it
    send: Sender
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    rate_per_second: float
    started: float
    samples: list[RequestSample] = field(default_factory=list)
    acknowledged: dict[str, str] = field(default_factory=dict)  # idempotency key -> payment id
    duplicates: list[str] = field(default_factory=list)
    failed: int = 0  # no final answer after every attempt
    rejected: int = 0  # a well-formed payment answered 4xx: a service fault
    sent: int = 0
    _next_at: float | None = None

    def run_for(self, seconds: float) -> None:
        deadline = self.clock() + seconds
        if self._next_at is None:
            self._next_at = self.clock()
        while self.clock() < deadline:
            if self.clock() >= self._next_at:
                self._pay()
                self._next_at += 1 / self.rate_per_second
            else:
                self.sleep(min(self._next_at, deadline) - self.clock())

    def _pay(self) -> None:
        self.sent += 1
        # The letter keeps the id's hex tail and the counter apart: one run of 13+ digits
        # could be refused as card-shaped.
        key = f"drill-{self.merchant_id[-12:]}-n{self.sent:06d}"
        body = json.dumps(
            {
                "amount": 100 + self.sent,
                "currency": "USD",
                "payment_token": "tok_drillsynthetic",
                "reference": f"drill-{self.sent}",
            }
        ).encode()
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: key,
            AUTH_HEADER: f"{AUTH_SCHEME} {self.api_key}",
        }
        for attempt in range(ATTEMPTS_PER_PAYMENT):
            answer = self.send(self.url, headers, body)
            self.samples.append(
                RequestSample(
                    at_seconds=round(self.clock() - self.started, 3),
                    region=answer.headers.get(REGION_HEADER, ""),
                    status=answer.status,
                )
            )
            if answer.status not in RETRYABLE:
                break
            if attempt + 1 < ATTEMPTS_PER_PAYMENT:
                self.sleep(RETRY_BACKOFF_SECONDS)
        if 200 <= answer.status < 300:
            self._acknowledge(key, str(answer.body.get("id", "")))
        elif answer.status in RETRYABLE:
            self.failed += 1
        else:
            self.rejected += 1

    def _acknowledge(self, key: str, answered_id: str) -> None:
        # Ids are keyed with the stack's id secret, which only the functions may read: the
        # drill cannot compute them, so it takes the answered id, refuses one that is not an
        # id or that another key already got, and then looks each up in both regions.
        if not PAYMENT_ID_PATTERN.fullmatch(answered_id):
            self.duplicates.append(f"key {key} answered {answered_id!r}, not a payment id")
            return
        other = next((k for k, known in self.acknowledged.items() if known == answered_id), None)
        if other is not None:
            self.duplicates.append(f"keys {other} and {key} were both answered id {answered_id}")
        self.acknowledged[key] = answered_id
