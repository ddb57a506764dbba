"""The adversarial workload in both modes: retries across regions, reused keys, bursts."""

from __future__ import annotations

import pytest

from payments_dr.contract import ConsistencyMode
from payments_dr.lab.client_payments import Category, Workload
from payments_dr.lab.commands import ADVERSARIAL_TIME_SCALE
from payments_dr.lab.drill import DrillOptions, run_drill

from .helpers import lab_settings


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(ConsistencyMode))
def test_the_adversarial_workload_loses_nothing_silently(mode: ConsistencyMode) -> None:
    options = DrillOptions(
        workload=Workload.ADVERSARIAL, warmup_seconds=20, min_fault_seconds=0, hold_seconds=20
    )
    result = run_drill(lab_settings(mode, ADVERSARIAL_TIME_SCALE), options)
    report = result.report

    assert report.failed_checks == [] and report.passed
    assert report.payments_lost == 0 and report.payments_duplicated == 0
    categories = report.categories
    # Clients of the failover name and every adversarial client (no SDK clients unless asked).
    expected = set(Category) - {Category.SDK}
    assert set(categories) == {category.value for category in expected}
    for category in expected:
        assert categories[category.value]["acknowledged"] > 0, category
    reuse = categories[Category.KEY_REUSE.value]
    if mode is ConsistencyMode.STRONG:
        # One version per key: the other request is refused, never stored.
        assert reuse["rejected"] == reuse["acknowledged"] == reuse["sent"] // 2
        assert report.payments_accepted_twice == report.payments_two_versions == 0
        assert result.conflicts == []
    else:
        # Both regions accepted some keys before replication: every overwritten version is
        # kept as a conflict record, and each record names a version a client was given.
        assert report.payments_two_versions > 0
        assert reuse.get("overwritten-recorded", 0) == report.payments_two_versions
        assert len(result.conflicts) == report.conflicts_recorded == report.payments_two_versions
        assert report.conflict_detection_max_seconds is not None
        acknowledged = {
            (p.payment_id(result.id_key), p.fingerprint(result.id_key))
            for p in result.payments
            if p.acknowledged
        }
        for conflict in result.conflicts:
            version = (conflict.payment_id, conflict.overwritten["fingerprint"]["S"])
            assert version in acknowledged
