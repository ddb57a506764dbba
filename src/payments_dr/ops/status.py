"""`payments-dr status`: one look at both regions, as a table or JSON.

Each reading is taken on its own, so a region that does not answer shows "unknown" in its
cells, and the failure below the table with the region it was read in, while the rest of the
picture is still printed: that is when on-call needs it most. The command then exits 1, so a
script never mistakes a partial picture for a whole one. Alarms are listed below the table,
grouped by state and wrapped to 80 columns.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, TypeVar

from payments_dr.contract import ConflictStatus
from payments_dr.ops.aws import Aws, OpsError
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
from payments_dr.ops.traffic_switch import read_switch, switch_location
from payments_dr.service.conflicts import ConflictStore
from payments_dr.service.store import TableUnavailable

T = TypeVar("T")

PARALLEL_READINGS = 12  # every regional reading of a two-region stack at once


@dataclass
class RegionStatus:
    region: str
    role: str
    health: HealthCheckState | None = None
    mode: str | None = None
    switch: str | None = None  # serve / away, read where the switch lives
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
            _switch_key(outputs, name),
            partial(setattr, status, "switch"),
            _switch_value,
            (aws, outputs, name),
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


def _switch_key(outputs: StackOutputs, region: str) -> str:
    """The switch's error key names where it was read: outside the region it governs."""
    try:
        return f"switch (read in {switch_location(outputs, region)})"
    except OpsError:
        return "switch"


def _switch_value(aws: Aws, outputs: StackOutputs, region: str) -> str:
    return read_switch(aws, outputs, region).value


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
    """Takes one reading; a failure is recorded under `what` instead of raised."""
    try:
        return reading(*args)
    except AWS_ERRORS as error:
        errors[what] = describe_aws_error(error)
    except (OpsError, TableUnavailable) as error:  # OpsError: e.g. a stack without the switch
        errors[what] = str(error)
    return None


def render_json(status: StackStatus) -> str:
    return json.dumps(status.to_dict(), indent=2, sort_keys=True, default=str)


WIDTH = 80
UNKNOWN = "unknown"


def render_table(status: StackStatus) -> str:
    serving = status.dns.describe() if status.dns else f"{UNKNOWN} ({status.errors['dns']})"
    title = f"stack {status.stack}: {status.api_domain} answers -> {serving}"
    if status.dashboard_url:
        title += f"  dashboard {status.dashboard_url}"
    lines = [title, ""]
    header = ("REGION", "ROLE", "HEALTH CHECK", "MODE", "SWITCH", "REPLICATION LAG", "DLQ")
    rows = [header] + [_row(region) for region in status.regions]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines += [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines += _unlatched(status)
    lines += _conflict_lines(status)
    lines += ["", *_alarm_lines(status.regions)]
    failures = [
        f"{region.region}: {what} failed: {why}"
        for region in status.regions
        for what, why in region.errors.items()
    ]
    if failures:
        lines += ["", "unknown readings:"]
        lines += [
            textwrap.fill(f, WIDTH, initial_indent="  ", subsequent_indent="    ") for f in failures
        ]
    return "\n".join(lines)


def _conflict_lines(status: StackStatus) -> list[str]:
    """Open conflict records per region, when there are any (or they could not be read)."""
    counts = {r.region: r.open_conflicts for r in status.regions}
    if not any(count != 0 for count in counts.values()):
        return []
    text = "open conflict records: " + ", ".join(
        f"{region} {UNKNOWN if count is None else count}" for region, count in counts.items()
    )
    return ["", textwrap.fill(f"{text} (payments-dr conflicts list --stack {status.stack})", WIDTH)]


def _unlatched(status: StackStatus) -> list[str]:
    """Route 53 moved traffic by a health check alone: it will return on its own."""
    serving = status.dns.region if status.dns else None
    left = [
        region
        for region in status.regions
        if region.role == "primary"
        and serving not in (None, region.region)
        and region.switch == "serve"
    ]
    if not left:
        return []
    text = (
        f"note: traffic left {left[0].region} by its health check alone and returns when the"
        f" check passes, before anyone checked replication: run `payments-dr failover --stack"
        f" {status.stack} --to {serving}` to keep it away until `payments-dr failback`"
    )
    return ["", textwrap.fill(text, WIDTH)]


def _row(region: RegionStatus) -> tuple[str, ...]:
    errors = region.errors
    health = region.health.describe() if region.health else UNKNOWN
    lag = ", ".join(
        f"->{peer} {_latency_text(value, f'replication_latency_ms.{peer}' in errors)}"
        for peer, value in region.replication_latency_ms.items()
    )
    dlq = UNKNOWN if region.dlq_depth is None else str(region.dlq_depth)
    return (
        region.region,
        region.role,
        health,
        region.mode or UNKNOWN,
        region.switch or UNKNOWN,
        lag,
        dlq,
    )


def _latency_text(value_ms: float | None, failed: bool) -> str:
    if failed:
        return UNKNOWN
    if value_ms is None:
        return "no data"
    return f"{value_ms / 1000:.1f}s"


def _alarm_lines(regions: list[RegionStatus]) -> list[str]:
    """Alarms grouped by state, worst first; each group wrapped to the terminal's 80 columns."""
    by_state: dict[str, list[str]] = {}
    unread = [region.region for region in regions if region.alarms is None]
    for region in regions:
        for purpose, state in sorted((region.alarms or {}).items()):
            by_state.setdefault(state, []).append(f"{region.region} {purpose}")
    order = ("ALARM", "MISSING", "INSUFFICIENT_DATA", "OK")
    lines = ["alarms:"]
    for state in sorted(by_state, key=lambda s: (order.index(s) if s in order else 0, s)):
        names = by_state[state]
        if state == "OK":
            lines.append(f"  OK: {len(names)}")
            continue
        text = f"{state} ({len(names)}): " + ", ".join(names)
        lines.append(textwrap.fill(text, WIDTH, initial_indent="  ", subsequent_indent="    "))
    if unread:
        lines.append(f"  {UNKNOWN}: {', '.join(unread)} (not read)")
    return lines
