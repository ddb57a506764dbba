"""The SDK through a primary-region outage in the lab, in both consistency modes.

Merchants send payments through `payments_dr.client` straight to each region's endpoint (no
failover name, no DNS). The primary goes down; the SDK must move to the DR region on its own,
lose nothing, send each key with one body, and come back to the primary only after the
primary's health check passes again. Timings are the lab's simulated seconds; what is asserted
is behaviour (regions, attempts, breaker transitions, tables), never a wall-clock race. The
client-perceived RTO is measured by benchmarks/bench_client.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from lab.helpers import PRIMARY, SECONDARY, enrol, lab_settings

from payments_dr import contract
from payments_dr.client import BreakerEvent, BreakerPolicy, BreakerState
from payments_dr.contract import ConsistencyMode
from payments_dr.lab.lab import Lab
from payments_dr.lab.sdk import SdkMerchant, lab_endpoints
from payments_dr.service.store import Attr

TIME_SCALE = 0.05  # wall seconds per simulated second
MERCHANTS = 3
INTERVAL_SECONDS = 2.0  # simulated, per merchant
FAILURE_THRESHOLD = 2
OPEN_SECONDS = 20.0  # simulated: how long the primary stays out before a health probe
WAIT_WALL_SECONDS = 120.0  # generous: the conditions are events, not timings


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_WALL_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


@pytest.fixture(scope="module", params=[ConsistencyMode.EVENTUAL, ConsistencyMode.STRONG])
def outage(request: pytest.FixtureRequest) -> Iterator[tuple[Lab, list[SdkMerchant], float, float]]:
    """Runs the outage once per mode; yields (lab, merchants, fault_at, restore_at)."""
    with Lab(lab_settings(request.param, time_scale=TIME_SCALE)) as lab:
        merchants = [
            SdkMerchant(
                lab,
                f"merchant-{index:02d}",
                enrol(lab, f"merchant-{index:02d}"),
                INTERVAL_SECONDS,
                seed=index,
                breaker=BreakerPolicy(FAILURE_THRESHOLD, OPEN_SECONDS),
            )
            for index in range(MERCHANTS)
        ]
        for merchant in merchants:
            merchant.start()
        wait_for(
            lambda: all(m.first_acknowledged(PRIMARY, after=0) for m in merchants),
            "every merchant paid in the primary",
        )
        lab.set_region_outage(PRIMARY, True)
        fault_at = lab.clock.now()  # from here on the primary answers nobody
        wait_for(
            lambda: all(
                len([p for p in m.acknowledged() if p.result and p.result.region == SECONDARY]) >= 3
                for m in merchants
            ),
            "every merchant paid three times in the DR region",
        )
        restore_at = lab.clock.now()
        lab.set_region_outage(PRIMARY, False)
        wait_for(
            lambda: all(m.first_acknowledged(PRIMARY, after=restore_at) for m in merchants),
            "every merchant paid in the primary again",
        )
        for merchant in merchants:
            merchant.stop()
        assert lab.settle(60)
        yield lab, merchants, fault_at, restore_at


def test_every_payment_is_acknowledged_and_stored_in_both_regions(
    outage: tuple[Lab, list[SdkMerchant], float, float],
) -> None:
    lab, merchants, _, _ = outage
    tables = {region: lab.table_items(region) for region in lab.regions}
    for merchant in merchants:
        for payment in merchant.payments:
            assert payment.result is not None, "a payment was never acknowledged"
            expected = {"S": payment.fingerprint(merchant.merchant_id, lab.id_key)}
            for region, items in tables.items():
                item = items.get(payment.result.payment.id)
                assert item is not None, f"{payment.idempotency_key} missing in {region}"
                assert item[Attr.FINGERPRINT.value] == expected
    assert tables[PRIMARY] == tables[SECONDARY]


def test_the_sdk_moves_to_the_dr_region_without_dns(
    outage: tuple[Lab, list[SdkMerchant], float, float],
) -> None:
    lab, merchants, fault_at, restore_at = outage
    for merchant in merchants:
        during = [
            p
            for p in merchant.acknowledged()
            if p.started_at >= fault_at
            and p.acknowledged_at is not None
            and p.acknowledged_at < restore_at
        ]
        assert during and all(p.result and p.result.region == SECONDARY for p in during)
        # Threshold failures in the primary at most, then straight to the DR region; and once
        # the breaker is open, one request per payment.
        assert max(p.result.attempts for p in during if p.result) <= FAILURE_THRESHOLD + 1
        assert during[-1].result is not None and during[-1].result.attempts == 1
        assert all(a.region in lab_endpoints(lab) for p in during for a in p.attempts)


def test_the_sdk_returns_to_the_primary_after_its_health_check_passes(
    outage: tuple[Lab, list[SdkMerchant], float, float],
) -> None:
    _, merchants, _, restore_at = outage
    for merchant in merchants:
        primary_states = [
            e.state for e in merchant.events if isinstance(e, BreakerEvent) and e.region == PRIMARY
        ]
        assert primary_states[0] is BreakerState.OPEN
        # Back only through a probe: half-open, then closed.
        assert primary_states[-2:] == [BreakerState.HALF_OPEN, BreakerState.CLOSED]
        assert merchant.client.breaker_state(PRIMARY) is BreakerState.CLOSED
        last = merchant.acknowledged()[-1]
        assert last.result is not None and last.result.region == PRIMARY
        assert last.acknowledged_at is not None and last.acknowledged_at >= restore_at


def test_one_body_per_key_and_duplicates_only_from_cross_region_retries(
    outage: tuple[Lab, list[SdkMerchant], float, float],
) -> None:
    lab, merchants, _, _ = outage
    by_id = {}
    for merchant in merchants:
        for payment in merchant.payments:
            assert payment.result is not None
            assert {a.operation for a in payment.attempts} == {"create_payment"}
            by_id[payment.result.payment.id] = payment
    # What the service wrote: the ids created in both regions.
    created_twice = [
        payment_id
        for payment_id, writes in lab.ledger.created().items()
        if len({write.region for write in writes}) == 2
    ]
    if lab.settings.strong:
        assert created_twice == []  # one outcome per key in every region
    for payment_id in created_twice:
        # Eventual mode: a payment written in the primary whose answer the outage swallowed,
        # retried in the DR region before the primary's write could replicate.
        assert by_id[payment_id].regions_tried == {PRIMARY, SECONDARY}


def test_the_health_check_path_is_what_the_sdk_probes(
    outage: tuple[Lab, list[SdkMerchant], float, float],
) -> None:
    lab, merchants, _, _ = outage
    health = merchants[0].client.health(PRIMARY)
    assert health.healthy and health.status == 200
    assert lab_endpoints(lab)[PRIMARY] + contract.HEALTH_PATH == (
        lab.regions[PRIMARY].health.health_url
    )
