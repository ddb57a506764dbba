"""Benchmark of the local lab (a simulation). Prints the numbers.

- sustained requests/s through the failover endpoint (client -> router -> region API -> real
  handler -> moto), new payments from several concurrent clients, with latency percentiles;
  in real time (`lab up`'s default) and at the drill's time scale, where health checks and
  configuration refreshes run fifty times as often;
- wall time of the default drill (region outage, eventual) and of its strong-mode twin;
- the adversarial workload's drill in both modes: wall time, what it provoked (created in
  both regions, overwritten versions kept) and the conflict detection latency (from the
  overwriting replicated write to the conflict record, simulated seconds);
- the region-loss drill in both modes: the measured RPO;
- the machine's load average, since every figure depends on it.

Usage: .venv/bin/python benchmarks/bench_lab.py [--seconds S] [--clients N] [--skip-drills]
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import os
import statistics
import threading
import time
from urllib.parse import urlsplit

from payments_dr.contract import (
    AUTH_HEADER,
    AUTH_SCHEME,
    IDEMPOTENCY_HEADER,
    PAYMENTS_PATH,
    ConsistencyMode,
)
from payments_dr.lab.client_payments import Workload
from payments_dr.lab.commands import ADVERSARIAL_TIME_SCALE, DRILL_TIME_SCALE
from payments_dr.lab.drill import DrillOptions, run_drill
from payments_dr.lab.lab import Lab
from payments_dr.lab.scenarios import ScenarioName
from payments_dr.lab.settings import BUILTIN_CONFIG, LabSettings


def settings(mode: ConsistencyMode, time_scale: float) -> LabSettings:
    return LabSettings(
        dataclasses.replace(BUILTIN_CONFIG, consistency_mode=mode), time_scale=time_scale
    )


def sustained_throughput(time_scale: float, seconds: float, clients: int) -> dict[str, float]:
    with Lab(settings(ConsistencyMode.EVENTUAL, time_scale)) as lab:
        router = urlsplit(lab.failover_url)
        latencies: list[float] = []
        errors = [0]
        lock = threading.Lock()
        stop_at = time.monotonic() + seconds

        # Each client is a merchant; its key crosses the real authorizer (cached after once).
        api_keys = [lab.enrol_merchant(f"bench-{index:02d}") for index in range(clients)]
        lab.settle(30)

        def client(index: int) -> None:
            sequence = 0
            while time.monotonic() < stop_at:
                sequence += 1
                body = json.dumps(
                    {
                        "amount": 1000 + sequence,
                        "currency": "USD",
                        "payment_token": "tok_benchmark0001",
                    }
                ).encode()
                started = time.perf_counter()
                connection = http.client.HTTPConnection(router.hostname, router.port, timeout=30)
                try:
                    connection.request(
                        "POST",
                        PAYMENTS_PATH,
                        body=body,
                        headers={
                            "Content-Type": "application/json",
                            IDEMPOTENCY_HEADER: f"bench-{index:02d}-{sequence:08d}",
                            AUTH_HEADER: f"{AUTH_SCHEME} {api_keys[index]}",
                        },
                    )
                    status = connection.getresponse().status
                finally:
                    connection.close()
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    errors[0] += status != 201

        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        cpu_started, wall_started = time.process_time(), time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - wall_started
        cpu = time.process_time() - cpu_started
    ordered = sorted(latencies)
    return {
        "requests_per_second": len(latencies) / wall,
        "p50_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[int(len(ordered) * 0.95) - 1] * 1000,
        "non_201": errors[0],
        "cpu_cores_used": cpu / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--skip-drills", action="store_true")
    args = parser.parse_args()

    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    for time_scale in (1.0, DRILL_TIME_SCALE):
        figures = sustained_throughput(time_scale, args.seconds, args.clients)
        print(
            f"failover endpoint, time scale {time_scale:g}, {args.clients} clients:"
            f" {figures['requests_per_second']:.1f} requests/s,"
            f" p50 {figures['p50_ms']:.0f} ms, p95 {figures['p95_ms']:.0f} ms,"
            f" non-201 {figures['non_201']:.0f}, CPU {figures['cpu_cores_used']:.2f} cores"
        )
    if not args.skip_drills:
        for mode in ConsistencyMode:
            started = time.monotonic()
            result = run_drill(settings(mode, DRILL_TIME_SCALE), DrillOptions())
            report = result.report
            print(
                f"default drill ({report.scenario}, {mode.value}):"
                f" {time.monotonic() - started:.1f} s wall,"
                f" failover {report.failover_seconds} s simulated,"
                f" failback {report.failback_seconds} s simulated,"
                f" {report.payments_acknowledged} payments, passed {report.passed}"
            )
            for kind, rto in sorted(report.client_rto_seconds.items()):
                print(
                    f"  client-perceived RTO, {kind} clients: p50 {rto.p50_seconds} s,"
                    f" p99 {rto.p99_seconds} s, max {rto.max_seconds} s simulated"
                    f" ({rto.recovered} of {rto.clients} served again)"
                )
        for mode in ConsistencyMode:
            started = time.monotonic()
            options = DrillOptions(workload=Workload.ADVERSARIAL)
            report = run_drill(settings(mode, ADVERSARIAL_TIME_SCALE), options).report
            detection = report.conflict_detection_max_seconds
            print(
                f"adversarial drill ({mode.value}, time scale {ADVERSARIAL_TIME_SCALE:g}):"
                f" {time.monotonic() - started:.1f} s wall,"
                f" {report.payments_acknowledged} payments acknowledged,"
                f" created in both regions: same request {report.payments_accepted_twice},"
                f" different requests {report.payments_two_versions};"
                f" conflicts recorded {report.conflicts_recorded},"
                f" detection max {'-' if detection is None else f'{detection:.2f}'} s simulated,"
                f" lost {report.payments_lost}, passed {report.passed}"
            )
        for mode in ConsistencyMode:
            options = DrillOptions(scenario=ScenarioName.REGION_LOSS)
            report = run_drill(settings(mode, DRILL_TIME_SCALE), options).report
            print(
                f"region-loss drill ({mode.value}): measured RPO {report.rpo_seconds} s"
                f" (budget {report.rpo_budget_seconds:g} s),"
                f" {report.payments_lost_with_region} acknowledged payments lost with the"
                f" region, passed {report.passed}"
            )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
