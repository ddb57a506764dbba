"""What the drill's clients send and are told: payments, attempts, client kinds and workloads.

Kept apart from the client threads (lab.traffic) so that the CLI and the verdict can use these
without importing the lab.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass, field
from enum import StrEnum

from payments_dr.service.model import IdKey, parse_payment_request

ACKNOWLEDGED = frozenset({200, 201, 202})
# Final answers; anything else is retried. 401 and 403 mean the client's key is refused.
REJECTED = frozenset({400, 401, 403, 404, 422})
CURRENCIES = ("AUD", "CAD", "CHF", "EUR", "GBP", "JPY", "USD")


class Workload(StrEnum):
    STEADY = "steady"
    ADVERSARIAL = "adversarial"


class ClientKind(StrEnum):
    DNS = "dns"
    SDK = "sdk"
    BOTH = "both"


class Category(StrEnum):
    STEADY = "steady"  # a client of the failover name
    SDK = "sdk"  # a merchant using the SDK, with both regional names
    CROSS_REGION_RETRY = "cross-region-retry"
    KEY_REUSE = "key-reuse"
    BURST = "burst"


THROUGH_FAILOVER_NAME = frozenset({Category.STEADY, Category.BURST})


def timed_categories(kinds: tuple[ClientKind, ...]) -> frozenset[Category]:
    """Whose payments time failover and failback: clients of the failover name, or the SDK's
    when there are none (adversarial clients address regions directly, so the secondary would
    seem to serve from the start)."""
    return THROUGH_FAILOVER_NAME if ClientKind.DNS in kinds else frozenset({Category.SDK})


# How each steady client kind shows up among the payments.
KIND_CATEGORY = {ClientKind.DNS: Category.STEADY, ClientKind.SDK: Category.SDK}
# What the SDK is for: p99 of client-perceived RTO in a primary outage, simulated seconds.
SDK_RTO_TARGET_SECONDS = 10.0


@dataclass(frozen=True)
class Attempt:
    # Simulated seconds since the traffic started, when the client learned the outcome: a
    # request routed by DNS is only routed once sent, so its send time could precede the
    # DNS change that served it.
    at: float
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

    def payment_id(self, id_key: IdKey) -> str:
        """The id the service gives this payment: the stack's id key is needed to know it."""
        return id_key.payment_id(self.merchant_id, self.idempotency_key)

    def fingerprint(self, id_key: IdKey) -> str:
        """The fingerprint the service stores for this request."""
        request = parse_payment_request(self.body.decode(), merchant_id=self.merchant_id)
        return id_key.fingerprint(request)

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
    client_kind: ClientKind = ClientKind.DNS

    @property
    def kinds(self) -> tuple[ClientKind, ...]:
        """The steady client kinds, each with `clients` clients."""
        if self.client_kind is ClientKind.BOTH:
            return (ClientKind.DNS, ClientKind.SDK)
        return (self.client_kind,)


def first_served(attempts: list[Attempt], region: str, after: float) -> float | None:
    for attempt in attempts:
        if attempt.at >= after and attempt.answered_by == region and attempt.status in ACKNOWLEDGED:
            return attempt.at
    return None
