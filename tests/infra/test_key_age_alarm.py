"""The merchant key-age alarm under mocks (issue 16, item 7): in each region, on the metric the
authorizer emits, with the configured threshold, on the region's own topic, in the outputs and
on the dashboard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from payments_dr import contract
from payments_dr.contract import Function, RegionOutput, StackOutput
from payments_dr.infra.alarms import AlarmPurpose, alarm_name
from payments_dr.infra.config import StackConfig
from payments_dr.synth import SynthResult, synthesize_config

from .support import ALARM, one

FUNCTION = "aws:lambda/function:Function"
TOPIC = "aws:sns/topic:Topic"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
CONFIGURED_DAYS = 30


@pytest.fixture(scope="module")
def thirty_days(artifact_path: Path) -> SynthResult:
    """A stack configured with `merchantKeyMaxAgeDays: 30`."""
    config = StackConfig.from_mapping(
        "keys",
        {"domainName": "pay.example.com", "merchantKeyMaxAgeDays": str(CONFIGURED_DAYS)},
    )
    return synthesize_config(config, artifact_path)


def key_age_alarm(stack: SynthResult, region: str) -> dict[str, Any]:
    name = alarm_name(stack.config.stack, region, AlarmPurpose.MERCHANT_KEY_AGE)
    return one([a for a in stack.of_type(ALARM, region) if a["inputs"]["name"] == name])


@pytest.mark.parametrize("which", ["eventual", "strong", "thirty_days"])
def test_each_region_alarms_on_its_own_authorizers_key_age(
    which: str, request: pytest.FixtureRequest
) -> None:
    stack: SynthResult = request.getfixturevalue(which)
    expected_days = CONFIGURED_DAYS if which == "thirty_days" else 90
    assert stack.config.merchant_key_max_age_days == expected_days
    for region in stack.config.regions:
        alarm = key_age_alarm(stack, region)
        inputs = alarm["inputs"]
        assert alarm["region"] == region  # lives in the region it watches
        assert inputs["namespace"] == contract.SERVICE_METRICS_NAMESPACE
        assert inputs["metricName"] == contract.MERCHANT_KEY_AGE_METRIC
        # One metric per region: no merchant (or key) among the dimensions.
        assert inputs["dimensions"] == {"service": contract.service_name(Function.AUTHORIZER)}
        assert (inputs["statistic"], inputs["threshold"]) == ("Maximum", expected_days)
        assert inputs["comparisonOperator"] == "GreaterThanThreshold"
        assert inputs["period"] == 3600
        assert inputs["treatMissingData"] == "notBreaching"
        assert f"more than {expected_days} days old" in inputs["alarmDescription"]
        assert "docs/runbooks/merchant-key-rotation.md" in inputs["alarmDescription"]
        # The region's own topic: paging keeps working with the other region gone.
        outputs = stack.outputs[StackOutput.REGIONS][region]
        topic_arn = outputs[RegionOutput.ALARM_TOPIC_ARN]
        assert topic_arn.split(":")[3] == region
        assert one(stack.of_type(TOPIC, region))["inputs"]["name"] in topic_arn
        assert inputs["alarmActions"] == [topic_arn]
        assert inputs["okActions"] == [topic_arn]
        assert AlarmPurpose.MERCHANT_KEY_AGE in outputs[RegionOutput.ALARM_ARNS]
        listed = {(entry["region"], entry["alarm"]) for entry in stack.outputs[StackOutput.ALARMS]}
        assert (region, AlarmPurpose.MERCHANT_KEY_AGE.value) in listed


def test_the_alarm_watches_what_the_deployed_authorizer_publishes(eventual: SynthResult) -> None:
    """Powertools names the namespace and the `service` dimension from the environment."""
    name = contract.function_name(eventual.config.stack, Function.AUTHORIZER)
    for region in eventual.config.regions:
        inputs = key_age_alarm(eventual, region)["inputs"]
        function = one(
            [f for f in eventual.of_type(FUNCTION, region) if f["inputs"]["name"] == name]
        )
        variables = function["inputs"]["environment"]["variables"]
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == inputs["namespace"]
        assert variables["POWERTOOLS_SERVICE_NAME"] == inputs["dimensions"]["service"]
        assert variables.get("POWERTOOLS_METRICS_DISABLED", "false") == "false"


def test_every_dashboard_copy_graphs_key_age_in_both_regions_against_the_threshold(
    thirty_days: SynthResult,
) -> None:
    for copy_region in thirty_days.config.regions:
        dashboard = one(thirty_days.of_type(DASHBOARD, copy_region))
        widgets = json.loads(dashboard["inputs"]["dashboardBody"])["widgets"]
        graphs = [w["properties"] for w in widgets if w["type"] == "metric"]
        key_graphs = {
            graph["region"]: graph
            for graph in graphs
            if any(line[1] == contract.MERCHANT_KEY_AGE_METRIC for line in graph["metrics"])
        }
        assert set(key_graphs) == set(thirty_days.config.regions)
        for graph in key_graphs.values():
            (threshold,) = graph["annotations"]["horizontal"]
            assert threshold["value"] == CONFIGURED_DAYS
