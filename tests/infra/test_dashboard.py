"""The DR dashboard under mocks: a copy in each region, both regions graphed, a graph for
every alarm."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from payments_dr import contract
from payments_dr.contract import ConsistencyMode, Function, RegionOutput, StackOutput
from payments_dr.infra.config import StackConfig
from payments_dr.infra.dashboard import GRID_WIDTH, dashboard_body
from payments_dr.infra.dashboard_widgets import RegionMetrics
from payments_dr.synth import SynthResult, synthesize_config

from .support import ALARM, one, paging_alarms

DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
MONITORING = "payments-dr:infra:Monitoring"
DASHBOARD_COMPONENT = "payments-dr:infra:Dashboard"
CANARY = "payments-dr:infra:CrossRegionCanary"

# (namespace, metric name, dimensions, region): what a graphed line or an alarm watches.
MetricKey = tuple[str, str, frozenset[tuple[str, str]], str]


@pytest.fixture(scope="module")
def without_us_east_1(artifact_path: Path) -> SynthResult:
    config = StackConfig.from_mapping(
        "west",
        {
            "domainName": "pay.example.com",
            "primaryRegion": "us-west-2",
            "secondaryRegion": "us-east-2",
        },
    )
    return synthesize_config(config, artifact_path)


def body(stack: SynthResult, region: str | None = None) -> dict[str, Any]:
    """The body of one region's copy (the primary's unless named)."""
    dashboard = one(stack.of_type(DASHBOARD, region or stack.config.primary_region))
    document: dict[str, Any] = json.loads(dashboard["inputs"]["dashboardBody"])
    return document


def metric_widgets(stack: SynthResult) -> list[dict[str, Any]]:
    return [w["properties"] for w in body(stack)["widgets"] if w["type"] == "metric"]


def line_key(line: list[Any]) -> MetricKey:
    namespace, name, *dimensions, options = line
    pairs = zip(dimensions[::2], dimensions[1::2], strict=True)
    return namespace, name, frozenset(pairs), options["region"]


def graphed(stack: SynthResult) -> set[MetricKey]:
    return {line_key(line) for widget in metric_widgets(stack) for line in widget["metrics"]}


def monitoring_alarms(stack: SynthResult) -> list[dict[str, Any]]:
    """The regions' own alarms: their Monitoring's and their canary's."""
    components = {r["urn"] for r in stack.resources if r["type"] in (MONITORING, CANARY)}
    return [alarm for alarm in stack.of_type(ALARM) if alarm["parent"] in components]


def alarm_key(alarm: dict[str, Any]) -> MetricKey:
    inputs = alarm["inputs"]
    dimensions = frozenset(inputs["dimensions"].items())
    return inputs["namespace"], inputs["metricName"], dimensions, alarm["region"]


def test_a_copy_of_the_dashboard_in_each_region(stack: SynthResult) -> None:
    """Whichever region fails, the other holds the whole picture."""
    dashboards = stack.of_type(DASHBOARD)
    assert sorted(d["region"] for d in dashboards) == sorted(stack.config.regions)
    components = {r["urn"] for r in stack.resources if r["type"] == DASHBOARD_COMPONENT}
    for dashboard in dashboards:
        assert dashboard["inputs"]["dashboardName"] == contract.dashboard_name(stack.config.stack)
        assert dashboard["parent"] in components
    first, second = (body(stack, region) for region in stack.config.regions)
    assert first == second
    for region in stack.config.regions:
        url = stack.outputs[StackOutput.REGIONS][region][RegionOutput.DASHBOARD_URL]
        assert url.startswith(f"https://{region}.console.aws.amazon.com/cloudwatch/")


def test_each_canary_is_graphed_where_it_runs_with_its_alarm_threshold(
    stack: SynthResult,
) -> None:
    canary_alarms = {
        alarm["region"]: alarm
        for alarm in stack.of_type(ALARM)
        if alarm["inputs"]["namespace"] == "CloudWatchSynthetics"
    }
    assert set(canary_alarms) == set(stack.config.regions)
    widgets = [w for w in metric_widgets(stack) if w["title"].startswith("Canary in")]
    assert {w["region"] for w in widgets} == set(stack.config.regions)
    for widget in widgets:
        alarm = canary_alarms[widget["region"]]
        assert {line_key(line) for line in widget["metrics"]} == {alarm_key(alarm)}
        (annotation,) = widget["annotations"]["horizontal"]
        assert annotation["value"] == alarm["inputs"]["threshold"] == 100


def test_every_graph_names_the_region_of_each_metric(stack: SynthResult) -> None:
    widgets = metric_widgets(stack)
    assert widgets
    for widget in widgets:
        assert widget["metrics"], widget["title"]
        for line in widget["metrics"]:
            options = line[-1]
            assert options["region"] in stack.config.regions, (widget["title"], line)
            assert options["stat"]


def test_widgets_fit_the_grid_without_overlapping(stack: SynthResult) -> None:
    taken: set[tuple[int, int]] = set()
    for widget in body(stack)["widgets"]:
        assert widget["x"] + widget["width"] <= GRID_WIDTH
        cells = {
            (x, y)
            for x in range(widget["x"], widget["x"] + widget["width"])
            for y in range(widget["y"], widget["y"] + widget["height"])
        }
        assert not cells & taken, widget["properties"]["title"]
        taken |= cells


@pytest.mark.parametrize("which", ["eventual", "strong", "without_us_east_1"])
def test_every_monitoring_alarm_is_graphed_in_its_region(
    which: str, request: pytest.FixtureRequest
) -> None:
    stack: SynthResult = request.getfixturevalue(which)
    alarms = monitoring_alarms(stack)
    assert {alarm["region"] for alarm in alarms} == set(stack.config.regions)
    lines = graphed(stack)
    missing = [alarm["inputs"]["name"] for alarm in alarms if alarm_key(alarm) not in lines]
    assert not missing


def test_api_replication_and_queues_shown_for_both_regions(stack: SynthResult) -> None:
    lines = graphed(stack)
    both = set(stack.config.regions)
    for namespace, metric in [
        ("AWS/ApiGateway", "Count"),
        ("AWS/ApiGateway", "5XXError"),
        ("AWS/ApiGateway", "4XXError"),
        ("AWS/ApiGateway", "Latency"),
        *(
            [("AWS/DynamoDB", "SystemErrors"), ("AWS/DynamoDB", "SuccessfulRequestLatency")]
            if stack.config.consistency_mode is ConsistencyMode.STRONG
            else [("AWS/DynamoDB", "ReplicationLatency")]
        ),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/S3", "ReplicationLatency"),
        ("AWS/S3", "OperationsFailedReplication"),
        ("AWS/Lambda", "ConcurrentExecutions"),
    ]:
        regions = {key[3] for key in lines if key[:2] == (namespace, metric)}
        assert regions == both, (namespace, metric)
    latency = [
        line[-1]["stat"]
        for widget in metric_widgets(stack)
        for line in widget["metrics"]
        if line[:2] == ["AWS/ApiGateway", "Latency"]
    ]
    assert latency == ["p99", "p99"]


def test_lambda_concurrency_for_every_function_in_each_region(stack: SynthResult) -> None:
    lines = graphed(stack)
    for region in stack.config.regions:
        for function in Function:
            name = contract.function_name(stack.config.stack, function)
            key = ("AWS/Lambda", "ConcurrentExecutions", frozenset({("FunctionName", name)}))
            assert (*key, region) in lines


def test_replication_annotation_is_the_alarm_threshold_in_ms(eventual: SynthResult) -> None:
    stack = eventual
    thresholds = {
        alarm["region"]: alarm["inputs"]["threshold"]
        for alarm in monitoring_alarms(stack)
        if alarm["inputs"]["metricName"] == "ReplicationLatency"
    }
    widgets = [
        widget
        for widget in metric_widgets(stack)
        if any(line[:2] == ["AWS/DynamoDB", "ReplicationLatency"] for line in widget["metrics"])
    ]
    assert len(widgets) == 2
    expected_ms = stack.config.replication_lag_alarm_seconds * 1000
    for widget in widgets:
        (annotation,) = widget["annotations"]["horizontal"]
        assert annotation["value"] == expected_ms == thresholds[widget["region"]]
        assert widget["yAxis"]["left"]["label"] == "ms"


def test_alarm_widget_lists_every_alarm_of_both_regions(stack: SynthResult) -> None:
    (widget,) = [w["properties"] for w in body(stack)["widgets"] if w["type"] == "alarm"]
    regions = stack.outputs[StackOutput.REGIONS]
    exported = {
        arn for output in regions.values() for arn in output[RegionOutput.ALARM_ARNS].values()
    }
    assert set(widget["alarms"]) == exported
    assert len(widget["alarms"]) == len(paging_alarms(stack))
    assert {arn.split(":")[3] for arn in widget["alarms"]} == set(stack.config.regions)


def test_output_url_names_the_dashboard_and_its_region(stack: SynthResult) -> None:
    url = stack.outputs[StackOutput.DASHBOARD_URL]
    primary = stack.config.primary_region
    assert url.startswith(f"https://{primary}.console.aws.amazon.com/cloudwatch/")
    assert f"region={primary}" in url
    assert url.endswith(f"#dashboards/dashboard/{contract.dashboard_name(stack.config.stack)}")


def test_health_checks_graphed_in_us_east_1_for_each_region(stack: SynthResult) -> None:
    assert_health_checks_graphed_in_us_east_1(stack)


def assert_health_checks_graphed_in_us_east_1(stack: SynthResult) -> None:
    regions = stack.outputs[StackOutput.REGIONS]
    expected = {
        (
            "AWS/Route53",
            "HealthCheckStatus",
            frozenset({("HealthCheckId", output[RegionOutput.HEALTH_CHECK_ID])}),
            "us-east-1",
        )
        for output in regions.values()
    }
    health = {key for key in graphed(stack) if key[0] == "AWS/Route53"}
    assert health == expected
    assert len(health) == 2


def test_health_checks_graphed_without_us_east_1_too(without_us_east_1: SynthResult) -> None:
    assert "us-east-1" not in without_us_east_1.config.regions
    assert_health_checks_graphed_in_us_east_1(without_us_east_1)
    # Each graphed check is alarmed in us-east-1, where the metric is.
    health_alarms = {
        alarm_key(alarm)
        for alarm in without_us_east_1.of_type(ALARM, "us-east-1")
        if alarm["inputs"]["namespace"] == "AWS/Route53"
    }
    assert health_alarms == {key for key in graphed(without_us_east_1) if key[0] == "AWS/Route53"}
    url = without_us_east_1.outputs[StackOutput.DASHBOARD_URL]
    assert url.startswith("https://us-west-2.console.aws.amazon.com/")
    assert {d["region"] for d in without_us_east_1.of_type(DASHBOARD)} == {"us-west-2", "us-east-2"}


def test_alarm_widget_lists_the_us_east_1_alarms_of_a_stack_without_it(
    without_us_east_1: SynthResult,
) -> None:
    (widget,) = [
        w["properties"] for w in body(without_us_east_1)["widgets"] if w["type"] == "alarm"
    ]
    assert len(widget["alarms"]) == len(paging_alarms(without_us_east_1))
    assert {arn.split(":")[3] for arn in widget["alarms"]} == {
        *without_us_east_1.config.regions,
        "us-east-1",
    }


def region_metrics(region: str, peer: str) -> RegionMetrics:
    return RegionMetrics(
        region=region,
        peer_region=peer,
        table_name="t",
        replication_lag_alarm_seconds=7,
        merchant_key_max_age_days=90,
        api_name="api",
        api_stage="live",
        retry_queue_name="retry",
        dlq_name="dlq",
        archive_failures_queue_name="failures",
        function_names={f: f"fn-{f.value}" for f in Function},
        consistency_mode=ConsistencyMode.EVENTUAL,
        source_bucket=f"b-{region}",
        destination_bucket=f"b-{peer}",
        replication_rule_id=f"to-{peer}",
    )


@pytest.mark.parametrize("regions", [("us-east-1", "us-east-2"), ("eu-west-1", "eu-central-1")])
def test_builder_always_graphs_the_health_checks_in_us_east_1(regions: tuple[str, str]) -> None:
    first, second = regions
    document = dashboard_body(
        [region_metrics(first, second), region_metrics(second, first)],
        {first: "hc-1", second: "hc-2"},
        ["arn:aws:cloudwatch:x:1:alarm:a"],
    )
    health_lines = [
        line
        for widget in document["widgets"]
        for line in widget["properties"].get("metrics", [])
        if line[0] == "AWS/Route53"
    ]
    assert {line_key(line) for line in health_lines} == {
        ("AWS/Route53", "HealthCheckStatus", frozenset({("HealthCheckId", check)}), "us-east-1")
        for check in ("hc-1", "hc-2")
    }
    annotations = [
        widget["properties"]["annotations"]["horizontal"][0]["value"]
        for widget in document["widgets"]
        if widget["properties"]["title"].startswith("Table replication")
    ]
    assert annotations == [7000, 7000]


def test_strong_mode_graphs_write_latency_against_its_alarm(strong: SynthResult) -> None:
    widgets = [
        widget
        for widget in metric_widgets(strong)
        if widget["title"].startswith("Strongly consistent writes")
    ]
    assert {widget["region"] for widget in widgets} == set(strong.config.regions)
    latency = {
        alarm["region"]: alarm["inputs"]["threshold"]
        for alarm in monitoring_alarms(strong)
        if alarm["inputs"]["metricName"] == "SuccessfulRequestLatency"
    }
    for widget in widgets:
        (annotation,) = widget["annotations"]["horizontal"]
        assert annotation["value"] == latency[widget["region"]]
        stats = {line[1]: line[-1]["stat"] for line in widget["metrics"]}
        assert stats == {"SuccessfulRequestLatency": "p99", "SystemErrors": "Sum"}
