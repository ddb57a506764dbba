"""Every drill scenario in both consistency modes, time-scaled, with the properties that matter."""

from __future__ import annotations

import pytest

from payments_dr.contract import ConsistencyMode
from payments_dr.lab.drill import DrillOptions, DrillResult, run_drill
from payments_dr.lab.ledger import WriteOutcome
from payments_dr.lab.scenarios import SCENARIOS, ScenarioName

from .helpers import PRIMARY, SECONDARY, lab_settings

TIME_SCALE = 0.02  # a drill of two to three simulated minutes plays in three to four seconds


def drill(scenario: ScenarioName, mode: ConsistencyMode) -> DrillResult:
    # The fault lasts just until traffic has moved, and the drill ends soon after failback.
    options = DrillOptions(
        scenario=scenario, warmup_seconds=10, min_fault_seconds=0, hold_seconds=10
    )
    return run_drill(lab_settings(mode, TIME_SCALE), options)


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(ConsistencyMode))
@pytest.mark.parametrize("scenario", list(ScenarioName))
def test_drill(scenario: ScenarioName, mode: ConsistencyMode) -> None:
    result = drill(scenario, mode)
    report = result.report

    assert report.simulated and "simulation" in report.environment
    assert "--on-aws" in report.real_counterpart
    assert report.payments_acknowledged > 0
    assert report.payments_lost == 0 and report.payments_duplicated == 0
    assert report.failed_checks == []
    assert report.passed
    # Failover measured, and within the budget computed from the configuration.
    assert report.detection_seconds is not None
    assert report.failover_seconds is not None
    assert report.failover_seconds <= report.rto_budget_seconds
    assert report.failover_seconds >= report.detection_seconds
    assert report.fault_at_seconds is not None and report.fault_planned_at_seconds == 10
    if all(step.offset_seconds >= 0 for step in SCENARIOS[scenario].steps):
        # Three failed probes, ten seconds apart, whatever the machine's load: the lab stamps
        # each probe with the time it started.
        assert report.detection_seconds >= 20
    assert report.requests_by_region.get(PRIMARY, 0) > 0
    assert report.requests_by_region.get(SECONDARY, 0) > 0

    # Counted from what the service wrote, not from what replication did.
    created: dict[str, set[str]] = {}
    for write in result.writes:
        if write.outcome is WriteOutcome.CREATED:
            created.setdefault(write.payment_id, set()).add(write.region)
    twice = sorted(payment_id for payment_id, regions in created.items() if len(regions) == 2)
    assert report.payments_accepted_twice + report.payments_two_versions == len(twice)
    if mode is ConsistencyMode.STRONG:
        assert twice == []
    payments = {payment.payment_id(result.id_key): payment for payment in result.payments}
    for payment_id in twice:
        # Only a client retry that crossed regions inside the replication window creates a
        # payment in both regions (the steady workload never reuses a key with a new body).
        assert payments[payment_id].regions_tried == {PRIMARY, SECONDARY}
    assert report.payments_two_versions == 0 and result.conflicts == []

    if SCENARIOS[scenario].permanent:
        # The primary never returns: no failback, and what it lost is measured, in budget.
        assert report.failback_seconds is None
        assert report.rpo_seconds is not None and report.rpo_budget_seconds is not None
        assert report.rpo_seconds <= report.rpo_budget_seconds
        if mode is ConsistencyMode.STRONG:
            assert report.rpo_seconds == 0 and report.payments_lost_with_region == 0
    else:
        assert report.failback_seconds is not None
        assert report.regions_consistent_after_failback is True
        assert report.rpo_seconds is None
