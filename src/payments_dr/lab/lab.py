"""The lab: both regions, the real service handlers, replication, health checks and routing."""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto import mock_aws

from payments_dr import contract
from payments_dr.drill_report import TimelineEvent
from payments_dr.lab.apigw import RegionApi, ThrottleLimits
from payments_dr.lab.aws import (
    RegionAws,
    RegionResources,
    create_id_secret,
    put_switch_alarm,
    seed_region,
)
from payments_dr.lab.clock import SimClock
from payments_dr.lab.faults import LabFaults
from payments_dr.lab.inspection import LabInspection
from payments_dr.lab.ledger import WriteLedger
from payments_dr.lab.replication import Replicator
from payments_dr.lab.routing import (
    FailoverDns,
    FailoverRouter,
    RecordHealth,
    RegionHealthCheck,
    TrafficSwitchCheck,
)
from payments_dr.lab.settings import LabSettings
from payments_dr.lab.signals import main_thread_signals
from payments_dr.lab.workers import Handler, LogArchiverFeed, RetryQueuePoller
from payments_dr.service.api import build_api_handler
from payments_dr.service.authorizer import build_authorizer
from payments_dr.service.config import ServiceConfig
from payments_dr.service.credentials import CredentialStore, issue_key
from payments_dr.service.deps import ServiceDeps
from payments_dr.service.id_secret import read_id_key
from payments_dr.service.log_archiver import build_log_archiver
from payments_dr.service.model import IdKey
from payments_dr.service.observability import logger as service_logger
from payments_dr.service.observability import metrics as service_metrics
from payments_dr.service.retry_worker import build_retry_worker

log = logging.getLogger(__name__)

# The service runs in-process as if in Lambda: no metrics to publish, no X-Ray daemon.
_RUNTIME_ENVIRONMENT = {
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def _restore_variable(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _as_lambda(handler: Handler) -> Handler:
    """Invoke a handler as its Lambda would, minus publishing: metrics are dropped.

    Powertools prints a metric set to stdout once it holds 100 values, even with metrics
    disabled; clearing after each invocation keeps the lab's output readable.
    """

    def invoke(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            return handler(event, context)
        finally:
            service_metrics.clear_metrics()

    return invoke


@dataclass
class Region:
    """Everything the lab runs for one region."""

    name: str
    aws: RegionAws
    api: RegionApi
    resources: RegionResources
    retry_poller: RetryQueuePoller
    archiver_feed: LogArchiverFeed
    health: RegionHealthCheck
    record: RecordHealth  # what its failover record follows: health AND switch


class Lab(LabFaults, LabInspection):
    """Start with `with Lab(settings) as lab:`; one lab per process (moto's state is global)."""

    _running = threading.Lock()

    def __init__(
        self,
        settings: LabSettings,
        service_log_level: str = "ERROR",
        on_event: Callable[[TimelineEvent], None] | None = None,
    ) -> None:
        self.settings = settings
        self._on_event = on_event  # told of every timeline event as it happens
        self.clock = SimClock(settings.time_scale)
        self._service_log_level = service_log_level
        self._aws_lock = threading.RLock()
        self._mock = mock_aws()
        self._events_lock = threading.Lock()
        self.events: list[TimelineEvent] = []
        self.ledger = WriteLedger(self.clock.now)
        self.health_changes: list[tuple[float, str, bool]] = []  # (at, region, healthy)
        self._fault_began_at: dict[str, float] = {}
        self.regions: dict[str, Region] = {}
        self._aws_by_region: dict[str, RegionAws] = {}
        self._stops: list[Callable[[], None]] = []
        self.replicator: Replicator
        self.id_key: IdKey  # the stack's id key, read from the lab's id secret at start
        # The Route 53 API (its control plane, in us-east-1) refuses every call while True.
        self.route53_api_down = False
        self.dns: FailoverDns
        self.router: FailoverRouter

    # --- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        if not Lab._running.acquire(blocking=False):
            raise RuntimeError("a lab is already running in this process; stop it first")
        try:
            with main_thread_signals():
                self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        # Process-wide settings, put back on stop: the lab may share a process (tests).
        for name, value in _RUNTIME_ENVIRONMENT.items():
            previous = os.environ.get(name)
            os.environ[name] = value
            self._stops.append(functools.partial(_restore_variable, name, previous))
        self._stops.append(functools.partial(service_logger.setLevel, service_logger.log_level))
        service_logger.setLevel(self._service_log_level)
        self._mock.start()
        self._stops.append(self._mock.stop)
        settings = self.settings
        apis: dict[str, RegionApi] = {}
        resources: dict[str, RegionResources] = {}
        config = settings.config
        # The stage's method settings and the merchants' usage plan, as the stack sets them.
        stage_limits = ThrottleLimits(
            config.api_throttle_rate_limit, config.api_throttle_burst_limit
        )
        merchant_limits = ThrottleLimits(
            config.merchant_throttle_rate_limit, config.merchant_throttle_burst_limit
        )
        aws_by_region = self._aws_by_region
        for region in config.regions:
            aws_by_region[region] = RegionAws(region, self._aws_lock)
            apis[region] = RegionApi(
                region,
                settings.stack,
                aws_by_region[region].faults,
                stage_limits=stage_limits,
                merchant_limits=merchant_limits,
                now=self.clock.now,
            )
            self._stops.append(apis[region].stop)
            resources[region] = seed_region(aws_by_region[region], settings, apis[region].url)
        primary_region, secondary_region = config.regions
        create_id_secret(aws_by_region[primary_region], secondary_region, settings.stack)
        # The drill's accounting finds payments by the ids the service gives them.
        self.id_key = read_id_key(
            aws_by_region[primary_region].lab_secretsmanager,
            contract.id_secret_name(settings.stack),
        )

        self.replicator = Replicator(
            self.clock,
            aws_by_region,
            resources,
            lock=self._aws_lock,
            lag_seconds=settings.replication_lag_seconds,
            strong=settings.strong,
            stream_listener=self._archive_stream_records,
        )
        for region in settings.config.regions:
            self.regions[region] = self._wire_region(
                aws_by_region[region], apis[region], resources[region]
            )
        switches = [self._traffic_switch(name) for name in self.regions]
        primary, secondary = (self.regions[r] for r in settings.config.regions)
        self.dns = FailoverDns(
            self.clock,
            primary.record,
            secondary.record,
            settings.config.budget.dns_seconds,
            on_switch=lambda region: self.note("dns", f"clients now resolve the API to {region}"),
        )
        self.router = FailoverRouter(
            self.dns, {name: region.api.url for name, region in self.regions.items()}
        )
        for started in self.regions.values():
            started.api.start()
            for worker in (started.retry_poller, started.archiver_feed):
                worker.start()
                self._stops.append(worker.stop)
        self.replicator.start()
        self._stops.append(self.replicator.stop)
        for started in self.regions.values():
            started.health.start()
            self._stops.append(started.health.stop)
        for switch in switches:
            switch.start()
            self._stops.append(switch.stop)
        self.router.start()
        self._stops.append(self.router.stop)

    def stop(self) -> None:
        """Stop whatever was started, newest first."""
        while self._stops:
            self._stops.pop()()
        Lab._running.release()

    def _wire_region(self, aws: RegionAws, api: RegionApi, resources: RegionResources) -> Region:
        """The real handlers of one region, with their event sources and health check."""
        settings, region = self.settings, aws.region
        # The API and the retry worker compute ids: only they read the id secret, as deployed.
        api_deps, retry_deps = (self._deps(aws, resources, reads_id_key=True) for _ in range(2))
        archiver_deps = self._deps(aws, resources)
        if settings.strong:
            for writer in (api_deps, retry_deps, archiver_deps):
                self.replicator.wrap_for_strong_consistency(writer.dynamodb, region)
        for payment_writer in (api_deps, retry_deps):
            self.ledger.watch(payment_writer.dynamodb, region)
        api.handler = _as_lambda(build_api_handler(api_deps))
        api.authorizer = _as_lambda(build_authorizer(self._deps(aws, resources)))
        archiver = _as_lambda(build_log_archiver(archiver_deps))
        health = RegionHealthCheck(
            region,
            api.url + contract.HEALTH_PATH,
            self.clock,
            interval_seconds=settings.config.health_check_interval_seconds,
            failure_threshold=settings.config.health_check_failure_threshold,
            checkers=settings.health_checkers,
            healthy_fraction=settings.healthy_checker_fraction,
            on_change=lambda _region, _healthy: record.recompute("health checks"),
            fault_began_at=lambda: self._fault_began_at.get(region, float("-inf")),
        )
        record = RecordHealth(health, self._record_changed)
        return Region(
            name=region,
            aws=aws,
            api=api,
            resources=resources,
            retry_poller=RetryQueuePoller(
                self.clock,
                aws,
                resources,
                _as_lambda(build_retry_worker(retry_deps)),
                settings.stack,
            ),
            archiver_feed=LogArchiverFeed(region, aws.faults, archiver, settings.stack),
            health=health,
            record=record,
        )

    def _traffic_switch(self, region: str) -> TrafficSwitchCheck:
        """The region's switch: its alarm lives in the peer region, as the stack puts it."""
        holder = self.regions[self.peer_of(region)].aws
        stack = self.settings.stack
        put_switch_alarm(holder.lab_cloudwatch, stack, region)
        record = self.regions[region].record
        switch = TrafficSwitchCheck(
            region,
            holder.lab_cloudwatch,
            lambda: holder.faults.outage,
            stack,
            self.clock,
            on_change=lambda: record.recompute("the traffic switch"),
        )
        record.switch = switch
        return switch

    def _deps(
        self, aws: RegionAws, resources: RegionResources, reads_id_key: bool = False
    ) -> ServiceDeps:
        """One function's dependencies, as its cold start would build them; the functions
        that compute ids read the id secret from this region's own copy, as deployed. Closed
        on stop, before the simulated AWS they read goes: a mode read still waiting to start
        would otherwise call it after the lab stopped."""
        id_key = None
        if reads_id_key:
            secret_id = contract.id_secret_name(self.settings.stack)
            id_key = read_id_key(aws.service_client("secretsmanager"), secret_id)
        deps = ServiceDeps(
            region=aws.region,
            ssm_path=resources.ssm_path,
            ssm=aws.service_client("ssm"),
            config=ServiceConfig.from_values(resources.function_settings),
            dynamodb=aws.service_client("dynamodb"),
            sqs=aws.service_client("sqs"),
            s3=aws.service_client("s3"),
            # The peer's SQS fails with the peer's faults, as the call crosses regions.
            peer_sqs=self._aws_by_region[self.peer_of(aws.region)].service_client("sqs"),
            # Simulated time, so the mode cache's refresh and spread scale with everything else.
            clock=self.clock.epoch,
            wait=self.clock.wait,
            mode_refresh_seconds=self.settings.config.mode_refresh_seconds,
            mode_read_spread_seconds=self.settings.config.mode_read_spread_seconds,
            id_key=id_key,
        )
        self._stops.append(deps.close)
        return deps

    # --- merchants -----------------------------------------------------------------------
    def enrol_merchant(self, merchant_id: str) -> str:
        """Issue a merchant API key as `payments-dr merchant create` does: the hashed record
        goes to the primary's table and reaches the secondary by replication. Returns the key."""
        issued = issue_key(merchant_id, self.clock.epoch())
        primary = self.regions[self.primary]
        dynamodb = primary.aws.service_client("dynamodb")
        if self.settings.strong:
            self.replicator.wrap_for_strong_consistency(dynamodb, self.primary)
        CredentialStore(dynamodb, primary.resources.table_name).create(issued.record)
        return issued.api_key

    # --- events --------------------------------------------------------------------------
    def note(self, kind: str, detail: str) -> None:
        event = TimelineEvent(round(self.clock.now(), 3), kind, detail)
        with self._events_lock:
            self.events.append(event)
        if self._on_event is not None:
            self._on_event(event)

    def _record_changed(self, region: str, healthy: bool, cause: str) -> None:
        """The region's failover record changed: its health check or its switch moved."""
        with self._events_lock:
            self.health_changes.append((self.clock.now(), region, healthy))
        if healthy:
            self.note("recovered", f"Route 53 counts {region} healthy again ({cause})")
        elif cause == "health checks":
            self.note("detected", f"health checks see {region} unhealthy")
        else:
            self.note("detected", f"the traffic switch keeps traffic away from {region}")

    def _archive_stream_records(self, region: str, records: list[dict[str, Any]]) -> None:
        self.regions[region].archiver_feed.submit(records)

    # --- the region names users see ------------------------------------------------------
    @property
    def primary(self) -> str:
        return self.settings.primary

    @property
    def secondary(self) -> str:
        return self.settings.secondary

    def peer_of(self, region: str) -> str:
        return self.secondary if region == self.primary else self.primary

    @property
    def failover_url(self) -> str:
        return self.router.url

    def region_url(self, region: str) -> str:
        return self.regions[region].api.url
