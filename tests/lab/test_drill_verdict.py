"""The lab drill's own checks over what its clients saw, on an idle lab."""

from __future__ import annotations

import random

from payments_dr.contract import ConsistencyMode
from payments_dr.lab.drill import Attempt, ClientPayment, _new_payment, _verify
from payments_dr.lab.lab import Lab

from .helpers import PRIMARY, lab_settings, report

UNANSWERED = "1 payments got no answer despite retries"


def checks_for(lab: Lab, payments: list[ClientPayment]) -> list[str]:
    verdict = report()
    _verify(lab, verdict, payments, started_at=0.0, fault_at=10.0, restore_at=20.0, settled=True)
    return verdict.failed_checks


def test_a_payment_left_unanswered_after_every_retry_fails_the_drill() -> None:
    answered, unanswered = (_new_payment(random.Random(seed), 0, seed) for seed in (1, 2))
    answered.final_status = 403  # refused, but answered
    for payment in (answered, unanswered):
        payment.attempts += [Attempt(at, PRIMARY, "", 0) for at in (11.0, 12.0)]
    with Lab(lab_settings(ConsistencyMode.EVENTUAL, time_scale=0.02)) as lab:
        with_answer = checks_for(lab, [answered])
        without_answer = checks_for(lab, [answered, unanswered])

    assert UNANSWERED not in with_answer
    assert [check for check in without_answer if check not in with_answer] == [UNANSWERED]
