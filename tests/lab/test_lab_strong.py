"""The running lab in strong mode: a write acknowledged in one region is readable in the other."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from payments_dr.contract import ConsistencyMode
from payments_dr.lab.lab import Lab

from .helpers import (
    PRIMARY,
    SECONDARY,
    bearer,
    enrol,
    lab_settings,
    new_idempotency_key,
    post_payment,
    request,
)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(lab_settings(ConsistencyMode.STRONG, time_scale=0.02)) as running:
        yield running


@pytest.fixture(scope="module")
def api_key(lab: Lab) -> str:
    return enrol(lab)


def new_key() -> str:
    return new_idempotency_key("strong")


def test_an_acknowledged_write_is_readable_in_the_peer_at_once(lab: Lab, api_key: str) -> None:
    status, _, body = post_payment(lab.region_url(PRIMARY), new_key(), api_key)
    assert status == 201
    # No waiting for replication: the write reached the peer before it was acknowledged.
    status, _, read = request(
        lab.region_url(SECONDARY), "GET", f"/v1/payments/{body['id']}", headers=bearer(api_key)
    )
    assert status == 200 and read == body


def test_a_retry_in_the_other_region_replays_instead_of_creating(lab: Lab, api_key: str) -> None:
    key = new_key()
    first = post_payment(lab.region_url(PRIMARY), key, api_key)
    second = post_payment(lab.region_url(SECONDARY), key, api_key)
    assert (first[0], second[0]) == (201, 200)
    assert second[2] == first[2]
    assert lab.settle(60)
    created = lab.ledger.created()[first[2]["id"]]
    assert [write.region for write in created] == [PRIMARY]


def test_a_replica_that_was_down_catches_up_before_it_serves_again(lab: Lab, api_key: str) -> None:
    lab.set_table_outage(PRIMARY, True)
    try:
        status, _, body = post_payment(lab.region_url(SECONDARY), new_key(), api_key)
        assert status == 201
        assert body["id"] not in lab.table_items(PRIMARY)
    finally:
        lab.set_table_outage(PRIMARY, False)
    # Caught up as part of coming back, not eventually.
    assert body["id"] in lab.table_items(PRIMARY)
    status, _, read = request(
        lab.region_url(PRIMARY), "GET", f"/v1/payments/{body['id']}", headers=bearer(api_key)
    )
    assert status == 200 and read == body


def test_an_isolated_replica_acknowledges_only_through_the_peer_queue(
    lab: Lab, api_key: str
) -> None:
    # MRSC: a replica cut off from the region set serves neither writes nor strongly
    # consistent reads. The API's write fails; the payment is queued in the peer region and
    # applied there (202), and the isolated region reports itself unhealthy.
    lab.stall_replication(PRIMARY, True)
    try:
        status, _, body = post_payment(lab.region_url(PRIMARY), new_key(), api_key)
        assert status == 202 and body["status"] == "pending"
        health, _, report = request(lab.region_url(PRIMARY), "GET", "/v1/health")
        assert health == 503 and "table unreachable" in report["reasons"]
        assert lab.settle(60)
        assert body["id"] in lab.table_items(SECONDARY)
        assert body["id"] not in lab.table_items(PRIMARY)
        assert [w.region for w in lab.ledger.created()[body["id"]]] == [SECONDARY]
    finally:
        lab.stall_replication(PRIMARY, False)
    # Back in the region set: caught up before it serves again.
    assert body["id"] in lab.table_items(PRIMARY)
    assert request(lab.region_url(PRIMARY), "GET", "/v1/health")[0] == 200
