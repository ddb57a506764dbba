"""The report of a failover drill, shared by the local lab (simulation) and drills on AWS."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class TimelineEvent:
    at_seconds: float  # since the drill started
    # "fault", "detected", "failover", "restore", "recovered", "failback", "note"
    kind: str
    detail: str


@dataclass(frozen=True)
class RequestSample:
    at_seconds: float
    region: str  # the region that answered ("" when no region answered)
    status: int  # HTTP status, 0 when the request got no answer


@dataclass(frozen=True)
class ClientRto:
    clients: int
    recovered: int
    p50_seconds: float | None
    p99_seconds: float | None
    max_seconds: float | None

    @classmethod
    def of(cls, clients: int, waits: Iterable[float]) -> ClientRto:
        """From the waits of the clients served again (fault to each one's first success);
        `clients` counts those never served again too."""
        ordered = sorted(waits)
        return cls(
            clients=clients,
            recovered=len(ordered),
            p50_seconds=_percentile(ordered, 0.50),
            p99_seconds=_percentile(ordered, 0.99),
            max_seconds=round(ordered[-1], 2) if ordered else None,
        )


def _percentile(ordered: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of sorted values."""
    if not ordered:
        return None
    rank = max(1, math.ceil(fraction * len(ordered)))
    return round(ordered[rank - 1], 2)


@dataclass
class DrillReport:
    scenario: str
    consistency_mode: str
    environment: str  # e.g. "local lab (simulation)" or "AWS stack prod"
    simulated: bool
    real_counterpart: str  # what the real-AWS equivalent of this drill is
    rto_target_seconds: float
    rpo_target_seconds: float
    rto_budget_seconds: float
    detection_seconds: float | None = None  # fault -> health checks report the region down
    failover_seconds: float | None = None  # fault -> first request served by the other region
    failback_seconds: float | None = None  # fault cleared -> primary serving again
    requests_by_region: dict[str, int] = field(default_factory=dict)
    requests_failed: int = 0  # no 2xx/4xx answer after the client's retries
    payments_acknowledged: int = 0
    # Acknowledged, then in no surviving table and in no conflict record: lost silently.
    payments_lost: int = 0
    # One client payment stored under two ids, or (strong mode) created in two regions.
    payments_duplicated: int = 0
    duplicate_details: list[str] = field(default_factory=list)
    replication_lag_max_ms: float = 0.0
    replication_lag_p50_ms: float = 0.0
    dlq_messages: dict[str, int] = field(default_factory=dict)
    regions_consistent_after_failback: bool | None = None
    timeline: list[TimelineEvent] = field(default_factory=list)
    samples: list[RequestSample] = field(default_factory=list)
    # Simulation only: wall seconds per simulated second, and the drill's wall time.
    time_scale: float | None = None
    wall_seconds: float | None = None
    payments_rejected: int = 0  # a well-formed payment answered 4xx: a service fault
    # Writes accepted by the primary but not yet applied in the secondary when the fault hit.
    replication_backlog_at_fault: int | None = None
    dlq_payment_ids: dict[str, list[str]] = field(default_factory=dict)
    failed_checks: list[str] = field(default_factory=list)  # further reasons the drill failed
    workload: str = "steady"
    # When the main fault was planned and when it took effect (simulated seconds); every
    # duration above is measured from the latter.
    fault_planned_at_seconds: float | None = None
    fault_at_seconds: float | None = None
    # Counted from what the service wrote (each conditional write's outcome per region):
    payments_accepted_twice: int = 0  # the same request created in two regions: stored once
    payments_two_versions: int = 0  # different requests under one id created in two regions
    # Acknowledged, replaced by another region's version, kept in a conflict record.
    payments_overwritten_recorded: int = 0
    conflicts_recorded: int = 0
    conflict_detection_max_seconds: float | None = None  # overwrite -> conflict record
    # A region lost for good: what it acknowledged that no survivor holds, and the age at
    # the loss of the oldest such payment (the measured RPO) against the budget.
    payments_lost_with_region: int = 0
    rpo_seconds: float | None = None
    rpo_budget_seconds: float | None = None
    # Per client category: sent, acknowledged, rejected, stored, overwritten-recorded, ...
    categories: dict[str, dict[str, int]] = field(default_factory=dict)
    # Client-perceived RTO per client kind ("dns", "sdk"): for each client, the fault to its
    # first acknowledged payment; p50, p99 and max over the clients, and how many never
    # recovered.
    client_rto_seconds: dict[str, ClientRto] = field(default_factory=dict)
    sdk_rto_target_seconds: float | None = None

    @property
    def passed(self) -> bool:
        within_budget = self.failover_seconds is None or (
            self.failover_seconds <= self.rto_budget_seconds
        )
        within_rpo = (
            self.rpo_seconds is None
            or self.rpo_budget_seconds is None
            or self.rpo_seconds <= self.rpo_budget_seconds
        )
        return (
            self.payments_lost == 0
            and within_budget
            and within_rpo
            and self.regions_consistent_after_failback is not False
            and not self.failed_checks
        )

    def _client_rto_lines(self, seconds: Callable[[float | None], str]) -> list[str]:
        lines = []
        for kind, rto in sorted(self.client_rto_seconds.items()):
            line = (
                f"  client-perceived RTO, {kind} clients: p50 {seconds(rto.p50_seconds)},"
                f" p99 {seconds(rto.p99_seconds)}, max {seconds(rto.max_seconds)}"
                f" ({rto.recovered} of {rto.clients} clients served again)"
            )
            target = self.sdk_rto_target_seconds
            if kind == "sdk" and target is not None and rto.p99_seconds is not None:
                verdict = "met" if rto.p99_seconds <= target else "MISSED"
                line += f"; target p99 {target:g} s {verdict}"
            lines.append(line)
        return lines

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def to_text(self) -> str:
        """A human-readable summary; simulated times also in wall seconds."""

        def seconds(value: float | None) -> str:
            if value is None:
                return "not observed"
            if self.time_scale is None:
                return f"{value:.1f} s"
            return f"{value:.1f} s simulated ({value * self.time_scale:.2f} s wall)"

        label = "SIMULATION - " if self.simulated else ""
        lines = [
            f"{label}DR drill: {self.scenario}, {self.consistency_mode} consistency,"
            f" {self.workload} workload, on {self.environment}",
            f"  real-AWS counterpart: {self.real_counterpart}",
            f"  detection:  {seconds(self.detection_seconds)}",
            f"  failover:   {seconds(self.failover_seconds)}"
            f" (RTO budget {self.rto_budget_seconds:g} s, target {self.rto_target_seconds:g} s)",
            f"  failback:   {seconds(self.failback_seconds)}",
            "  requests served: "
            + (", ".join(f"{r} {n}" for r, n in sorted(self.requests_by_region.items())) or "none")
            + f"; unanswered after retries: {self.requests_failed}",
            f"  payments acknowledged {self.payments_acknowledged}, lost {self.payments_lost},"
            f" stored twice {self.payments_duplicated}, rejected {self.payments_rejected}",
            *(f"    duplicate: {detail}" for detail in self.duplicate_details),
            f"  created in both regions: same request {self.payments_accepted_twice}"
            f" (stored once), different requests {self.payments_two_versions};"
            f" overwritten versions kept as conflicts {self.conflicts_recorded}"
            + (
                ""
                if self.conflict_detection_max_seconds is None
                else f" (detected within {seconds(self.conflict_detection_max_seconds)})"
            ),
            f"  replication lag p50 {self.replication_lag_p50_ms:.0f} ms,"
            f" max {self.replication_lag_max_ms:.0f} ms (RPO target {self.rpo_target_seconds:g} s)",
        ]
        lines.extend(self._client_rto_lines(seconds))
        if self.rpo_seconds is not None:
            lines.append(
                f"  region lost for good: {self.payments_lost_with_region} acknowledged payments"
                f" lost with it, measured RPO {seconds(self.rpo_seconds)}"
                f" (budget {self.rpo_budget_seconds:g} s)"
            )
        lines.extend(
            f"  {name}: " + ", ".join(f"{key} {value}" for key, value in sorted(tally.items()))
            for name, tally in self.categories.items()
            if len(self.categories) > 1
        )
        if self.fault_at_seconds is not None and self.fault_planned_at_seconds is not None:
            lines.append(
                f"  fault planned at {self.fault_planned_at_seconds:.1f} s, took effect at"
                f" {self.fault_at_seconds:.1f} s (times above count from then)"
            )
        if self.replication_backlog_at_fault is not None:
            lines.append(
                "  writes not yet replicated when the fault hit:"
                f" {self.replication_backlog_at_fault}"
            )
        lines.append(
            "  DLQ messages: "
            + (", ".join(f"{r} {n}" for r, n in sorted(self.dlq_messages.items())) or "none")
        )
        lines.append(
            f"  both regions hold the same payments after failback:"
            f" {self.regions_consistent_after_failback}"
        )
        lines.append("  timeline:")
        lines.extend(
            f"    {event.at_seconds:8.1f} s  {event.kind:<9} {event.detail}"
            for event in self.timeline
        )
        if self.wall_seconds is not None:
            lines.append(f"  wall time: {self.wall_seconds:.1f} s")
        lines.extend(f"  check failed: {check}" for check in self.failed_checks)
        lines.append(f"result: {'PASSED' if self.passed else 'FAILED'}")
        return "\n".join(lines)
