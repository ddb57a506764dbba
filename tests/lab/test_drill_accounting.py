"""The drill's loss accounting: an acknowledged payment counts only where stored as sent."""

from __future__ import annotations

import json
import random

from payments_dr.lab.drill import ClientPayment, _new_payment, regions_holding
from payments_dr.service.model import new_payment, parse_payment_request
from payments_dr.service.store import Attr, to_item

from .helpers import PRIMARY, SECONDARY


def stored_item(payment: ClientPayment, body: bytes | None = None) -> dict[str, dict[str, str]]:
    """The item the service would store for `payment` (or for another body under its key)."""
    request = parse_payment_request(
        (body or payment.body).decode(), merchant_id=payment.merchant_id
    )
    return to_item(new_payment(request, payment.idempotency_key, PRIMARY, 0.0))


def test_a_payment_stored_as_sent_is_held_in_each_region_that_has_it() -> None:
    payment = _new_payment(random.Random(1), client=0, sequence=1)
    item = stored_item(payment)
    tables = {PRIMARY: {payment.payment_id: item}, SECONDARY: {}}
    assert item[Attr.PK.value] == {"S": payment.payment_id}
    assert regions_holding(payment, tables) == {PRIMARY}


def test_an_item_under_the_id_with_another_request_counts_as_missing() -> None:
    payment = _new_payment(random.Random(2), client=0, sequence=1)
    changed = {**json.loads(payment.body), "amount": 1}
    other = stored_item(payment, json.dumps(changed).encode())
    tables = {
        PRIMARY: {payment.payment_id: other},
        SECONDARY: {payment.payment_id: stored_item(payment)},
    }
    assert other[Attr.PK.value] == {"S": payment.payment_id}
    assert regions_holding(payment, tables) == {SECONDARY}
    assert regions_holding(payment, {PRIMARY: tables[PRIMARY]}) == set()
