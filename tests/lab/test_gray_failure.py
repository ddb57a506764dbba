"""The gray failure: health says 200 while payments fail, the primary's SSM and the Route 53 API
are down. Only the operator's traffic switch (the real ops code) moves clients, and only the
operator's failback brings them back."""

from __future__ import annotations

import pytest

from payments_dr.contract import ConsistencyMode
from payments_dr.lab.drill import DrillOptions, run_drill
from payments_dr.lab.scenarios import OPERATOR_FAILBACK_AFTER_SECONDS, ScenarioName

from .helpers import PRIMARY, SECONDARY, lab_settings


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(ConsistencyMode))
def test_the_switch_moves_traffic_that_health_checks_cannot(mode: ConsistencyMode) -> None:
    options = DrillOptions(
        scenario=ScenarioName.GRAY_FAILURE, warmup_seconds=10, min_fault_seconds=0, hold_seconds=10
    )

    report = run_drill(lab_settings(mode, 0.02), options).report

    assert report.failed_checks == [], report.to_text()
    details = [(event.kind, event.detail) for event in report.timeline]
    # The HTTPS health check never failed: what moved traffic was the switch.
    assert ("detected", f"the traffic switch keeps traffic away from {PRIMARY}") in details
    assert not any(detail.startswith("health checks see") for _, detail in details)
    operator = [detail for kind, detail in details if kind == "operator"]
    assert any(f"switch {PRIMARY}: away (CloudWatch in {SECONDARY})" in d for d in operator)
    # The fence could not be written (the primary's SSM is down); traffic moved all the same.
    assert any(f"fence {PRIMARY}: FAILED" in d for d in operator)
    assert any("unknown readings: health check" in detail for _, detail in details)
    assert report.failover_seconds is not None
    assert report.failover_seconds <= report.rto_budget_seconds
    # Recovered, the primary waited for the operator's failback.
    assert report.failback_seconds is not None
    assert report.failback_seconds >= OPERATOR_FAILBACK_AFTER_SECONDS
    assert report.payments_lost == 0 and report.requests_failed == 0
    assert report.regions_consistent_after_failback
