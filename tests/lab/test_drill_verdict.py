"""The drill's verdict on a real lab that really loses, duplicates and splits payments.

Each test makes the service write what it writes, then breaks the outcome the way a bug
would (a lost item, a missing conflict record, a payment under two ids, strong consistency
creating a payment twice) and checks the drill fails it, by name.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator

import pytest

from payments_dr import contract
from payments_dr.contract import ConsistencyMode
from payments_dr.drill_report import DrillReport
from payments_dr.lab.client_payments import (
    Attempt,
    Category,
    ClientPayment,
    new_payment,
    with_other_body,
)
from payments_dr.lab.lab import Lab
from payments_dr.lab.verdict import verify
from payments_dr.service.model import new_payment as service_payment
from payments_dr.service.model import parse_payment_request
from payments_dr.service.store import to_item

from .helpers import PRIMARY, SECONDARY, bearer, enrol, lab_settings, report, request

_sequence = itertools.count(1)


@pytest.fixture(params=list(ConsistencyMode))
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    with Lab(lab_settings(request.param, time_scale=0.02)) as running:
        yield running


@pytest.fixture
def api_key(lab: Lab) -> str:
    return enrol(lab, "merchant-00")


def fresh(category: Category = Category.STEADY) -> ClientPayment:
    sequence = next(_sequence)
    return new_payment(random.Random(sequence), 0, sequence, category)


def send(lab: Lab, payment: ClientPayment, api_key: str, region: str) -> ClientPayment:
    status, headers, _ = request(
        lab.region_url(region),
        "POST",
        contract.PAYMENTS_PATH,
        json.loads(payment.body),
        {contract.IDEMPOTENCY_HEADER: payment.idempotency_key, **bearer(api_key)},
    )
    payment.attempts.append(Attempt(1.0, region, headers.get(contract.REGION_HEADER, ""), status))
    payment.final_status = status
    return payment


def verdict(lab: Lab, payments: list[ClientPayment]) -> DrillReport:
    assert lab.settle(60)
    checked = report(failback_seconds=None, detection_seconds=None, failover_seconds=None)
    verify(
        lab,
        checked,
        payments,
        lab.conflicts(),
        started_at=0.0,
        fault_at=0.0,
        first_fault_step_at=0.0,
        restore_at=0.0,
        lost_at=0.0,
        settled=True,
    )
    return checked


TIMING_CHECKS = ("served", "health checks")


def payment_checks(checked: DrillReport) -> list[str]:
    """The verdict's checks about payments (this lab has no fault, so timings fail anyway)."""
    return [c for c in checked.failed_checks if not any(t in c for t in TIMING_CHECKS)]


def test_payments_stored_in_both_regions_pass(lab: Lab, api_key: str) -> None:
    sent = [send(lab, fresh(), api_key, region) for region in (PRIMARY, SECONDARY)]
    assert [payment.final_status for payment in sent] == [201, 201]
    checked = verdict(lab, sent)
    assert payment_checks(checked) == [] and checked.payments_lost == 0


def test_an_acknowledged_payment_that_vanishes_is_lost(lab: Lab, api_key: str) -> None:
    sent = send(lab, fresh(), api_key, PRIMARY)
    assert lab.settle(60)
    for region in lab.regions.values():  # a bug deletes it everywhere
        region.aws.lab_dynamodb.delete_item(
            TableName=region.resources.table_name,
            Key={contract.TABLE_HASH_KEY: {"S": sent.payment_id(lab.id_key)}},
        )
    checked = verdict(lab, [sent])
    assert checked.payments_lost == 1 and not checked.passed
    assert "1 acknowledged payments were lost without a record" in checked.failed_checks


def test_one_payment_stored_under_two_ids_fails_the_drill(lab: Lab, api_key: str) -> None:
    sent = send(lab, fresh(), api_key, PRIMARY)
    again = ClientPayment(sent.merchant_id, f"{sent.idempotency_key}-again", sent.body)
    send(lab, again, api_key, SECONDARY)  # same order, second key: a second charge
    checked = verdict(lab, [sent, again])
    assert checked.payments_duplicated == 1
    assert "1 payments are stored under two ids" in checked.failed_checks


# Strong consistency answers 422 to the second version: only eventual mode splits.
@pytest.mark.parametrize("lab", [ConsistencyMode.EVENTUAL], indirect=True)
def test_an_overwritten_version_without_its_conflict_record_fails_the_drill(
    lab: Lab, api_key: str
) -> None:
    first = fresh(Category.KEY_REUSE)
    second = with_other_body(first, random.Random(0))
    lab.stall_replication(PRIMARY, True)
    try:
        send(lab, first, api_key, PRIMARY)
        send(lab, second, api_key, SECONDARY)
    finally:
        lab.stall_replication(PRIMARY, False)
    assert (first.final_status, second.final_status) == (201, 201)
    recorded = verdict(lab, [first, second])
    assert payment_checks(recorded) == [] and recorded.payments_overwritten_recorded == 1

    for region in lab.regions.values():  # detection broken: no record of the lost version
        for conflict in lab.conflicts():
            region.aws.lab_dynamodb.delete_item(
                TableName=region.resources.table_name,
                Key={contract.TABLE_HASH_KEY: {"S": conflict.key}},
            )
    silent = verdict(lab, [first, second])
    assert silent.payments_lost == 1 and not silent.passed
    assert "1 overwritten payment versions have no conflict record" in silent.failed_checks


@pytest.mark.parametrize("lab", [ConsistencyMode.STRONG], indirect=True)
def test_strong_consistency_creating_a_payment_twice_fails_the_drill(lab: Lab) -> None:
    doubled = fresh()
    request_ = parse_payment_request(doubled.body.decode(), merchant_id=doubled.merchant_id)
    for region in (PRIMARY, SECONDARY):
        # Service writes that bypass the strong replication, as a broken MRSC would allow.
        client = lab.regions[region].aws.service_client("dynamodb")
        lab.ledger.watch(client, region)
        client.put_item(
            TableName=lab.regions[region].resources.table_name,
            Item=to_item(
                service_payment(request_, doubled.idempotency_key, region, 0.0, lab.id_key)
            ),
            ConditionExpression="attribute_not_exists(pk)",
        )
    checked = verdict(lab, [])
    assert "strong consistency created a payment in two regions" in checked.failed_checks
    assert checked.payments_duplicated == 1
