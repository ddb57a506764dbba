"""Route 53 semantics of the simulated health checks and failover DNS."""

from __future__ import annotations

import pytest

from payments_dr.lab.clock import SimClock
from payments_dr.lab.routing import FailoverDns, RegionHealthCheck


class ManualClock(SimClock):
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        super().__init__(time_scale=1.0)
        self.current = 0.0

    def now(self) -> float:
        return self.current


def health_check(
    clock: SimClock, region: str, checkers: int = 3, threshold: int = 3
) -> tuple[RegionHealthCheck, list[tuple[str, bool]]]:
    changes: list[tuple[str, bool]] = []
    check = RegionHealthCheck(
        region,
        "http://127.0.0.1:9/v1/health",
        clock,
        interval_seconds=10,
        failure_threshold=threshold,
        checkers=checkers,
        healthy_fraction=0.18,
        on_change=lambda name, healthy: changes.append((name, healthy)),
    )
    return check, changes


def test_a_checker_turns_unhealthy_only_after_threshold_consecutive_failures() -> None:
    check, changes = health_check(ManualClock(), "us-east-1", checkers=1, threshold=3)
    check.record(0, False)
    check.record(0, False)
    assert check.healthy
    check.record(0, True)  # the streak is broken
    check.record(0, False)
    check.record(0, False)
    assert check.healthy
    check.record(0, False)
    assert not check.healthy
    assert changes == [("us-east-1", False)]


def test_recovery_also_needs_threshold_consecutive_successes() -> None:
    check, changes = health_check(ManualClock(), "us-east-1", checkers=1, threshold=2)
    for _ in range(2):
        check.record(0, False)
    check.record(0, True)
    assert not check.healthy
    check.record(0, True)
    assert check.healthy
    assert changes == [("us-east-1", False), ("us-east-1", True)]


@pytest.mark.parametrize(
    ("unhealthy_checkers", "region_healthy"), [(0, True), (4, True), (5, False)]
)
def test_region_is_healthy_while_more_than_18_percent_of_checkers_say_so(
    unhealthy_checkers: int, region_healthy: bool
) -> None:
    # 6 checkers: 2 healthy of 6 is 33% (healthy), 1 of 6 is 17% (unhealthy).
    check, _ = health_check(ManualClock(), "us-east-1", checkers=6, threshold=1)
    for index in range(unhealthy_checkers):
        check.record(index, False)
    assert check.healthy is region_healthy


def test_dns_answers_secondary_only_while_primary_is_unhealthy_and_secondary_healthy() -> None:
    clock = ManualClock()
    primary, _ = health_check(clock, "us-east-1", checkers=1, threshold=1)
    secondary, _ = health_check(clock, "us-east-2", checkers=1, threshold=1)
    dns = FailoverDns(clock, primary, secondary, ttl_seconds=60)
    assert dns.answer() == "us-east-1"
    primary.record(0, False)
    assert dns.answer() == "us-east-2"
    secondary.record(0, False)
    # Route 53 treats "every record unhealthy" as "every record healthy".
    assert dns.answer() == "us-east-1"


def test_clients_keep_the_cached_answer_until_the_ttl_runs_out() -> None:
    clock = ManualClock()
    primary, _ = health_check(clock, "us-east-1", checkers=1, threshold=1)
    secondary, _ = health_check(clock, "us-east-2", checkers=1, threshold=1)
    dns = FailoverDns(clock, primary, secondary, ttl_seconds=60)
    assert dns.cached_answer() is None
    assert dns.resolve() == "us-east-1"
    clock.current = 5.0
    primary.record(0, False)
    clock.current = 59.9
    assert dns.resolve() == "us-east-1"
    clock.current = 60.0
    assert dns.cached_answer() == "us-east-1"  # looking does not refresh
    assert dns.resolve() == "us-east-2"
