"""SSM Parameter Store load at a full cold start, checked against the throughput quota.

Parameter Store serves 40 transactions per second per account and region by default, shared
by GetParameter, GetParameters and GetParametersByPath; higher throughput raises
GetParameter(s) and costs per request
(https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-throughput.html).
When the DR region takes over, every reserved container may start at once. The functions get
their deploy-time settings in their environment; only `contract.MODE_READERS` read `mode`,
each read after a random delay of up to modeReadSpreadSeconds, and at most once per
modeRefreshSeconds (`payments_dr.service.config.ModeCache`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from payments_dr import contract
from payments_dr.contract import Function

if TYPE_CHECKING:
    from payments_dr.infra.config import StackConfig

# Route 53's health checkers "don't coordinate with one another, so you'll sometimes see
# several requests per second" (Route 53 developer guide, "How Amazon Route 53 determines
# whether a health check is healthy"). A probe reaching a container that has no mode yet
# cuts that container's delay short: the read is moved earlier, not added. This allowance
# bounds how many reads per second probes can move.
HEALTH_PROBE_READS_PER_SECOND: Final = 5.0
# Reads drawn at random over the spread do not arrive evenly: the busiest second holds more
# than the average. For an average of L reads a second, the busiest second of a cold start
# is taken as L + 4 * sqrt(L): benchmarks/bench_mode_reads.py, on the real cache, measured
# the busiest 1-s window of 100 containers at p99 37 for L = 20 (20 + 4 * 4.5 = 37.9).
BUSIEST_SECOND_DEVIATIONS: Final = 4.0
SSM_DEFAULT_THROUGHPUT_TPS: Final = 40
SSM_HIGHER_THROUGHPUT_TPS: Final = 10_000


@dataclass(frozen=True)
class RegionSsmLoad:
    """GetParameter calls per second one region's functions make, at worst."""

    region: str
    containers: dict[Function, int]  # reserved containers per function
    spread_seconds: int
    refresh_seconds: int
    quota_tps: int

    @property
    def readers(self) -> int:
        """Containers that read SSM at run time (one GetParameter per read)."""
        return sum(
            n for function, n in self.containers.items() if function in contract.MODE_READERS
        )

    @property
    def cold_start_tps(self) -> float:
        """Every reader starting at once: its first reads spread over the spread window."""
        return self.readers / self.spread_seconds if self.readers else 0.0

    @property
    def busiest_second(self) -> float:
        """The most reads one second of that cold start holds (see the constant above)."""
        return busiest_second(self.cold_start_tps)

    @property
    def peak_tps(self) -> float:
        return self.busiest_second + (HEALTH_PROBE_READS_PER_SECOND if self.readers else 0.0)

    @property
    def steady_tps(self) -> float:
        """Busy containers: one read per refresh period plus, on average, half the spread."""
        return self.readers / (self.refresh_seconds + self.spread_seconds / 2)

    @property
    def within_quota(self) -> bool:
        return self.peak_tps <= self.quota_tps

    def describe(self) -> str:
        readers = ", ".join(
            f"{function.value} {n}"
            for function, n in self.containers.items()
            if function in contract.MODE_READERS
        )
        others = ", ".join(
            f"{function.value} {n}"
            for function, n in self.containers.items()
            if function not in contract.MODE_READERS
        )
        verdict = "<=" if self.within_quota else ">"
        return (
            f"{self.region}: {self.readers} containers read mode ({readers}) over"
            f" {self.spread_seconds} s = {self.cold_start_tps:.1f}/s on average, busiest second"
            f" {self.busiest_second:.1f} + health probes {HEALTH_PROBE_READS_PER_SECOND:.1f}"
            f" = peak {self.peak_tps:.1f}/s {verdict}"
            f" quota {self.quota_tps}/s; steady {self.steady_tps:.1f}/s;"
            f" no run-time reads: {others}"
        )


def ssm_loads(config: StackConfig) -> list[RegionSsmLoad]:
    """Both regions: identical functions and reservations, each region its own quota."""
    return [
        RegionSsmLoad(
            region=region,
            containers=dict(config.reserved_concurrency),
            spread_seconds=config.mode_read_spread_seconds,
            refresh_seconds=config.mode_refresh_seconds,
            quota_tps=config.ssm_throughput_tps,
        )
        for region in config.regions
    ]


def busiest_second(average_per_second: float) -> float:
    if average_per_second <= 0:
        return 0.0
    return average_per_second + BUSIEST_SECOND_DEVIATIONS * math.sqrt(average_per_second)


def minimum_spread_seconds(load: RegionSsmLoad) -> int | None:
    """The smallest whole spread keeping the peak within the quota (None: none can)."""
    room = load.quota_tps - HEALTH_PROBE_READS_PER_SECOND
    if room <= 0:
        return None
    # The largest average L with L + k * sqrt(L) <= room.
    k = BUSIEST_SECOND_DEVIATIONS
    root = (-k + math.sqrt(k * k + 4 * room)) / 2
    return math.ceil(load.readers / (root * root))
