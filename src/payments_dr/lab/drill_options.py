"""What a lab drill runs: scenario, workload, clients and timings (no lab import, for the CLI)."""

from __future__ import annotations

from dataclasses import dataclass

from payments_dr.lab.client_payments import ClientKind, TrafficOptions, Workload
from payments_dr.lab.scenarios import DEFAULT_SCENARIO, ScenarioName


@dataclass(frozen=True)
class DrillOptions:
    scenario: ScenarioName = DEFAULT_SCENARIO
    workload: Workload = Workload.STEADY
    client_kind: ClientKind = ClientKind.BOTH  # each kind runs `clients` clients
    clients: int = 4
    payments_per_second: float = 0.5  # steady clients together, simulated time
    warmup_seconds: float = 20.0
    # The fault lasts at least this long (default: detection plus DNS TTL), and until traffic
    # has run in the secondary for `hold_seconds`; likewise after the fault is cleared, until
    # the primary has served again for `hold_seconds`. Neither phase runs past `phase_limit`.
    min_fault_seconds: float | None = None
    hold_seconds: float = 20.0
    phase_limit_seconds: float | None = None  # default: three times the RTO budget
    # Clients keep retrying an unacknowledged payment this long after the traffic stops.
    retry_grace_seconds: float = 60.0
    initial_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 8.0
    settle_timeout_wall_seconds: float = 60.0

    def traffic(self) -> TrafficOptions:
        return TrafficOptions(
            clients=self.clients,
            payments_per_second=self.payments_per_second,
            workload=self.workload,
            retry_grace_seconds=self.retry_grace_seconds,
            initial_backoff_seconds=self.initial_backoff_seconds,
            max_backoff_seconds=self.max_backoff_seconds,
            client_kind=self.client_kind,
        )
