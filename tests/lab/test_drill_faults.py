"""The drill's verification against lab runs that really lose, split and duplicate payments.

A faulty replicator is put in for one drill (the fault is a test's, not a scenario's): it
drops some replicated payment writes, and loses one payment in the region that acknowledged
it. The drill must then fail with the right counts and checks, from what the service wrote
and the tables hold, not from anything the test tells it.
"""

from __future__ import annotations

from typing import Any

import pytest

from payments_dr.contract import ConsistencyMode
from payments_dr.lab.client_payments import Workload
from payments_dr.lab.drill import DrillOptions, DrillResult, run_drill
from payments_dr.lab.replication import Replicator
from payments_dr.lab.scenarios import ScenarioName
from payments_dr.service.model import PAYMENT_ID_PATTERN

from .helpers import PRIMARY, SECONDARY, lab_settings

TIME_SCALE = 0.02


def drill(mode: ConsistencyMode, workload: Workload = Workload.STEADY) -> DrillResult:
    options = DrillOptions(
        scenario=ScenarioName.REGION_OUTAGE,
        workload=workload,
        warmup_seconds=10,
        min_fault_seconds=0,
        hold_seconds=10,
    )
    return run_drill(lab_settings(mode, TIME_SCALE), options)


def acknowledged_ids(result: DrillResult) -> set[str]:
    return {p.payment_id(result.id_key) for p in result.payments if p.acknowledged}


def test_eventual_replication_that_drops_and_loses_payments_fails_the_drill(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inserts: list[str] = []  # payments the primary created, in the order replication saw them
    dropped: list[str] = []  # never reach the secondary
    lost: list[str] = []  # gone from the primary too, as if its storage lost the write
    apply = Replicator._apply

    def faulty_apply(self: Replicator, change: Any, target: str, now: float) -> None:
        is_payment = PAYMENT_ID_PATTERN.fullmatch(change.payment_id) is not None
        if change.event == "INSERT" and is_payment and change.source == PRIMARY:
            inserts.append(change.payment_id)
            if len(inserts) in (1, 3):
                dropped.append(change.payment_id)
                return
            if len(inserts) == 2:
                source = self._resources[PRIMARY].table_name
                self._regions[PRIMARY].lab_dynamodb.delete_item(TableName=source, Key=change.key)
                lost.append(change.payment_id)
                return
        apply(self, change, target, now)

    monkeypatch.setattr(Replicator, "_apply", faulty_apply)
    result = drill(ConsistencyMode.EVENTUAL)
    report = result.report

    assert len(dropped) == 2 and len(lost) == 1
    assert {*dropped, *lost} <= acknowledged_ids(result)  # the clients were told "created"
    assert report.payments_lost == 1
    assert "2 acknowledged payments are missing in one region" in report.failed_checks
    assert "1 acknowledged payments were lost without a record" in report.failed_checks
    assert report.regions_consistent_after_failback is False
    assert not report.passed


def test_strong_mode_that_misses_its_peer_creates_payments_twice_and_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    skipped: list[str] = []
    copy_to_peers = Replicator._copy_to_peers

    def faulty_copy(self: Replicator, source: str, key: dict[str, Any], written_at: float) -> None:
        payment_id = str(next(iter(key.values()))["S"])
        if source == PRIMARY and PAYMENT_ID_PATTERN.fullmatch(payment_id):
            skipped.append(payment_id)  # the write "returns" without reaching the peer
            return
        copy_to_peers(self, source, key, written_at)

    monkeypatch.setattr(Replicator, "_copy_to_peers", faulty_copy)
    # Cross-region retries send a payment the primary took to the secondary at once: with
    # the copy missing, the secondary creates it a second time.
    result = drill(ConsistencyMode.STRONG, Workload.ADVERSARIAL)
    report = result.report

    created_in_both = {
        payment_id
        for payment_id, writes in _created(result).items()
        if {write.region for write in writes} == {PRIMARY, SECONDARY}
    }
    assert skipped and created_in_both
    assert report.payments_duplicated == len(created_in_both)
    assert report.payments_accepted_twice + report.payments_two_versions == len(created_in_both)
    assert "strong consistency created a payment in two regions" in report.failed_checks
    assert any("missing in one region" in check for check in report.failed_checks)
    assert not report.passed


def _created(result: DrillResult) -> dict[str, list[Any]]:
    created: dict[str, list[Any]] = {}
    for write in result.writes:
        if write.outcome.value == "created":
            created.setdefault(write.payment_id, []).append(write)
    return created
