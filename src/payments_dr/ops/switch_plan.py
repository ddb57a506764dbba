"""What a failover or failback would do, and whether it may: the plan, the readings taken
before any write (each on its own; one that fails is unknown, with its region) and the
refusals made on what could be read."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from payments_dr.contract import Mode, SwitchState
from payments_dr.ops.aws import EXIT_REFUSED, Aws, OpsError
from payments_dr.ops.observe import (
    AWS_ERRORS,
    describe_aws_error,
    health_check_state,
    read_mode,
    replication_latency_ms,
)
from payments_dr.ops.outputs import StackOutputs
from payments_dr.ops.traffic_switch import read_switch, switch_location

Action = Literal["failover", "failback"]
READ_ERRORS = (*AWS_ERRORS, OpsError)


@dataclass(frozen=True)
class SwitchPlan:
    action: Action
    target: str  # the region that should answer for the API name afterwards
    switches: dict[str, SwitchState]  # region -> the state its switch is set to
    fence: tuple[str, ...] = ()  # regions whose mode becomes fenced (best effort)
    unfence: tuple[str, ...] = ()  # regions whose mode becomes active (required)

    def writes(self, outputs: StackOutputs) -> list[str]:
        """Every write, in order, as the operator reads it."""
        unfence = [f"set {r} mode {Mode.ACTIVE.value} (SSM in {r})" for r in self.unfence]
        switches = [
            f"set {r} switch {state.value} ({where(outputs, r)})"
            for r, state in self.switches.items()
        ]
        fence = [f"set {r} mode {Mode.FENCED.value} (SSM in {r}; best effort)" for r in self.fence]
        return unfence + switches + fence


def where(outputs: StackOutputs, region: str) -> str:
    try:
        location = switch_location(outputs, region)
    except OpsError:
        return "no switch deployed"
    return location if location == "ARC cluster" else f"CloudWatch in {location}"


def plan_failover(outputs: StackOutputs, target: str) -> SwitchPlan:
    outputs.region(target)  # an unknown region is reported before anything else
    if target == outputs.primary:
        raise OpsError(
            f"{target} is the primary region: return traffic to it with `payments-dr failback`",
            EXIT_REFUSED,
        )
    others = outputs.others(target)
    return SwitchPlan(
        "failover", target, switches=dict.fromkeys(others, SwitchState.AWAY), fence=others
    )


def plan_failback(outputs: StackOutputs) -> SwitchPlan:
    primary = outputs.primary
    return SwitchPlan(
        "failback", primary, switches={primary: SwitchState.SERVE}, unfence=(primary,)
    )


@dataclass(frozen=True)
class Reading:
    """One observation; `error` set means unknown."""

    what: str
    region: str  # where it was read from (or about)
    value: Any = None
    error: str | None = None

    def describe(self) -> str:
        shown = f"unknown ({self.error})" if self.error else str(self.value)
        return f"{self.what} [{self.region}]: {shown}"

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "region": self.region, "value": self.value, "error": self.error}


def take(what: str, region: str, reading: Callable[[], Any]) -> Reading:
    try:
        return Reading(what, region, reading())
    except READ_ERRORS as error:
        return Reading(what, region, error=error_text(error))


def error_text(error: Exception) -> str:
    return describe_aws_error(error) if isinstance(error, AWS_ERRORS) else str(error)


@dataclass
class Assessment:
    readings: list[Reading]
    reasons: list[str]  # why not to move: refuse unless forced

    @property
    def unknown(self) -> list[Reading]:
        return [reading for reading in self.readings if reading.error]


def assess(aws: Aws, outputs: StackOutputs, plan: SwitchPlan) -> Assessment:
    """Takes every reading at once (a dead region costs one timeout, not one per reading)."""
    target = plan.target
    checks: list[tuple[str, str, Callable[[], Any]]] = []
    if plan.action == "failover":
        checks += [
            (
                "health check",
                target,
                lambda: health_check_state(aws, outputs.region(target).health_check_id).describe(),
            ),
            ("mode", target, lambda: read_mode(aws, outputs, target)),
            ("switch", target, lambda: read_switch(aws, outputs, target).value),
        ]
    else:
        checks.append(("table", target, lambda: _table_status(aws, outputs, target)))
    for source in outputs.others(target):
        lag = partial(_lag_seconds, aws, outputs, source, target)
        checks.append((f"replication lag {source}->{target}", source, lag))
    with ThreadPoolExecutor(max_workers=len(checks)) as pool:
        futures = [pool.submit(take, what, region, reading) for what, region, reading in checks]
        readings = [future.result() for future in futures]
    return Assessment(readings, _reasons(outputs, plan, readings))


def _table_status(aws: Aws, outputs: StackOutputs, region: str) -> str:
    table = aws.client("dynamodb", region).describe_table(TableName=outputs.table_name)
    return str(table["Table"]["TableStatus"])


def _lag_seconds(aws: Aws, outputs: StackOutputs, source: str, receiving: str) -> float | None:
    latency_ms = replication_latency_ms(aws, outputs, source, receiving)
    # No datapoint: nothing was written recently, so nothing is waiting to replicate.
    return None if latency_ms is None else round(latency_ms / 1000, 1)


def _reasons(outputs: StackOutputs, plan: SwitchPlan, readings: list[Reading]) -> list[str]:
    """Refuse on what was read; an unknown reading refuses only where it is the target's own
    (a failover must be able to leave a region whose readings all fail)."""
    reasons: list[str] = []
    rpo = outputs.rpo_target_seconds
    for reading in readings:
        value, where = reading.value, reading.region
        if reading.what.startswith("replication lag"):
            if reading.error and plan.action == "failback":
                reasons.append(f"cannot read {reading.what} in {where}: {reading.error}")
            elif isinstance(value, float) and value > rpo:
                reasons.append(f"{reading.what} is {value:g}s, above the RPO target of {rpo:g}s")
        elif reading.error:
            if reading.what in ("mode", "table"):
                reasons.append(f"cannot read {reading.what} of {where}: {reading.error}")
        elif reading.what == "health check" and str(value).startswith("UNHEALTHY"):
            reasons.append(f"target {where} is unhealthy: Route 53 health check {value}")
        elif reading.what == "mode" and value != Mode.ACTIVE:
            reasons.append(f"target {where} is in mode {value!r}, not {Mode.ACTIVE.value!r}")
        elif reading.what == "switch" and value == SwitchState.AWAY:
            reasons.append(f"target {where}'s own switch is {value}: Route 53 would not use it")
        elif reading.what == "table" and value != "ACTIVE":
            reasons.append(f"table {outputs.table_name} in {where} is {value}, not ACTIVE")
    return reasons
