"""The retry worker against moto: exactly-once application, poison messages, conflicts."""

from __future__ import annotations

import dataclasses
import json

from payments_dr import contract
from payments_dr.service import retry_message
from payments_dr.service.api import build_api_handler
from payments_dr.service.model import new_payment, parse_payment_request
from payments_dr.service.retry_worker import CONFLICT_ATTRIBUTE, build_retry_worker
from payments_dr.service.store import Attr

from .conftest import (
    ID_KEY,
    MERCHANT,
    VALID_REQUEST,
    FaultyClient,
    Region,
    client_error,
    post_event,
    run_retry_worker_once,
)

KEY = "key-0001-abcd"


def queue_payment(region: Region, request: dict[str, object] = VALID_REQUEST) -> str:
    """Queue a payment as the API does when the table fails; returns the message body."""
    payment = new_payment(
        parse_payment_request(json.dumps(request), merchant_id=MERCHANT),
        KEY,
        region.name,
        1.0,
        ID_KEY,
    )
    body = retry_message.encode(payment)
    region.sqs.send_message(QueueUrl=region.queue_url, MessageBody=body)
    return body


def test_redelivered_message_is_applied_once(region: Region) -> None:
    body = queue_payment(region)
    region.sqs.send_message(QueueUrl=region.queue_url, MessageBody=body)  # a redelivery
    worker = build_retry_worker(region.deps)
    assert run_retry_worker_once(region, worker) == {"batchItemFailures": []}
    assert len(region.items()) == 1
    assert region.queue_depth(region.queue_url) == 0


def test_poison_message_reaches_the_dlq_after_the_configured_receives(region: Region) -> None:
    region.sqs.send_message(QueueUrl=region.queue_url, MessageBody='{"version": 1}')
    worker = build_retry_worker(region.deps)
    failures = 0
    for _ in range(contract.RETRY_MAX_RECEIVE_COUNT + 1):
        failures += len(run_retry_worker_once(region, worker)["batchItemFailures"])
    assert failures == contract.RETRY_MAX_RECEIVE_COUNT
    assert region.queue_depth(region.queue_url) == 0
    assert region.queue_depth(region.dlq_url) == 1
    assert region.items() == []


def test_only_the_failing_record_of_a_batch_returns(region: Region) -> None:
    queue_payment(region)
    region.sqs.send_message(QueueUrl=region.queue_url, MessageBody="not json")
    response = run_retry_worker_once(region, build_retry_worker(region.deps))
    assert len(response["batchItemFailures"]) == 1
    assert len(region.items()) == 1
    assert region.queue_depth(region.queue_url) == 1  # the poison message, visible again


def test_tampered_message_is_poison(region: Region) -> None:
    body = queue_payment(region).replace('"amount":1999', '"amount":1')
    region.sqs.purge_queue(QueueUrl=region.queue_url)
    region.sqs.send_message(QueueUrl=region.queue_url, MessageBody=body)
    response = run_retry_worker_once(region, build_retry_worker(region.deps))
    assert len(response["batchItemFailures"]) == 1
    assert region.items() == []


def test_table_failure_returns_the_message_for_a_later_try(region: Region) -> None:
    queue_payment(region)
    failing = FaultyClient(
        region.dynamodb, {"put_item": client_error("InternalServerError", "PutItem", 500)}
    )
    worker = build_retry_worker(dataclasses.replace(region.deps, dynamodb=failing))
    assert len(run_retry_worker_once(region, worker)["batchItemFailures"]) == 1
    assert region.queue_depth(region.queue_url) == 1
    run_retry_worker_once(region, build_retry_worker(region.deps))
    assert len(region.items()) == 1


def test_conflicting_payment_is_parked_in_the_dlq_and_the_stored_one_kept(
    region: Region,
) -> None:
    queue_payment(region)  # acknowledged 202 while the table was down
    # The client then reused the key with another amount, and that write reached the table.
    api = build_api_handler(region.deps)
    assert api(post_event({**VALID_REQUEST, "amount": 5}, key=KEY), None)["statusCode"] == 201
    response = run_retry_worker_once(region, build_retry_worker(region.deps))
    assert response == {"batchItemFailures": []}
    (item,) = region.items()
    assert item[Attr.AMOUNT.value] == {"N": "5"}
    (parked,) = region.sqs.receive_message(QueueUrl=region.dlq_url, MessageAttributeNames=["All"])[
        "Messages"
    ]
    assert CONFLICT_ATTRIBUTE in parked["MessageAttributes"]
    assert retry_message.decode(parked["Body"], ID_KEY).request.amount == VALID_REQUEST["amount"]


def test_the_worker_needs_no_ssm(region: Region) -> None:
    # Its settings come from the environment: an SSM outage cannot stall queued payments.
    queue_payment(region)
    worker = build_retry_worker(dataclasses.replace(region.deps, ssm=None))
    assert run_retry_worker_once(region, worker)["batchItemFailures"] == []
    assert len(region.items()) == 1


def test_conflict_falls_back_to_the_redrive_when_the_dlq_refuses(region: Region) -> None:
    queue_payment(region)
    api = build_api_handler(region.deps)
    assert api(post_event({**VALID_REQUEST, "amount": 5}, key=KEY), None)["statusCode"] == 201
    refusing_sqs = FaultyClient(
        region.sqs, {"send_message": client_error("AccessDenied", "SendMessage", 403)}
    )
    worker = build_retry_worker(dataclasses.replace(region.deps, sqs=refusing_sqs))
    assert len(run_retry_worker_once(region, worker)["batchItemFailures"]) == 1
    assert region.queue_depth(region.queue_url) == 1  # kept; the redrive moves it after 5 tries
