"""Failover and failback: flip a region's mode in SSM, then watch Route 53 follow.

The mode parameter is the only switch. Fencing a region makes its deep health check fail;
Route 53's failover records then answer with the other region. The commands refuse to move
traffic towards a region that cannot take it, or while replication lags behind the RPO
target, unless forced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from payments_dr.contract import Mode
from payments_dr.ops.aws import EXIT_FAILED, EXIT_REFUSED, Aws, OpsError
from payments_dr.ops.observe import (
    AWS_ERRORS,
    DnsAnswer,
    HealthCheckState,
    Resolver,
    describe_aws_error,
    dns_answer,
    health_check_state,
    read_mode,
    replication_latency_ms,
    resolve_ipv4,
    write_mode,
)
from payments_dr.ops.outputs import StackOutputs
from payments_dr.ops.progress import Progress, Timing

Action = Literal["failover", "failback"]


@dataclass(frozen=True)
class SwitchPlan:
    action: Action
    target: str  # the region that should answer for the API name afterwards
    fence: tuple[str, ...]  # regions whose mode becomes fenced
    unfence: tuple[str, ...]  # regions whose mode becomes active


@dataclass(frozen=True)
class Observation:
    at_seconds: float  # since the mode was written
    health: dict[str, HealthCheckState]
    dns: DnsAnswer

    def describe(self) -> str:
        checks = "  ".join(f"{region} {state.describe()}" for region, state in self.health.items())
        return f"{checks}  DNS -> {self.dns.describe()}"


@dataclass
class SwitchResult:
    plan: SwitchPlan
    converged: bool
    seconds: float  # mode written -> health checks and DNS agree (or the timeout)
    detection_seconds: float | None = None  # mode written -> fenced regions reported unhealthy
    observations: list[Observation] = field(default_factory=list)


def plan_failover(outputs: StackOutputs, target: str) -> SwitchPlan:
    outputs.region(target)  # an unknown region is reported before anything else
    if target == outputs.primary:
        raise OpsError(
            f"{target} is the primary region: return traffic to it with `payments-dr failback`",
            EXIT_REFUSED,
        )
    return SwitchPlan("failover", target, fence=outputs.others(target), unfence=())


def plan_failback(outputs: StackOutputs) -> SwitchPlan:
    return SwitchPlan("failback", outputs.primary, fence=(), unfence=(outputs.primary,))


def refusal_reasons(aws: Aws, outputs: StackOutputs, plan: SwitchPlan) -> list[str]:
    """Why traffic must not move to the plan's target now; empty when it may."""
    reasons = _target_reasons(aws, outputs, plan)
    for source in outputs.others(plan.target):
        reasons += _lag_reasons(aws, outputs, source, plan.target)
    return reasons


def _target_reasons(aws: Aws, outputs: StackOutputs, plan: SwitchPlan) -> list[str]:
    target = plan.target
    if plan.action == "failback":
        # A fenced region fails its health check by design, so Route 53 cannot vouch for it;
        # check that its replica table serves instead. The health check is awaited afterwards.
        return _table_reasons(aws, outputs, target)
    try:
        state = health_check_state(aws, outputs.region(target).health_check_id)
        mode = read_mode(aws, outputs, target)
    except AWS_ERRORS as error:
        return [f"cannot tell whether {target} is healthy: {describe_aws_error(error)}"]
    reasons = []
    if not state.healthy:
        reasons.append(
            f"target {target} is unhealthy: Route 53 health check {state.check_id} has "
            f"{state.reporting_healthy} of {state.checkers} checkers reporting healthy"
        )
    if mode != Mode.ACTIVE:
        reasons.append(f"target {target} is in mode {mode!r}, not {Mode.ACTIVE.value!r}")
    return reasons


def _table_reasons(aws: Aws, outputs: StackOutputs, region: str) -> list[str]:
    try:
        table = aws.client("dynamodb", region).describe_table(TableName=outputs.table_name)
    except AWS_ERRORS as error:
        return [
            f"table {outputs.table_name} in {region} is unreachable: {describe_aws_error(error)}"
        ]
    status = table["Table"]["TableStatus"]
    if status != "ACTIVE":
        return [f"table {outputs.table_name} in {region} is {status}, not ACTIVE"]
    return []


def _lag_reasons(aws: Aws, outputs: StackOutputs, source: str, receiving: str) -> list[str]:
    try:
        latency_ms = replication_latency_ms(aws, outputs, source, receiving)
    except AWS_ERRORS as error:
        return [f"cannot read replication lag {source} -> {receiving}: {describe_aws_error(error)}"]
    # No datapoint means nothing was written recently, so nothing is waiting to replicate.
    if latency_ms is not None and latency_ms / 1000 > outputs.rpo_target_seconds:
        return [
            f"replication lag {source} -> {receiving} is {latency_ms / 1000:.1f}s, above the "
            f"RPO target of {outputs.rpo_target_seconds:g}s"
        ]
    return []


def apply_modes(aws: Aws, outputs: StackOutputs, plan: SwitchPlan) -> None:
    writes = [(region, Mode.FENCED) for region in plan.fence]
    writes += [(region, Mode.ACTIVE) for region in plan.unfence]
    for done, (region, mode) in enumerate(writes):
        try:
            write_mode(aws, outputs, region, mode)
        except AWS_ERRORS as error:
            written = ", ".join(f"{name} {value.value}" for name, value in writes[:done])
            hint = (
                " If the region is down, Route 53 moves traffic away once its health check "
                "fails; repeat this command as soon as its SSM answers, so that it comes back "
                "fenced."
                if mode is Mode.FENCED
                else ""
            )
            raise OpsError(
                f"could not set {region} {mode.value}: {describe_aws_error(error)}. "
                f"Written before it: {written or 'nothing'}.{hint}",
                EXIT_FAILED,
            ) from error


def observe(aws: Aws, outputs: StackOutputs, at_seconds: float, resolve: Resolver) -> Observation:
    health = {
        name: health_check_state(aws, region.health_check_id)
        for name, region in outputs.regions.items()
    }
    return Observation(at_seconds, health, dns_answer(aws, outputs, resolve))


def fenced_regions_down(plan: SwitchPlan, seen: Observation) -> bool:
    return all(not seen.health[region].healthy for region in plan.fence)


def converged(plan: SwitchPlan, seen: Observation) -> bool:
    return (
        seen.health[plan.target].healthy
        and fenced_regions_down(plan, seen)
        and seen.dns.region == plan.target
    )


class SwitchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a switch, with what it left behind; still a KeyboardInterrupt."""

    def __init__(self, plan: SwitchPlan, modes_written: bool, seconds: float) -> None:
        super().__init__()
        self.plan = plan
        self.modes_written = modes_written
        self.seconds = seconds

    def describe(self, outputs: StackOutputs) -> str:
        plan = self.plan
        status = f"`payments-dr status --stack {outputs.stack}`"
        if not self.modes_written:
            return (
                f"{plan.action} to {plan.target} interrupted while writing the modes: some may "
                f"be written. Run {status} to see each region's mode; the command is safe to "
                "run again."
            )
        if plan.action == "failover":
            undo = f"payments-dr failback --stack {outputs.stack}"
        else:
            undo = f"payments-dr failover --stack {outputs.stack} --to {outputs.secondary}"
        return (
            f"{plan.action} to {plan.target} interrupted after {self.seconds:.1f}s of waiting. "
            f"The modes stay written ({_modes_text(plan)}) and Route 53 follows them without "
            f"this command: watch {status}. To undo: `{undo}`."
        )


def _modes_text(plan: SwitchPlan) -> str:
    written = [f"{region} {Mode.FENCED.value}" for region in plan.fence]
    written += [f"{region} {Mode.ACTIVE.value}" for region in plan.unfence]
    return ", ".join(written)


def execute(
    aws: Aws,
    outputs: StackOutputs,
    plan: SwitchPlan,
    timing: Timing,
    progress: Progress,
    resolve: Resolver = resolve_ipv4,
) -> SwitchResult:
    """Writes the modes, then polls until health checks and DNS agree or time runs out.

    Ctrl-C raises `SwitchInterrupted`, which says whether the modes were written.
    """
    try:
        apply_modes(aws, outputs, plan)
    except KeyboardInterrupt:
        raise SwitchInterrupted(plan, modes_written=False, seconds=0.0) from None
    started = timing.clock()
    result = SwitchResult(plan, converged=False, seconds=0.0)
    try:
        _wait_until_converged(aws, outputs, result, started, timing, progress, resolve)
    except KeyboardInterrupt:
        progress.finish()
        raise SwitchInterrupted(plan, True, timing.clock() - started) from None
    progress.finish()
    return result


def _wait_until_converged(
    aws: Aws,
    outputs: StackOutputs,
    result: SwitchResult,
    started: float,
    timing: Timing,
    progress: Progress,
    resolve: Resolver,
) -> None:
    plan = result.plan
    while True:
        elapsed = timing.clock() - started
        result.seconds = elapsed
        try:
            seen = observe(aws, outputs, elapsed, resolve)
        except AWS_ERRORS as error:
            # The modes are written: a failed reading (throttling, a slow API) must not end
            # the wait, only this poll.
            progress.update(elapsed, f"reading failed, retrying: {describe_aws_error(error)}")
        else:
            result.observations.append(seen)
            progress.update(elapsed, seen.describe())
            if result.detection_seconds is None and plan.fence and fenced_regions_down(plan, seen):
                result.detection_seconds = elapsed
            if converged(plan, seen):
                result.converged = True
                return
        if elapsed + timing.poll_interval_seconds > timing.timeout_seconds:
            return
        timing.sleep(timing.poll_interval_seconds)


def summary(result: SwitchResult, outputs: StackOutputs) -> str:
    plan = result.plan
    if not result.converged:
        last = result.observations[-1].describe() if result.observations else "nothing observed"
        return (
            f"{plan.action} to {plan.target} did not settle within {result.seconds:.1f}s; "
            f"last seen: {last}. The modes stay as written: check `payments-dr status`."
        )
    parts = [f"{plan.action} to {plan.target} complete in {result.seconds:.1f}s"]
    if result.detection_seconds is not None:
        parts.append(f"health checks saw the fence after {result.detection_seconds:.1f}s")
    parts.append(f"RTO target {outputs.rto_target_seconds:g}s")
    return "; ".join(parts)
