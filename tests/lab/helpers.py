"""Helpers for the lab's tests: settings independent of the working directory, HTTP calls."""

from __future__ import annotations

import dataclasses
import http.client
import json
from typing import Any
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

PRIMARY, SECONDARY = BUILTIN_CONFIG.regions


def lab_settings(mode: ConsistencyMode, time_scale: float) -> LabSettings:
    """The built-in stack configuration in `mode`, whatever stack files lie around."""
    config = dataclasses.replace(BUILTIN_CONFIG, consistency_mode=mode)
    return LabSettings(config, time_scale=time_scale)


def enrol(lab: Lab, merchant: str = "merchant-01") -> str:
    """A merchant's API key, its record replicated to every region."""
    api_key = lab.enrol_merchant(merchant)
    assert lab.settle(20)
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
