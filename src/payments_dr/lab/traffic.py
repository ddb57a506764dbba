"""The drill's clients: merchants sending payments, and what each of them was told.

Steady clients send through the failover endpoint at an even simulated rate and retry each
payment with the same Idempotency-Key until it is answered for good. The adversarial workload
adds the clients that hurt a payments company most:

- cross-region retry: the client loses its first answer (a timeout) and retries the same key
  and body through the other region at once, before replication can have carried the write;
- key reuse: one key with two different bodies, one through each region at the same time;
- bursts: several payments at the same instant through the failover endpoint.

Clients that address a region directly move to the other region when theirs does not answer,
as a client with both regional endpoints would.
"""

from __future__ import annotations

import functools
import http.client
import json
import random
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from payments_dr.contract import (
    AUTH_HEADER,
    AUTH_SCHEME,
    IDEMPOTENCY_HEADER,
    PAYMENTS_PATH,
    REGION_HEADER,
)
from payments_dr.lab.routing import NO_ANSWER_HEADER, ROUTED_TO_HEADER
from payments_dr.lab.signals import main_thread_signals
from payments_dr.service.model import parse_payment_request, payment_id

if TYPE_CHECKING:
    from payments_dr.lab.lab import Lab

ACKNOWLEDGED = frozenset({200, 201, 202})
# Final answers; anything else is retried. 401 and 403 mean the client's key is refused.
REJECTED = frozenset({400, 401, 403, 404, 422})
CLIENT_TIMEOUT_WALL_SECONDS = 15.0
CURRENCIES = ("AUD", "CAD", "CHF", "EUR", "GBP", "JPY", "USD")
# Adversarial clients, in simulated seconds: how often each strikes, and how long a client
# whose answer was lost waits before it retries through the other region (well inside the
# replication lag, so the retry races the first write).
CROSS_REGION_RETRY_EVERY_SECONDS = 7.0
CROSS_REGION_RETRY_DELAY_SECONDS = 0.2
KEY_REUSE_EVERY_SECONDS = 9.0
BURST_EVERY_SECONDS = 25.0
BURST_SIZE = 5


class Workload(StrEnum):
    STEADY = "steady"
    ADVERSARIAL = "adversarial"


class Category(StrEnum):
    STEADY = "steady"
    CROSS_REGION_RETRY = "cross-region-retry"
    KEY_REUSE = "key-reuse"
    BURST = "burst"


THROUGH_FAILOVER_NAME = frozenset({Category.STEADY, Category.BURST})


@dataclass(frozen=True)
class Attempt:
    at: float  # simulated seconds since the traffic started
    routed_to: str  # the region the request was sent to
    answered_by: str  # the region that answered; "" when none did
    status: int  # 0: no answer (or an answer the client never saw)


@dataclass
class ClientPayment:
    merchant_id: str
    idempotency_key: str
    body: bytes
    category: Category = Category.STEADY
    attempts: list[Attempt] = field(default_factory=list)
    final_status: int | None = None  # acknowledged or rejected; None: gave up

    @property
    def payment_id(self) -> str:
        return payment_id(self.merchant_id, self.idempotency_key)

    @property
    def fingerprint(self) -> str:
        """The fingerprint the service stores for this request."""
        request = parse_payment_request(self.body.decode(), merchant_id=self.merchant_id)
        return request.fingerprint()

    @property
    def reference(self) -> str:
        return str(json.loads(self.body)["reference"])

    @property
    def acknowledged(self) -> bool:
        return self.final_status in ACKNOWLEDGED

    @property
    def acknowledged_at(self) -> float | None:
        for attempt in self.attempts:
            if attempt.status in ACKNOWLEDGED:
                return attempt.at
        return None

    @property
    def regions_tried(self) -> set[str]:
        return {attempt.routed_to for attempt in self.attempts}


def merchant_of(client: int) -> str:
    return f"merchant-{client:02d}"


def new_payment(
    rng: random.Random, client: int, sequence: int, category: Category = Category.STEADY
) -> ClientPayment:
    token = "".join(rng.choices(string.ascii_letters + string.digits, k=16))
    # Letters only: separators do not split digit runs, and a 13+ digit run could be refused
    # as card-shaped.
    suffix = "".join(rng.choices(string.ascii_lowercase[:16], k=8))
    body = {
        "amount": rng.randint(100, 500_000),
        "currency": rng.choice(CURRENCIES),
        "payment_token": f"tok_{token}",
        "reference": f"drill-{client:02d}-{sequence:06d}",
    }
    return ClientPayment(
        merchant_id=merchant_of(client),
        idempotency_key=f"drill-{client:02d}-{sequence:06d}-{suffix}",
        body=json.dumps(body).encode(),
        category=category,
    )


def with_other_body(payment: ClientPayment, rng: random.Random) -> ClientPayment:
    """The same merchant and key with another amount: what a buggy client reuses a key for."""
    body = json.loads(payment.body)
    body["amount"] = body["amount"] + rng.randint(1, 999)
    return ClientPayment(
        merchant_id=payment.merchant_id,
        idempotency_key=payment.idempotency_key,
        body=json.dumps(body).encode(),
        category=payment.category,
    )


@dataclass(frozen=True)
class TrafficOptions:
    clients: int
    payments_per_second: float  # steady clients together, simulated time
    workload: Workload
    retry_grace_seconds: float
    initial_backoff_seconds: float
    max_backoff_seconds: float


class Traffic:
    """Client threads; `api_keys` has a key for every client index `clients_needed` names."""

    def __init__(
        self, lab: Lab, options: TrafficOptions, started_at: float, api_keys: dict[int, str]
    ) -> None:
        self._lab = lab
        self._api_keys = api_keys
        self._options = options
        self._started_at = started_at
        self._stop_at = float("inf")
        self._aborted = threading.Event()
        self._lock = threading.Lock()
        self.payments: list[ClientPayment] = []
        clients: list[Callable[[], None]] = [
            functools.partial(self._steady, index) for index in range(options.clients)
        ]
        if options.workload is Workload.ADVERSARIAL:
            first = options.clients
            clients += [
                functools.partial(self._cross_region_retries, first),
                functools.partial(self._key_reuse, first + 1),
                functools.partial(self._bursts, first + 2),
            ]
        # Daemons, so an interrupted drill never waits on a client stuck in a request.
        self._threads = [
            threading.Thread(target=client, name=f"lab-client-{index}", daemon=True)
            for index, client in enumerate(clients)
        ]

    @staticmethod
    def clients_needed(options: TrafficOptions) -> int:
        extra = 3 if options.workload is Workload.ADVERSARIAL else 0
        return options.clients + extra

    def start(self) -> None:
        with main_thread_signals():
            for thread in self._threads:
                thread.start()

    def sleep_until(self, at: float) -> None:
        self._lab.clock.sleep(at - self.now())

    def stop(self) -> None:
        """No new payments from now on; unacknowledged ones are retried for the grace period."""
        self._stop_at = self.now()
        for thread in self._threads:
            thread.join()

    def abort(self, wait_wall_seconds: float = 1.0) -> None:
        """Stop at once: no new payment, no retry; give the clients a moment to notice."""
        self._aborted.set()
        self._stop_at = float("-inf")
        deadline = time.monotonic() + wait_wall_seconds
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def now(self) -> float:
        return self._lab.clock.now() - self._started_at

    def _pause(self, simulated_seconds: float) -> None:
        """Sleep on the lab clock unless the traffic is aborted first."""
        self._lab.clock.wait(self._aborted, simulated_seconds)

    def first_served(self, region: str, after: float) -> float | None:
        """When `region` first acknowledged a payment sent through the failover name at or
        after `after`: what failover and failback mean to a client."""
        with self._lock:
            attempts = [
                a
                for p in self.payments
                if p.category in THROUGH_FAILOVER_NAME
                for a in list(p.attempts)
            ]
        return first_served(sorted(attempts, key=lambda a: a.at), region, after)

    # --- clients -------------------------------------------------------------------------
    def _every(self, interval: float, offset: float, strike: Callable[[int], None]) -> None:
        """Call `strike(sequence)` every `interval` simulated seconds until the traffic stops."""
        next_at, sequence = offset, 0
        while self.now() < self._stop_at:
            self._pause(next_at - self.now())
            if self.now() >= self._stop_at:
                return
            sequence += 1
            strike(sequence)
            next_at = max(next_at + interval, self.now())

    def _steady(self, index: int) -> None:
        rng = random.Random(index)
        interval = self._options.clients / self._options.payments_per_second

        def strike(sequence: int) -> None:
            payment = self._track(new_payment(rng, index, sequence))
            self._submit(payment, self._api_keys[index], None)

        self._every(interval, interval * index / self._options.clients, strike)

    def _cross_region_retries(self, index: int) -> None:
        rng = random.Random(index)
        home, away = self._lab.primary, self._lab.secondary

        def strike(sequence: int) -> None:
            payment = self._track(new_payment(rng, index, sequence, Category.CROSS_REGION_RETRY))
            # The first answer never reaches the client: it retries through the other region.
            attempt, _ = self._send(payment, self._api_keys[index], home)
            with self._lock:
                payment.attempts.append(Attempt(attempt.at, home, "", 0))
            self._pause(CROSS_REGION_RETRY_DELAY_SECONDS)
            self._submit(payment, self._api_keys[index], away)

        self._every(CROSS_REGION_RETRY_EVERY_SECONDS, 1.0, strike)

    def _key_reuse(self, index: int) -> None:
        rng = random.Random(index)

        def strike(sequence: int) -> None:
            first = self._track(new_payment(rng, index, sequence, Category.KEY_REUSE))
            second = self._track(with_other_body(first, rng))
            key = self._api_keys[index]
            other = threading.Thread(
                target=self._submit, args=(second, key, self._lab.secondary), daemon=True
            )
            other.start()
            self._submit(first, key, self._lab.primary)
            other.join()

        self._every(KEY_REUSE_EVERY_SECONDS, 2.0, strike)

    def _bursts(self, index: int) -> None:
        rng = random.Random(index)
        counter = iter(range(1, 1_000_000))

        def strike(_: int) -> None:
            burst = [
                self._track(new_payment(rng, index, next(counter), Category.BURST))
                for _ in range(BURST_SIZE)
            ]
            threads = [
                threading.Thread(
                    target=self._submit, args=(payment, self._api_keys[index], None), daemon=True
                )
                for payment in burst
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        self._every(BURST_EVERY_SECONDS, 3.0, strike)

    # --- requests ------------------------------------------------------------------------
    def _track(self, payment: ClientPayment) -> ClientPayment:
        with self._lock:
            self.payments.append(payment)
        return payment

    def _submit(self, payment: ClientPayment, api_key: str, region: str | None) -> None:
        """Send until answered for good. `region` None: through the failover endpoint;
        otherwise to that region, moving to the other one whenever it does not answer."""
        backoff = self._options.initial_backoff_seconds
        while (
            not self._aborted.is_set()
            and self.now() < self._stop_at + self._options.retry_grace_seconds
        ):
            attempt, retry_after = self._send(payment, api_key, region)
            with self._lock:
                payment.attempts.append(attempt)
            if attempt.status in ACKNOWLEDGED or attempt.status in REJECTED:
                payment.final_status = attempt.status
                return
            if region is not None and (attempt.status == 0 or attempt.status >= 500):
                region = self._lab.peer_of(region)
            self._pause(retry_after if retry_after is not None else backoff)
            backoff = min(backoff * 2, self._options.max_backoff_seconds)

    def _send(
        self, payment: ClientPayment, api_key: str, region: str | None
    ) -> tuple[Attempt, float | None]:
        at = self.now()
        target = urlsplit(
            self._lab.failover_url if region is None else self._lab.region_url(region)
        )
        connection = http.client.HTTPConnection(
            target.hostname or "127.0.0.1", target.port, timeout=CLIENT_TIMEOUT_WALL_SECONDS
        )
        try:
            connection.request(
                "POST",
                PAYMENTS_PATH,
                body=payment.body,
                headers={
                    "Content-Type": "application/json",
                    IDEMPOTENCY_HEADER: payment.idempotency_key,
                    AUTH_HEADER: f"{AUTH_SCHEME} {api_key}",
                },
            )
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            return Attempt(at, region or "", "", 0), None
        finally:
            connection.close()
        routed_to = region or response.getheader(ROUTED_TO_HEADER) or ""
        if response.getheader(NO_ANSWER_HEADER):
            return Attempt(at, routed_to, "", 0), None  # the region never answered
        # The service names its region; the gateway's own answers (401, 403, 429, 503 from a
        # failing authorizer) come from the region the request was routed to.
        answered_by = response.getheader(REGION_HEADER) or routed_to
        retry_after = response.getheader("Retry-After")
        return (
            Attempt(at, routed_to, answered_by, response.status),
            float(retry_after) if retry_after and retry_after.isdigit() else None,
        )


def first_served(attempts: list[Attempt], region: str, after: float) -> float | None:
    for attempt in attempts:
        if attempt.at >= after and attempt.answered_by == region and attempt.status in ACKNOWLEDGED:
            return attempt.at
    return None
