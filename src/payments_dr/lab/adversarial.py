"""The adversarial workload's clients, a mixin of `Traffic`: the cases that hurt a payments
company most, each striking at its own simulated interval.

- cross-region retry: the client loses its first answer (a timeout) and retries the same key
  and body through the other region at once, before replication can have carried the write;
- key reuse: one key with two different bodies, one through each region at the same time;
- bursts: several payments at the same instant through the failover endpoint.
"""

from __future__ import annotations

import random
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

from payments_dr.lab.client_payments import (
    Attempt,
    Category,
    ClientPayment,
    new_payment,
    with_other_body,
)

if TYPE_CHECKING:
    from payments_dr.lab.lab import Lab

# In simulated seconds: how often each client strikes, and how long a client whose answer was
# lost waits before it retries through the other region (well inside the replication lag, so
# the retry races the first write).
CROSS_REGION_RETRY_EVERY_SECONDS = 7.0
CROSS_REGION_RETRY_DELAY_SECONDS = 0.2
KEY_REUSE_EVERY_SECONDS = 9.0
BURST_EVERY_SECONDS = 25.0
BURST_SIZE = 5


class AdversarialClients(ABC):
    _lab: Lab
    _api_keys: dict[int, str]
    _lock: threading.Lock

    @abstractmethod
    def _every(self, interval: float, offset: float, strike: Callable[[int], None]) -> None: ...

    @abstractmethod
    def _pause(self, simulated_seconds: float) -> None: ...

    @abstractmethod
    def _track(self, payment: ClientPayment) -> ClientPayment: ...

    @abstractmethod
    def _submit(self, payment: ClientPayment, api_key: str, region: str | None) -> None: ...

    @abstractmethod
    def _send(
        self, payment: ClientPayment, api_key: str, region: str | None
    ) -> tuple[Attempt, float | None]: ...

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
