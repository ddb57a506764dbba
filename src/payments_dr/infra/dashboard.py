"""Dashboard layer: a CloudWatch dashboard graphing both regions side by side, in each region.

Each region holds a copy, so the operator watching a failing region opens the other one's.
Every metric names the region it is published in, which CloudWatch allows across regions.
It graphs the metrics the alarms watch, with the very names and dimensions the Monitoring
components use, so a graph and its alarm cannot drift apart. The body is built by
`dashboard_body`, a pure function of plain values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from payments_dr import contract
from payments_dr.contract import ConsistencyMode, Function
from payments_dr.infra.alarms import ALARM_PERIOD_SECONDS
from payments_dr.infra.metrics import (
    API_5XX,
    FUNCTION_ALARM_METRICS,
    ITERATOR_AGE,
    MESSAGES_VISIBLE,
    OLDEST_MESSAGE_AGE,
    REPLICATION_LATENCY,
    REQUEST_LATENCY,
    ROUTE53_METRICS_REGION,
    S3_OPERATIONS_FAILED,
    SYSTEM_ERRORS,
    WRITE_OPERATION,
    Metric,
    api_metric,
    canary_success,
    function_metric,
    health_check_status,
    log_replication_metric,
    queue_metric,
    service_metric,
    table_operation_metric,
    table_replication_latency,
)
from payments_dr.infra.monitoring import (
    ARCHIVE_MAX_LAG_SECONDS,
    RETRY_QUEUE_MAX_AGE_SECONDS,
    STRONG_WRITE_LATENCY_STATISTIC,
    STRONG_WRITE_P99_MS,
    MonitoringArgs,
)

GRID_WIDTH = 24  # CloudWatch dashboards are 24 units wide
WIDGET_HEIGHT = 6


@dataclass(frozen=True)
class RegionMetrics:
    """The names one region's metrics are published under, as plain values."""

    region: str
    peer_region: str
    table_name: str
    consistency_mode: ConsistencyMode
    replication_lag_alarm_seconds: int
    merchant_key_max_age_days: int
    api_name: str
    api_stage: str
    retry_queue_name: str
    dlq_name: str
    archive_failures_queue_name: str
    function_names: Mapping[Function, str]
    source_bucket: str
    destination_bucket: str
    replication_rule_id: str


def dashboard_url(region: str, name: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#dashboards/dashboard/{name}"
    )


def dashboard_body(
    regions: Sequence[RegionMetrics],
    health_check_ids: Mapping[str, str],
    alarm_arns: Sequence[str],
    canary_names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Rows of widgets, one column per region, then the stack-wide ones.

    `health_check_ids` maps each checked region to its Route 53 health check;
    `canary_names` each watching region to the canary it runs against the other.
    """
    rows: list[list[dict[str, Any]]] = [
        [_api_traffic(r) for r in regions],
        [_api_latency(r) for r in regions],
        # Always in us-east-1, the only region Route 53 publishes them in, whatever the
        # stack's regions: its health-check alarms are there too.
        [_health_checks(health_check_ids)],
        *(
            [[_canary(region, name) for region, name in canary_names.items()]]
            if canary_names
            else []
        ),
        [_table_replication(r) for r in regions],
        [_queues(r) for r in regions],
        [_function_faults(r) for r in regions],
        [_function_load(r) for r in regions],
        [_log_replication(r) for r in regions],
        [_merchant_keys(r) for r in regions],
        [_alarm_status(alarm_arns)],
    ]
    return {"widgets": _laid_out(rows)}


def _laid_out(rows: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Places each row's widgets side by side, sharing the grid's width equally."""
    widgets = []
    for row_index, row in enumerate(rows):
        width = GRID_WIDTH // len(row)
        for column, widget in enumerate(row):
            widgets.append(
                {
                    **widget,
                    "x": column * width,
                    "y": row_index * WIDGET_HEIGHT,
                    "width": width,
                    "height": WIDGET_HEIGHT,
                }
            )
    return widgets


def _line(
    metric: Metric[str], region: str, stat: str, label: str, *, right_axis: bool = False
) -> list[Any]:
    """One graphed metric in CloudWatch's array form, naming the region it is published in."""
    options: dict[str, Any] = {"region": region, "stat": stat, "label": label}
    if right_axis:
        options["yAxis"] = "right"
    dimensions = [part for pair in metric.dimensions.items() for part in pair]
    return [metric.namespace, metric.name, *dimensions, options]


def _graph(
    title: str,
    region: str,
    lines: list[list[Any]],
    *,
    left_label: str,
    right_label: str | None = None,
    thresholds: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    axes: dict[str, Any] = {"left": {"label": left_label, "showUnits": False, "min": 0}}
    if right_label:
        axes["right"] = {"label": right_label, "showUnits": False, "min": 0}
    properties: dict[str, Any] = {
        "title": title,
        "region": region,
        "view": "timeSeries",
        "stacked": False,
        "period": ALARM_PERIOD_SECONDS,  # the alarms' resolution
        "metrics": lines,
        "yAxis": axes,
    }
    if thresholds:
        properties["annotations"] = {"horizontal": list(thresholds)}
    return {"type": "metric", "properties": properties}


def _threshold(label: str, value: float, *, right_axis: bool = False) -> dict[str, Any]:
    annotation: dict[str, Any] = {"label": label, "value": value}
    if right_axis:
        annotation["yAxis"] = "right"
    return annotation


def _api_traffic(r: RegionMetrics) -> dict[str, Any]:
    lines = [
        _line(api_metric(name, r.api_name, r.api_stage), r.region, "Sum", label)
        for name, label in (("Count", "requests"), (API_5XX, "5XX"), ("4XXError", "4XX"))
    ]
    return _graph(f"API requests and errors, {r.region}", r.region, lines, left_label="count")


def _api_latency(r: RegionMetrics) -> dict[str, Any]:
    metric = api_metric("Latency", r.api_name, r.api_stage)
    lines = [_line(metric, r.region, "p99", "latency p99")]
    return _graph(f"API latency p99, {r.region}", r.region, lines, left_label="ms")


def _health_checks(health_check_ids: Mapping[str, str]) -> dict[str, Any]:
    lines = [
        _line(health_check_status(check_id), ROUTE53_METRICS_REGION, "Minimum", checked)
        for checked, check_id in health_check_ids.items()
    ]
    return _graph(
        "Route 53 health checks (1 healthy, 0 failing over)",
        ROUTE53_METRICS_REGION,
        lines,
        left_label="status",
    )


def _canary(watching_region: str, canary_name: str) -> dict[str, Any]:
    """A canary's success, graphed in the region it runs in (not the one it probes)."""
    return _graph(
        f"Canary in {watching_region} probing the other region (% runs passed)",
        watching_region,
        [_line(canary_success(canary_name), watching_region, "Average", canary_name)],
        left_label="%",
        thresholds=[_threshold("alarm below", 100)],
    )


def _table_replication(r: RegionMetrics) -> dict[str, Any]:
    if r.consistency_mode is ConsistencyMode.STRONG:
        return _strong_writes(r)
    metric = table_replication_latency(r.table_name, r.peer_region)
    threshold_ms = r.replication_lag_alarm_seconds * 1000  # the metric is in ms, as the alarm's
    conflicts = service_metric(
        contract.REPLICATION_CONFLICTS_METRIC,
        contract.service_name(Function.LOG_ARCHIVER),
    )
    return _graph(
        f"Table replication {r.region} -> {r.peer_region}",
        r.region,
        [
            _line(metric, r.region, "Maximum", f"{r.region} -> {r.peer_region}"),
            _line(conflicts, r.region, "Sum", "versions overwritten here", right_axis=True),
        ],
        left_label="ms",
        right_label="conflicts",
        thresholds=[_threshold("alarm (RPO budget)", threshold_ms)],
    )


def _strong_writes(r: RegionMetrics) -> dict[str, Any]:
    """Strong consistency: the writes that wait for the other regions, their p99 and errors."""
    return _graph(
        f"Strongly consistent writes, {r.region}",
        r.region,
        [
            _line(
                table_operation_metric(REQUEST_LATENCY, r.table_name, WRITE_OPERATION),
                r.region,
                STRONG_WRITE_LATENCY_STATISTIC,
                "PutItem latency",
            ),
            _line(
                table_operation_metric(SYSTEM_ERRORS, r.table_name, WRITE_OPERATION),
                r.region,
                "Sum",
                "PutItem system errors",
                right_axis=True,
            ),
        ],
        left_label="ms",
        right_label="errors",
        thresholds=[_threshold("alarm (p99)", STRONG_WRITE_P99_MS)],
    )


def _queues(r: RegionMetrics) -> dict[str, Any]:
    lines = [
        _line(queue_metric(MESSAGES_VISIBLE, r.dlq_name), r.region, "Maximum", "DLQ messages"),
        _line(
            queue_metric(MESSAGES_VISIBLE, r.archive_failures_queue_name),
            r.region,
            "Maximum",
            "archive failures",
        ),
        _line(
            queue_metric(OLDEST_MESSAGE_AGE, r.retry_queue_name),
            r.region,
            "Maximum",
            "oldest retry (s)",
            right_axis=True,
        ),
    ]
    return _graph(
        f"Queues, {r.region}",
        r.region,
        lines,
        left_label="messages",
        right_label="s",
        thresholds=[_threshold("retry age alarm", RETRY_QUEUE_MAX_AGE_SECONDS, right_axis=True)],
    )


def _function_faults(r: RegionMetrics) -> dict[str, Any]:
    lines = [
        _line(function_metric(name, function_name), r.region, "Sum", f"{function} {name}")
        for function, function_name in r.function_names.items()
        for name in FUNCTION_ALARM_METRICS
    ]
    return _graph(f"Function errors and throttles, {r.region}", r.region, lines, left_label="count")


def _function_load(r: RegionMetrics) -> dict[str, Any]:
    lines = [
        _line(
            function_metric("ConcurrentExecutions", function_name),
            r.region,
            "Maximum",
            f"{function} concurrency",
        )
        for function, function_name in r.function_names.items()
    ]
    archiver = r.function_names[Function.LOG_ARCHIVER]
    lines.append(
        _line(
            function_metric(ITERATOR_AGE, archiver),
            r.region,
            "Maximum",
            "log archiver iterator age (ms)",
            right_axis=True,
        )
    )
    return _graph(
        f"Function concurrency and archive lag, {r.region}",
        r.region,
        lines,
        left_label="executions",
        right_label="ms",
        thresholds=[
            _threshold("archive lag alarm", ARCHIVE_MAX_LAG_SECONDS * 1000, right_axis=True)
        ],
    )


def _log_replication(r: RegionMetrics) -> dict[str, Any]:
    def metric(name: str) -> Metric[str]:
        return log_replication_metric(
            name, r.source_bucket, r.destination_bucket, r.replication_rule_id
        )

    lines = [
        _line(metric(REPLICATION_LATENCY), r.region, "Maximum", "latency (s)"),
        _line(metric(S3_OPERATIONS_FAILED), r.region, "Sum", "failed", right_axis=True),
    ]
    return _graph(
        f"Transaction-log replication {r.region} -> {r.peer_region}",
        r.region,
        lines,
        left_label="s",
        right_label="objects",
    )


def _merchant_keys(r: RegionMetrics) -> dict[str, Any]:
    """The oldest key the authorizer admitted, and previous keys still in use (a rotation in
    progress): both from the authorizer's table reads, so only keys used in that region."""
    authorizer = contract.service_name(Function.AUTHORIZER)
    return _graph(
        f"Merchant keys in use, {r.region}",
        r.region,
        [
            _line(
                service_metric(contract.MERCHANT_KEY_AGE_METRIC, authorizer),
                r.region,
                "Maximum",
                "oldest key admitted (days)",
            ),
            _line(
                service_metric(contract.AUTH_PREVIOUS_KEY_METRIC, authorizer),
                r.region,
                "Sum",
                "admitted with a rotated-out key",
                right_axis=True,
            ),
        ],
        left_label="days",
        right_label="requests",
        thresholds=[_threshold("key age alarm", r.merchant_key_max_age_days)],
    )


def _alarm_status(alarm_arns: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "alarm",
        "properties": {"title": "Alarms of both regions", "alarms": list(alarm_arns)},
    }


@dataclass(frozen=True)
class DashboardArgs:
    stack: str
    region: str  # where this copy lives: each region has one, so either can be watched alone
    # Each region's Monitoring inputs: the dashboard graphs what the alarms watch.
    monitored: Sequence[MonitoringArgs]
    health_check_ids: Mapping[str, pulumi.Input[str]]  # by checked region
    alarm_arns: Sequence[pulumi.Input[str]]  # every alarm of the stack
    canary_names: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)  # by region


class Dashboard(pulumi.ComponentResource):
    """One region's copy of the stack's CloudWatch dashboard of both regions."""

    def __init__(
        self, name: str, args: DashboardArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("payments-dr:infra:Dashboard", name, None, opts)
        dashboard_name = contract.dashboard_name(args.stack)
        body = pulumi.Output.all(
            pulumi.Output.all(*[_resolved(monitored) for monitored in args.monitored]),
            pulumi.Output.from_input(dict(args.health_check_ids)),
            pulumi.Output.all(*args.alarm_arns),
            pulumi.Output.from_input(dict(args.canary_names)),
        ).apply(lambda values: json.dumps(dashboard_body(*values)))
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            region=args.region,
            dashboard_name=dashboard_name,
            dashboard_body=body,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.url = dashboard_url(args.region, dashboard_name)
        self.register_outputs({"url": self.url})


def _resolved(args: MonitoringArgs) -> pulumi.Output[RegionMetrics]:
    def build(names: list[Any]) -> RegionMetrics:
        table_name, api_name, retry_queue_name, dlq_name, archive_failures_queue_name = names
        return RegionMetrics(
            region=args.region,
            peer_region=args.peer_region,
            table_name=table_name,
            consistency_mode=args.consistency_mode,
            replication_lag_alarm_seconds=args.replication_lag_alarm_seconds,
            merchant_key_max_age_days=args.merchant_key_max_age_days,
            api_name=api_name,
            api_stage=args.api_stage,
            retry_queue_name=retry_queue_name,
            dlq_name=dlq_name,
            archive_failures_queue_name=archive_failures_queue_name,
            function_names=args.function_names,
            source_bucket=args.source_bucket,
            destination_bucket=args.destination_bucket,
            replication_rule_id=args.replication_rule_id,
        )

    return pulumi.Output.all(
        args.table_name,
        args.api_name,
        args.retry_queue_name,
        args.dlq_name,
        args.archive_failures_queue_name,
    ).apply(build)
