"""The traffic switch (infra/switch.py): each failover record needs its region's HTTPS check AND
a switch whose state lives outside that region; `failoverControl` picks an alarm or ARC."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from payments_dr import contract
from payments_dr.contract import FailoverControl, RegionOutput, StackOutput
from payments_dr.infra.config import ConfigError, StackConfig
from payments_dr.ops.outputs import parse_outputs
from payments_dr.policy import evaluate
from payments_dr.simulated_aws import ARC_CLUSTER_ENDPOINT_REGIONS
from payments_dr.synth import SynthResult, synthesize_config

from .support import one

CHECK = "aws:route53/healthCheck:HealthCheck"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ARC = "aws:route53recoverycontrol"


@pytest.fixture(scope="module")
def arc(artifact_path: Path) -> SynthResult:
    config = StackConfig.from_mapping(
        "arc", {"domainName": "pay.example.com", "failoverControl": "arc"}
    )
    return synthesize_config(config, artifact_path)


def record_check(stack: SynthResult, region: str) -> dict[str, Any]:
    output = stack.outputs[StackOutput.REGIONS][region]
    checks = [c for c in stack.of_type(CHECK) if c["inputs"].get("type") == "CALCULATED"]
    (record,) = [
        r["inputs"]
        for r in stack.of_type("aws:route53/record:Record")
        if r["inputs"].get("failoverRoutingPolicies")
        and r["inputs"]["healthCheckId"] == output[RegionOutput.RECORD_HEALTH_CHECK_ID]
    ]
    assert record["aliases"][0]["name"] == output[RegionOutput.CUSTOM_DOMAIN_TARGET]
    return one([c for c in checks if region in c["name"]])["inputs"]


def test_each_record_needs_its_https_check_and_its_switch(stack: SynthResult) -> None:
    for region in stack.config.regions:
        output = stack.outputs[StackOutput.REGIONS][region]
        calculated = record_check(stack, region)
        switch = output[RegionOutput.SWITCH]
        assert calculated["childHealthchecks"] == [
            output[RegionOutput.HEALTH_CHECK_ID],
            switch["health_check_id"],
        ]
        assert calculated["childHealthThreshold"] == 2  # both: either one moves traffic


def test_the_default_switch_is_an_alarm_held_in_the_other_region(stack: SynthResult) -> None:
    assert stack.outputs[StackOutput.FAILOVER_CONTROL] == {"kind": "alarm"}
    name = stack.config.stack
    for region in stack.config.regions:
        peer = stack.config.peer_region(region)
        switch = stack.outputs[StackOutput.REGIONS][region][RegionOutput.SWITCH]
        assert switch["region"] == peer
        alarm = one(
            [a for a in stack.of_type(ALARM, peer) if a["inputs"]["name"] == switch["alarm_name"]]
        )["inputs"]
        assert alarm["namespace"] == switch["namespace"] == contract.SWITCH_NAMESPACE
        assert alarm["metricName"] == contract.SWITCH_METRIC
        assert alarm["dimensions"] == contract.switch_dimensions(name, region)
        # Route 53 takes only standard-resolution metrics and the basic statistics.
        assert alarm["period"] == 60
        assert alarm["statistic"] == "Maximum"
        assert (alarm["threshold"], alarm["comparisonOperator"]) == (
            1,
            "GreaterThanOrEqualToThreshold",
        )
        assert alarm["treatMissingData"] == "ignore"
        (check_resource,) = [
            c
            for c in stack.of_type(CHECK)
            if c["inputs"].get("cloudwatchAlarmName") == switch["alarm_name"]
        ]
        check = check_resource["inputs"]
        assert check["type"] == "CLOUDWATCH_METRIC"
        assert check["cloudwatchAlarmRegion"] == peer
        # No new data holds the last status: one datapoint holds the switch.
        assert check["insufficientDataHealthStatus"] == "LastKnownStatus"
        alarm_urn = one(
            [a for a in stack.of_type(ALARM, peer) if a["inputs"]["name"] == switch["alarm_name"]]
        )["urn"]
        assert alarm_urn in check_resource["dependencies"]  # Route 53 reads it at creation


def test_arc_builds_a_cluster_panel_controls_and_a_safety_rule(arc: SynthResult) -> None:
    assert not [
        a for a in arc.of_type(ALARM) if a["inputs"]["namespace"] == contract.SWITCH_NAMESPACE
    ]
    one(arc.of_type(f"{ARC}/cluster:Cluster"))
    one(arc.of_type(f"{ARC}/controlPanel:ControlPanel"))
    controls = arc.of_type(f"{ARC}/routingControl:RoutingControl")
    assert len(controls) == 2
    rule = one(arc.of_type(f"{ARC}/safetyRule:SafetyRule"))["inputs"]
    assert rule["ruleConfig"] == {"inverted": False, "threshold": 1, "type": "ATLEAST"}
    assert len(rule["assertedControls"]) == 2
    control = arc.outputs[StackOutput.FAILOVER_CONTROL]
    assert control["kind"] == "arc"
    assert [e["region"] for e in control["cluster_endpoints"]] == list(ARC_CLUSTER_ENDPOINT_REGIONS)
    for region in arc.config.regions:
        switch = arc.outputs[StackOutput.REGIONS][region][RegionOutput.SWITCH]
        assert switch["kind"] == "arc"
        check = one(
            [
                c
                for c in arc.of_type(CHECK)
                if c["inputs"].get("routingControlArn") == switch["routing_control_arn"]
            ]
        )["inputs"]
        assert check["type"] == "RECOVERY_CONTROL"
        assert record_check(arc, region)["childHealthchecks"][1] == switch["health_check_id"]
    outputs = parse_outputs("arc", arc.outputs)
    assert outputs.failover_control is FailoverControl.ARC
    assert len(outputs.cluster_endpoints) == 5


def test_both_switches_pass_every_policy_rule(stack: SynthResult, arc: SynthResult) -> None:
    for synthesized in (stack, arc):
        budget = synthesized.outputs[StackOutput.DR_BUDGET]
        assert evaluate(synthesized.resources, budget) == []


def test_an_unknown_switch_is_refused_naming_the_key_and_both_choices() -> None:
    with pytest.raises(ConfigError) as refused:
        StackConfig.from_mapping(
            "bad", {"domainName": "pay.example.com", "failoverControl": "route53"}
        )
    message = str(refused.value)
    assert message.startswith("payments-dr:failoverControl: unknown switch 'route53'")
    assert "alarm" in message and "arc" in message
