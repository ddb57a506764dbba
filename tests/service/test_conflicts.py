"""Conflict records: an acknowledged version that replication overwrote is kept, listed, resolved.

Replication itself is played by an unconditional PutItem, which is how a global table's
last-writer-wins write lands in the region whose own version loses.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from payments_dr import contract
from payments_dr.contract import ConflictStatus
from payments_dr.service.api import build_api_handler
from payments_dr.service.conflicts import (
    ConflictNotFound,
    ConflictStore,
    accepted_twice,
    overwritten_version,
)
from payments_dr.service.log_archiver import build_log_archiver
from payments_dr.service.model import new_payment, parse_payment_request
from payments_dr.service.store import to_item

from .conftest import ID_KEY, MERCHANT, VALID_REQUEST, Region, post_event
from .test_log_archiver import stream_event

KEY = "key-0001-abcd"
PEER = contract.DEFAULT_SECONDARY_REGION


def accept_here(region: Region) -> dict[str, Any]:
    response = build_api_handler(region.deps)(post_event(VALID_REQUEST, key=KEY), None)
    assert response["statusCode"] == 201
    return dict(json.loads(response["body"]))


def replicate_from_peer(region: Region, body: dict[str, Any]) -> None:
    """The peer accepted `body` under the same key; its write wins here."""
    request = parse_payment_request(json.dumps(body), merchant_id=MERCHANT)
    peer_version = new_payment(request, KEY, PEER, region.clock() + 0.5, ID_KEY)
    region.dynamodb.put_item(TableName=region.table_name, Item=to_item(peer_version))


def conflicts(region: Region, status: ConflictStatus = ConflictStatus.OPEN) -> list[Any]:
    return ConflictStore(region.dynamodb, region.table_name).list(status)


def test_an_overwritten_acknowledged_version_is_recorded_once(region: Region) -> None:
    acknowledged = accept_here(region)
    replicate_from_peer(region, {**VALID_REQUEST, "amount": 5000})
    archiver = build_log_archiver(region.deps)
    event = stream_event(region)
    archiver(event, None)
    archiver(event, None)  # Lambda redelivers a batch: the record is not written twice

    (conflict,) = conflicts(region)
    assert conflict.payment_id == acknowledged["id"]
    assert conflict.acknowledged_by == region.name and conflict.detected_in == region.name
    summary = conflict.summary()
    assert summary["overwritten"]["amount"] == str(VALID_REQUEST["amount"])
    assert summary["stored"]["amount"] == "5000" and summary["stored"]["region"] == PEER
    assert "payment_token" not in json.dumps(summary)
    # The record is an item of the replicated table, keyed apart from every payment.
    keys = {item[contract.TABLE_HASH_KEY]["S"] for item in region.items()}
    assert conflict.key in keys and conflict.key.startswith(contract.CONFLICT_ITEM_PREFIX)


def test_the_same_request_accepted_in_both_regions_is_no_conflict(region: Region) -> None:
    accept_here(region)
    replicate_from_peer(region, VALID_REQUEST)
    records = stream_event(region)["Records"]
    modify = [record for record in records if record["eventName"] == "MODIFY"]
    assert len(modify) == 1 and accepted_twice(modify[0])
    assert overwritten_version(modify[0], "2026-01-01T00:00:00.000Z") is None
    build_log_archiver(region.deps)({"Records": records}, None)
    assert conflicts(region) == []


def test_inserts_and_credential_records_are_never_conflicts(region: Region) -> None:
    accept_here(region)
    (insert,) = stream_event(region)["Records"]
    assert overwritten_version(insert, "2026-01-01T00:00:00.000Z") is None
    credential_change = {
        "eventName": "MODIFY",
        "awsRegion": region.name,
        "dynamodb": {
            "ApproximateCreationDateTime": 1_764_100_000.0,
            "OldImage": {
                contract.TABLE_HASH_KEY: {"S": "merchant#acme"},
                "fingerprint": {"S": "a"},
            },
            "NewImage": {
                contract.TABLE_HASH_KEY: {"S": "merchant#acme"},
                "fingerprint": {"S": "b"},
            },
        },
    }
    assert overwritten_version(credential_change, "2026-01-01T00:00:00.000Z") is None


def test_an_operator_resolves_a_conflict_once(region: Region) -> None:
    accept_here(region)
    replicate_from_peer(region, {**VALID_REQUEST, "amount": 5000})
    build_log_archiver(region.deps)(stream_event(region), None)
    store = ConflictStore(region.dynamodb, region.table_name)
    (conflict,) = store.list()

    resolved = store.resolve(conflict.key, "merchant refunded the superseded order")
    assert resolved.status is ConflictStatus.RESOLVED
    assert resolved.resolution == "merchant refunded the superseded order"
    assert conflicts(region) == []
    assert [c.key for c in conflicts(region, ConflictStatus.RESOLVED)] == [conflict.key]
    with pytest.raises(ConflictNotFound):
        store.resolve(conflict.key, "again")
    with pytest.raises(ConflictNotFound):
        store.resolve(f"{contract.CONFLICT_ITEM_PREFIX}pay_unknown#x", "no such record")
