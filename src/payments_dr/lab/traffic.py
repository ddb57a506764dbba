"""The drill's clients: merchants sending payments, and what each of them was told.

Steady clients send at an even simulated rate and retry each payment with the same
Idempotency-Key until it is answered for good. They are of two kinds (`--client`): clients of
the failover name, which Route 53 moves, and merchants on the SDK (`payments_dr.client`),
which know both regional names and move by themselves; `both` runs them side by side, so one
drill compares what each perceives. The adversarial workload adds the clients of
lab.adversarial. Clients that address a region directly move to the other region when theirs
does not answer, as a client with both regional endpoints would.
"""

from __future__ import annotations

import functools
import http.client
import json
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from payments_dr.client import (
    AttemptEvent,
    ClientEvent,
    PaymentsUnavailable,
    RequestRejected,
)
from payments_dr.contract import (
    AUTH_HEADER,
    AUTH_SCHEME,
    IDEMPOTENCY_HEADER,
    PAYMENTS_PATH,
    REGION_HEADER,
)
from payments_dr.lab.adversarial import AdversarialClients
from payments_dr.lab.client_payments import (
    ACKNOWLEDGED,
    REJECTED,
    Attempt,
    Category,
    ClientKind,
    ClientPayment,
    TrafficOptions,
    Workload,
    first_served,
    new_payment,
    timed_categories,
)
from payments_dr.lab.routing import NO_ANSWER_HEADER, ROUTED_TO_HEADER
from payments_dr.lab.sdk import lab_client
from payments_dr.lab.signals import main_thread_signals

if TYPE_CHECKING:
    from payments_dr.lab.lab import Lab

CLIENT_TIMEOUT_WALL_SECONDS = 15.0


class Traffic(AdversarialClients):
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
        clients: list[Callable[[], None]] = []
        for number, kind in enumerate(options.kinds):
            steady = self._steady if kind is ClientKind.DNS else self._sdk
            first = number * options.clients
            clients += [functools.partial(steady, first + i) for i in range(options.clients)]
        if options.workload is Workload.ADVERSARIAL:
            first = len(options.kinds) * options.clients
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
        return len(options.kinds) * options.clients + extra

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
        """When `region` first acknowledged a payment of the timed clients sent at or after
        `after`: what failover and failback mean to a client."""
        timed = timed_categories(self._options.kinds)
        with self._lock:
            attempts = [a for p in self.payments if p.category in timed for a in list(p.attempts)]
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

        def strike(sequence: int) -> None:
            payment = self._track(new_payment(rng, index, sequence))
            self._submit(payment, self._api_keys[index], None)

        self._every(*self._steady_pace(index), strike)

    def _steady_pace(self, index: int) -> tuple[float, float]:
        """Interval and first offset: each kind's clients together send at the steady rate."""
        interval = self._options.clients / self._options.payments_per_second
        return interval, interval * (index % self._options.clients) / self._options.clients

    def _sdk(self, index: int) -> None:
        """A merchant on the SDK: its own retries and regional failover, then, when it gives
        up, the same key and body again a second later, as its documentation asks."""
        rng = random.Random(index)
        current: list[ClientPayment] = []

        def record(event: ClientEvent) -> None:
            if isinstance(event, AttemptEvent) and current:
                status = event.status or 0  # None: no answer
                answered = event.region if status else ""
                learned_at = event.at + event.seconds - self._started_at
                attempt = Attempt(learned_at, event.region, answered, status)
                with self._lock:
                    current[-1].attempts.append(attempt)

        client = lab_client(self._lab, self._api_keys[index], on_event=record)

        def strike(sequence: int) -> None:
            payment = self._track(new_payment(rng, index, sequence, Category.SDK))
            current.append(payment)
            fields = json.loads(payment.body)
            while not self._aborted.is_set() and self._retrying():
                try:
                    result = client.create_payment(
                        **fields, idempotency_key=payment.idempotency_key
                    )
                except RequestRejected as error:
                    payment.final_status = error.status
                    return
                except PaymentsUnavailable:
                    self._pause(1.0)
                    continue
                payment.final_status = result.status
                return

        try:
            self._every(*self._steady_pace(index), strike)
        finally:
            client.close()

    def _retrying(self) -> bool:
        return self.now() < self._stop_at + self._options.retry_grace_seconds

    # --- requests ------------------------------------------------------------------------
    def _track(self, payment: ClientPayment) -> ClientPayment:
        with self._lock:
            self.payments.append(payment)
        return payment

    def _submit(self, payment: ClientPayment, api_key: str, region: str | None) -> None:
        """Send until answered for good. `region` None: through the failover endpoint;
        otherwise to that region, moving to the other one whenever it does not answer."""
        backoff = self._options.initial_backoff_seconds
        while not self._aborted.is_set() and self._retrying():
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
            return Attempt(self.now(), region or "", "", 0), None
        finally:
            connection.close()
        at = self.now()
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
