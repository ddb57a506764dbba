"""Client-perceived RTO per client kind, from what each client was told."""

from __future__ import annotations

import random

from payments_dr.drill_report import ClientRto
from payments_dr.lab.client_payments import Attempt, Category, ClientPayment, new_payment
from payments_dr.lab.verdict import client_rto

FAULT_AT = 100.0


def payment(client: int, category: Category, *attempts: tuple[float, int]) -> ClientPayment:
    made = new_payment(random.Random(client), client, len(attempts), category)
    made.attempts = [
        Attempt(at, "us-east-2", "us-east-2" if status else "", status) for at, status in attempts
    ]
    return made


def test_each_client_counts_once_from_the_fault_to_its_first_acknowledgement() -> None:
    payments = [
        # A DNS client: acknowledged before the fault (not counted), then 95 s after it.
        payment(0, Category.STEADY, (90.0, 201)),
        payment(0, Category.STEADY, (101.0, 0), (150.0, 503), (195.0, 201)),
        # Another DNS client: its later payment does not count, its first one at 130 s does.
        payment(1, Category.STEADY, (130.0, 202)),
        payment(1, Category.STEADY, (170.0, 201)),
        # An SDK client that moved at once, and one that never got an answer again.
        payment(4, Category.SDK, (100.5, 0), (103.0, 201)),
        payment(5, Category.SDK, (101.0, 0), (120.0, 0)),
        # Adversarial clients are not steady clients of either kind.
        payment(8, Category.CROSS_REGION_RETRY, (100.1, 201)),
    ]

    rto = client_rto(payments, FAULT_AT)

    assert rto == {
        "dns": ClientRto(
            clients=2, recovered=2, p50_seconds=30.0, p99_seconds=95.0, max_seconds=95.0
        ),
        "sdk": ClientRto(clients=2, recovered=1, p50_seconds=3.0, p99_seconds=3.0, max_seconds=3.0),
    }


def test_a_kind_that_did_not_run_is_absent() -> None:
    assert set(client_rto([payment(0, Category.SDK, (105.0, 201))], FAULT_AT)) == {"sdk"}
