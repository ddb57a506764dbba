"""The drill's payment accounting as pure rules: each outcome, and what it takes to miss one."""

from __future__ import annotations

import json
import random

from payments_dr.lab.accounting import account, regions_holding
from payments_dr.lab.client_payments import (
    Attempt,
    Category,
    ClientPayment,
    new_payment,
    with_other_body,
)
from payments_dr.lab.ledger import Write, WriteOutcome
from payments_dr.service.conflicts import Conflict
from payments_dr.service.model import new_payment as service_payment
from payments_dr.service.model import parse_payment_request
from payments_dr.service.store import to_item

from .helpers import ID_KEY, PRIMARY, SECONDARY


def item(payment: ClientPayment, region: str = PRIMARY) -> dict[str, dict[str, str]]:
    """The item the service stores for `payment`, accepted in `region`."""
    request = parse_payment_request(payment.body.decode(), merchant_id=payment.merchant_id)
    return to_item(service_payment(request, payment.idempotency_key, region, 0.0, ID_KEY))


def acknowledged(payment: ClientPayment, region: str, at: float = 5.0) -> ClientPayment:
    payment.attempts.append(Attempt(at, region, region, 201))
    payment.final_status = 201
    return payment


def created(payment: ClientPayment, *regions: str) -> dict[str, list[Write]]:
    return {
        payment.payment_id(ID_KEY): [
            Write(
                1.0,
                region,
                payment.payment_id(ID_KEY),
                payment.fingerprint(ID_KEY),
                WriteOutcome.CREATED,
            )
            for region in regions
        ]
    }


def payment(seed: int, category: Category = Category.STEADY) -> ClientPayment:
    return new_payment(random.Random(seed), client=seed, sequence=1, category=category)


def test_a_payment_stored_as_sent_is_held_in_each_region_that_has_it() -> None:
    sent = payment(1)
    tables = {PRIMARY: {sent.payment_id(ID_KEY): item(sent)}, SECONDARY: {}}
    assert regions_holding(sent, tables, ID_KEY) == {PRIMARY}


def test_an_item_under_the_id_with_another_request_counts_as_missing() -> None:
    sent = payment(2)
    other = with_other_body(sent, random.Random(0))
    tables = {
        PRIMARY: {sent.payment_id(ID_KEY): item(other)},
        SECONDARY: {sent.payment_id(ID_KEY): item(sent)},
    }
    assert regions_holding(sent, tables, ID_KEY) == {SECONDARY}


def test_stored_everywhere_is_stored_and_missing_in_one_region_is_partial() -> None:
    whole, half = acknowledged(payment(3), PRIMARY), acknowledged(payment(4), PRIMARY)
    tables = {
        PRIMARY: {whole.payment_id(ID_KEY): item(whole), half.payment_id(ID_KEY): item(half)},
        SECONDARY: {whole.payment_id(ID_KEY): item(whole)},
    }
    result = account([whole, half], {}, tables, [], ID_KEY)
    assert (result.acknowledged, result.stored, result.lost) == (2, 2, [])
    assert result.partial == [half]


def test_an_acknowledged_payment_in_no_table_and_no_record_is_lost() -> None:
    gone = acknowledged(payment(5), PRIMARY)
    result = account([gone], created(gone, PRIMARY), {PRIMARY: {}, SECONDARY: {}}, [], ID_KEY)
    assert result.lost == [gone] and result.lost_with_region == []


def test_a_version_replaced_but_kept_in_a_conflict_record_is_not_lost() -> None:
    first = acknowledged(payment(6, Category.KEY_REUSE), PRIMARY)
    second = acknowledged(with_other_body(first, random.Random(1)), SECONDARY)
    stored = {first.payment_id(ID_KEY): item(second, SECONDARY)}
    writes = {
        first.payment_id(ID_KEY): [
            Write(
                1.0,
                PRIMARY,
                first.payment_id(ID_KEY),
                first.fingerprint(ID_KEY),
                WriteOutcome.CREATED,
            ),
            Write(
                1.2,
                SECONDARY,
                first.payment_id(ID_KEY),
                second.fingerprint(ID_KEY),
                WriteOutcome.CREATED,
            ),
        ]
    }
    record = Conflict(
        payment_id=first.payment_id(ID_KEY),
        merchant_id=first.merchant_id,
        acknowledged_by=PRIMARY,
        overwritten=item(first),
        stored=item(second, SECONDARY),
        overwritten_at="2026-01-01T00:00:02.000Z",
        detected_in=PRIMARY,
        detected_at="2026-01-01T00:00:02.500Z",
    )
    tables = {PRIMARY: stored, SECONDARY: dict(stored)}

    recorded = account([first, second], writes, tables, [record], ID_KEY)
    assert recorded.overwritten_recorded == 1 and recorded.lost == []
    assert (
        recorded.two_versions == [first.payment_id(ID_KEY)] and recorded.unrecorded_versions == []
    )
    assert recorded.by_category["key-reuse"]["overwritten-recorded"] == 1

    silent = account([first, second], writes, tables, [], ID_KEY)
    assert silent.lost == [first] and silent.unrecorded_versions == [first.payment_id(ID_KEY)]


def test_the_same_request_created_in_both_regions_is_accepted_twice_and_stored_once() -> None:
    retried = acknowledged(payment(7, Category.CROSS_REGION_RETRY), SECONDARY)
    tables = {PRIMARY: {retried.payment_id(ID_KEY): item(retried)}, SECONDARY: {}}
    tables[SECONDARY] = dict(tables[PRIMARY])
    result = account([retried], created(retried, PRIMARY, SECONDARY), tables, [], ID_KEY)
    assert result.accepted_twice == [retried.payment_id(ID_KEY)]
    assert result.two_versions == [] and result.stored == 1


def test_one_client_payment_under_two_ids_is_stored_twice() -> None:
    sent = acknowledged(payment(8), PRIMARY)
    copy = ClientPayment(sent.merchant_id, f"{sent.idempotency_key}-x", sent.body)
    tables = {PRIMARY: {sent.payment_id(ID_KEY): item(sent), copy.payment_id(ID_KEY): item(copy)}}
    assert account([sent], {}, tables, [], ID_KEY).stored_twice == [
        json.loads(sent.body)["reference"]
    ]


def test_what_a_lost_region_acknowledged_is_lost_with_it_and_ages_into_the_rpo() -> None:
    early = acknowledged(payment(9), PRIMARY, at=10.0)
    late = acknowledged(payment(10), PRIMARY, at=18.5)
    kept = acknowledged(payment(11), SECONDARY, at=19.0)
    tables = {SECONDARY: {kept.payment_id(ID_KEY): item(kept, SECONDARY)}}
    result = account([early, late, kept], {}, tables, [], ID_KEY, lost_regions=frozenset({PRIMARY}))
    assert result.lost_with_region == [early, late] and result.lost == []
    assert result.rpo_seconds(lost_at=20.0) == 10.0
    # What a surviving region acknowledged is never excused by the loss of another.
    answered_by_survivor = acknowledged(payment(12), SECONDARY)
    result = account(
        [answered_by_survivor], {}, tables, [], ID_KEY, lost_regions=frozenset({PRIMARY})
    )
    assert result.lost == [answered_by_survivor]
