"""Route 53 health-check alarms for a stack whose regions do not include us-east-1.

Route 53 publishes health-check metrics only in us-east-1, so such a stack gets a small set
there: its own key, an encrypted topic and one alarm per region.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import pytest

from payments_dr.contract import SWITCH_NAMESPACE, RegionOutput, StackOutput
from payments_dr.infra.config import StackConfig
from payments_dr.policy import evaluate, format_verdicts
from payments_dr.simulated_aws import SIMULATED_ACCOUNT_ID as ACCOUNT
from payments_dr.synth import SynthResult, synthesize_config

from .support import one, policy

US_EAST_1 = "us-east-1"
PRIMARY, SECONDARY = "us-west-2", "us-east-2"
EMAIL = "oncall@example.com"
COMPONENT = "payments-dr:infra:HealthCheckAlarms"
KEY = "aws:kms/key:Key"
ALIAS = "aws:kms/alias:Alias"
TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


@pytest.fixture(scope="module")
def west(artifact_path: Path) -> SynthResult:
    config = StackConfig.from_mapping(
        "west",
        {
            "domainName": "pay.example.com",
            "primaryRegion": PRIMARY,
            "secondaryRegion": SECONDARY,
            "alarmEmail": EMAIL,
        },
    )
    return synthesize_config(config, artifact_path)


def component_urn(stack: SynthResult) -> str:
    urn: str = one([r for r in stack.resources if r["type"] == COMPONENT])["urn"]
    return urn


def key_arn(stack: SynthResult) -> str:
    # The synthesizer names a key's ARN after its id, which the alias targets.
    key_id = one(stack.of_type(ALIAS, US_EAST_1))["inputs"]["targetKeyId"]
    return f"arn:aws:kms:{US_EAST_1}:{ACCOUNT}:key/{key_id}"


def topic_arn(stack: SynthResult, region: str = US_EAST_1) -> str:
    name = one(stack.of_type(TOPIC, region))["inputs"]["name"]
    return f"arn:aws:sns:{region}:{ACCOUNT}:{name}"


def health_check_ids(stack: SynthResult) -> dict[str, str]:
    regions = stack.outputs[StackOutput.REGIONS]
    return {region: output[RegionOutput.HEALTH_CHECK_ID] for region, output in regions.items()}


def test_us_east_1_holds_only_the_health_check_set(west: SynthResult) -> None:
    in_us_east_1 = sorted(r["type"] for r in west.resources if r["region"] == US_EAST_1)
    assert in_us_east_1 == sorted([KEY, ALIAS, TOPIC, TOPIC_POLICY, SUBSCRIPTION, ALARM, ALARM])
    parent = component_urn(west)
    assert all(r["parent"] == parent for r in west.resources if r["region"] == US_EAST_1)


def test_key_rotates_and_its_policy_names_no_wildcard_principal(west: SynthResult) -> None:
    key = one(west.of_type(KEY, US_EAST_1))
    assert key["inputs"]["enableKeyRotation"] is True
    assert key["inputs"]["deletionWindowInDays"] == 30
    document = policy(key)
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] != "*"
        assert "*" not in statement["Principal"].get("AWS", "")
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    assert by_sid["AccountAdministersKey"]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    for sid, service in (
        ("CloudWatchAlarmsPublishToEncryptedTopic", "cloudwatch.amazonaws.com"),
        ("SnsUsesKeyForTheAlarmTopic", "sns.amazonaws.com"),
    ):
        statement = by_sid[sid]
        assert statement["Principal"] == {"Service": service}
        assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}


def test_key_serves_exactly_these_alarms_and_this_topic(west: SynthResult) -> None:
    by_sid = {s["Sid"]: s for s in policy(one(west.of_type(KEY, US_EAST_1)))["Statement"]}
    pattern = by_sid["CloudWatchAlarmsPublishToEncryptedTopic"]["Condition"]["ArnLike"][
        "aws:SourceArn"
    ]
    alarm_arns = [
        f"arn:aws:cloudwatch:{US_EAST_1}:{ACCOUNT}:alarm:{a['inputs']['name']}"
        for a in west.of_type(ALARM, US_EAST_1)
    ]
    assert all(fnmatch.fnmatchcase(arn, pattern) for arn in alarm_arns)
    # Alarms of the regions themselves do not publish here.
    regional = [a["inputs"]["name"] for a in west.of_type(ALARM, PRIMARY)]
    assert regional
    assert not any(
        fnmatch.fnmatchcase(f"arn:aws:cloudwatch:{US_EAST_1}:{ACCOUNT}:alarm:{name}", pattern)
        for name in regional
    )
    sns = by_sid["SnsUsesKeyForTheAlarmTopic"]["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sns == topic_arn(west)


def test_topic_encrypted_with_that_key_and_policy_like_the_regional_topics(
    west: SynthResult,
) -> None:
    topic = one(west.of_type(TOPIC, US_EAST_1))
    assert topic["inputs"]["kmsMasterKeyId"] == key_arn(west)
    topic_policy = policy(one(west.of_type(TOPIC_POLICY, US_EAST_1)))
    regional_policy = policy(one(west.of_type(TOPIC_POLICY, PRIMARY)))
    # The same builder: identical but for the topic it guards.
    assert json_with(topic_policy, topic_arn(west), "TOPIC") == json_with(
        regional_policy, topic_arn(west, PRIMARY), "TOPIC"
    )
    subscription = one(west.of_type(SUBSCRIPTION, US_EAST_1))["inputs"]
    assert subscription["protocol"] == "email"
    assert subscription["endpoint"] == EMAIL


def json_with(document: dict[str, Any], value: str, placeholder: str) -> str:
    return json.dumps(document, sort_keys=True).replace(value, placeholder)


def test_one_alarm_per_region_on_its_health_check(west: SynthResult) -> None:
    alarms = {a["inputs"]["name"]: a["inputs"] for a in west.of_type(ALARM, US_EAST_1)}
    checks = health_check_ids(west)
    assert set(checks) == {PRIMARY, SECONDARY}
    assert len(set(checks.values())) == 2
    for region, check_id in checks.items():
        alarm = alarms[f"payments-dr-west-{US_EAST_1}-health-check-{region}"]
        assert alarm["namespace"] == "AWS/Route53"
        assert alarm["metricName"] == "HealthCheckStatus"
        assert alarm["dimensions"] == {"HealthCheckId": check_id}
        assert alarm["statistic"] == "Minimum"
        assert alarm["threshold"] == 1
        assert alarm["comparisonOperator"] == "LessThanThreshold"
        assert alarm["alarmActions"] == [topic_arn(west)]
        assert alarm["okActions"] == [topic_arn(west)]
        assert alarm["alarmDescription"] == (
            f"Route 53 reports {region} unhealthy: traffic fails over"
        )


def test_alarms_match_the_ones_us_east_1_stacks_get(
    west: SynthResult, eventual: SynthResult
) -> None:
    """Same threshold, statistic and description as Monitoring's health-check alarms."""
    settings = ("namespace", "metricName", "statistic", "threshold", "comparisonOperator")

    def shape(stack: SynthResult) -> set[tuple[Any, ...]]:
        return {
            tuple(a["inputs"][s] for s in settings)
            for a in stack.of_type(ALARM, US_EAST_1)
            if a["inputs"]["namespace"] == "AWS/Route53"
        }

    assert shape(west) == shape(eventual)
    assert len(shape(west)) == 1


def test_alarms_join_the_primarys_alarm_output(west: SynthResult) -> None:
    regions = west.outputs[StackOutput.REGIONS]
    primary_alarms = regions[PRIMARY][RegionOutput.ALARM_ARNS]
    for region in (PRIMARY, SECONDARY):
        arn = primary_alarms[f"health-check-{region}"]
        assert arn == (
            f"arn:aws:cloudwatch:{US_EAST_1}:{ACCOUNT}:alarm:"
            f"payments-dr-west-{US_EAST_1}-health-check-{region}"
        )
    assert not [key for key in regions[SECONDARY][RegionOutput.ALARM_ARNS] if "health" in key]
    exported = {
        arn for output in regions.values() for arn in output[RegionOutput.ALARM_ARNS].values()
    }
    switches = [a for a in west.of_type(ALARM) if a["inputs"]["namespace"] == SWITCH_NAMESPACE]
    assert len(exported) == len(west.of_type(ALARM)) - len(switches)


def test_the_stack_passes_every_policy_rule(west: SynthResult) -> None:
    violations = evaluate(west.resources, west.budget.to_dict())
    assert violations == [], format_verdicts(violations)


def test_stacks_with_us_east_1_have_no_extra_set(stack: SynthResult) -> None:
    assert not [r for r in stack.resources if r["type"] == COMPONENT]
    # The multi-Region data key and each region's log key; no key of the alarms' own.
    assert len(stack.of_type(KEY)) == 1 + len(stack.config.regions)
    health_alarms = [a for a in stack.of_type(ALARM) if a["inputs"]["namespace"] == "AWS/Route53"]
    assert {a["parent"] for a in health_alarms} == {
        r["urn"]
        for r in stack.resources
        if r["type"] == "payments-dr:infra:Monitoring" and r["name"].endswith(US_EAST_1)
    }
    assert len(health_alarms) == 2
