"""`payments-dr status`: one look at both regions, as a table or JSON.

Each reading is taken on its own, so a region that does not answer shows its error in its
cells while the rest of the picture is still printed: that is when on-call needs it most.
The command then exits 1, so a script never mistakes a partial picture for a whole one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, TypeVar

from payments_dr.contract import ConflictStatus
from payments_dr.ops.aws import Aws
from payments_dr.ops.observe import (
    AWS_ERRORS,
    DnsAnswer,
    HealthCheckState,
    Resolver,
    alarm_states,
    describe_aws_error,
    dlq_depth,
    dns_answer,
    health_check_state,
    read_mode,
    replication_latency_ms,
    resolve_ipv4,
)
from payments_dr.ops.outputs import StackOutputs
from payments_dr.service.conflicts import ConflictStore
from payments_dr.service.store import TableUnavailable

T = TypeVar("T")

PARALLEL_READINGS = 10  # every regional reading of a two-region stack at once


@dataclass
class RegionStatus:
    region: str
    role: str
    health: HealthCheckState | None = None
    mode: str | None = None
    alarms: dict[str, str] | None = None
    replication_latency_ms: dict[str, float | None] = field(default_factory=dict)  # by receiver
    dlq_depth: int | None = None
    open_conflicts: int | None = None  # overwritten versions awaiting reconciliation
    errors: dict[str, str] = field(default_factory=dict)  # reading -> why it failed


@dataclass
class StackStatus:
    stack: str
    api_domain: str
    dns: DnsAnswer | None
    regions: list[RegionStatus]
    errors: dict[str, str] = field(default_factory=dict)
    dashboard_url: str | None = None  # absent from stacks deployed before the dashboard

    @property
    def complete(self) -> bool:
        """Every reading was taken."""
        return not self.errors and not any(region.errors for region in self.regions)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["complete"] = self.complete
        for region, status in zip(data["regions"], self.regions, strict=True):
            if status.health is not None:
                region["health"]["healthy"] = status.health.healthy
        data["serving_region"] = self.dns.region if self.dns else None
        return data


@dataclass(frozen=True)
class _RegionalReading:
    status: RegionStatus
    what: str  # the key its error is recorded under
    store: Callable[[Any], None]  # puts the value into `status`
    reading: Callable[..., Any]
    args: tuple[Any, ...]


def _regional_readings(
    aws: Aws, outputs: StackOutputs, status: RegionStatus
) -> list[_RegionalReading]:
    name = status.region
    readings = [
        _RegionalReading(
            status, "mode", partial(setattr, status, "mode"), read_mode, (aws, outputs, name)
        ),
        _RegionalReading(
            status, "alarms", partial(setattr, status, "alarms"), alarm_states, (aws, outputs, name)
        ),
        _RegionalReading(
            status,
            "dlq_depth",
            partial(setattr, status, "dlq_depth"),
            dlq_depth,
            (aws, outputs, name),
        ),
        _RegionalReading(
            status,
            "open_conflicts",
            partial(setattr, status, "open_conflicts"),
            open_conflicts,
            (aws, outputs, name),
        ),
    ]
    readings += [
        _RegionalReading(
            status,
            f"replication_latency_ms.{peer}",
            partial(status.replication_latency_ms.__setitem__, peer),
            replication_latency_ms,
            (aws, outputs, name, peer),
        )
        for peer in outputs.others(name)
    ]
    return readings


def collect_status(
    aws: Aws, outputs: StackOutputs, resolve: Resolver = resolve_ipv4
) -> StackStatus:
    """Takes every reading. Regional readings run in parallel, so a region whose APIs hang
    costs one timeout rather than one per reading; Route 53 is read here, in a fixed order."""
    regions = [
        RegionStatus(region=name, role=region.role.value)
        for name, region in outputs.regions.items()
    ]
    readings = [item for status in regions for item in _regional_readings(aws, outputs, status)]
    stack_errors: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=PARALLEL_READINGS) as pool:
        futures = [pool.submit(item.reading, *item.args) for item in readings]
        for status in regions:
            check_id = outputs.region(status.region).health_check_id
            status.health = _read(status.errors, "health", health_check_state, aws, check_id)
        answer = _read(stack_errors, "dns", dns_answer, aws, outputs, resolve)
        for item, future in zip(readings, futures, strict=True):
            item.store(_read(item.status.errors, item.what, future.result))
    return StackStatus(
        outputs.stack, outputs.api_domain, answer, regions, stack_errors, outputs.dashboard_url
    )


def open_conflicts(aws: Aws, outputs: StackOutputs, region: str) -> int:
    """Open conflict records in `region`'s replica (they replicate, so both regions agree
    once replication has caught up; each is read, because either may be down)."""
    store = ConflictStore(aws.client("dynamodb", region), outputs.table_name)
    return len(store.list(ConflictStatus.OPEN))


def _read(errors: dict[str, str], what: str, reading: Callable[..., T], *args: Any) -> T | None:
    """Takes one reading; an AWS failure is recorded under `what` instead of raised."""
    try:
        return reading(*args)
    except AWS_ERRORS as error:
        errors[what] = describe_aws_error(error)
        return None
    except TableUnavailable as error:
        errors[what] = str(error)
        return None


def render_json(status: StackStatus) -> str:
    return json.dumps(status.to_dict(), indent=2, sort_keys=True, default=str)


def render_table(status: StackStatus) -> str:
    serving = status.dns.describe() if status.dns else f"error: {status.errors['dns']}"
    title = f"stack {status.stack}: {status.api_domain} answers -> {serving}"
    if status.dashboard_url:
        title += f"  dashboard {status.dashboard_url}"
    lines = [title, ""]
    header = (
        "REGION",
        "ROLE",
        "HEALTH CHECK",
        "MODE",
        "REPLICATION LAG",
        "DLQ",
        "CONFLICTS",
        "ALARMS",
    )
    rows = [header] + [_row(region) for region in status.regions]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines += [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    for region in status.regions:
        lines += [f"{region.region}: {what} failed: {why}" for what, why in region.errors.items()]
    return "\n".join(lines)


def _row(region: RegionStatus) -> tuple[str, ...]:
    errors = region.errors
    health = region.health.describe() if region.health else "error"
    mode = region.mode or "error"
    lag = ", ".join(
        f"->{peer} {_latency_text(value, f'replication_latency_ms.{peer}' in errors)}"
        for peer, value in region.replication_latency_ms.items()
    )
    dlq = "error" if region.dlq_depth is None else str(region.dlq_depth)
    conflicts = "error" if region.open_conflicts is None else str(region.open_conflicts)
    alarms = _alarms_text(region.alarms)
    return (region.region, region.role, health, mode, lag, dlq, conflicts, alarms)


def _latency_text(value_ms: float | None, failed: bool) -> str:
    if failed:
        return "error"
    if value_ms is None:
        return "no data"
    return f"{value_ms / 1000:.1f}s"


def _alarms_text(alarms: dict[str, str] | None) -> str:
    if alarms is None:
        return "error"
    firing = sorted(purpose for purpose, state in alarms.items() if state != "OK")
    if not firing:
        return f"all OK ({len(alarms)})"
    return ", ".join(f"{purpose}={alarms[purpose]}" for purpose in firing)
