"""SSM reads at a full cold start, measured on the real `ModeCache`, not the formula.

Every reserved API container of a region starts at the same instant and serves requests
for a while; each has its own `ModeCache` with the stack's refresh period and spread, a
simulated clock, and an SSM stand-in that records when it is called. The script reports,
over many trials, the most GetParameter calls any one-second window saw (mean, p99, max)
next to the figure `payments-dr synth` prints (the expected rate) and the 40/s quota.

Run: .venv/bin/python benchmarks/bench_mode_reads.py [--containers 100] [--trials 200]
"""

from __future__ import annotations

import argparse
import bisect
import random
import statistics
import threading
from typing import Any

from payments_dr import contract
from payments_dr.infra.ssm_budget import (
    HEALTH_PROBE_READS_PER_SECOND,
    SSM_DEFAULT_THROUGHPUT_TPS,
    busiest_second,
)
from payments_dr.service.config import ModeCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class RecordingSsm:
    def __init__(self, clock: Clock, calls: list[float]) -> None:
        self._clock, self._calls = clock, calls

    def get_parameter(self, **_: Any) -> dict[str, Any]:
        self._calls.append(self._clock.now)
        return {"Parameter": {"Value": contract.Mode.ACTIVE.value}}


def trial(containers: int, seconds: float, request_every: float, rng: random.Random) -> int:
    """One cold start: the largest number of reads in any 1-s window.

    Each container runs on its own simulated clock; its random delay passes on that clock,
    and the request that asked for a read waits for it (a very long refresh wait), so the
    read thread and the request loop never move the clock at the same time.
    """
    calls: list[float] = []
    for _ in range(containers):
        clock = Clock()

        def wait(_event: threading.Event, delay: float, clock: Clock = clock) -> bool:
            clock.now += delay
            return False

        cache = ModeCache(
            RecordingSsm(clock, calls),
            "/payments-dr/bench/us-east-2/mode",
            clock,
            refresh_wait_seconds=3600.0,
            wait=wait,
            jitter=rng.uniform,
        )
        # A busy container: a request about every `request_every` s from its cold start on.
        while clock.now < seconds:
            cache.get()
            clock.now += request_every * rng.uniform(0.5, 1.5)
    calls.sort()
    return max(bisect.bisect_left(calls, start + 1.0) - index for index, start in enumerate(calls))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    rng = random.Random(11)
    peaks = sorted(trial(args.containers, args.seconds, 0.2, rng) for _ in range(args.trials))
    expected = args.containers / contract.MODE_READ_SPREAD_SECONDS
    figure = busiest_second(expected)
    print(
        f"{args.containers} containers, refresh {contract.MODE_REFRESH_SECONDS} s, spread"
        f" {contract.MODE_READ_SPREAD_SECONDS} s, {args.trials} cold starts of {args.seconds:g} s"
    )
    print(f"  synth's figures: {expected:.1f}/s on average, busiest second {figure:.1f}")
    print(
        f"  busiest 1-s window: mean {statistics.mean(peaks):.1f}, p99"
        f" {peaks[int(0.99 * (len(peaks) - 1))]}, max {peaks[-1]}"
    )
    print(
        f"  plus the health-probe allowance {HEALTH_PROBE_READS_PER_SECOND:g}/s, against the"
        f" {SSM_DEFAULT_THROUGHPUT_TPS}/s quota"
    )


if __name__ == "__main__":
    main()
