"""The merchant SDK: the payment API in both regions, with retries and regional failover.

    from payments_dr.client import PaymentsClient
    client = PaymentsClient.for_domain("pay.example.com", api_key=KEY)
    result = client.create_payment(amount=1250, currency="EUR", payment_token="tok_4f9a2c1e7b")
    print(result.payment.id, result.region, result.attempts, result.idempotency_key)

Needs only urllib3 (`pip install 'payments-dr[client]'`); it never imports Pulumi or boto3.
See docs/client.md for the retry and failover rules and what each consistency mode guarantees.
"""

from payments_dr.client.arguments import new_idempotency_key
from payments_dr.client.breaker import BreakerPolicy, BreakerState
from payments_dr.client.client import PaymentsClient
from payments_dr.client.errors import (
    IdempotencyConflict,
    IdempotencyKeyReused,
    InvalidArgument,
    PaymentNotFound,
    PaymentsClientError,
    PaymentsUnavailable,
    RequestRejected,
    UnexpectedAnswer,
)
from payments_dr.client.models import (
    AttemptEvent,
    BreakerEvent,
    ClientEvent,
    Payment,
    PaymentResult,
    RegionHealth,
)
from payments_dr.client.policy import Clock, Outcome, RetryPolicy, SystemClock, Timeouts
from payments_dr.client.transport import Failure, HttpReply, Transport, TransportError

__all__ = [
    "AttemptEvent",
    "BreakerEvent",
    "BreakerPolicy",
    "BreakerState",
    "ClientEvent",
    "Clock",
    "Failure",
    "HttpReply",
    "IdempotencyConflict",
    "IdempotencyKeyReused",
    "InvalidArgument",
    "Outcome",
    "Payment",
    "PaymentNotFound",
    "PaymentResult",
    "PaymentsClient",
    "PaymentsClientError",
    "PaymentsUnavailable",
    "RegionHealth",
    "RequestRejected",
    "RetryPolicy",
    "SystemClock",
    "Timeouts",
    "Transport",
    "TransportError",
    "UnexpectedAnswer",
    "new_idempotency_key",
]
