"""The running lab in eventual mode: replication, duplicates, faults, the retry queue."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest

from payments_dr import contract
from payments_dr.contract import ConsistencyMode
from payments_dr.lab.lab import Lab

from .helpers import PRIMARY, SECONDARY, lab_settings, post_payment, request


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(lab_settings(ConsistencyMode.EVENTUAL, time_scale=0.02)) as running:
        yield running


def new_key() -> str:
    return f"test-{uuid.uuid4().hex[:20]}"


def stream_records_for(lab: Lab, region: str, payment_id: str) -> int:
    region_lab = lab.regions[region]
    streams = region_lab.aws.lab_streams
    arn = region_lab.resources.stream_arn
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    return sum(
        1 for r in records if r["dynamodb"]["Keys"][contract.TABLE_HASH_KEY]["S"] == payment_id
    )


def test_a_payment_written_in_one_region_reaches_the_other_once(lab: Lab) -> None:
    status, headers, body = post_payment(lab.region_url(PRIMARY), new_key())
    assert status == 201 and headers[contract.REGION_HEADER] == PRIMARY
    assert lab.settle(20)
    primary_items, secondary_items = lab.table_items(PRIMARY), lab.table_items(SECONDARY)
    assert secondary_items[body["id"]] == primary_items[body["id"]]
    # Applied once in the secondary, and the replicated write did not come back.
    assert stream_records_for(lab, PRIMARY, body["id"]) == 1
    assert stream_records_for(lab, SECONDARY, body["id"]) == 1


def test_a_retry_in_the_other_region_inside_the_window_is_reported_as_a_duplicate(
    lab: Lab,
) -> None:
    key = new_key()
    lab.replicator.stall()
    try:
        first = post_payment(lab.region_url(PRIMARY), key)
        second = post_payment(lab.region_url(SECONDARY), key)
    finally:
        lab.replicator.resume()
    assert first[0] == 201 and second[0] == 201  # both regions created it: applied twice
    assert lab.settle(20)
    duplicates = [d for d in lab.replicator.duplicates if d.payment_id == first[2]["id"]]
    assert len(duplicates) == 1
    duplicate = duplicates[0]
    assert (duplicate.first_region, duplicate.second_region) == (PRIMARY, SECONDARY)
    assert duplicate.first_written_at <= duplicate.second_written_at < duplicate.replicated_at
    # Last writer wins everywhere: both regions keep the secondary's later write.
    primary_item = lab.table_items(PRIMARY)[first[2]["id"]]
    assert primary_item == lab.table_items(SECONDARY)[first[2]["id"]]
    assert primary_item["region"]["S"] == SECONDARY


def test_a_replay_in_the_other_region_after_replication_is_not_a_duplicate(lab: Lab) -> None:
    key = new_key()
    status, _, body = post_payment(lab.region_url(PRIMARY), key)
    assert status == 201
    assert lab.settle(20)
    status, _, replay = post_payment(lab.region_url(SECONDARY), key)
    assert status == 200 and replay == body
    assert lab.settle(20)
    assert body["id"] not in {d.payment_id for d in lab.replicator.duplicates}


def test_writes_during_a_peer_outage_replicate_once_it_is_back(lab: Lab) -> None:
    lab.set_region_outage(SECONDARY, True)
    try:
        status, _, body = post_payment(lab.region_url(PRIMARY), new_key())
        assert status == 201
        time.sleep(0.3)  # many replication lags
        assert body["id"] not in lab.table_items(SECONDARY)
    finally:
        lab.set_region_outage(SECONDARY, False)
    assert lab.settle(20)
    assert body["id"] in lab.table_items(SECONDARY)


def test_an_unreachable_region_drops_connections(lab: Lab) -> None:
    lab.set_region_outage(SECONDARY, True)
    try:
        with pytest.raises(OSError):
            request(lab.region_url(SECONDARY), "GET", contract.HEALTH_PATH)
    finally:
        lab.set_region_outage(SECONDARY, False)
    assert request(lab.region_url(SECONDARY), "GET", contract.HEALTH_PATH)[0] == 200


def test_table_outage_queues_the_payment_and_the_retry_worker_applies_it(lab: Lab) -> None:
    lab.set_table_outage(PRIMARY, True)
    try:
        status, _, body = post_payment(lab.region_url(PRIMARY), new_key())
        health_status, _, health = request(lab.region_url(PRIMARY), "GET", contract.HEALTH_PATH)
    finally:
        lab.set_table_outage(PRIMARY, False)
    assert status == 202 and body["status"] == "pending"
    assert health_status == 503 and "table unreachable" in health["reasons"]
    assert lab.settle(30)
    assert body["id"] in lab.table_items(PRIMARY)
    assert body["id"] in lab.table_items(SECONDARY)


def test_a_poison_message_ends_in_the_dlq_after_max_receives(lab: Lab) -> None:
    region = lab.regions[PRIMARY]
    poison = json.dumps({"version": 1, "id": "not-a-payment"})
    region.aws.lab_sqs.send_message(QueueUrl=region.resources.retry_queue_url, MessageBody=poison)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and poison not in lab.dlq_messages(PRIMARY):
        region.retry_poller.release_all()  # skip the (simulated) visibility timeouts
        time.sleep(0.05)
    assert poison in lab.dlq_messages(PRIMARY)
    assert region.retry_poller.invocations >= contract.RETRY_MAX_RECEIVE_COUNT


def test_the_log_archiver_archives_both_regions_streams(lab: Lab) -> None:
    post_payment(lab.region_url(PRIMARY), new_key())
    assert lab.settle(20)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(
        lab.archived_object_count(region) for region in (PRIMARY, SECONDARY)
    ):
        time.sleep(0.05)
    assert lab.archived_object_count(PRIMARY) > 0
    assert lab.archived_object_count(SECONDARY) > 0
