"""Failover and failback: flip the traffic switch from outside the failing region, fence it,
then watch Route 53 follow.

Failover to T writes only outside the region it leaves: the switch of every other region R
lives in T (alarm) or in the ARC cluster, so traffic moves even when R, its SSM or the
Route 53 control plane are down. Fencing R's SSM `mode` (writes refused by the service)
follows, as a guard for clients that call R directly; if R's SSM does not answer, that is
reported and traffic still moves.

Failback is the only way back: a recovered region's switch stays `away`, so Route 53 does
not return traffic on its own. It checks that the region's table serves and that replication
into it has caught up, sets its mode active, then its switch to `serve`.

Every reading is taken on its own; one that fails is shown as unknown with its region, and the
decision is made on what could be read.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from payments_dr.contract import SWITCH_PERIOD_SECONDS, Mode
from payments_dr.ops.aws import EXIT_FAILED, Aws, OpsError
from payments_dr.ops.observe import (
    AWS_ERRORS,
    DnsAnswer,
    Resolver,
    any_dns_answer,
    describe_aws_error,
    health_check_state,
    resolve_ipv4,
    write_mode,
)
from payments_dr.ops.outputs import StackOutputs
from payments_dr.ops.progress import Progress, Timing
from payments_dr.ops.switch_plan import (
    READ_ERRORS,
    Reading,
    SwitchPlan,
    error_text,
    take,
    where,
)
from payments_dr.ops.traffic_switch import read_switch, write_switches

# --- carrying the plan out --------------------------------------------------------------


@dataclass
class Step:
    """One write or one thing first seen, stamped in UTC for the incident record."""

    name: str
    region: str | None
    at: str
    ok: bool = True
    error: str | None = None
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Observation:
    at_seconds: float  # since the switch was written
    switches: dict[str, Reading]
    dns: Reading  # value: DnsAnswer
    target_health: Reading

    @property
    def dns_region(self) -> str | None:
        return self.dns.value.region if isinstance(self.dns.value, DnsAnswer) else None

    def describe(self) -> str:
        parts = [f"{region} switch {_short(r)}" for region, r in self.switches.items()]
        parts.append(f"{self.target_health.region} health {_short(self.target_health)}")
        dns = self.dns.value.describe() if isinstance(self.dns.value, DnsAnswer) else "unknown"
        parts.append(f"DNS -> {dns}")
        return "  ".join(parts)


def _short(reading: Reading) -> str:
    return "unknown" if reading.error else str(reading.value)


@dataclass
class SwitchResult:
    plan: SwitchPlan
    converged: bool = False
    seconds: float = 0.0  # switch written -> the switches and DNS agree (or the timeout)
    switch_seen_seconds: float | None = None  # switch written -> read back as planned
    steps: list[Step] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)

    @property
    def fence_failed(self) -> list[Step]:
        return [step for step in self.steps if step.name == "fence" and not step.ok]


class SwitchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a switch, with what it left behind; still a KeyboardInterrupt."""

    def __init__(self, result: SwitchResult, switched: bool, seconds: float) -> None:
        super().__init__()
        self.result = result
        self.switched = switched
        self.seconds = seconds


def apply_writes(
    aws: Aws,
    outputs: StackOutputs,
    plan: SwitchPlan,
    result: SwitchResult,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Unfence (required), switch (required), fence (best effort), each stamped."""
    for region in plan.unfence:
        try:
            write_mode(aws, outputs, region, Mode.ACTIVE)
        except AWS_ERRORS as error:
            raise OpsError(
                f"could not set {region} {Mode.ACTIVE.value}: {describe_aws_error(error)}."
                " Nothing else was written.",
                EXIT_FAILED,
            ) from error
        result.steps.append(Step("unfence", region, utc_now(), detail=f"mode {Mode.ACTIVE}"))
    try:
        write_switches(aws, outputs, plan.switches, now)
    except READ_ERRORS as error:
        written = ", ".join(f"{s.region} {s.name}" for s in result.steps) or "nothing"
        raise OpsError(
            f"could not set the traffic switch ({', '.join(plan.switches)}):"
            f" {error_text(error)}. Written before it: {written}.",
            EXIT_FAILED,
        ) from error
    for region, state in plan.switches.items():
        result.steps.append(
            Step("switch", region, utc_now(), detail=f"{state} ({where(outputs, region)})")
        )
    for region in plan.fence:
        try:
            write_mode(aws, outputs, region, Mode.FENCED)
            result.steps.append(Step("fence", region, utc_now(), detail=f"mode {Mode.FENCED}"))
        except AWS_ERRORS as error:
            result.steps.append(
                Step("fence", region, utc_now(), ok=False, error=describe_aws_error(error))
            )


def observe(
    aws: Aws, outputs: StackOutputs, plan: SwitchPlan, at_seconds: float, resolve: Resolver
) -> Observation:
    """The switches are read in parallel in their own regions; Route 53 (one API, in
    us-east-1) is read meanwhile, in a fixed order."""
    target = plan.target
    with ThreadPoolExecutor(max_workers=len(plan.switches)) as pool:
        futures = {
            region: pool.submit(take, "switch", region, partial(read_switch, aws, outputs, region))
            for region in plan.switches
        }
        health = take(
            "health check",
            target,
            lambda: health_check_state(aws, outputs.region(target).health_check_id).describe(),
        )
        dns = take("DNS answer", "Route 53", lambda: any_dns_answer(aws, outputs, resolve))
        switches = {region: future.result() for region, future in futures.items()}
    return Observation(at_seconds, switches, dns, health)


def switches_as_planned(plan: SwitchPlan, seen: Observation) -> bool:
    return all(seen.switches[r].value == state for r, state in plan.switches.items())


def converged(plan: SwitchPlan, seen: Observation) -> bool:
    return switches_as_planned(plan, seen) and seen.dns_region == plan.target


def execute(
    aws: Aws,
    outputs: StackOutputs,
    plan: SwitchPlan,
    timing: Timing,
    progress: Progress,
    resolve: Resolver = resolve_ipv4,
) -> SwitchResult:
    """Writes, then polls until the switches and DNS agree or time runs out.

    Ctrl-C raises `SwitchInterrupted`, which says whether the switch was written.
    """
    result = SwitchResult(plan)
    wall = _wall_clock(timing.clock)
    try:
        apply_writes(aws, outputs, plan, result, wall)
    except KeyboardInterrupt:
        switched = any(step.name == "switch" for step in result.steps)
        raise SwitchInterrupted(result, switched, 0.0) from None
    started = timing.clock()
    try:
        _wait(aws, outputs, result, started, timing, progress, resolve, wall)
    except KeyboardInterrupt:
        progress.finish()
        raise SwitchInterrupted(result, True, timing.clock() - started) from None
    progress.finish()
    return result


def _wait(
    aws: Aws,
    outputs: StackOutputs,
    result: SwitchResult,
    started: float,
    timing: Timing,
    progress: Progress,
    resolve: Resolver,
    wall: Callable[[], datetime],
) -> None:
    plan = result.plan
    dns_moved = False
    sent_at = 0.0
    while True:
        elapsed = timing.clock() - started
        result.seconds = elapsed
        seen = observe(aws, outputs, plan, elapsed, resolve)
        result.observations.append(seen)
        progress.update(elapsed, seen.describe())
        if result.switch_seen_seconds is None and switches_as_planned(plan, seen):
            result.switch_seen_seconds = elapsed
            result.steps.append(Step("switch seen", None, utc_now(), detail=_switch_text(plan)))
        if not dns_moved and seen.dns_region == plan.target:
            dns_moved = True
            result.steps.append(Step("dns moved", None, utc_now(), detail=f"-> {plan.target}"))
        if converged(plan, seen):
            result.converged = True
            return
        if not switches_as_planned(plan, seen) and elapsed - sent_at >= SWITCH_PERIOD_SECONDS:
            # An alarm switch reads the Maximum of each minute: a switch flipped back within
            # the minute of the previous flip shows only once a later minute holds the value.
            sent_at = elapsed
            try:
                write_switches(aws, outputs, plan.switches, wall)
                result.steps.append(
                    Step("switch re-sent", None, utc_now(), detail=_switch_text(plan))
                )
            except READ_ERRORS as error:
                progress.update(elapsed, f"re-sending the switch failed: {error_text(error)}")
        if elapsed + timing.poll_interval_seconds > timing.timeout_seconds:
            return
        timing.sleep(timing.poll_interval_seconds)


# clock -> (UTC time, clock reading) when it was first used for the switch's datapoints
_WALL_ANCHORS: dict[Callable[[], float], tuple[datetime, float]] = {}


def _wall_clock(clock: Callable[[], float]) -> Callable[[], datetime]:
    """UTC time that advances with `clock`: datetime.now with the real clock; a simulated
    clock (tests) moves the switch's datapoints with it, across commands."""
    wall_start, clock_start = _WALL_ANCHORS.setdefault(clock, (datetime.now(UTC), clock()))
    return lambda: wall_start + timedelta(seconds=clock() - clock_start)


def _switch_text(plan: SwitchPlan) -> str:
    return ", ".join(f"{region} {state}" for region, state in plan.switches.items())


def summary(result: SwitchResult, outputs: StackOutputs) -> str:
    plan = result.plan
    if not result.converged:
        last = result.observations[-1].describe() if result.observations else "nothing observed"
        text = (
            f"{plan.action} to {plan.target} did not settle within {result.seconds:.1f}s; "
            f"last seen: {last}. The switch stays as written: check `payments-dr status`."
        )
    else:
        parts = [f"{plan.action} to {plan.target} complete in {result.seconds:.1f}s"]
        if result.switch_seen_seconds is not None:
            parts.append(f"switch read back after {result.switch_seen_seconds:.1f}s")
        parts.append(f"RTO target {outputs.rto_target_seconds:g}s")
        text = "; ".join(parts)
    for step in result.fence_failed:
        text += (
            f"\nwarning: {step.region} is not fenced ({step.error}): traffic moved all the same;"
            f" repeat the command once {step.region}'s SSM answers, so that it comes back fenced"
        )
    return text
