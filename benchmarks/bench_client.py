"""Benchmark of the merchant SDK (payments_dr.client). Prints the numbers.

- import time of `payments_dr.client` in a fresh interpreter (and of urllib3 alone);
- the SDK's own cost per call, over an in-memory transport (no network at all);
- a call through the SDK against a bare urllib3 request to a lab region: the same request
  (a replayed payment, and a read), interleaved in blocks so both see the same load;
- client-perceived RTO in a primary-region outage (fault to each client's first acknowledged
  payment), for SDK clients and for clients of the failover name (DNS), side by side in the
  same lab run: p50, p99 and max in simulated seconds.

Usage: .venv/bin/python benchmarks/bench_client.py [--requests N] [--runs R] [--time-scale S]
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import urllib3

from payments_dr import contract
from payments_dr.client import HttpReply, PaymentsClient
from payments_dr.contract import ConsistencyMode
from payments_dr.lab.lab import Lab
from payments_dr.lab.routing import NO_ANSWER_HEADER
from payments_dr.lab.sdk import SdkMerchant, lab_client
from payments_dr.lab.settings import BUILTIN_CONFIG, LabSettings

PAYMENT: dict[str, Any] = {"amount": 1250, "currency": "EUR", "payment_token": "tok_benchmark0001"}
ACKNOWLEDGED = frozenset({200, 201, 202})
FINAL = frozenset({400, 401, 403, 404, 422})


def settings(time_scale: float, mode: ConsistencyMode = ConsistencyMode.EVENTUAL) -> LabSettings:
    config = dataclasses.replace(BUILTIN_CONFIG, consistency_mode=mode)
    return LabSettings(config, time_scale=time_scale)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# --- import time -------------------------------------------------------------------------------
def import_seconds(module: str, runs: int = 9) -> tuple[float, float]:
    """Median wall and CPU seconds of `import module` in fresh interpreters; on a shared
    machine the CPU time is the steadier figure."""
    code = (
        "import time; w, c = time.perf_counter(), time.process_time(); "
        f"import {module}; print(time.perf_counter() - w, time.process_time() - c)"
    )
    samples = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
        for _ in range(runs)
    ]
    return (
        statistics.median(float(wall) for wall, _ in samples),
        statistics.median(float(cpu) for _, cpu in samples),
    )


# --- the SDK's own cost ------------------------------------------------------------------------
class CannedTransport:
    def __init__(self, answer: HttpReply) -> None:
        self._answer = answer

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        connect_timeout: float,
        read_timeout: float,
    ) -> HttpReply:
        return self._answer

    def close(self) -> None:
        pass


def sdk_cpu_microseconds(calls: int) -> tuple[float, float]:
    payment = {
        "id": "pay_" + "0" * 32,
        "status": "accepted",
        "merchant_id": "m-01",
        "amount": 1250,
        "currency": "EUR",
        "region": "us-east-1",
        "created_at": "2026-01-01T00:00:00.000Z",
    }
    answer = HttpReply(200, {}, json.dumps(payment).encode())
    client = PaymentsClient(
        {"us-east-1": "https://api.us-east-1.example.com"},
        "pdr.m-01.k.secret",
        transport=CannedTransport(answer),
    )
    started = time.process_time()  # one thread: its CPU time, whatever else the machine runs
    for index in range(calls):
        client.create_payment(**PAYMENT, idempotency_key=f"bench-key-{index:08d}")
    create = (time.process_time() - started) / calls * 1e6
    started = time.process_time()
    for _ in range(calls):
        client.get_payment(payment["id"])
    read = (time.process_time() - started) / calls * 1e6
    return create, read


# --- the SDK against a bare call to the lab ----------------------------------------------------
def overhead_against_the_lab(requests: int) -> dict[str, dict[str, float]]:
    with Lab(settings(time_scale=1.0), service_log_level="CRITICAL") as lab:
        api_key = lab.enrol_merchant("bench-sdk")
        lab.settle(30)
        client = lab_client(lab, api_key)
        first = client.create_payment(**PAYMENT, idempotency_key="bench-overhead-0001")
        url = lab.region_url(lab.primary)
        pool = urllib3.PoolManager(retries=False)
        body = json.dumps(PAYMENT, sort_keys=True, separators=(",", ":")).encode()
        headers = {
            contract.AUTH_HEADER: f"{contract.AUTH_SCHEME} {api_key}",
            "Content-Type": "application/json",
            contract.IDEMPOTENCY_HEADER: "bench-overhead-0001",
        }
        read_path = contract.PAYMENT_PATH.replace("{id}", first.payment.id)

        calls: dict[str, Callable[[], object]] = {
            "bare POST replay": lambda: pool.request(
                "POST", url + contract.PAYMENTS_PATH, body=body, headers=headers
            ),
            "sdk create_payment replay": lambda: client.create_payment(
                **PAYMENT, idempotency_key="bench-overhead-0001"
            ),
            "bare GET payment": lambda: pool.request("GET", url + read_path, headers=headers),
            "sdk get_payment": lambda: client.get_payment(first.payment.id),
        }
        samples: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(requests):
            for name, call in calls.items():  # one of each in turn: all see the same load
                started = time.perf_counter()
                call()
                samples[name].append((time.perf_counter() - started) * 1000)
        client.close()
    figures = {
        name: {"p50_ms": statistics.median(values), "p90_ms": percentile(values, 0.9)}
        for name, values in samples.items()
    }
    for sdk, bare in (
        ("sdk create_payment replay", "bare POST replay"),
        ("sdk get_payment", "bare GET payment"),
    ):
        # The median of paired differences: each SDK call against the bare call beside it.
        paired = [a - b for a, b in zip(samples[sdk], samples[bare], strict=True)]
        figures[sdk]["overhead_ms"] = statistics.median(paired)
    return figures


# --- client-perceived RTO ----------------------------------------------------------------------
class DnsMerchant:
    """A client of the failover name, retrying like the drill's: same key, 1 -> 8 s backoff."""

    def __init__(self, lab: Lab, merchant_id: str, api_key: str, interval: float) -> None:
        self._lab, self._merchant, self._key, self._interval = lab, merchant_id, api_key, interval
        router = urlsplit(lab.failover_url)
        self._host, self._port = router.hostname or "127.0.0.1", router.port
        self.acknowledged: list[float] = []  # simulated times of acknowledgements
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        sequence = 0
        while not self._stop.is_set():
            sequence += 1
            key = f"{self._merchant}-{sequence:06d}"
            body = json.dumps({**PAYMENT, "reference": key}).encode()
            backoff = 1.0
            while not self._stop.is_set():
                status, retry_after = self._send(key, body)
                if status in ACKNOWLEDGED:
                    self.acknowledged.append(self._lab.clock.now())
                    break
                if status in FINAL:
                    raise RuntimeError(f"{self._merchant}: a well-formed payment got {status}")
                self._stop.wait(self._lab.clock.to_wall(retry_after or backoff))
                backoff = min(backoff * 2, 8.0)
            self._stop.wait(self._lab.clock.to_wall(self._interval))

    def _send(self, key: str, body: bytes) -> tuple[int, float | None]:
        connection = http.client.HTTPConnection(self._host, self._port, timeout=15)
        try:
            connection.request(
                "POST",
                contract.PAYMENTS_PATH,
                body=body,
                headers={
                    "Content-Type": "application/json",
                    contract.IDEMPOTENCY_HEADER: key,
                    contract.AUTH_HEADER: f"{contract.AUTH_SCHEME} {self._key}",
                },
            )
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            return 0, None
        finally:
            connection.close()
        if response.getheader(NO_ANSWER_HEADER):
            return 0, None
        retry_after = response.getheader("Retry-After")
        return response.status, float(retry_after) if retry_after else None


class Client(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


def wait_until(condition: Callable[[], bool], wall_limit: float = 300.0) -> None:
    deadline = time.monotonic() + wall_limit
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the lab did not reach the expected state")
        time.sleep(0.02)


def outage_rto(time_scale: float, clients: int, mode: ConsistencyMode) -> dict[str, list[float]]:
    """One lab run: a primary outage with SDK and DNS clients; each client's RTO."""
    with Lab(settings(time_scale, mode), service_log_level="CRITICAL") as lab:
        keys = {f"rto-{kind}-{i:02d}": "" for kind in ("sdk", "dns") for i in range(clients)}
        for merchant in keys:
            keys[merchant] = lab.enrol_merchant(merchant)
        lab.settle(60)
        interval = 2.0  # simulated seconds between one client's payments
        sdk = [
            SdkMerchant(lab, m, k, interval, seed=i)
            for i, (m, k) in enumerate(keys.items())
            if "-sdk-" in m
        ]
        dns = [DnsMerchant(lab, m, k, interval) for m, k in keys.items() if "-dns-" in m]
        everyone: list[Client] = [*sdk, *dns]
        for client in everyone:
            client.start()
        wait_until(lambda: all(s.acknowledged() for s in sdk) and all(d.acknowledged for d in dns))
        lab.clock.sleep(10)
        lab.set_region_outage(lab.primary, True)
        fault_at = lab.clock.now()  # from here on the primary answers nobody

        def first_after(times: list[float]) -> float | None:
            return min((t for t in times if t >= fault_at), default=None)

        def sdk_times(merchant: SdkMerchant) -> list[float]:
            return [p.acknowledged_at for p in merchant.acknowledged() if p.acknowledged_at]

        wait_until(
            lambda: (
                all(first_after(sdk_times(s)) for s in sdk)
                and all(first_after(d.acknowledged) for d in dns)
            )
        )
        for client in everyone:
            client.stop()

        def rto(times: list[float]) -> float:
            first = first_after(times)
            if first is None:
                raise RuntimeError("a client never paid after the fault")
            return first - fault_at

        def in_requests(merchant: SdkMerchant) -> float:
            """Of an SDK client's RTO, the simulated time spent inside its HTTP requests (wall
            time scaled up: the machine's share, not the SDK's waits)."""
            payment = min(
                (p for p in merchant.acknowledged() if (p.acknowledged_at or 0) >= fault_at),
                key=lambda p: p.acknowledged_at or 0,
            )
            acknowledged_at = payment.acknowledged_at or fault_at
            return sum(
                max(0.0, min(a.at + a.seconds, acknowledged_at) - max(a.at, fault_at))
                for a in payment.attempts
            )

        return {
            "sdk": [rto(sdk_times(s)) for s in sdk],
            "sdk in requests": [in_requests(s) for s in sdk],
            "dns": [rto(d.acknowledged) for d in dns],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="per call kind (default 300)")
    parser.add_argument("--runs", type=int, default=3, help="outage runs per mode (default 3)")
    parser.add_argument("--clients", type=int, default=4, help="per client kind (default 4)")
    parser.add_argument("--time-scale", type=float, default=0.02, help="drill's default 0.02")
    options = parser.parse_args()
    # A region outage makes the lab's gateway log every failed authorizer call; not news here.
    logging.getLogger("payments_dr.lab").setLevel(logging.CRITICAL)
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 shared cores)")

    for module in ("payments_dr.client", "urllib3"):
        wall, cpu = import_seconds(module)
        print(
            f"import {module}: {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU "
            "(median of 9 fresh interpreters)"
        )
    create_us, read_us = sdk_cpu_microseconds(20_000)
    print(
        f"SDK's own CPU per call (in-memory transport): create_payment {create_us:.0f} us, "
        f"get_payment {read_us:.0f} us"
    )

    print(f"against a lab region, {options.requests} requests each, interleaved:")
    for name, figures in overhead_against_the_lab(options.requests).items():
        extra = figures.get("overhead_ms")
        paired = f"   paired overhead {extra:+.2f} ms" if extra is not None else ""
        print(
            f"  {name:28s} p50 {figures['p50_ms']:6.2f} ms   p90 {figures['p90_ms']:6.2f} ms"
            + paired
        )

    for mode in ConsistencyMode:
        rtos: dict[str, list[float]] = {"sdk": [], "sdk in requests": [], "dns": []}
        for _ in range(options.runs):
            for kind, values in outage_rto(options.time_scale, options.clients, mode).items():
                rtos[kind] += values
        print(
            f"client-perceived RTO, region outage, {mode.value}, time scale "
            f"{options.time_scale:g}, {len(rtos['sdk'])} clients of each kind (simulated s):"
        )
        for kind, values in rtos.items():
            print(
                f"  {kind:16s}: p50 {percentile(values, 0.5):6.1f}"
                f"  p99 {percentile(values, 0.99):6.1f}  max {max(values):6.1f}"
            )
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
