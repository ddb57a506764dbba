"""What the client returns and what it reports to the caller's metrics hook."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from payments_dr.client.breaker import BreakerState
from payments_dr.client.errors import UnexpectedAnswer
from payments_dr.client.policy import Outcome


@dataclass(frozen=True)
class Payment:
    """A payment as the API returns it (schema `Payment` of the OpenAPI document)."""

    id: str
    status: str  # "accepted", or "pending" while queued after a 202
    merchant_id: str
    amount: int
    currency: str
    region: str  # the region that stored it
    created_at: str
    reference: str | None = None
    description: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> Payment:
        if not isinstance(data, Mapping):
            raise UnexpectedAnswer(f"a payment must be a JSON object, got {type(data).__name__}")
        try:
            payment = cls(
                id=data["id"],
                status=data["status"],
                merchant_id=data["merchant_id"],
                amount=data["amount"],
                currency=data["currency"],
                region=data["region"],
                created_at=data["created_at"],
                reference=data.get("reference"),
                description=data.get("description"),
            )
        except KeyError as error:
            raise UnexpectedAnswer(f"the payment in the answer lacks {error.args[0]!r}") from None
        texts = (payment.id, payment.status, payment.merchant_id, payment.currency)
        if not all(isinstance(value, str) for value in texts) or not (
            isinstance(payment.amount, int) and not isinstance(payment.amount, bool)
        ):
            raise UnexpectedAnswer("the payment in the answer has fields of the wrong type")
        return payment


@dataclass(frozen=True)
class PaymentResult:
    payment: Payment
    status: int  # 201 created, 200 the same request again, 202 queued (durable, applied soon)
    region: str  # the region whose endpoint answered
    attempts: int  # requests sent, the successful one included (health probes not counted)
    idempotency_key: str | None  # the key used, generated when none was given; None for reads

    @property
    def created(self) -> bool:
        return self.status == 201

    @property
    def replayed(self) -> bool:
        """The key had been used with this same request before: this is the stored payment."""
        return self.status == 200 and self.idempotency_key is not None

    @property
    def pending(self) -> bool:
        return self.status == 202


@dataclass(frozen=True)
class RegionHealth:
    region: str
    healthy: bool
    status: int | None  # None: no answer
    reasons: tuple[str, ...] = ()  # the service's reasons, or why no answer came


@dataclass(frozen=True)
class AttemptEvent:
    """One request sent (or tried): where, what came back, how long it took."""

    operation: str  # "create_payment", "get_payment"
    region: str
    attempt: int  # 1 for the first request of the call
    outcome: Outcome
    status: int | None  # None: no answer
    failure: str | None  # why no answer came (`transport.Failure`), else None
    seconds: float  # on the client's clock
    at: float  # the clock's time when the request was sent


@dataclass(frozen=True)
class BreakerEvent:
    region: str
    state: BreakerState
    at: float


ClientEvent = AttemptEvent | BreakerEvent
