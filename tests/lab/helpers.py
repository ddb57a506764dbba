"""Helpers for the lab's tests: settings independent of the working directory, HTTP calls."""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import queue
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from payments_dr.contract import (
    AUTH_HEADER,
    AUTH_SCHEME,
    IDEMPOTENCY_HEADER,
    PAYMENTS_PATH,
    ConsistencyMode,
)
from payments_dr.drill_report import DrillReport, RequestSample, TimelineEvent
from payments_dr.lab.lab import Lab
from payments_dr.lab.settings import BUILTIN_CONFIG, LabSettings
from payments_dr.service.model import IdKey

PRIMARY, SECONDARY = BUILTIN_CONFIG.regions
# An id key for the rules tested without a lab (a running lab has its own: `lab.id_key`).
ID_KEY = IdKey("lab-rules-id-secret-0123456789abcdefghijklmnopqrstuvwxyz")


def lab_settings(mode: ConsistencyMode, time_scale: float) -> LabSettings:
    """The built-in stack configuration in `mode`, whatever stack files lie around."""
    config = dataclasses.replace(BUILTIN_CONFIG, consistency_mode=mode)
    return LabSettings(config, time_scale=time_scale)


def enrol(lab: Lab, merchant: str = "merchant-01") -> str:
    """A merchant's API key, its record replicated to every region."""
    api_key = lab.enrol_merchant(merchant)
    assert lab.settle(60)
    return api_key


def bearer(api_key: str) -> dict[str, str]:
    return {AUTH_HEADER: f"{AUTH_SCHEME} {api_key}"}


def request(
    base_url: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    """One HTTP request; (status, headers, decoded JSON body or None)."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=15)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        connection.request(method, path, body=payload, headers=all_headers)
        response = connection.getresponse()
        raw = response.read()
        return response.status, dict(response.getheaders()), json.loads(raw) if raw else None
    finally:
        connection.close()


def post_payment(
    base_url: str, key: str, api_key: str, amount: int = 1250
) -> tuple[int, dict[str, str], Any]:
    body = {"amount": amount, "currency": "EUR", "payment_token": "tok_labtest12345678"}
    return request(
        base_url, "POST", PAYMENTS_PATH, body, {IDEMPOTENCY_HEADER: key, **bearer(api_key)}
    )


def report(**changes: object) -> DrillReport:
    """A passing region-outage report, with `changes` applied."""
    base = DrillReport(
        scenario="region-outage",
        consistency_mode="eventual",
        environment="local lab (simulation)",
        simulated=True,
        real_counterpart="payments-dr drill --on-aws --stack NAME",
        rto_target_seconds=900,
        rpo_target_seconds=300,
        rto_budget_seconds=150,
        failover_seconds=40.0,
        time_scale=0.02,
        regions_consistent_after_failback=True,
        samples=[
            RequestSample(1.0, "us-east-1", 201),
            RequestSample(2.0, "us-east-1", 201),
            RequestSample(21.0, "", 0),
            RequestSample(22.0, "us-east-1", 503),
            RequestSample(61.0, "us-east-2", 201),
        ],
        timeline=[
            TimelineEvent(20.0, "fault", "primary region outage begins"),
            TimelineEvent(50.0, "detected", "health checks see us-east-1 unhealthy"),
            TimelineEvent(61.0, "failover", "first payment served by us-east-2"),
            TimelineEvent(110.0, "restore", "primary region is back"),
        ],
    )
    for name, value in changes.items():
        setattr(base, name, value)
    return base


def interruptible() -> None:
    """For `preexec_fn`: the child takes Ctrl-C even when this run inherited SIGINT ignored
    (a shell starts background jobs so: `nohup make test &`), as the tests send it one."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Process:
    """A command whose output pipes are read to the end by threads: a full pipe can't block it."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=interruptible,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.lines.put)),
            threading.Thread(target=self._read, args=(self.process.stderr, self.stderr.append)),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: IO[str], sink: Callable[[str], None]) -> None:
        for line in stream:
            sink(line)

    def read_until(self, marker: str, timeout: float) -> list[str]:
        """Standard output up to the line holding `marker`."""
        deadline, seen = time.monotonic() + timeout, []
        while not seen or marker not in seen[-1]:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {marker!r} within {timeout} s; got {seen}, {self.stderr}"
            try:
                seen.append(self.lines.get(timeout=remaining))
            except queue.Empty:
                continue
        return seen

    def drain(self) -> list[str]:
        """The standard output lines not read yet (all of them, once the process ended)."""
        lines = []
        while not self.lines.empty():
            lines.append(self.lines.get_nowait())
        return lines

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        for reader in self._readers:  # the pipes close with the process: they end at once
            reader.join(timeout=30)


DIGITS_TO_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def new_idempotency_key(prefix: str = "test") -> str:
    """A fresh key with no digits: a random hex key holds a card-shaped digit run (refused
    with 400) about once in 290 keys."""
    return f"{prefix}-{uuid.uuid4().hex[:20].translate(DIGITS_TO_LETTERS)}"
