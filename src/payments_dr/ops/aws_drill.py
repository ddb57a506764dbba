"""`payments-dr drill --on-aws`: a timed failover and failback on a deployed stack.

Synthetic payments flow through the failover URL the whole time. The fault is the operator's
failover, exactly as `payments-dr failover` makes it: the primary's traffic switch set away
(from outside the primary) and its mode fenced; the one fault that is safe to inject into a
real stack. The lab covers outages, gray failures, table faults and replication stalls. The result
is the same `DrillReport` the lab produces, with `simulated=False`: evidence for a DR test.

Whatever happens, the primary's switch is set to serve and its mode active again before the
drill returns.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from payments_dr.cli_arguments import write_text_creating_folders
from payments_dr.contract import PAYMENTS_PATH, TABLE_HASH_KEY, ConsistencyMode, Mode, SwitchState
from payments_dr.drill_report import DrillReport, RequestSample, TimelineEvent
from payments_dr.merchants import Merchants
from payments_dr.ops.aws import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_REFUSED, Aws, OpsError
from payments_dr.ops.commands import (
    DEFAULT_POLL_SECONDS,
    project_root,
    refuse_unconfirmable,
    require_confirmation,
    run_guarded,
)
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
from payments_dr.ops.switch import SwitchResult, execute, observe
from payments_dr.ops.switch_plan import SwitchPlan, assess, plan_failback, plan_failover
from payments_dr.ops.synthetic import Sender, SyntheticTraffic, post_json
from payments_dr.ops.traffic_switch import write_switches

# The one fault injected on AWS; the lab's drill offers the others.
AWS_SCENARIO = "fenced"
BATCH_GET_LIMIT = 100  # keys per BatchGetItem call
BATCH_GET_ATTEMPTS = 5  # DynamoDB may leave keys unprocessed under load; ask again


@dataclass(frozen=True)
class DrillSettings:
    rate_per_second: float = 2.0
    warmup_seconds: float = 15.0  # normal traffic before the fault
    hold_seconds: float = 60.0  # time spent failed over
    cooldown_seconds: float = 15.0  # traffic after failback, to see the primary serve again
    settle_seconds: float = 120.0  # after failback: time for both tables to hold every payment
    poll_interval_seconds: float = DEFAULT_POLL_SECONDS
    switch_timeout_seconds: float | None = None  # per switch; None: the stack's RTO target
    force: bool = False


class Drill:
    def __init__(
        self,
        aws: Aws,
        outputs: StackOutputs,
        traffic: SyntheticTraffic,
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

    def elapsed(self) -> float:
        return round(self.traffic.clock() - self.traffic.started, 3)

    def note(self, kind: str, detail: str) -> None:
        self.timeline.append(TimelineEvent(self.elapsed(), kind, detail))

    def run(self) -> DrillReport:
        wall_started = self.wall_clock()
        primary, secondary = self.outputs.primary, self.outputs.secondary
        report = self._empty_report()
        failed_back = False
        try:
            self.traffic.run_for(self.settings.warmup_seconds)
            fault_at = self.elapsed()
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
            report.failover_seconds = self._record(report, "failover", failover, fault_at)
            self.traffic.run_for(self.settings.hold_seconds)
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
        served = first_served(self.traffic.samples, target, switched_at)
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
        wanted = set(self.traffic.acknowledged.values())
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
        report.payments_lost = len(wanted - set[str]().union(*held.values()))
        report.regions_consistent_after_failback = in_all == wanted
        self.note("note", f"{len(in_all)} of {len(wanted)} payments in every region")

    def _add_metrics(self, report: DrillReport, wall_started: datetime) -> None:
        traffic = self.traffic
        report.samples = traffic.samples
        report.timeline = sorted(self.timeline, key=lambda event: event.at_seconds)
        report.requests_failed = traffic.failed
        report.payments_rejected = traffic.rejected
        report.payments_acknowledged = len(traffic.acknowledged)
        report.payments_duplicated = len(traffic.duplicates)
        report.duplicate_details = traffic.duplicates
        if traffic.rejected:
            report.failed_checks.append(
                f"{traffic.rejected} well-formed payments were rejected (4xx)"
            )
        if traffic.duplicates:
            report.failed_checks.append(
                f"{len(traffic.duplicates)} payments were answered under an unexpected id"
            )
        for sample in traffic.samples:
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


def starting_problems(aws: Aws, outputs: StackOutputs, resolve: Resolver) -> list[str]:
    """Why the stack is not in normal operation, where a drill must start; empty if it is."""
    plan = plan_failover(outputs, outputs.secondary)
    seen = observe(aws, outputs, plan, 0.0, resolve)
    problems = [
        f"{region}'s switch is {reading.value or 'unknown: ' + str(reading.error)}"
        for region, reading in seen.switches.items()
        if reading.value != SwitchState.SERVE
    ]
    if seen.dns_region != outputs.primary:
        problems.append(f"DNS answers {seen.dns_region or 'unknown'}, not {outputs.primary}")
    return problems + assess(aws, outputs, plan).reasons


def check_starting_point(
    aws: Aws, outputs: StackOutputs, settings: DrillSettings, resolve: Resolver
) -> list[str]:
    """Refuses (exit 3) a drill from a degraded stack unless forced; returns the problems.

    Run before the drill writes anything. A stack that cannot be read cannot be drilled:
    that is "could not start" (exit 2), not a failed drill.
    """
    try:
        problems = starting_problems(aws, outputs, resolve)
    except AWS_ERRORS as error:
        raise OpsError(
            f"cannot read the stack's health checks, DNS or replication: "
            f"{describe_aws_error(error)}; nothing was changed"
        ) from None
    if problems and not settings.force:
        raise OpsError(
            "a drill starts from normal operation, but: " + "; ".join(problems), EXIT_REFUSED
        )
    return problems


def dry_run_plan(outputs: StackOutputs, settings: DrillSettings, forced: list[str]) -> str:
    """What the drill would write and how long it would run; printed by --dry-run."""
    primary, secondary = outputs.primary, outputs.secondary
    primary_path = outputs.region(primary).ssm_path
    timeout = settings.switch_timeout_seconds or outputs.rto_target_seconds
    traffic = settings.warmup_seconds + settings.hold_seconds + settings.cooldown_seconds
    lines = [f"dry run of the drill on stack {outputs.stack}: nothing was written"]
    lines += [f"  forced past: {problem}" for problem in forced]
    if not forced:
        lines.append("  starting point: both regions healthy, DNS answers the primary")
    lines += [
        "it would:",
        "  1. issue a merchant key drill-<random> (a credential record in the table, a usage-plan"
        " key in each region), revoked at the end",
        f"  2. send synthetic payments to {outputs.failover_url} at"
        f" {settings.rate_per_second:g}/s for about {traffic:g} s plus the switches",
        f"  3. after {settings.warmup_seconds:g} s: set {primary}'s traffic switch away (from"
        f" outside {primary}) and put {primary_path}/mode = {Mode.FENCED.value} in {primary},"
        f" as `failover --to {secondary}` does; wait up to {timeout:g} s for {secondary} to serve",
        f"  4. after {settings.hold_seconds:g} s: set the switch back to serve and put"
        f" {primary_path}/mode = {Mode.ACTIVE.value} in {primary}, as `failback` does; wait up to"
        f" {timeout:g} s for {primary} to serve",
        f"  5. wait up to {settings.settle_seconds:g} s for both tables to hold every payment,"
        " then revoke the key",
    ]
    return "\n".join(lines)


def first_served(samples: Iterable[RequestSample], region: str, since: float) -> float | None:
    """Seconds from `since` to the first successful answer from `region`."""
    for sample in samples:
        if sample.at_seconds >= since and sample.region == region and 200 <= sample.status < 300:
            return round(sample.at_seconds - since, 3)
    return None


def present_ids(aws: Aws, table: str, region: str, ids: set[str]) -> set[str]:
    """The ids among `ids` that the table holds in `region`."""
    client = aws.client("dynamodb", region)
    found: set[str] = set()
    ordered = sorted(ids)
    for start in range(0, len(ordered), BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            "Keys": [
                {TABLE_HASH_KEY: {"S": value}} for value in ordered[start : start + BATCH_GET_LIMIT]
            ],
            "ProjectionExpression": "#key",
            "ExpressionAttributeNames": {"#key": TABLE_HASH_KEY},
        }
        for _ in range(BATCH_GET_ATTEMPTS):
            response = client.batch_get_item(RequestItems={table: request})
            found |= {item[TABLE_HASH_KEY]["S"] for item in response["Responses"].get(table, [])}
            unprocessed = response.get("UnprocessedKeys", {}).get(table)
            if not unprocessed:
                break
            request = unprocessed  # keys left over count as absent after the last attempt
    return found


def _switch_note(result: SwitchResult) -> str:
    plan = result.plan
    if result.converged:
        return f"DNS answers {plan.target}; the switch agrees after {result.seconds:.1f}s"
    return f"{plan.action} to {plan.target} did not settle within {result.seconds:.1f}s"


def drill_settings(args: argparse.Namespace) -> DrillSettings:
    defaults = DrillSettings()
    return DrillSettings(
        rate_per_second=getattr(args, "rate", None) or defaults.rate_per_second,
        warmup_seconds=getattr(args, "warmup", None) or defaults.warmup_seconds,
        hold_seconds=getattr(args, "hold", None) or defaults.hold_seconds,
        cooldown_seconds=getattr(args, "cooldown", None) or defaults.cooldown_seconds,
        settle_seconds=getattr(args, "settle", None) or defaults.settle_seconds,
        poll_interval_seconds=getattr(args, "poll_interval", None)
        or defaults.poll_interval_seconds,
        switch_timeout_seconds=getattr(args, "timeout", None),
        force=bool(getattr(args, "force", False)),
    )


def run(
    args: argparse.Namespace,
    aws: Aws | None = None,
    send: Sender = post_json,
    resolve: Resolver = resolve_ipv4,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Entry point called by the `drill` command with `--on-aws`."""

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
        refuse_unconfirmable("drill --on-aws", args)
        clients.require_credentials()
        settings = drill_settings(args)
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
        try:
            traffic = SyntheticTraffic(
                url=outputs.failover_url.rstrip("/") + PAYMENTS_PATH,
                merchant_id=merchant_id,
                api_key=issued.api_key,
                send=send,
                clock=clock,
                sleep=sleep,
                rate_per_second=settings.rate_per_second,
                started=clock(),
            )
            drill = Drill(clients, outputs, traffic, settings, Progress(), resolve, wall_clock)
            report = drill.run()
        except KeyboardInterrupt:
            raise OpsError(
                f"drill interrupted: {outputs.primary} is set {Mode.ACTIVE.value} again and the "
                f"drill's key for merchant {merchant_id} is revoked; no report written",
                EXIT_INTERRUPTED,
            ) from None
        finally:
            merchants.revoke(merchant_id)
        print(report.to_text())
        if getattr(args, "json", None):
            write_text_creating_folders(Path(args.json), report.to_json() + "\n")
        if getattr(args, "timeline", None):
            from payments_dr.lab.timeline import draw_timeline  # matplotlib: only when asked

            draw_timeline(report, args.timeline)
        return EXIT_OK if report.passed else EXIT_FAILED

    return run_guarded(command)
