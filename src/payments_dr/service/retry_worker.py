"""Retry worker: applies payments the API queued when the table did not confirm a write.

Each message is applied with the same conditional write as the API, so applying it twice,
or after the API's own write did land, changes nothing. Failed messages are reported as
partial batch failures: only they return to the queue, and after the queue's
maxReceiveCount they move to the DLQ.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from payments_dr.service import retry_message
from payments_dr.service.deps import Handler, ServiceDeps
from payments_dr.service.observability import count, logger, metrics, tracer
from payments_dr.service.store import PaymentStore, PutOutcome

# Message attribute set on a conflicting payment moved to the DLQ.
CONFLICT_ATTRIBUTE = "conflict"


def build_retry_worker(deps: ServiceDeps) -> Handler:
    """The SQS event source handler for one region's retry queue."""
    id_key = deps.require_id_key()  # to check each message's fingerprint

    def apply(record: SQSRecord) -> None:
        config = deps.config
        try:
            payment = retry_message.decode(record.body, id_key)
        except retry_message.PoisonMessage:
            logger.error("poison retry message", region=deps.region, message_id=record.message_id)
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
                deps.sqs,
                config.dlq_url,
                record.body,
                **{CONFLICT_ATTRIBUTE: f"stored fingerprint {stored.fingerprint}"},
            )
            return
        applied = outcome is PutOutcome.CREATED
        logger.info("retried payment applied" if applied else "already applied", extra=log_context)
        count("RetriesApplied" if applied else "RetriesAlreadyApplied")

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if not event.get("Records"):
            return {"batchItemFailures": []}  # Powertools rejects an empty batch as malformed
        # A processor per batch: it holds the batch's results, and calls may be concurrent.
        # Every failed record is reported, even when all fail, instead of raising: the
        # outcome for the queue is the same and callers get one answer shape.
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        response = process_partial_response(
            event=event, record_handler=apply, processor=processor, context=context
        )
        return dict(response)

    return handle


@cache
def _handler_from_environment() -> Handler:
    """Built on the first invocation of a cold start, then reused."""
    return build_retry_worker(
        ServiceDeps.from_environment(services=("dynamodb", "sqs"), id_key=True)
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point."""
    return _handler_from_environment()(event, context)
