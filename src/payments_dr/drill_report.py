"""The report of a failover drill, shared by the local lab (simulation) and drills on AWS."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class TimelineEvent:
    at_seconds: float  # since the drill started
    kind: str  # "fault", "detected", "failover", "failback", "note"
    detail: str


@dataclass(frozen=True)
class RequestSample:
    at_seconds: float
    region: str  # the region that answered ("" when no region answered)
    status: int  # HTTP status, 0 when the request got no answer


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
    payments_lost: int = 0  # acknowledged, but in no region's table at the end
    payments_duplicated: int = 0  # one client payment applied under two ids, or twice
    duplicate_details: list[str] = field(default_factory=list)
    replication_lag_max_ms: float = 0.0
    replication_lag_p50_ms: float = 0.0
    dlq_messages: dict[str, int] = field(default_factory=dict)
    regions_consistent_after_failback: bool | None = None
    timeline: list[TimelineEvent] = field(default_factory=list)
    samples: list[RequestSample] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        within_budget = self.failover_seconds is None or (
            self.failover_seconds <= self.rto_budget_seconds
        )
        return (
            self.payments_lost == 0
            and within_budget
            and self.regions_consistent_after_failback is not False
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)
