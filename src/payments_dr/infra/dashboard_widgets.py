"""The widgets of the stack's CloudWatch dashboard, one builder per graph.

Each builder is a pure function of one region's metric names (`RegionMetrics`) or of the
stack's health checks, canaries and alarms, and graphs the metrics the alarms watch with the
very names, dimensions and thresholds the Monitoring components use. `dashboard` lays them out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
)


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


def api_traffic(r: RegionMetrics) -> dict[str, Any]:
    lines = [
        _line(api_metric(name, r.api_name, r.api_stage), r.region, "Sum", label)
        for name, label in (("Count", "requests"), (API_5XX, "5XX"), ("4XXError", "4XX"))
    ]
    return _graph(f"API requests and errors, {r.region}", r.region, lines, left_label="count")


def api_latency(r: RegionMetrics) -> dict[str, Any]:
    metric = api_metric("Latency", r.api_name, r.api_stage)
    lines = [_line(metric, r.region, "p99", "latency p99")]
    return _graph(f"API latency p99, {r.region}", r.region, lines, left_label="ms")


def health_checks(health_check_ids: Mapping[str, str]) -> dict[str, Any]:
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


def canary(watching_region: str, canary_name: str) -> dict[str, Any]:
    """A canary's success, graphed in the region it runs in (not the one it probes)."""
    return _graph(
        f"Canary in {watching_region} probing the other region (% runs passed)",
        watching_region,
        [_line(canary_success(canary_name), watching_region, "Average", canary_name)],
        left_label="%",
        thresholds=[_threshold("alarm below", 100)],
    )


def table_replication(r: RegionMetrics) -> dict[str, Any]:
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


def queues(r: RegionMetrics) -> dict[str, Any]:
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


def function_faults(r: RegionMetrics) -> dict[str, Any]:
    lines = [
        _line(function_metric(name, function_name), r.region, "Sum", f"{function} {name}")
        for function, function_name in r.function_names.items()
        for name in FUNCTION_ALARM_METRICS
    ]
    return _graph(f"Function errors and throttles, {r.region}", r.region, lines, left_label="count")


def function_load(r: RegionMetrics) -> dict[str, Any]:
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


def log_replication(r: RegionMetrics) -> dict[str, Any]:
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


def merchant_keys(r: RegionMetrics) -> dict[str, Any]:
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


def alarm_status(alarm_arns: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "alarm",
        "properties": {"title": "Alarms of both regions", "alarms": list(alarm_arns)},
    }
