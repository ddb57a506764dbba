"""The failover drill in the lab: payment traffic, a fault, failover, failback, verification.

Clients send payments through the failover endpoint at a steady simulated rate and retry
each one with the same Idempotency-Key until it is acknowledged (200/201/202). The scenario
injects its fault, clears it later, and the traffic continues until the primary serves
again. Then queues and replication are drained and both tables are compared with what the
clients were told:

- lost: acknowledged, yet in no region's table as the client sent it (same fingerprint);
- applied twice: created independently in both regions (the replicator saw two INSERTs of one
  payment id); each has to come from a client retry that crossed regions before the first
  write had replicated;
- consistent: both tables hold the same items after failback.

Times are simulated seconds since the traffic started; the report also states the time scale.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import random
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from payments_dr.contract import (
    AUTH_HEADER,
    AUTH_SCHEME,
    IDEMPOTENCY_HEADER,
    PAYMENTS_PATH,
    REGION_HEADER,
)
from payments_dr.drill_report import DrillReport, RequestSample, TimelineEvent
from payments_dr.lab.lab import Lab
from payments_dr.lab.replication import Duplicate
from payments_dr.lab.routing import NO_ANSWER_HEADER, ROUTED_TO_HEADER
from payments_dr.lab.scenarios import DEFAULT_SCENARIO, SCENARIOS, Phase, ScenarioName, Step
from payments_dr.lab.settings import LabSettings
from payments_dr.lab.signals import main_thread_signals
from payments_dr.service.model import parse_payment_request, payment_id
from payments_dr.service.store import Attr

ENVIRONMENT = "local lab (simulation)"
ACKNOWLEDGED = frozenset({200, 201, 202})
# Final answers; anything else is retried. 401 and 403 mean the client's key is refused.
REJECTED = frozenset({400, 401, 403, 404, 422})
CLIENT_TIMEOUT_WALL_SECONDS = 15.0
CURRENCIES = ("AUD", "CAD", "CHF", "EUR", "GBP", "JPY", "USD")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DrillOptions:
    scenario: ScenarioName = DEFAULT_SCENARIO
    clients: int = 4
    payments_per_second: float = 0.5  # all clients together, simulated time
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


@dataclass(frozen=True)
class Attempt:
    at: float  # simulated seconds since the traffic started
    routed_to: str  # the region DNS sent the request to
    answered_by: str  # the region that answered; "" when none did
    status: int  # 0: no answer


@dataclass
class ClientPayment:
    merchant_id: str
    idempotency_key: str
    body: bytes
    attempts: list[Attempt] = field(default_factory=list)
    final_status: int | None = None  # acknowledged or rejected; None: gave up

    @property
    def payment_id(self) -> str:
        return payment_id(self.merchant_id, self.idempotency_key)

    @property
    def fingerprint(self) -> str:
        """The fingerprint the service stores for this request."""
        request = parse_payment_request(self.body.decode(), merchant_id=self.merchant_id)
        return request.fingerprint()

    @property
    def acknowledged(self) -> bool:
        return self.final_status in ACKNOWLEDGED

    @property
    def regions_tried(self) -> set[str]:
        return {attempt.routed_to for attempt in self.attempts}


@dataclass
class DrillResult:
    report: DrillReport
    payments: list[ClientPayment]
    duplicates: list[Duplicate]


class _Traffic:
    """Client threads sending payments through the failover endpoint."""

    def __init__(
        self, lab: Lab, options: DrillOptions, started_at: float, api_keys: dict[int, str]
    ):
        self._lab = lab
        self._api_keys = api_keys
        self._options = options
        self._started_at = started_at
        self._stop_at = float("inf")
        router = urlsplit(lab.failover_url)
        self._host, self._port = router.hostname or "127.0.0.1", router.port
        self._lock = threading.Lock()
        self.payments: list[ClientPayment] = []
        self._threads = [
            threading.Thread(target=self._client, args=(index,), name=f"lab-client-{index}")
            for index in range(options.clients)
        ]

    def start(self) -> None:
        with main_thread_signals():
            for thread in self._threads:
                thread.start()

    def sleep_until(self, at: float) -> None:
        self._lab.clock.sleep(at - self.now())

    def stop(self) -> None:
        """No new payments from now on; unacknowledged ones are retried for the grace period."""
        self._stop_at = self.now()
        for thread in self._threads:
            thread.join()

    def first_served(self, region: str, after: float) -> float | None:
        """When `region` first acknowledged a payment at or after `after`."""
        with self._lock:
            attempts = [a for p in self.payments for a in list(p.attempts)]
        return _first_served(sorted(attempts, key=lambda a: a.at), region, after)

    def now(self) -> float:
        return self._lab.clock.now() - self._started_at

    def _client(self, index: int) -> None:
        rng = random.Random(index)
        interval = self._options.clients / self._options.payments_per_second
        next_at = interval * index / self._options.clients  # spread the clients out
        sequence = 0
        while self.now() < self._stop_at:
            self._lab.clock.sleep(next_at - self.now())
            if self.now() >= self._stop_at:
                return
            sequence += 1
            payment = _new_payment(rng, index, sequence)
            with self._lock:
                self.payments.append(payment)
            self._submit(payment, self._api_keys[index])
            next_at = max(next_at + interval, self.now())

    def _submit(self, payment: ClientPayment, api_key: str) -> None:
        backoff = self._options.initial_backoff_seconds
        while self.now() < self._stop_at + self._options.retry_grace_seconds:
            attempt, retry_after = self._send(payment, api_key)
            with self._lock:
                payment.attempts.append(attempt)
            if attempt.status in ACKNOWLEDGED or attempt.status in REJECTED:
                payment.final_status = attempt.status
                return
            self._lab.clock.sleep(retry_after if retry_after is not None else backoff)
            backoff = min(backoff * 2, self._options.max_backoff_seconds)

    def _send(self, payment: ClientPayment, api_key: str) -> tuple[Attempt, float | None]:
        at = self.now()
        connection = http.client.HTTPConnection(
            self._host, self._port, timeout=CLIENT_TIMEOUT_WALL_SECONDS
        )
        try:
            connection.request(
                "POST",
                PAYMENTS_PATH,
                body=payment.body,
                headers={
                    "Content-Type": "application/json",
                    IDEMPOTENCY_HEADER: payment.idempotency_key,
                    AUTH_HEADER: f"{AUTH_SCHEME} {api_key}",
                },
            )
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            return Attempt(at, "", "", 0), None
        finally:
            connection.close()
        routed_to = response.getheader(ROUTED_TO_HEADER) or ""
        if response.getheader(NO_ANSWER_HEADER):
            return Attempt(at, routed_to, "", 0), None  # the region never answered
        # The service names its region; the gateway's own answers (401, 403, 429, 503 from a
        # failing authorizer) come from the region the request was routed to.
        answered_by = response.getheader(REGION_HEADER) or routed_to
        status = response.status
        retry_after = response.getheader("Retry-After")
        return (
            Attempt(at, routed_to, answered_by, status),
            float(retry_after) if retry_after and retry_after.isdigit() else None,
        )


def merchant_of(client: int) -> str:
    return f"merchant-{client:02d}"


def _new_payment(rng: random.Random, client: int, sequence: int) -> ClientPayment:
    token = "".join(rng.choices(string.ascii_letters + string.digits, k=16))
    suffix = "".join(rng.choices(string.hexdigits.lower()[:16], k=8))
    body = {
        "amount": rng.randint(100, 500_000),
        "currency": rng.choice(CURRENCIES),
        "payment_token": f"tok_{token}",
        "reference": f"drill-{client:02d}-{sequence:06d}",
    }
    return ClientPayment(
        merchant_id=merchant_of(client),
        idempotency_key=f"drill-{client:02d}-{sequence:06d}-{suffix}",
        body=json.dumps(body).encode(),
    )


def run_drill(
    settings: LabSettings, options: DrillOptions, progress: Progress | None = None
) -> DrillResult:
    """Run one drill in a fresh lab; the lab is stopped before this returns."""
    say = progress or (lambda _: None)
    scenario = SCENARIOS[options.scenario]
    budget = settings.config.budget
    min_fault = (
        budget.detection_seconds + budget.dns_seconds
        if options.min_fault_seconds is None
        else options.min_fault_seconds
    )
    limit = (
        3 * budget.rto_budget_seconds
        if options.phase_limit_seconds is None
        else options.phase_limit_seconds
    )
    wall_started = time.monotonic()
    # The report is the drill's output; the service's own logs would drown it.
    with Lab(settings, service_log_level="CRITICAL") as lab:
        say(
            f"lab up (simulation, 1 s simulated = {settings.time_scale:g} s wall):"
            f" failover endpoint {lab.failover_url}"
        )
        # Every client is a merchant with its own key, issued in the primary and replicated
        # before traffic starts, as `payments-dr merchant create` would have done.
        api_keys = {
            client: lab.enrol_merchant(merchant_of(client)) for client in range(options.clients)
        }
        lab.settle(options.settle_timeout_wall_seconds)
        say(f"{len(api_keys)} merchants enrolled; traffic runs authenticated")
        started_at = lab.clock.now()
        traffic = _Traffic(lab, options, started_at, api_keys)
        traffic.start()
        # Times are measured from the moment the main fault and its clearing actually happen.
        fault_at = planned_fault = options.warmup_seconds
        backlog_at_fault: int | None = None
        for step in _steps(scenario.steps, Phase.FAULT):
            traffic.sleep_until(planned_fault + step.offset_seconds)
            taken_at = _take(lab, traffic, step, say)
            if step.offset_seconds == 0:
                fault_at = taken_at
                backlog_at_fault = lab.replicator.backlog()
        traffic.sleep_until(fault_at + min_fault)
        _hold_until_served(traffic, lab.secondary, fault_at, options.hold_seconds, fault_at + limit)
        restore_at = planned_restore = traffic.now()
        for step in _steps(scenario.steps, Phase.RESTORE):
            traffic.sleep_until(planned_restore + step.offset_seconds)
            taken_at = _take(lab, traffic, step, say)
            if step.offset_seconds == 0:
                restore_at = taken_at
        _hold_until_served(
            traffic, lab.primary, restore_at, options.hold_seconds, restore_at + limit
        )
        traffic.stop()
        say("traffic stopped; draining queues and replication")
        settled = lab.settle(options.settle_timeout_wall_seconds)
        report = _report(lab, settings, scenario.name, scenario.real_counterpart, started_at)
        report.replication_backlog_at_fault = backlog_at_fault
        _verify(lab, report, traffic.payments, started_at, fault_at, restore_at, settled)
        # On the traffic's clock, like every other time in the report.
        duplicates = [
            dataclasses.replace(
                duplicate,
                first_written_at=round(duplicate.first_written_at - started_at, 2),
                second_written_at=round(duplicate.second_written_at - started_at, 2),
                replicated_at=round(duplicate.replicated_at - started_at, 2),
            )
            for duplicate in lab.replicator.duplicates
        ]
    report.wall_seconds = round(time.monotonic() - wall_started, 2)
    _check_duplicates(report, duplicates, traffic.payments, settings.strong)
    return DrillResult(report=report, payments=traffic.payments, duplicates=duplicates)


def _steps(steps: tuple[Step, ...], phase: Phase) -> list[Step]:
    return sorted((step for step in steps if step.phase is phase), key=lambda s: s.offset_seconds)


def _take(lab: Lab, traffic: _Traffic, step: Step, say: Progress) -> float:
    """Carry out a step; when it took effect."""
    step.action(lab)
    taken_at = traffic.now()
    lab.note(step.kind, step.detail)
    say(f"t={taken_at:6.1f} s  {step.kind}: {step.detail}")
    return taken_at


def _hold_until_served(
    traffic: _Traffic, region: str, since: float, hold_seconds: float, limit: float
) -> None:
    """Wait until `region` has acknowledged payments for `hold_seconds`, or until `limit`."""
    while traffic.now() < limit:
        served_at = traffic.first_served(region, after=since)
        if served_at is not None and traffic.now() >= served_at + hold_seconds:
            return
        traffic.sleep_until(min(limit, traffic.now() + 1.0))


def _report(
    lab: Lab, settings: LabSettings, scenario: str, counterpart: str, started_at: float
) -> DrillReport:
    budget = settings.config.budget
    return DrillReport(
        scenario=scenario,
        consistency_mode=settings.config.consistency_mode.value,
        environment=ENVIRONMENT,
        simulated=True,
        real_counterpart=counterpart,
        rto_target_seconds=budget.rto_target_seconds,
        rpo_target_seconds=budget.rpo_target_seconds,
        rto_budget_seconds=budget.rto_budget_seconds,
        time_scale=settings.time_scale,
        timeline=[
            TimelineEvent(round(event.at_seconds - started_at, 2), event.kind, event.detail)
            for event in lab.events
        ],
    )


def _verify(
    lab: Lab,
    report: DrillReport,
    payments: list[ClientPayment],
    started_at: float,
    fault_at: float,
    restore_at: float,
    settled: bool,
) -> None:
    """Fill in what the traffic and the tables show; `started_at` is on the lab clock."""
    primary, secondary = lab.primary, lab.secondary
    attempts = sorted(
        (attempt for payment in payments for attempt in payment.attempts), key=lambda a: a.at
    )
    report.samples = [RequestSample(round(a.at, 3), a.answered_by, a.status) for a in attempts]
    for attempt in attempts:
        if attempt.answered_by:
            served = report.requests_by_region
            served[attempt.answered_by] = served.get(attempt.answered_by, 0) + 1

    detected = [
        at - started_at
        for at, region, healthy in lab.health_changes
        if region == primary and not healthy and at - started_at >= fault_at
    ]
    if detected:
        report.detection_seconds = round(min(detected) - fault_at, 2)
    failover_at = _first_served(attempts, secondary, after=fault_at)
    if failover_at is not None:
        report.failover_seconds = round(failover_at - fault_at, 2)
        report.timeline.append(
            TimelineEvent(round(failover_at, 2), "failover", f"first payment served by {secondary}")
        )
    failback_at = _first_served(attempts, primary, after=restore_at)
    if failback_at is not None:
        report.failback_seconds = round(failback_at - restore_at, 2)
        report.timeline.append(
            TimelineEvent(round(failback_at, 2), "failback", f"{primary} serves payments again")
        )
    report.timeline.sort(key=lambda event: event.at_seconds)

    tables = {region: lab.table_items(region) for region in lab.regions}
    acknowledged = [payment for payment in payments if payment.acknowledged]
    report.payments_acknowledged = len(acknowledged)
    holding = {p.payment_id: regions_holding(p, tables) for p in acknowledged}
    report.payments_lost = sum(1 for regions in holding.values() if not regions)
    partial = [p for p in acknowledged if len(holding[p.payment_id]) < len(tables)]
    report.requests_failed = sum(1 for payment in payments if payment.final_status is None)
    report.payments_rejected = sum(1 for payment in payments if payment.final_status in REJECTED)
    report.regions_consistent_after_failback = tables[primary] == tables[secondary]
    p50, peak = lab.replicator.lag_stats_ms()
    report.replication_lag_p50_ms, report.replication_lag_max_ms = round(p50, 1), round(peak, 1)
    for region in lab.regions:
        bodies = lab.dlq_messages(region)
        report.dlq_messages[region] = len(bodies)
        report.dlq_payment_ids[region] = sorted(_payment_id_of(body) for body in bodies)

    checks = report.failed_checks
    if not settled:
        checks.append("queues and replication did not drain in time")
    if report.detection_seconds is None:
        checks.append(f"health checks never reported {primary} unhealthy")
    if report.failover_seconds is None:
        checks.append(f"no payment was served by {secondary} after the fault")
    if report.failback_seconds is None:
        checks.append(f"{primary} served no payment after the fault was cleared")
    if partial:
        checks.append(f"{len(partial)} acknowledged payments are missing in one region")
    if report.payments_rejected:
        checks.append(f"{report.payments_rejected} well-formed payments were rejected")
    if report.requests_failed:
        # Clients retry until well after the fault is cleared: a payment still unanswered
        # then met an outage longer than failover should ever let a client see.
        checks.append(f"{report.requests_failed} payments got no answer despite retries")
    for name, running in lab.regions.items():
        if running.retry_poller.worker_errors:
            checks.append(
                f"the retry worker in {name} raised"
                f" {running.retry_poller.worker_errors} times instead of reporting failures"
            )


def regions_holding(
    payment: ClientPayment, tables: dict[str, dict[str, dict[str, Any]]]
) -> set[str]:
    """The regions whose table stores this payment as the client sent it.

    An item under the payment's id that holds a different request (another amount, say) is
    not the acknowledged payment: it counts as missing, so such a loss cannot hide.
    """
    expected = payment.fingerprint
    return {
        region
        for region, items in tables.items()
        if items.get(payment.payment_id, {}).get(Attr.FINGERPRINT.value) == {"S": expected}
    }


def _first_served(attempts: list[Attempt], region: str, after: float) -> float | None:
    for attempt in attempts:
        if attempt.at >= after and attempt.answered_by == region and attempt.status in ACKNOWLEDGED:
            return attempt.at
    return None


def _payment_id_of(body: str) -> str:
    try:
        return str(json.loads(body)["id"])
    except (ValueError, KeyError, TypeError):
        return "(unreadable message)"


def _check_duplicates(
    report: DrillReport, duplicates: list[Duplicate], payments: list[ClientPayment], strong: bool
) -> None:
    by_id = {payment.payment_id: payment for payment in payments}
    report.payments_duplicated = len(duplicates)
    report.duplicate_details = [duplicate.describe() for duplicate in duplicates]
    if strong and duplicates:
        report.failed_checks.append("strong consistency applied a payment twice")
    for duplicate in duplicates:
        payment = by_id.get(duplicate.payment_id)
        if payment is None or len(payment.regions_tried) < 2:
            report.failed_checks.append(
                f"{duplicate.payment_id} was applied twice without a retry across regions"
            )
