"""Dashboard layer: a CloudWatch dashboard graphing both regions side by side, in each region.

Each region holds a copy, so the operator watching a failing region opens the other one's.
Every metric names the region it is published in, which CloudWatch allows across regions.
The body is built by `dashboard_body`, a pure function of plain values, from the widgets in
`dashboard_widgets`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from payments_dr import contract
from payments_dr.infra import dashboard_widgets as widgets
from payments_dr.infra.dashboard_widgets import RegionMetrics
from payments_dr.infra.monitoring import MonitoringArgs

GRID_WIDTH = 24  # CloudWatch dashboards are 24 units wide
WIDGET_HEIGHT = 6


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
        [widgets.api_traffic(r) for r in regions],
        [widgets.api_latency(r) for r in regions],
        # Always in us-east-1, the only region Route 53 publishes them in, whatever the
        # stack's regions: its health-check alarms are there too.
        [widgets.health_checks(health_check_ids)],
        *(
            [[widgets.canary(region, name) for region, name in canary_names.items()]]
            if canary_names
            else []
        ),
        [widgets.table_replication(r) for r in regions],
        [widgets.queues(r) for r in regions],
        [widgets.function_faults(r) for r in regions],
        [widgets.function_load(r) for r in regions],
        [widgets.log_replication(r) for r in regions],
        [widgets.merchant_keys(r) for r in regions],
        [widgets.alarm_status(alarm_arns)],
    ]
    return {"widgets": _laid_out(rows)}


def _laid_out(rows: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Places each row's widgets side by side, sharing the grid's width equally."""
    placed = []
    for row_index, row in enumerate(rows):
        width = GRID_WIDTH // len(row)
        for column, widget in enumerate(row):
            placed.append(
                {
                    **widget,
                    "x": column * width,
                    "y": row_index * WIDGET_HEIGHT,
                    "width": width,
                    "height": WIDGET_HEIGHT,
                }
            )
    return placed


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
