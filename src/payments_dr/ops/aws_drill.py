"""`payments-dr drill --on-aws`: a timed failover and failback on a deployed stack.

Synthetic payments flow the whole time (`--client dns|sdk|both`, ops.drill_traffic): through
the failover name, and through the merchant SDK with both regional endpoints, side by side
against the same fault. The fault is the operator's
failover, exactly as `payments-dr failover` makes it: the primary's traffic switch set away
(from outside the primary) and its mode fenced; the one fault that is safe to inject into a
real stack. The lab covers outages, gray failures, table faults and replication stalls. The result
is the same `DrillReport` the lab produces, with `simulated=False`: evidence for a DR test, with
each client kind's payments and client-perceived RTO (ops.drill_accounting).

Whatever happens, the primary's switch is set to serve and its mode active again before the
drill returns.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from payments_dr.cli_arguments import write_text_creating_folders
from payments_dr.client import Transport
from payments_dr.contract import ConsistencyMode, Mode, SwitchState
from payments_dr.drill_report import DrillReport, TimelineEvent
from payments_dr.merchants import Merchants
from payments_dr.ops.aws import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, Aws, OpsError
from payments_dr.ops.commands import (
    project_root,
    refuse_unconfirmable,
    require_confirmation,
    run_guarded,
)
from payments_dr.ops.drill_accounting import (
    account_clients,
    first_served,
    present_ids,
    timed_kinds,
)
from payments_dr.ops.drill_setup import (
    DrillSettings,
    check_starting_point,
    drill_settings,
    dry_run_plan,
    settings_problem,
)
from payments_dr.ops.drill_traffic import DrillTraffic, drill_traffic
from payments_dr.ops.observe import (
    AWS_ERRORS,
    Resolver,
    describe_aws_error,
    dlq_depth,
    replication_latency_series,
    resolve_ipv4,
    write_mode,
)
from payments_dr.ops.outputs import StackOutputs, load_outputs
from payments_dr.ops.progress import Progress, Timing
from payments_dr.ops.switch import SwitchResult, execute
from payments_dr.ops.switch_plan import SwitchPlan, plan_failback, plan_failover
from payments_dr.ops.synthetic import Sender, post_json
from payments_dr.ops.traffic_switch import write_switches

# The one fault injected on AWS; the lab's drill offers the others.
AWS_SCENARIO = "fenced"


class Drill:
    def __init__(
        self,
        aws: Aws,
        outputs: StackOutputs,
        traffic: DrillTraffic,
        settings: DrillSettings,
        progress: Progress,
        resolve: Resolver = resolve_ipv4,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.aws = aws
        self.outputs = outputs
        self.traffic = traffic
        self.settings = settings
        self.progress = progress
        self.resolve = resolve
        self.wall_clock = wall_clock
        self.timeline: list[TimelineEvent] = []
        self.fault_at = 0.0

    def elapsed(self) -> float:
        return self.traffic.elapsed()

    def note(self, kind: str, detail: str) -> None:
        self.timeline.append(TimelineEvent(self.elapsed(), kind, detail))

    def run(self) -> DrillReport:
        wall_started = self.wall_clock()
        primary, secondary = self.outputs.primary, self.outputs.secondary
        report = self._empty_report()
        failed_back = False
        try:
            self.traffic.run_for(self.settings.warmup_seconds)
            fault_at = self.fault_at = self.elapsed()
            self.note("fault", f"{primary}'s switch set away, then its mode fenced")
            failover = self._switch(plan_failover(self.outputs, secondary))
            report.detection_seconds = failover.switch_seen_seconds
            if failover.switch_seen_seconds is not None:
                at = fault_at + failover.switch_seen_seconds
                self.timeline.append(
                    TimelineEvent(at, "detected", f"the switch keeps traffic away from {primary}")
                )
            for step in failover.fence_failed:
                report.failed_checks.append(f"failover: {step.region} not fenced: {step.error}")
            # Timed once the hold has let payments flow: DNS can move just as the wait ends.
            self.traffic.run_for(self.settings.hold_seconds)
            report.failover_seconds = self._record(report, "failover", failover, fault_at)
            unfenced_at = self.elapsed()
            self.note("note", f"{primary} set {Mode.ACTIVE.value} again")
            failback = self._switch(plan_failback(self.outputs))
            failed_back = True
            self.traffic.run_for(self.settings.cooldown_seconds)
            report.failback_seconds = self._record(report, "failback", failback, unfenced_at)
        finally:
            if not failed_back:
                write_mode(self.aws, self.outputs, primary, Mode.ACTIVE)
                write_switches(self.aws, self.outputs, {primary: SwitchState.SERVE})
                self.note(
                    "note", f"drill interrupted: {primary} set {Mode.ACTIVE.value}, switch serve"
                )
        self._settle(report)
        self._add_metrics(report, wall_started)
        return report

    def _record(
        self, report: DrillReport, kind: str, result: SwitchResult, switched_at: float
    ) -> float | None:
        """Adds a switch to the report; returns seconds until the target served a payment."""
        target = result.plan.target
        self.timeline.append(
            TimelineEvent(switched_at + result.seconds, "note", _switch_note(result))
        )
        if not result.converged:
            report.failed_checks.append(
                f"{kind}: the switch and DNS did not agree on {target} within {result.seconds:.1f}s"
            )
        timed = self.traffic.samples(timed_kinds(self.traffic.kinds))
        served = first_served(timed, target, switched_at)
        if served is None:
            report.failed_checks.append(f"{kind}: no payment was served by {target} afterwards")
        else:
            self.timeline.append(
                TimelineEvent(switched_at + served, kind, f"first payment served by {target}")
            )
        return served

    def _switch(self, plan: SwitchPlan) -> SwitchResult:
        timing = Timing(
            timeout_seconds=self.settings.switch_timeout_seconds or self.outputs.rto_target_seconds,
            poll_interval_seconds=self.settings.poll_interval_seconds,
            clock=self.traffic.clock,
            sleep=self.traffic.run_for,  # payments keep flowing while DNS is watched
        )
        return execute(self.aws, self.outputs, plan, timing, self.progress, self.resolve)

    def _settle(self, report: DrillReport) -> None:
        """Waits until both regions hold every acknowledged payment, or the settle time ends."""
        wanted = self.traffic.acknowledged_ids()
        deadline = self.traffic.clock() + self.settings.settle_seconds
        while True:
            held = {
                region: present_ids(self.aws, self.outputs.table_name, region, wanted)
                for region in self.outputs.regions
            }
            in_all = set.intersection(*held.values())
            if in_all == wanted or self.traffic.clock() >= deadline:
                break
            self.traffic.sleep(self.settings.poll_interval_seconds)
        missing = wanted - set[str]().union(*held.values())
        report.payments_lost = len(missing)
        report.regions_consistent_after_failback = in_all == wanted
        self.note("note", f"{len(in_all)} of {len(wanted)} payments in every region")
        account_clients(report, self.traffic, missing, self.fault_at)

    def _add_metrics(self, report: DrillReport, wall_started: datetime) -> None:
        tallies = self.traffic.tallies()
        report.samples = self.traffic.samples()
        report.timeline = sorted(self.timeline, key=lambda event: event.at_seconds)
        report.requests_failed = sum(tally.failed for tally in tallies)
        report.payments_rejected = sum(tally.rejected for tally in tallies)
        report.payments_acknowledged = len(self.traffic.acknowledged_ids())
        report.duplicate_details = [detail for tally in tallies for detail in tally.duplicates]
        report.payments_duplicated = len(report.duplicate_details)
        if report.payments_rejected:
            report.failed_checks.append(
                f"{report.payments_rejected} well-formed payments were rejected (4xx)"
            )
        if report.payments_duplicated:
            report.failed_checks.append(
                f"{report.payments_duplicated} payments were answered under an unexpected id"
            )
        for sample in report.samples:
            if sample.region:
                report.requests_by_region[sample.region] = (
                    report.requests_by_region.get(sample.region, 0) + 1
                )
        # Minute datapoints: include the minute the drill started in.
        start = wall_started.replace(second=0, microsecond=0)
        end = self.wall_clock()
        maxima: list[float] = []
        averages: list[float] = []
        for source in self.outputs.regions:
            for receiving in self.outputs.others(source):
                points = replication_latency_series(
                    self.aws, self.outputs, source, receiving, start, end
                )
                maxima += [float(point["Maximum"]) for point in points]
                averages += [float(point["Average"]) for point in points]
        report.replication_lag_max_ms = max(maxima, default=0.0)
        # CloudWatch's per-minute averages; their median stands in for the p50 of the lag.
        report.replication_lag_p50_ms = statistics.median(averages) if averages else 0.0
        report.dlq_messages = {
            region: dlq_depth(self.aws, self.outputs, region) for region in self.outputs.regions
        }

    def _empty_report(self) -> DrillReport:
        outputs = self.outputs
        strong = outputs.rpo_budget_seconds == 0  # only strong consistency has an RPO of zero
        return DrillReport(
            scenario=AWS_SCENARIO,
            consistency_mode=(ConsistencyMode.STRONG if strong else ConsistencyMode.EVENTUAL).value,
            environment=f"AWS stack {outputs.stack}",
            simulated=False,
            real_counterpart="none needed: this drill ran on the deployed stack",
            rto_target_seconds=outputs.rto_target_seconds,
            rpo_target_seconds=outputs.rpo_target_seconds,
            rto_budget_seconds=outputs.rto_budget_seconds,
        )


def _switch_note(result: SwitchResult) -> str:
    plan = result.plan
    if result.converged:
        return f"DNS answers {plan.target}; the switch agrees after {result.seconds:.1f}s"
    return f"{plan.action} to {plan.target} did not settle within {result.seconds:.1f}s"


def run(
    args: argparse.Namespace,
    aws: Aws | None = None,
    send: Sender = post_json,
    resolve: Resolver = resolve_ipv4,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    transport: Transport | None = None,
    seed: int | None = None,
) -> int:
    """Entry point called by the `drill` command with `--on-aws`. `send` carries the clients
    of the failover name, `transport` the SDK's (None: its own); `seed` fixes the SDK's
    jitter."""

    def command() -> int:
        scenario = getattr(args, "scenario", None)
        if scenario not in (None, AWS_SCENARIO):
            raise OpsError(
                f"on AWS the drill injects only the {AWS_SCENARIO!r} fault (the manual failover "
                f"switch); run scenario {scenario!r} in the lab"
            )
        stack = getattr(args, "stack", None)
        if not stack:
            raise OpsError("--on-aws needs --stack NAME")
        clients = aws or Aws()
        outputs = load_outputs(
            stack, getattr(args, "outputs", None), getattr(args, "work_dir", None) or project_root()
        )
        settings = drill_settings(args)
        problem = settings_problem(outputs, settings)
        if problem is not None:
            raise OpsError(problem)
        refuse_unconfirmable("drill --on-aws", args)
        clients.require_credentials()
        forced = check_starting_point(clients, outputs, settings, resolve)
        if getattr(args, "dry_run", False):
            print(dry_run_plan(outputs, settings, forced))
            return EXIT_OK
        require_confirmation(
            "drill --on-aws",
            f"Fence {outputs.primary} of stack {outputs.stack} for a failover drill?",
            args,
        )
        for problem in forced:
            print(f"warning: forced past: {problem}", file=sys.stderr)
        # The drill pays as a merchant of its own, with a key that lives only as long as it.
        merchant_id = f"drill-{uuid.uuid4().hex[:16]}"
        merchants = Merchants(outputs, clients, sys.stderr, sys.stderr)
        try:
            issued, _ = merchants.issue(merchant_id)
        except (OpsError, *AWS_ERRORS) as error:
            reason = error if isinstance(error, OpsError) else describe_aws_error(error)
            raise OpsError(
                f"could not issue the drill's merchant key: {reason}; the stack was not changed"
            ) from None
        traffic = drill_traffic(
            failover_url=outputs.failover_url,
            endpoints=outputs.api_endpoints,
            merchant_id=merchant_id,
            api_key=issued.api_key,
            client_kind=settings.client_kind,
            clients=settings.clients,
            rate_per_second=settings.rate_per_second,
            send=send,
            transport=transport,
            clock=clock,
            sleep=sleep,
            seed=seed,
        )
        try:
            drill = Drill(clients, outputs, traffic, settings, Progress(), resolve, wall_clock)
            report = drill.run()
        except KeyboardInterrupt:
            raise OpsError(
                f"drill interrupted: {outputs.primary} is set {Mode.ACTIVE.value} again and the "
                f"drill's key for merchant {merchant_id} is revoked; no report written",
                EXIT_INTERRUPTED,
            ) from None
        finally:
            traffic.close()
            merchants.revoke(merchant_id)
        print(report.to_text())
        if getattr(args, "json", None):
            write_text_creating_folders(Path(args.json), report.to_json() + "\n")
        if getattr(args, "timeline", None):
            from payments_dr.lab.timeline import draw_timeline  # matplotlib: only when asked

            draw_timeline(report, args.timeline)
        return EXIT_OK if report.passed else EXIT_FAILED

    return run_guarded(command)
