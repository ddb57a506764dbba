"""Every drill scenario in both consistency modes, time-scaled, with the properties that matter."""

from __future__ import annotations

import pytest

from payments_dr.contract import ConsistencyMode
from payments_dr.lab.drill import DrillOptions, run_drill
from payments_dr.lab.scenarios import ScenarioName

from .helpers import PRIMARY, SECONDARY, lab_settings

TIME_SCALE = 0.02  # a drill of two to three simulated minutes plays in three to four seconds


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(ConsistencyMode))
@pytest.mark.parametrize("scenario", list(ScenarioName))
def test_drill(scenario: ScenarioName, mode: ConsistencyMode) -> None:
    settings = lab_settings(mode, TIME_SCALE)
    # The fault lasts just until traffic has moved, and the drill ends soon after failback.
    options = DrillOptions(
        scenario=scenario, warmup_seconds=10, min_fault_seconds=0, hold_seconds=10
    )
    result = run_drill(settings, options)
    report = result.report

    assert report.simulated and "simulation" in report.environment
    assert "--on-aws" in report.real_counterpart
    assert report.payments_acknowledged > 0
    assert report.payments_lost == 0
    assert report.failed_checks == []
    assert report.passed
    # Failover measured, and within the budget computed from the configuration.
    assert report.detection_seconds is not None
    assert report.failover_seconds is not None
    assert report.failover_seconds <= report.rto_budget_seconds
    assert report.failover_seconds >= report.detection_seconds
    # Both regions served, the primary again after failback, and both ended identical.
    assert report.requests_by_region.get(PRIMARY, 0) > 0
    assert report.requests_by_region.get(SECONDARY, 0) > 0
    assert report.failback_seconds is not None
    assert report.regions_consistent_after_failback is True

    assert report.payments_duplicated == len(result.duplicates) == len(report.duplicate_details)
    if mode is ConsistencyMode.STRONG:
        assert result.duplicates == []
    payments = {payment.payment_id: payment for payment in result.payments}
    for duplicate in result.duplicates:
        # Only a replay that crossed regions inside the replication window applies twice.
        assert payments[duplicate.payment_id].regions_tried == {PRIMARY, SECONDARY}
        assert duplicate.second_written_at < duplicate.replicated_at
