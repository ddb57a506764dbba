"""The faults the lab injects into a region: outages, lost answers, fencing, stalls, gray failure.

A mixin of `Lab`, kept apart from the machinery that runs the regions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING

from payments_dr.contract import Mode, Param
from payments_dr.lab.aws import set_parameter

if TYPE_CHECKING:
    from payments_dr.lab.clock import SimClock
    from payments_dr.lab.lab import Region
    from payments_dr.lab.replication import Replicator
    from payments_dr.lab.settings import LabSettings


class Fault(StrEnum):
    """Faults an operator of `lab up` can switch on and off (see the control endpoint)."""

    OUTAGE = "outage"
    TABLE_OUTAGE = "table-outage"
    ANSWERS_LOST = "answers-lost"
    FENCED = "fenced"
    # Eventual mode: both directions stall. Strong mode: the region's replica is cut off from
    # the region set (no writes, no strongly consistent reads there).
    REPLICATION_STALL = "replication-stall"
    # Payments fail while the health path answers 200; the region's SSM and the Route 53 API
    # are down: only the traffic switch moves clients (`payments-dr failover` in the drill).
    GRAY_FAILURE = "gray-failure"


class LabFaults:
    settings: LabSettings
    clock: SimClock
    regions: dict[str, Region]
    replicator: Replicator
    route53_api_down: bool
    _aws_lock: threading.RLock
    # When a fault last began in each region (simulated seconds): health probes that
    # started earlier cannot report it.
    _fault_began_at: dict[str, float]

    note: Callable[[str, str], None]  # the lab's timeline

    def set_region_outage(self, region: str, down: bool) -> None:
        self._set_reachability(region, "outage", down)

    def set_table_outage(self, region: str, down: bool) -> None:
        self._set_reachability(region, "table_outage", down)

    def _set_reachability(self, region: str, fault: str, down: bool) -> None:
        faults = self.regions[region].aws.faults
        with self._aws_lock:
            if not down and self.settings.strong:
                # A strongly consistent replica catches up before it serves again.
                self.replicator.catch_up(region)
            self._began(region, down)
            setattr(faults, fault, down)

    def set_answers_lost(self, region: str, lost: bool) -> None:
        self._began(region, lost)
        self.regions[region].aws.faults.answers_lost = lost

    def set_gray_failure(self, region: str, failing: bool) -> None:
        """Payments fail while the health path answers 200; the region's SSM and the Route 53
        API are down with them."""
        self._began(region, failing)
        faults = self.regions[region].aws.faults
        faults.payments_failing = faults.ssm_outage = failing
        self.route53_api_down = failing

    def set_mode(self, region: str, mode: Mode) -> None:
        """The operator's switch: `fenced` fails the region's health check."""
        self._began(region, mode is Mode.FENCED)
        set_parameter(self.regions[region].aws, self.settings.stack, Param.MODE, mode.value)

    def stall_replication(self, region: str, stalled: bool) -> None:
        """Eventual: replication stops both ways. Strong: `region`'s replica is cut off."""
        self._began(region, stalled and self.settings.strong)
        if stalled:
            self.replicator.stall(region)
        else:
            self.replicator.resume()

    def _began(self, region: str, fault_on: bool) -> None:
        if fault_on:
            self._fault_began_at[region] = self.clock.now()

    def set_fault(self, region: str, fault: Fault, active: bool) -> None:
        if region not in self.regions:
            raise ValueError(f"unknown region {region!r}; the lab runs {', '.join(self.regions)}")
        if fault is Fault.OUTAGE:
            self.set_region_outage(region, active)
        elif fault is Fault.TABLE_OUTAGE:
            self.set_table_outage(region, active)
        elif fault is Fault.ANSWERS_LOST:
            self.set_answers_lost(region, active)
        elif fault is Fault.FENCED:
            self.set_mode(region, Mode.FENCED if active else Mode.ACTIVE)
        elif fault is Fault.GRAY_FAILURE:
            self.set_gray_failure(region, active)
        else:
            self.stall_replication(region, active)
        self.note(
            "fault" if active else "restore",
            f"{fault.value} {'on' if active else 'off'} in {region} (control endpoint)",
        )
