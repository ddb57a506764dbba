"""The payment API: POST /v1/payments, GET /v1/payments/{id}, GET /v1/health.

Every 2xx answer means the payment is durable: in the table (201, 200) or on the peer
region's retry queue (202), outside this region's failure domain. When neither confirms, the
answer is 503 with Retry-After and the client retries with the same Idempotency-Key, which
can never create a second payment.

Routing is a few lines here rather than Powertools' APIGatewayRestResolver: the resolver
keeps the current event in class-level state shared by every resolver in the process, so
concurrent calls, or two regions' handlers in one process (the local lab), could read each
other's requests.
"""

from __future__ import annotations

import json
import queue
import re
import threading
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

from payments_dr.contract import (
    AUTH_CONTEXT_MERCHANT_ID,
    HEALTH_PATH,
    IDEMPOTENCY_HEADER,
    PAYMENT_PATH,
    PAYMENTS_PATH,
    REGION_HEADER,
    RETRY_AFTER_SECONDS,
    Mode,
)
from payments_dr.service import retry_message
from payments_dr.service.config import ConfigUnavailable
from payments_dr.service.deps import Handler, ServiceDeps
from payments_dr.service.model import (
    InvalidRequest,
    PaymentStatus,
    new_payment,
    parse_payment_request,
    validate_idempotency_key,
    validate_payment_id,
)
from payments_dr.service.observability import count, logger, metrics, tracer
from payments_dr.service.store import PaymentStore, PutOutcome, TableUnavailable

# Route 53 wants an answer within about 2 s of connecting; leave room for API Gateway.
HEALTH_DEADLINE_SECONDS = 1.5
JSON_CONTENT_TYPE = "application/json"


class HealthReason(StrEnum):
    CONFIG_UNAVAILABLE = "config unavailable"
    FENCED = "region fenced"
    TABLE_UNREACHABLE = "table unreachable"


# OpenAPI's /v1/payments/{id} as a pattern; the id's own format is checked by the handler.
PAYMENT_ROUTE = re.compile(re.escape(PAYMENT_PATH).replace(re.escape("{id}"), "(?P<id>[^/]+)"))


@dataclass(frozen=True)
class ProxyRequest:
    """The parts of an API Gateway REST proxy event the API reads."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased: HTTP header names are case-insensitive
    body: str | None
    is_base64_encoded: bool
    merchant_id: str | None  # from the authorizer's context; None on the open health route
    # Lower-cased names sent with more than one distinct value. API Gateway's `headers` keeps
    # only the last value of a repeated header, so reading it alone would pick one silently.
    ambiguous_headers: frozenset[str] = frozenset()
    # The gateway's `{id}`, percent-decoded (`path` stays encoded, as the client sent it).
    path_id: str | None = None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> ProxyRequest:
        authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
        merchant_id = authorizer.get(AUTH_CONTEXT_MERCHANT_ID)
        values: dict[str, set[str]] = {}
        for name, value in (event.get("headers") or {}).items():
            values.setdefault(str(name).lower(), set()).add(str(value))
        for name, many in (event.get("multiValueHeaders") or {}).items():
            values.setdefault(str(name).lower(), set()).update(str(value) for value in many or ())
        return cls(
            method=str(event.get("httpMethod") or "").upper(),
            path=str(event.get("path") or ""),
            headers={str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()},
            body=event.get("body"),
            is_base64_encoded=bool(event.get("isBase64Encoded")),
            merchant_id=str(merchant_id) if merchant_id else None,
            ambiguous_headers=frozenset(name for name, seen in values.items() if len(seen) > 1),
            path_id=(event.get("pathParameters") or {}).get("id"),
        )

    def header(self, name: str) -> str | None:
        """The header's value; InvalidRequest when the client sent it with several values."""
        if name.lower() in self.ambiguous_headers:
            raise InvalidRequest(f"the {name} header must be sent once")
        return self.headers.get(name.lower())


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media_type = content_type.split(";")[0].strip().lower()  # drop parameters like charset
    return media_type == JSON_CONTENT_TYPE


class _HealthCheck:
    """Runs the checks on a worker thread so a hung dependency cannot delay the answer."""

    def __init__(self, deps: ServiceDeps) -> None:
        self._deps = deps
        self.config_read = False
        self.reasons: list[HealthReason] = []

    def run(self) -> list[HealthReason]:
        try:
            # Urgent: a cold container must not hold a health probe for its spread delay.
            mode = self._deps.mode.get(urgent=True)
        except ConfigUnavailable:
            return [HealthReason.CONFIG_UNAVAILABLE]
        self.config_read = True
        if mode is Mode.FENCED:
            self.reasons.append(HealthReason.FENCED)
        try:
            PaymentStore(self._deps.dynamodb, self._deps.config.table_name).probe()
        except TableUnavailable:
            self.reasons.append(HealthReason.TABLE_UNREACHABLE)
        return self.reasons

    def run_with_deadline(self, deadline_seconds: float) -> list[HealthReason]:
        results: queue.SimpleQueue[list[HealthReason]] = queue.SimpleQueue()

        def work() -> None:
            try:
                results.put(self.run())
            except Exception:  # an injected or unforeseen fault still yields an answer
                logger.exception("health check failed", region=self._deps.region)
                results.put([HealthReason.TABLE_UNREACHABLE])

        threading.Thread(target=work, name="health-check", daemon=True).start()
        try:
            return results.get(timeout=deadline_seconds)
        except queue.Empty:
            if not self.config_read:
                return [HealthReason.CONFIG_UNAVAILABLE]
            return [*self.reasons, HealthReason.TABLE_UNREACHABLE]


def build_api_handler(
    deps: ServiceDeps, health_deadline_seconds: float = HEALTH_DEADLINE_SECONDS
) -> Handler:
    """The API Gateway (REST, Lambda proxy) handler for one region.

    Safe to call from many threads at once: each call works only on its own event.
    """
    id_key = deps.require_id_key()  # no handler without it: every id is keyed

    def respond(status: int, body: dict[str, Any], **headers: str) -> dict[str, Any]:
        return {
            "statusCode": status,
            "headers": {
                "Content-Type": JSON_CONTENT_TYPE,
                REGION_HEADER: deps.region,
                **headers,
            },
            "body": json.dumps(body, separators=(",", ":")),
            "isBase64Encoded": False,
        }

    def error(status: int, code: str, message: str) -> dict[str, Any]:
        extra = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else {}
        return respond(status, {"code": code, "message": message}, **extra)

    def unavailable(message: str) -> dict[str, Any]:
        count("PaymentsUnavailable")
        return error(503, "unavailable", message)

    def create_payment(event: ProxyRequest, merchant_id: str) -> dict[str, Any]:
        key = validate_idempotency_key(event.header(IDEMPOTENCY_HEADER))
        if not _is_json(event.header("Content-Type")):
            raise InvalidRequest(f"Content-Type must be {JSON_CONTENT_TYPE}")
        request = parse_payment_request(
            event.body, event.is_base64_encoded, merchant_id=merchant_id
        )
        payment = new_payment(request, key, deps.region, deps.clock(), id_key)
        log_context = {
            "region": deps.region,
            "payment_id": payment.id,
            "key": id_key.log_digest(key),
        }
        config = deps.config
        try:
            mode = deps.mode.get()
        except ConfigUnavailable:
            return unavailable("configuration unavailable")
        if mode is Mode.FENCED:
            # A fenced region takes no writes: clients retry and DNS sends them to the peer.
            return unavailable("region fenced")
        try:
            outcome, stored = PaymentStore(deps.dynamodb, config.table_name).put_once(payment)
        except TableUnavailable:
            # Queued in the peer region, so the 202 survives the loss of this one: the peer's
            # retry worker applies it to its own replica, which is healthy when this one is not.
            logger.warning(
                "table write failed, queueing payment in the peer region",
                extra=log_context,
                exc_info=True,
            )
            try:
                retry_message.send(
                    deps.peer_queue_client(config),
                    config.peer_retry_queue_url,
                    retry_message.encode(payment),
                )
            except retry_message.QueueUnavailable:
                logger.error("peer retry queue unavailable", extra=log_context, exc_info=True)
                return unavailable("payment not stored; retry with the same Idempotency-Key")
            count("PaymentsQueued")
            return respond(202, payment.with_status(PaymentStatus.PENDING).to_api())
        if outcome is PutOutcome.CONFLICT:
            logger.info("idempotency key reused with a different request", extra=log_context)
            count("IdempotencyConflicts")
            return error(
                422,
                "idempotency_conflict",
                "this Idempotency-Key was already used with a different request",
            )
        created = outcome is PutOutcome.CREATED
        count("PaymentsCreated" if created else "PaymentsReplayed")
        location = PAYMENT_PATH.replace("{id}", stored.id)
        return respond(201 if created else 200, stored.to_api(), Location=location)

    def get_payment(raw_id: str, merchant_id: str) -> dict[str, Any]:
        payment_id = validate_payment_id(raw_id)
        try:
            payment = PaymentStore(deps.dynamodb, deps.config.table_name).get(payment_id)
        except TableUnavailable:
            logger.warning("payment read failed", region=deps.region, exc_info=True)
            return unavailable("payment store unavailable")
        # Another merchant's payment answers exactly like a missing one: ids do not leak.
        if payment is None or payment.request.merchant_id != merchant_id:
            return error(404, "not_found", "no stored payment has this id")
        return respond(200, payment.to_api())

    def health() -> dict[str, Any]:
        reasons = _HealthCheck(deps).run_with_deadline(health_deadline_seconds)
        if reasons:
            logger.warning("region unhealthy", region=deps.region, reasons=reasons)
        status = "unhealthy" if reasons else "ok"
        body = {"status": status, "region": deps.region, "reasons": [r.value for r in reasons]}
        return respond(503 if reasons else 200, body)

    def route(event: ProxyRequest) -> dict[str, Any]:
        if event.method == "GET" and event.path == HEALTH_PATH:
            return health()
        payment_match = PAYMENT_ROUTE.fullmatch(event.path)
        is_payment_route = (event.method == "POST" and event.path == PAYMENTS_PATH) or (
            event.method == "GET" and payment_match is not None
        )
        if not is_payment_route:
            return error(404, "not_found", "no such resource")
        if event.merchant_id is None:
            # API Gateway's authorizer stands in front of every payment route; an event
            # without its verdict means a misconfigured gateway, so fail closed.
            count("RequestsUnauthenticated")
            return error(401, "unauthorized", "a merchant API key is required")
        if payment_match is not None:
            return get_payment(event.path_id or payment_match["id"], event.merchant_id)
        return create_payment(event, event.merchant_id)

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            return route(ProxyRequest.from_event(event))
        except InvalidRequest as exception:
            count("RequestsRejected")
            return error(400, "bad_request", str(exception))

    return handle


@cache
def _handler_from_environment() -> Handler:
    """Built on the first invocation of a cold start, then reused."""
    # No SQS client of its own region: the API queues on the peer's (deps.peer_queue_client).
    return build_api_handler(
        ServiceDeps.from_environment(services=("dynamodb", "ssm"), id_key=True)
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point."""
    return _handler_from_environment()(event, context)
