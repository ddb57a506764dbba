"""The merchant SDK in the lab: each region's loopback endpoint, on the lab's simulated clock.

`lab_client` gives a `PaymentsClient` the running lab's regional URLs (the lab's stand-in for
`api.<region>.<domain>`) and the lab's `SimClock`, so its backoff, breaker and deadline run in
simulated seconds like the health checks and the DNS TTL. Socket timeouts stay in real
seconds. `SdkMerchant` sends a steady stream of payments through one client and keeps what a
drill reports: every attempt, and when each payment was acknowledged.
"""

from __future__ import annotations

import json
import random
import string
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from payments_dr.client import (
    AttemptEvent,
    ClientEvent,
    PaymentResult,
    PaymentsClient,
    PaymentsUnavailable,
)
from payments_dr.lab.threads import BackgroundLoop
from payments_dr.service.model import IdKey, parse_payment_request

if TYPE_CHECKING:
    from payments_dr.lab.lab import Lab


def lab_endpoints(lab: Lab) -> dict[str, str]:
    """Each region's own URL, primary first (the SDK prefers the first)."""
    ordered = (lab.primary, lab.secondary)
    return {region: lab.region_url(region) for region in ordered}


def lab_client(lab: Lab, api_key: str, **options: Any) -> PaymentsClient:
    return PaymentsClient(lab_endpoints(lab), api_key, clock=lab.clock, **options)


@dataclass
class SdkPayment:
    idempotency_key: str
    body: dict[str, Any]
    started_at: float  # simulated seconds on the lab clock
    attempts: list[AttemptEvent] = field(default_factory=list)
    result: PaymentResult | None = None
    acknowledged_at: float | None = None

    @property
    def regions_tried(self) -> set[str]:
        return {attempt.region for attempt in self.attempts}

    def fingerprint(self, merchant_id: str, id_key: IdKey) -> str:
        """The fingerprint the service stores for this request."""
        return id_key.fingerprint(
            parse_payment_request(json.dumps(self.body), merchant_id=merchant_id)
        )


class SdkMerchant(BackgroundLoop):
    """One merchant sending a payment every `interval_seconds` (simulated) through the SDK.

    A payment the SDK gives up on (`PaymentsUnavailable`) is sent again with the same key, as
    a merchant must, until acknowledged or until the merchant is stopped.
    """

    def __init__(
        self,
        lab: Lab,
        merchant_id: str,
        api_key: str,
        interval_seconds: float,
        seed: int = 0,
        **client_options: Any,
    ) -> None:
        self.merchant_id = merchant_id
        self._lab = lab
        self._interval = interval_seconds
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._current: SdkPayment | None = None
        self.events: list[ClientEvent] = []
        self.payments: list[SdkPayment] = []
        self.client = lab_client(lab, api_key, on_event=self._record, **client_options)
        super().__init__(f"sdk-{merchant_id}")

    def stop(self) -> None:
        super().stop()
        self.client.close()

    def acknowledged(self) -> list[SdkPayment]:
        with self._lock:
            return [payment for payment in self.payments if payment.result is not None]

    def first_acknowledged(self, region: str, after: float) -> float | None:
        """When this merchant first heard an acknowledgement from `region` after `after`."""
        times = [
            p.acknowledged_at
            for p in self.acknowledged()
            if p.result is not None
            and p.result.region == region
            and p.acknowledged_at is not None
            and p.acknowledged_at >= after
        ]
        return min(times, default=None)

    def _run(self) -> None:
        sequence = 0
        while not self._stop.is_set():
            sequence += 1
            payment = SdkPayment(self._key(sequence), self._body(sequence), self._lab.clock.now())
            with self._lock:
                self.payments.append(payment)
                self._current = payment
            while payment.result is None and not self._stop.is_set():
                try:
                    payment.result = self.client.create_payment(
                        **payment.body, idempotency_key=payment.idempotency_key
                    )
                    payment.acknowledged_at = self._lab.clock.now()
                except PaymentsUnavailable:
                    # Again later with the same key and body: the SDK's ledger allows it.
                    self._stop.wait(self._lab.clock.to_wall(1.0))
            self._stop.wait(self._lab.clock.to_wall(self._interval))

    def _record(self, event: ClientEvent) -> None:
        with self._lock:
            self.events.append(event)
            if isinstance(event, AttemptEvent) and self._current is not None:
                self._current.attempts.append(event)

    def _key(self, sequence: int) -> str:
        suffix = "".join(self._rng.choices(string.ascii_lowercase, k=8))
        return f"{self.merchant_id}-{sequence:05d}-{suffix}"

    def _body(self, sequence: int) -> dict[str, Any]:
        token = "".join(self._rng.choices(string.ascii_letters, k=16))
        return {
            "amount": self._rng.randint(100, 500_000),
            "currency": self._rng.choice(("EUR", "USD", "GBP")),
            "payment_token": f"tok_{token}",
            "reference": f"{self.merchant_id}-{sequence:05d}",
        }
