"""Retry worker: applies payments the API queued when the table did not confirm a write.

Each message is applied with the same conditional write as the API, so applying it twice,
or after the API's own write did land, changes nothing. Failed messages are reported as
partial batch failures: only they return to the queue, and after the queue's
maxReceiveCount they move to the DLQ.

The batch loop is the few lines below rather than Powertools' BatchProcessor: importing that
utility loads asyncio, its async processor and the data classes of every event source at
each cold start, for a loop that needs none of them.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from payments_dr.service import retry_message
from payments_dr.service.deps import Handler, ServiceDeps
from payments_dr.service.observability import count, logger, metrics, tracer
from payments_dr.service.store import PaymentStore, PutOutcome

# Message attribute set on a conflicting payment moved to the DLQ.
CONFLICT_ATTRIBUTE = "conflict"


def build_retry_worker(deps: ServiceDeps) -> Handler:
    """The SQS event source handler for one region's retry queue."""
    id_key = deps.require_id_key()  # to check each message's fingerprint

    def apply(record: dict[str, Any]) -> None:
        config = deps.config
        try:
            payment = retry_message.decode(record["body"], id_key)
        except retry_message.PoisonMessage:
            logger.error("poison retry message", region=deps.region, message_id=record["messageId"])
            count("RetryPoisonMessages")
            raise
        log_context = {"region": deps.region, "payment_id": payment.id}
        outcome, stored = PaymentStore(deps.dynamodb, config.table_name).put_once(payment)
        if outcome is PutOutcome.CONFLICT:
            # The key was reused with a different request that reached the table first (the
            # client got 202 for this one, then a 201 for the other). Retrying can never
            # succeed, and dropping would lose an acknowledged request: park it in the DLQ,
            # whose alarm brings an operator, and finish the message here.
            logger.error("retried payment conflicts with the stored one", extra=log_context)
            count("RetryConflicts")
            retry_message.send(
                deps.client("sqs"),
                config.dlq_url,
                record["body"],
                **{CONFLICT_ATTRIBUTE: f"stored fingerprint {stored.fingerprint}"},
            )
            return
        applied = outcome is PutOutcome.CREATED
        logger.info("retried payment applied" if applied else "already applied", extra=log_context)
        count("RetriesApplied" if applied else "RetriesAlreadyApplied")

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        # Every failed record is reported, even when all fail, instead of raising: the
        # outcome for the queue is the same and callers get one answer shape.
        failures = []
        for record in event.get("Records") or []:
            try:
                apply(record)
            except Exception as error:  # any failure: the message is retried, the rest go on
                logger.warning(
                    "retry message not applied; it returns to the queue",
                    region=deps.region,
                    message_id=record["messageId"],
                    error=type(error).__name__,  # not the text: it may quote the message
                )
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    return handle


@cache
def _handler_from_environment() -> Handler:
    """Built on the first invocation of a cold start, then reused."""
    # SQS only parks conflicts in the DLQ: its client is made on the first one (deps.client).
    return build_retry_worker(ServiceDeps.from_environment(services=("dynamodb",), id_key=True))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point."""
    return _handler_from_environment()(event, context)
