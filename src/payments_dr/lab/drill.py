"""The failover drill in the lab: payment traffic, a fault, failover, failback, verification.

Clients (lab.traffic) send payments and retry each one with the same Idempotency-Key until it
is answered for good. The scenario injects its fault and, unless the region is lost for good,
clears it later; traffic continues until the primary serves again. Then queues and
replication are drained and the payments are accounted for (lab.accounting) from what the
clients were told, what the service wrote (each conditional write's outcome per region, from
the lab's write ledger), the surviving tables and the conflict records.

Times are simulated seconds since the traffic started; the report also states the time scale.
Steps before the main fault run at their planned times; the main fault, and every step after
it, are timed from the moment the fault actually took effect, which the report states too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from payments_dr.drill_report import DrillReport, TimelineEvent
from payments_dr.lab.client_payments import ClientPayment, merchant_of
from payments_dr.lab.drill_options import DrillOptions
from payments_dr.lab.lab import Lab
from payments_dr.lab.ledger import Write
from payments_dr.lab.scenarios import OPERATOR_FAILBACK_AFTER_SECONDS, SCENARIOS, Phase, Step
from payments_dr.lab.settings import LabSettings
from payments_dr.lab.traffic import Traffic
from payments_dr.lab.verdict import verify
from payments_dr.service.conflicts import Conflict
from payments_dr.service.model import IdKey

ENVIRONMENT = "local lab (simulation)"

Progress = Callable[[str], None]


@dataclass
class DrillResult:
    report: DrillReport
    payments: list[ClientPayment]
    writes: list[Write]  # every conditional payment write the service made, per region
    conflicts: list[Conflict]
    id_key: IdKey  # the lab's: the payments' ids are `payment.payment_id(id_key)`


@dataclass
class _Phases:
    """When things happened, in simulated seconds since the traffic started."""

    fault_planned_at: float
    fault_at: float
    # Detection can start with the fault phase's first step: a stall before the outage may
    # already fail health checks. A region lost for good is lost at the last one.
    first_fault_step_at: float | None = None
    last_fault_step_at: float | None = None
    restore_at: float | None = None  # None: the region never came back


def run_drill(
    settings: LabSettings, options: DrillOptions, progress: Progress | None = None
) -> DrillResult:
    """Run one drill in a fresh lab; the lab is stopped before this returns."""
    say = progress or (lambda _: None)
    scenario = SCENARIOS[options.scenario]
    wall_started = time.monotonic()
    # The report is the drill's output; the service's own logs would drown it.
    with Lab(settings, service_log_level="CRITICAL") as lab:
        say(
            f"lab up (simulation, 1 s simulated = {settings.time_scale:g} s wall):"
            f" failover endpoint {lab.failover_url}"
        )
        # Every client is a merchant with its own key, issued in the primary and replicated
        # before traffic starts, as `payments-dr merchant create` would have done.
        clients = Traffic.clients_needed(options.traffic())
        api_keys = {client: lab.enrol_merchant(merchant_of(client)) for client in range(clients)}
        lab.settle(options.settle_timeout_wall_seconds)
        say(f"{len(api_keys)} merchants enrolled; traffic runs authenticated")
        started_at = lab.clock.now()
        traffic = Traffic(lab, options.traffic(), started_at, api_keys)
        traffic.start()
        try:
            phases, backlog_at_fault = _play(lab, traffic, options, scenario.steps, say)
        except BaseException:  # Ctrl-C: the clients must not outlive the lab they call
            traffic.abort()
            raise
        if scenario.permanent:
            phases.restore_at = None
        traffic.stop()
        say("traffic stopped; draining queues and replication")
        settled = lab.settle(options.settle_timeout_wall_seconds)
        report = _report(lab, settings, scenario.name, scenario.real_counterpart, started_at)
        report.workload = options.workload.value
        report.replication_backlog_at_fault = backlog_at_fault
        report.fault_planned_at_seconds = round(phases.fault_planned_at, 2)
        report.fault_at_seconds = round(phases.fault_at, 2)
        conflicts = lab.conflicts()
        verify(
            lab,
            report,
            traffic.payments,
            conflicts,
            started_at=started_at,
            fault_at=phases.fault_at,
            first_fault_step_at=phases.first_fault_step_at or phases.fault_at,
            restore_at=phases.restore_at,
            lost_at=phases.last_fault_step_at or phases.fault_at,
            settled=settled,
        )
        if scenario.operator_switch:
            _check_operator_switch(report)
        writes = lab.ledger.writes
    report.wall_seconds = round(time.monotonic() - wall_started, 2)
    return DrillResult(
        report=report,
        payments=traffic.payments,
        writes=writes,
        conflicts=conflicts,
        id_key=lab.id_key,
    )


def _check_operator_switch(report: DrillReport) -> None:
    """Health checks cannot see this fault: traffic must move by the operator's switch within
    the RTO budget, and come back only through the operator's failback."""
    budget = report.rto_budget_seconds
    if report.failover_seconds is not None and report.failover_seconds > budget:
        report.failed_checks.append(
            f"traffic moved {report.failover_seconds:g} s after the fault, beyond the RTO"
            f" budget of {budget:g} s"
        )
    back = report.failback_seconds
    if back is not None and back < OPERATOR_FAILBACK_AFTER_SECONDS:
        report.failed_checks.append(
            f"the primary served again {back:g} s after it recovered, before the operator's"
            f" failback at {OPERATOR_FAILBACK_AFTER_SECONDS:g} s: traffic returned on its own"
        )


def _play(
    lab: Lab, traffic: Traffic, options: DrillOptions, steps: tuple[Step, ...], say: Progress
) -> tuple[_Phases, int | None]:
    """Carry out the scenario; when the fault and its clearing took effect."""
    budget = lab.settings.config.budget
    min_fault = (
        budget.detection_seconds + budget.dns_seconds
        if options.min_fault_seconds is None
        else options.min_fault_seconds
    )
    limit = (
        3 * budget.rto_budget_seconds
        if options.phase_limit_seconds is None
        else options.phase_limit_seconds
    )
    phases = _Phases(fault_planned_at=options.warmup_seconds, fault_at=options.warmup_seconds)
    backlog_at_fault: int | None = None
    base = options.warmup_seconds
    for step in _steps(steps, Phase.FAULT):
        traffic.sleep_until(base + step.offset_seconds)
        taken_at = phases.last_fault_step_at = _take(lab, traffic, step, say)
        if phases.first_fault_step_at is None:
            phases.first_fault_step_at = taken_at
        if step.offset_seconds == 0:
            # Later steps keep their distance from the fault as it actually happened.
            phases.fault_at = base = taken_at
            backlog_at_fault = lab.replicator.backlog()
    traffic.sleep_until(phases.fault_at + min_fault)
    _hold_until_served(
        traffic, lab.secondary, phases.fault_at, options.hold_seconds, phases.fault_at + limit
    )
    restore_steps = _steps(steps, Phase.RESTORE)
    if not restore_steps:
        return phases, backlog_at_fault
    phases.restore_at = base = traffic.now()
    for step in restore_steps:
        traffic.sleep_until(base + step.offset_seconds)
        taken_at = _take(lab, traffic, step, say)
        if step.offset_seconds == 0:
            phases.restore_at = base = taken_at
    _hold_until_served(
        traffic, lab.primary, phases.restore_at, options.hold_seconds, phases.restore_at + limit
    )
    return phases, backlog_at_fault


def _steps(steps: tuple[Step, ...], phase: Phase) -> list[Step]:
    return sorted((step for step in steps if step.phase is phase), key=lambda s: s.offset_seconds)


def _take(lab: Lab, traffic: Traffic, step: Step, say: Progress) -> float:
    """Carry out a step; when it took effect."""
    step.action(lab)
    taken_at = traffic.now()
    lab.note(step.kind, step.detail)
    say(f"t={taken_at:6.1f} s  {step.kind}: {step.detail}")
    return taken_at


def _hold_until_served(
    traffic: Traffic, region: str, since: float, hold_seconds: float, limit: float
) -> None:
    """Wait until `region` has acknowledged payments for `hold_seconds`, or until `limit`."""
    while traffic.now() < limit:
        served_at = traffic.first_served(region, after=since)
        if served_at is not None and traffic.now() >= served_at + hold_seconds:
            return
        traffic.sleep_until(min(limit, traffic.now() + 1.0))


def _report(
    lab: Lab, settings: LabSettings, scenario: str, counterpart: str, started_at: float
) -> DrillReport:
    budget = settings.config.budget
    return DrillReport(
        scenario=scenario,
        consistency_mode=settings.config.consistency_mode.value,
        environment=ENVIRONMENT,
        simulated=True,
        real_counterpart=counterpart,
        rto_target_seconds=budget.rto_target_seconds,
        rpo_target_seconds=budget.rpo_target_seconds,
        rto_budget_seconds=budget.rto_budget_seconds,
        time_scale=settings.time_scale,
        timeline=[
            TimelineEvent(round(event.at_seconds - started_at, 2), event.kind, event.detail)
            for event in lab.events
        ],
    )
