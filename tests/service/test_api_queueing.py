"""A payment the table does not confirm: queued in the peer region (202), applied once there.

The queue is the peer region's, so an acknowledged 202 survives the loss of the region that
answered it: the peer's retry worker applies it to the peer's replica.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

from payments_dr import contract
from payments_dr.service import retry_message
from payments_dr.service.api import build_api_handler
from payments_dr.service.retry_worker import build_retry_worker
from payments_dr.service.store import Attr

from .conftest import (
    ID_KEY,
    VALID_REQUEST,
    FaultyClient,
    Region,
    client_error,
    post_event,
    run_retry_worker_once,
)

TABLE_DOWN = client_error("InternalServerError", "PutItem", status=500)


def queue_depth(region: Region) -> int:
    """Messages waiting in `region`'s retry queue."""
    return region.queue_depth(region.queue_url)


@pytest.mark.parametrize(
    "fault",
    [
        client_error("ProvisionedThroughputExceededException", "PutItem"),
        TABLE_DOWN,
        client_error("ResourceNotFoundException", "PutItem"),
        ConnectTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
    ],
    ids=["throttled", "server-error", "table-missing", "timeout"],
)
def test_table_down_queues_the_payment_in_the_peer_which_applies_it_once(
    region: Region, peer: Region, fault: Exception
) -> None:
    region.deps.dynamodb = FaultyClient(region.dynamodb, {"put_item": fault})
    response = build_api_handler(region.deps)(post_event(VALID_REQUEST), None)
    assert response["statusCode"] == 202
    pending = json.loads(response["body"])
    assert pending["status"] == "pending" and pending["region"] == region.name
    assert region.items() == [] and queue_depth(region) == 0
    assert queue_depth(peer) == 1

    # The peer's worker applies it to the peer's replica, whatever becomes of `region`.
    assert run_retry_worker_once(peer, build_retry_worker(peer.deps)) == {"batchItemFailures": []}
    (item,) = peer.items()
    assert item[Attr.PK.value] == {"S": pending["id"]}
    assert item[Attr.CREATED_AT.value] == {"S": pending["created_at"]}
    assert item[Attr.REGION.value] == {"S": region.name}  # accepted there
    assert queue_depth(peer) == 0

    # The client's retry through the peer is a replay of the same payment, not a new one.
    replay = build_api_handler(peer.deps)(post_event(VALID_REQUEST), None)
    assert replay["statusCode"] == 200
    assert len(peer.items()) == 1


class LostResponseClient(FaultyClient):
    """The write lands, then the response is lost: the caller sees a timeout."""

    def __getattr__(self, name: str) -> Any:
        if name == "put_item":

            def put_then_time_out(**kwargs: Any) -> Any:
                self._client.put_item(**kwargs)
                raise ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")

            return put_then_time_out
        return getattr(self._client, name)


def test_a_write_that_landed_but_timed_out_is_one_payment(region: Region, peer: Region) -> None:
    region.deps.dynamodb = LostResponseClient(region.dynamodb, {})
    assert build_api_handler(region.deps)(post_event(VALID_REQUEST), None)["statusCode"] == 202
    (stored,) = region.items()
    # Replication brings the local write to the peer; the queued copy then replays it.
    peer.dynamodb.put_item(TableName=peer.table_name, Item=stored)
    assert run_retry_worker_once(peer, build_retry_worker(peer.deps)) == {"batchItemFailures": []}
    assert peer.items() == [stored] and queue_depth(peer) == 0


def test_table_and_peer_queue_down_is_503_and_writes_nothing(region: Region, peer: Region) -> None:
    region.deps.dynamodb = FaultyClient(region.dynamodb, {"put_item": TABLE_DOWN})
    region.deps.peer_sqs = FaultyClient(
        region.peer_sqs,
        {"send_message": client_error("ServiceUnavailable", "SendMessage", 503)},
    )
    response = build_api_handler(region.deps)(post_event(VALID_REQUEST), None)
    assert response["statusCode"] == 503
    assert dict(response["headers"])["Retry-After"] == str(contract.RETRY_AFTER_SECONDS)
    assert region.items() == [] and queue_depth(region) == 0 and queue_depth(peer) == 0


def test_the_local_queue_is_never_the_fallback(region: Region, peer: Region) -> None:
    # A message left in this region's queue would be lost with the region: refuse instead.
    region.deps.dynamodb = FaultyClient(region.dynamodb, {"put_item": TABLE_DOWN})
    region.deps.peer_sqs = FaultyClient(
        region.peer_sqs, {"send_message": ConnectTimeoutError(endpoint_url="https://sqs")}
    )
    assert build_api_handler(region.deps)(post_event(VALID_REQUEST), None)["statusCode"] == 503
    assert queue_depth(region) == 0


def test_queued_message_carries_the_full_validated_request(region: Region, peer: Region) -> None:
    region.deps.dynamodb = FaultyClient(region.dynamodb, {"put_item": TABLE_DOWN})
    build_api_handler(region.deps)(post_event(VALID_REQUEST), None)
    (message,) = peer.sqs.receive_message(QueueUrl=peer.queue_url)["Messages"]
    payment = retry_message.decode(message["Body"], ID_KEY)
    assert payment.request.amount == VALID_REQUEST["amount"]
    assert payment.request.reference == VALID_REQUEST["reference"]
    assert payment.fingerprint == ID_KEY.fingerprint(payment.request)
