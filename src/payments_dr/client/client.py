"""`PaymentsClient`: the payment API from both regions, with retries and regional failover.

Each call picks the first region (preferred first) whose breaker is closed, or whose health
probe just passed; it sends there and retries on 5xx, no answer, timeouts and 408/429, with
exponential backoff and full jitter, at least the server's Retry-After while it stays in that
region, within `RetryPolicy`. Every retry of a payment sends the same bytes under the same
Idempotency-Key, in whichever region.
"""

from __future__ import annotations

import json
import logging
import random
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from payments_dr import contract
from payments_dr.client.arguments import (
    KeyLedger,
    checked_api_key,
    checked_domain_name,
    checked_endpoints,
    checked_idempotency_key,
    checked_payment_id,
    payment_body,
)
from payments_dr.client.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from payments_dr.client.errors import (
    IdempotencyConflict,
    InvalidArgument,
    PaymentNotFound,
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
from payments_dr.client.policy import (
    Clock,
    Outcome,
    RetryPolicy,
    SystemClock,
    Timeouts,
    classify,
    retry_after_seconds,
)
from payments_dr.client.transport import HttpReply, Transport, TransportError, Urllib3Transport

log = logging.getLogger("payments_dr.client")

# Nothing was stored after these: the caller may fix the request and reuse the key.
NOTHING_STORED = frozenset({400, 401, 403})
USER_AGENT = f"payments-dr-client python/{sys.version_info.major}.{sys.version_info.minor}"
# The health check is open: it never receives the merchant's key.
_BASE_HEADERS: Mapping[str, str] = {"Accept": "application/json", "User-Agent": USER_AGENT}


@dataclass(frozen=True)
class _Request:
    operation: str
    method: str
    path: str
    body: bytes | None = None
    idempotency_key: str | None = None


class PaymentsClient:
    """A merchant's client for the payment API in every region of the stack.

    `endpoints` maps each region to its own URL (`https://api.<region>.<domain>`); the first,
    or `preferred_region`, takes the traffic while it is healthy. Thread-safe: share one
    client per API key.
    """

    def __init__(
        self,
        endpoints: Mapping[str, str],
        api_key: str,
        *,
        preferred_region: str | None = None,
        retry: RetryPolicy | None = None,
        breaker: BreakerPolicy | None = None,
        timeouts: Timeouts | None = None,
        clock: Clock | None = None,
        unit_random: Callable[[], float] = random.random,
        transport: Transport | None = None,
        on_event: Callable[[ClientEvent], None] | None = None,
        remembered_keys: int = 10_000,
    ) -> None:
        self._endpoints = checked_endpoints(endpoints)
        self._auth = f"{contract.AUTH_SCHEME} {checked_api_key(api_key)}"
        if preferred_region is not None and preferred_region not in self._endpoints:
            raise InvalidArgument(
                f"preferred_region {preferred_region!r} is not in endpoints "
                f"({', '.join(self._endpoints)})"
            )
        if type(remembered_keys) is not int or remembered_keys < 1:
            raise InvalidArgument(
                f"remembered_keys must be a positive integer, got {remembered_keys!r}"
            )
        preferred = preferred_region or next(iter(self._endpoints))
        self._order = (preferred, *(r for r in self._endpoints if r != preferred))
        self._retry = retry or RetryPolicy()
        self._timeouts = timeouts or Timeouts()
        self._clock: Clock = clock or SystemClock()
        self._random = unit_random
        self._transport: Transport = transport or Urllib3Transport()
        self._on_event = on_event
        self._ledger = KeyLedger(remembered_keys)
        policy = breaker or BreakerPolicy()
        self._breakers = {
            region: CircuitBreaker(region, policy, self._clock, self._breaker_changed)
            for region in self._order
        }

    @classmethod
    def for_domain(
        cls,
        domain_name: str,
        api_key: str,
        regions: tuple[str, ...] = (
            contract.DEFAULT_PRIMARY_REGION,
            contract.DEFAULT_SECONDARY_REGION,
        ),
        **options: Any,
    ) -> PaymentsClient:
        """The client for a stack's domain: `https://api.<region>.<domain>` per region."""
        domain_name = checked_domain_name(domain_name)
        endpoints = {
            region: f"https://{contract.regional_api_domain(domain_name, region)}"
            for region in regions
        }
        return cls(endpoints, api_key, **options)

    def __repr__(self) -> str:  # never the key
        return f"PaymentsClient(regions={list(self._order)})"

    def __enter__(self) -> PaymentsClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._transport.close()

    @property
    def regions(self) -> tuple[str, ...]:
        """The regions in the order the client tries them, preferred first."""
        return self._order

    def breaker_state(self, region: str) -> BreakerState:
        return self._breakers[region].state

    # --- the API ---------------------------------------------------------------------------
    def create_payment(
        self,
        *,
        amount: int,
        currency: str,
        payment_token: str,
        reference: str | None = None,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> PaymentResult:
        """Submit a payment at most once. Without `idempotency_key` one is generated; it is in
        the result, and in `PaymentsUnavailable`: a later retry must reuse it."""
        body = payment_body(amount, currency, payment_token, reference, description)
        idempotency_key = checked_idempotency_key(idempotency_key)
        self._ledger.claim(idempotency_key, body)
        request = _Request("create_payment", "POST", contract.PAYMENTS_PATH, body, idempotency_key)
        try:
            reply, region, attempts = self._call(request)
        except RequestRejected as error:
            if error.status in NOTHING_STORED:
                self._ledger.release(idempotency_key)
            raise
        return PaymentResult(_payment(reply), reply.status, region, attempts, idempotency_key)

    def get_payment(self, payment_id: str) -> PaymentResult:
        path = contract.PAYMENT_PATH.replace("{id}", checked_payment_id(payment_id))
        reply, region, attempts = self._call(_Request("get_payment", "GET", path))
        return PaymentResult(_payment(reply), reply.status, region, attempts, None)

    def health(self, region: str) -> RegionHealth:
        """One region's deep health check, as Route 53 sees it; no retries."""
        if region not in self._endpoints:
            raise InvalidArgument(f"region {region!r} is not one of {', '.join(self._order)}")
        url = self._endpoints[region] + contract.HEALTH_PATH
        seconds = self._timeouts.health_seconds
        try:
            reply = self._transport.send("GET", url, _BASE_HEADERS, None, seconds, seconds)
        except TransportError as error:
            return RegionHealth(region, False, None, (error.failure.value,))
        data = _json(reply.body)
        reasons = data.get("reasons") if isinstance(data, dict) else None
        healthy = reply.status == 200 and isinstance(data, dict) and data.get("status") == "ok"
        return RegionHealth(
            region,
            healthy,
            reply.status,
            tuple(str(r) for r in reasons) if isinstance(reasons, list) else (),
        )

    # --- retries and failover --------------------------------------------------------------
    def _call(self, request: _Request) -> tuple[HttpReply, str, int]:
        started = self._clock.now()
        tried: list[str] = []
        last = ""
        for attempt in range(1, self._retry.max_attempts + 1):
            region = self._choose_region()
            tried.append(region)
            outcome, reply, last = self._attempt(request, region, attempt)
            breaker = self._breakers[region]
            if outcome is Outcome.REGION_FAILURE:
                breaker.record_failure(answered=reply is not None)
            else:
                breaker.record_success()
            if reply is not None and outcome is Outcome.SUCCESS:
                return reply, region, attempt
            if reply is not None and outcome is Outcome.FINAL:
                raise _rejection(reply, region, attempt, request.idempotency_key)
            if attempt == self._retry.max_attempts:
                break
            delay = self._retry.backoff(attempt, self._random())
            if reply is not None and breaker.closed:
                # The server's own wait holds while the next attempt goes to the same region.
                delay = max(delay, retry_after_seconds(reply.headers, time.time()) or 0.0)
            if self._clock.now() + delay - started > self._retry.deadline_seconds:
                break
            self._clock.sleep(delay)
        raise PaymentsUnavailable(
            attempts=len(tried),
            regions_tried=tuple(dict.fromkeys(tried)),
            last_outcome=last,
            idempotency_key=request.idempotency_key,
        )

    def _attempt(
        self, request: _Request, region: str, attempt: int
    ) -> tuple[Outcome, HttpReply | None, str]:
        """One request to one region: its outcome, the answer if any, and a description."""
        sent_at = self._clock.now()
        reply: HttpReply | None = None
        try:
            reply = self._transport.send(
                request.method,
                self._endpoints[region] + request.path,
                self._headers(request.idempotency_key),
                request.body,
                self._timeouts.connect_seconds,
                self._timeouts.read_seconds,
            )
        except TransportError as error:
            status: int | None = None
            failure: str | None = error.failure.value
            outcome = Outcome.REGION_FAILURE
            described = f"{failure} in {region}"
        else:
            outcome, status, failure = classify(reply.status), reply.status, None
            described = f"{reply.status} from {region}"
        seconds = self._clock.now() - sent_at
        self._emit(
            AttemptEvent(
                request.operation, region, attempt, outcome, status, failure, seconds, sent_at
            )
        )
        log.debug("%s attempt %d: %s", request.operation, attempt, described)
        return outcome, reply, described

    def _choose_region(self) -> str:
        """The first region, preferred first, that is closed or passes its health probe now.
        With every breaker open (better a try than no answer): a region whose last failure was
        an answer (a 5xx) before one that went silent, then the one open longest."""
        for region in self._order:
            breaker = self._breakers[region]
            if breaker.closed:
                return region
            if breaker.claim_probe():
                healthy = False
                try:
                    healthy = self.health(region).healthy
                finally:
                    breaker.probe_result(healthy)
                if healthy:
                    return region
        return min(
            self._order,
            key=lambda region: (
                not self._breakers[region].last_failure_answered,
                self._breakers[region].opened_at,
            ),
        )

    def _headers(self, idempotency_key: str | None) -> dict[str, str]:
        headers = {**_BASE_HEADERS, contract.AUTH_HEADER: self._auth}
        if idempotency_key is not None:
            headers[contract.IDEMPOTENCY_HEADER] = idempotency_key
            headers["Content-Type"] = "application/json"
        return headers

    def _breaker_changed(self, region: str, state: BreakerState) -> None:
        log.info("region %s: breaker %s", region, state.value)
        self._emit(BreakerEvent(region, state, self._clock.now()))

    def _emit(self, event: ClientEvent) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:  # the caller's metrics must never fail a payment
            log.warning("the on_event hook raised; ignored", exc_info=True)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        return None


def _payment(reply: HttpReply) -> Payment:
    data = _json(reply.body)
    if data is None:
        raise UnexpectedAnswer(f"a {reply.status} answer without a JSON payment")
    return Payment.from_json(data)


def _rejection(
    reply: HttpReply, region: str, attempts: int, idempotency_key: str | None
) -> RequestRejected:
    data = _json(reply.body)
    error = data if isinstance(data, dict) else {}
    code = str(error.get("code") or "http_error")
    message = str(error.get("message") or f"HTTP {reply.status}")
    kind = {404: PaymentNotFound, 422: IdempotencyConflict}.get(reply.status, RequestRejected)
    return kind(
        reply.status,
        code,
        message,
        region=region,
        attempts=attempts,
        idempotency_key=idempotency_key,
    )
