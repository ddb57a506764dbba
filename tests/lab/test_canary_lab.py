"""The cross-region canary against the lab's regions: the real API, authorizer and gateway
around it, so a passing probe means a real payment was written and read back."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from payments_dr import contract
from payments_dr.contract import ConsistencyMode, Mode
from payments_dr.lab.lab import Lab
from payments_dr.service.canary import ProbeFailed, probe

from .helpers import PRIMARY, SECONDARY, enrol, lab_settings

# Generous: the lab runs time-scaled (a fence takes refresh + spread = 9 s simulated, 0.18 s
# wall here), but the machine may be loaded. The loops end as soon as the state is seen.
SETTLE_WALL_SECONDS = 30.0


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(lab_settings(ConsistencyMode.EVENTUAL, time_scale=0.02)) as running:
        yield running


@pytest.fixture(scope="module")
def canary_key(lab: Lab) -> str:
    return enrol(lab, contract.CANARY_MERCHANT_ID)


def first_failure(lab: Lab, region: str, key: str) -> ProbeFailed:
    deadline = time.monotonic() + SETTLE_WALL_SECONDS
    while time.monotonic() < deadline:
        try:
            probe(lab.region_url(region), region, key, timeout=5)
        except ProbeFailed as failed:
            return failed
    raise AssertionError(f"the canary never saw {region} fail")


def test_the_canary_pays_through_each_region(lab: Lab, canary_key: str) -> None:
    for region in (PRIMARY, SECONDARY):
        result = probe(lab.region_url(region), region, canary_key, timeout=5)
        assert result.steps == ("health: 200", "write: 201", "read: 200")
        assert result.payment_id.startswith("pay_")


def test_a_fenced_region_fails_its_canary_and_the_other_passes(lab: Lab, canary_key: str) -> None:
    lab.set_mode(PRIMARY, Mode.FENCED)
    try:
        failed = first_failure(lab, PRIMARY, canary_key)
        # The API's mode cache can see the fence between the probe's health call and its
        # payment: either step may be the one that fails.
        reason = str(failed)
        assert (reason.startswith("health: 503") and "fenced" in reason) or reason.startswith(
            "write: 503"
        ), reason
        probe(lab.region_url(SECONDARY), SECONDARY, canary_key, timeout=5)
    finally:
        lab.set_mode(PRIMARY, Mode.ACTIVE)


def test_a_table_outage_fails_the_canary_even_while_it_can_answer(
    lab: Lab, canary_key: str
) -> None:
    """A gray failure seen from outside: the region answers, payments do not work."""
    lab.set_table_outage(PRIMARY, True)
    try:
        failed = first_failure(lab, PRIMARY, canary_key)
        assert str(failed).startswith(("health: 503", "write: "))
    finally:
        lab.set_table_outage(PRIMARY, False)
