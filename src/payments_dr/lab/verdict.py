"""The drill's verdict: timings from health changes and client attempts, payments accounted
from what the service wrote, and every check that fails the drill."""

from __future__ import annotations

import json
from datetime import datetime

from payments_dr.drill_report import ClientRto, DrillReport, RequestSample, TimelineEvent
from payments_dr.lab.accounting import Accounting, account
from payments_dr.lab.client_payments import (
    ACKNOWLEDGED,
    KIND_CATEGORY,
    REJECTED,
    SDK_RTO_TARGET_SECONDS,
    Category,
    ClientKind,
    ClientPayment,
    first_served,
    timed_categories,
)
from payments_dr.lab.lab import Lab
from payments_dr.service.conflicts import Conflict


def verify(
    lab: Lab,
    report: DrillReport,
    payments: list[ClientPayment],
    conflicts: list[Conflict],
    *,
    started_at: float,
    fault_at: float,
    first_fault_step_at: float,
    restore_at: float | None,
    lost_at: float,
    settled: bool,
) -> None:
    """Fill in the report. `started_at` is on the lab clock, the other times on the traffic's;
    `restore_at` None: the primary was lost for good, at `lost_at`."""
    _timings(lab, report, payments, started_at, fault_at, restore_at)
    lost_regions = frozenset(name for name, r in lab.regions.items() if r.aws.faults.outage)
    tables = {name: lab.table_items(name) for name in lab.regions if name not in lost_regions}
    accounting = account(
        payments, lab.ledger.created(), tables, conflicts, lab.id_key, lost_regions
    )
    _payments(report, accounting, conflicts, lab, started_at)
    if restore_at is None:
        budget = lab.settings.config.budget
        report.rpo_budget_seconds = budget.rpo_budget_seconds
        report.rpo_seconds = round(accounting.rpo_seconds(lost_at), 2)
    else:
        report.regions_consistent_after_failback = tables[lab.primary] == tables[lab.secondary]
    p50, peak = lab.replicator.lag_stats_ms()
    report.replication_lag_p50_ms, report.replication_lag_max_ms = round(p50, 1), round(peak, 1)
    for region in tables:
        bodies = lab.dlq_messages(region)
        report.dlq_messages[region] = len(bodies)
        report.dlq_payment_ids[region] = sorted(_payment_id_of(body) for body in bodies)
    _checks(lab, report, payments, accounting, settled, restore_at, fault_at - first_fault_step_at)


def _timings(
    lab: Lab,
    report: DrillReport,
    payments: list[ClientPayment],
    started_at: float,
    fault_at: float,
    restore_at: float | None,
) -> None:
    primary, secondary = lab.primary, lab.secondary
    attempts = sorted((a for payment in payments for a in payment.attempts), key=lambda a: a.at)
    report.samples = [RequestSample(round(a.at, 3), a.answered_by, a.status) for a in attempts]
    for attempt in attempts:
        if attempt.answered_by:
            served = report.requests_by_region
            served[attempt.answered_by] = served.get(attempt.answered_by, 0) + 1
    seen = {payment.category for payment in payments}
    timed = timed_categories(tuple(k for k, c in KIND_CATEGORY.items() if c in seen))
    attempts = sorted(
        (a for p in payments if p.category in timed for a in p.attempts),
        key=lambda a: a.at,
    )
    detected = [
        at - started_at
        for at, region, healthy in lab.health_changes
        if region == primary and not healthy and at - started_at >= fault_at
    ]
    if detected:
        report.detection_seconds = round(min(detected) - fault_at, 2)
    failover_at = first_served(attempts, secondary, after=fault_at)
    if failover_at is not None:
        report.failover_seconds = round(failover_at - fault_at, 2)
        report.timeline.append(
            TimelineEvent(round(failover_at, 2), "failover", f"first payment served by {secondary}")
        )
    if restore_at is not None:
        failback_at = first_served(attempts, primary, after=restore_at)
        if failback_at is not None:
            report.failback_seconds = round(failback_at - restore_at, 2)
            report.timeline.append(
                TimelineEvent(round(failback_at, 2), "failback", f"{primary} serves payments again")
            )
    report.timeline.sort(key=lambda event: event.at_seconds)
    report.client_rto_seconds = client_rto(payments, fault_at)
    if ClientKind.SDK.value in report.client_rto_seconds:
        report.sdk_rto_target_seconds = SDK_RTO_TARGET_SECONDS


def client_rto(payments: list[ClientPayment], fault_at: float) -> dict[str, ClientRto]:
    """Per steady client kind: each client's wait from the fault to its first acknowledged
    payment (sent at or after the fault), as the client perceives it."""
    result: dict[str, ClientRto] = {}
    for kind, category in KIND_CATEGORY.items():
        first_ack: dict[str, float | None] = {}
        for payment in payments:
            if payment.category is not category:
                continue
            acks = [a.at for a in payment.attempts if a.at >= fault_at and a.status in ACKNOWLEDGED]
            seen = first_ack.get(payment.merchant_id)
            earliest = min(acks, default=None)
            if seen is None or (earliest is not None and earliest < seen):
                first_ack[payment.merchant_id] = earliest
        if first_ack:
            waits = [at - fault_at for at in first_ack.values() if at is not None]
            result[kind.value] = ClientRto.of(len(first_ack), waits)
    return result


def _payments(
    report: DrillReport,
    accounting: Accounting,
    conflicts: list[Conflict],
    lab: Lab,
    started_at: float,
) -> None:
    report.payments_acknowledged = accounting.acknowledged
    report.payments_lost = len(accounting.lost)
    report.payments_lost_with_region = len(accounting.lost_with_region)
    report.payments_accepted_twice = len(accounting.accepted_twice)
    report.payments_two_versions = len(accounting.two_versions)
    report.payments_overwritten_recorded = accounting.overwritten_recorded
    report.conflicts_recorded = len(conflicts)
    report.categories = accounting.by_category
    created = lab.ledger.created()
    report.duplicate_details = [
        f"{payment_id}: created in "
        + " and ".join(f"{w.region} at {w.at - started_at:.1f} s" for w in created[payment_id])
        + (" with different requests" if payment_id in accounting.two_versions else "")
        for payment_id in accounting.accepted_twice + accounting.two_versions
    ]
    strong_twice = (
        accounting.accepted_twice + accounting.two_versions if lab.settings.strong else []
    )
    report.payments_duplicated = len(accounting.stored_twice) + len(strong_twice)
    report.duplicate_details += [
        f"reference {reference} is stored under two payment ids"
        for reference in accounting.stored_twice
    ]
    # Both timestamps follow the lab's clock: simulated seconds.
    delays = [_seconds_between(c.overwritten_at, c.detected_at) for c in conflicts]
    if delays:
        report.conflict_detection_max_seconds = round(max(delays), 3)


def _checks(
    lab: Lab,
    report: DrillReport,
    payments: list[ClientPayment],
    accounting: Accounting,
    settled: bool,
    restore_at: float | None,
    fault_lead: float,
) -> None:
    """`fault_lead`: how long before the main fault the scenario's first step ran."""
    primary, secondary = lab.primary, lab.secondary
    checks = report.failed_checks
    if not settled:
        checks.append("queues and replication did not drain in time")
    if report.detection_seconds is None:
        checks.append(f"health checks never reported {primary} unhealthy")
    else:
        config = lab.settings.config
        fastest = config.health_check_interval_seconds * (config.health_check_failure_threshold - 1)
        if report.detection_seconds + fault_lead < fastest:
            checks.append(
                f"detection {report.detection_seconds + fault_lead:.2f} s after the first fault"
                f" is faster than {fastest:g} s, the least consecutive failed probes can take:"
                " the lab's timing is wrong"
            )
    if report.failover_seconds is None:
        checks.append(f"no payment was served by {secondary} after the fault")
    if restore_at is not None and report.failback_seconds is None:
        checks.append(f"{primary} served no payment after the fault was cleared")
    if accounting.partial:
        checks.append(f"{len(accounting.partial)} acknowledged payments are missing in one region")
    if accounting.lost:
        checks.append(f"{len(accounting.lost)} acknowledged payments were lost without a record")
    if accounting.unrecorded_versions:
        checks.append(
            f"{len(accounting.unrecorded_versions)} overwritten payment versions have no"
            " conflict record"
        )
    if accounting.stored_twice:
        checks.append(f"{len(accounting.stored_twice)} payments are stored under two ids")
    if lab.settings.strong and (accounting.accepted_twice or accounting.two_versions):
        checks.append("strong consistency created a payment in two regions")
    refused = [
        p
        for p in payments
        if p.final_status in REJECTED
        and not (p.category is Category.KEY_REUSE and p.final_status == 422)
    ]
    report.payments_rejected = len(refused)
    if refused:
        checks.append(f"{len(refused)} well-formed payments were rejected")
    report.requests_failed = sum(1 for payment in payments if payment.final_status is None)
    if report.requests_failed:
        # Clients retry until well after the fault is cleared: a payment still unanswered
        # then met an outage longer than failover should ever let a client see.
        checks.append(f"{report.requests_failed} payments got no answer despite retries")
    rpo, rpo_budget = report.rpo_seconds, report.rpo_budget_seconds
    if rpo is not None and rpo_budget is not None and rpo > rpo_budget:
        checks.append(f"measured RPO {rpo} s exceeds the budget of {rpo_budget:g} s")
    for name, running in lab.regions.items():
        if running.retry_poller.worker_errors:
            checks.append(
                f"the retry worker in {name} raised"
                f" {running.retry_poller.worker_errors} times instead of reporting failures"
            )


def _seconds_between(earlier: str, later: str) -> float:
    def parse(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return (parse(later) - parse(earlier)).total_seconds()


def _payment_id_of(body: str) -> str:
    try:
        return str(json.loads(body)["id"])
    except (ValueError, KeyError, TypeError):
        return "(unreadable message)"
