"""What the client raises. Every error names what to do next; none carries the API key or a
payment token."""

from __future__ import annotations


class PaymentsClientError(Exception):
    """Base class of everything the client raises."""


class InvalidArgument(PaymentsClientError, ValueError):
    """An argument is wrong; nothing was sent. The message names the argument and the fix."""


class IdempotencyKeyReused(InvalidArgument):
    """This client already sent another body under the key; nothing was sent this time."""


class RequestRejected(PaymentsClientError):
    """A final answer (400, 401, 403, 404, 422 or another 4xx): retrying cannot change it."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        region: str,
        attempts: int,
        idempotency_key: str | None,
    ) -> None:
        super().__init__(f"{status} {code}: {message} (answered by {region})")
        self.status = status
        self.code = code
        self.message = message
        self.region = region
        self.attempts = attempts
        self.idempotency_key = idempotency_key


class PaymentNotFound(RequestRejected):
    """404: no stored payment with this id for this merchant (in eventual mode, a payment
    accepted by the other region moments ago may still be replicating)."""


class IdempotencyConflict(RequestRejected):
    """422: the key was already used with a different request; the first request stands."""


class PaymentsUnavailable(PaymentsClientError):
    """No region gave a final answer within the retry policy. Whether the payment was stored
    is unknown: send it again later with the same idempotency key, never a new one."""

    def __init__(
        self,
        *,
        attempts: int,
        regions_tried: tuple[str, ...],
        last_outcome: str,
        idempotency_key: str | None,
    ) -> None:
        again = (
            f"; send it again with the same idempotency key {idempotency_key}"
            if idempotency_key
            else ""
        )
        super().__init__(
            f"no final answer after {attempts} attempts in {', '.join(regions_tried)} "
            f"(last: {last_outcome}){again}"
        )
        self.attempts = attempts
        self.regions_tried = regions_tried
        self.last_outcome = last_outcome
        self.idempotency_key = idempotency_key


class UnexpectedAnswer(PaymentsClientError):
    """A success status whose body is not what the API documents. Not retried: the request
    may have been applied. Read the payment back (`get_payment`) before anything else."""
