"""Stack configuration: parsing, defaults, the DR budget, and every refusal with its message."""

from __future__ import annotations

import contextvars
from pathlib import Path
from typing import Any

import pulumi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments_dr import contract
from payments_dr.contract import ConsistencyMode, Function, RegionRole
from payments_dr.infra.config import (
    FAILOVER_MARGIN_SECONDS,
    ConfigError,
    StackConfig,
    load_stack_file,
)
from payments_dr.simulated_aws import SimulatedAws

from .conftest import STACK_FILES

DOMAIN = {"domainName": "pay.example.com"}


def build(**overrides: Any) -> StackConfig:
    return StackConfig.from_mapping("test", {**DOMAIN, **overrides})


def test_defaults_follow_the_design() -> None:
    config = build()
    assert config.regions == ("us-east-1", "us-east-2")
    assert config.consistency_mode is ConsistencyMode.EVENTUAL
    assert config.replication_lag_alarm_seconds == 30
    assert config.merchant_key_max_age_days == 90  # a common key-rotation policy
    assert build(merchantKeyMaxAgeDays="730").merchant_key_max_age_days == 730
    assert build(merchantKeyMaxAgeDays=1).merchant_key_max_age_days == 1
    assert config.witness_region is None
    assert config.api_domain == "api.pay.example.com"
    assert config.failover_url == "https://api.pay.example.com"
    assert config.role_of("us-east-1") is RegionRole.PRIMARY
    assert config.role_of("us-east-2") is RegionRole.SECONDARY
    assert config.peer_region("us-east-1") == "us-east-2"
    assert config.peer_region("us-east-2") == "us-east-1"


def test_budget_adds_detection_dns_and_margin() -> None:
    config = build(healthCheckIntervalSeconds="30", healthCheckFailureThreshold="4")
    budget = config.budget
    assert budget.detection_seconds == 120
    assert budget.dns_seconds == contract.ALIAS_RECORD_TTL_SECONDS
    assert budget.rto_budget_seconds == 120 + budget.dns_seconds + budget.margin_seconds
    assert budget.rpo_budget_seconds == 30
    assert budget.to_dict()[contract.DrBudgetField.RTO_TARGET_SECONDS] == 900


def test_strong_mode_has_zero_rpo_and_the_remaining_region_as_witness() -> None:
    config = build(consistencyMode="strong", primaryRegion="us-east-2", secondaryRegion="us-west-2")
    assert config.budget.rpo_budget_seconds == 0
    assert config.witness_region == "us-east-1"


def test_prefixed_keys_and_other_namespaces() -> None:
    config = StackConfig.from_mapping(
        "prod",
        {
            "payments-dr:domainName": "pay.example.org",
            "payments-dr:replicationLagAlarmSeconds": "12",
            "aws:region": "eu-west-1",  # another namespace: ignored
        },
    )
    assert config.stack == "prod"
    assert config.domain_name == "pay.example.org"
    assert config.replication_lag_alarm_seconds == 12


def test_empty_values_take_the_defaults() -> None:
    config = build(primaryRegion="", alarmEmail="", hostedZoneId="")
    assert config.primary_region == contract.DEFAULT_PRIMARY_REGION
    assert config.alarm_email is None
    assert config.hosted_zone_id is None


def test_tags_are_added_to_the_project_tags() -> None:
    config = build(tags={"team": "payments", "tier": 1})
    assert config.resource_tags == {
        "project": contract.PROJECT,
        "stack": "test",
        "team": "payments",
        "tier": "1",
    }


@pytest.mark.parametrize("mode", sorted(STACK_FILES))
def test_example_stack_files_load(mode: str) -> None:
    config = load_stack_file(STACK_FILES[mode])
    assert config.consistency_mode.value == mode
    assert config.stack == STACK_FILES[mode].name.split(".")[1]
    assert config.budget.rto_budget_seconds <= config.rto_target_seconds


@pytest.mark.parametrize(
    ("primary", "secondary", "witness", "expected"),
    [
        ("us-east-1", "us-east-2", None, "us-west-2"),
        ("ap-northeast-1", "ap-northeast-3", None, "ap-northeast-2"),
        ("eu-west-1", "eu-central-1", "eu-west-3", "eu-west-3"),
    ],
)
def test_strong_mode_in_each_region_set(
    primary: str, secondary: str, witness: str | None, expected: str
) -> None:
    values = {"consistencyMode": "strong", "primaryRegion": primary, "secondaryRegion": secondary}
    config = build(**values, **({"witnessRegion": witness} if witness else {}))
    assert config.witness_region == expected


def test_audit_and_function_logs_keep_their_own_retention() -> None:
    config = build(logRetentionDays="14")
    assert (config.log_retention_days, config.audit_log_retention_days) == (14, 365)
    assert build(auditLogRetentionDays="3653").audit_log_retention_days == 3653


def test_the_archiver_reserves_one_execution_per_expected_shard() -> None:
    default = build().reserved_concurrency
    assert default[Function.LOG_ARCHIVER] == 8
    assert build(archiverStreamShards="20").reserved_concurrency[Function.LOG_ARCHIVER] == 20
    assert build(transactionLogRetentionDays="3653").transaction_log_retention_days == 3653
    others = {f: s.reserved_concurrency for f, s in contract.FUNCTIONS.items()}
    assert {f: n for f, n in default.items() if f is not Function.LOG_ARCHIVER} == {
        f: n for f, n in others.items() if f is not Function.LOG_ARCHIVER
    }


def test_stack_file_name_must_carry_the_stack(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text("config:\n  payments-dr:domainName: pay.example.com\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"Pulumi\.<stack>\.yaml"):
        load_stack_file(path)


def test_from_pulumi_reads_the_stack_configuration() -> None:
    def read() -> StackConfig:
        pulumi.runtime.set_mocks(SimulatedAws(), project=contract.PROJECT, stack="canary")
        pulumi.runtime.set_all_config(
            {
                "payments-dr:domainName": "pay.example.net",
                "payments-dr:healthCheckFailureThreshold": "2",
                "payments-dr:tags": '{"team": "payments"}',
            }
        )
        return StackConfig.from_pulumi()

    config = contextvars.Context().run(read)
    assert config.stack == "canary"
    assert config.domain_name == "pay.example.net"
    assert config.health_check_failure_threshold == 2
    assert config.tags == {"team": "payments"}


REFUSALS = [
    pytest.param({"domainName": None}, "domainName", "missing", id="missing-domain"),
    pytest.param({"domainName": ""}, "domainName", "missing", id="empty-domain"),
    pytest.param({"domainName": "Not A Domain"}, "domainName", "DNS name", id="bad-domain"),
    pytest.param({"hostedZoneId": "abc"}, "hostedZoneId", "zone id", id="bad-zone-id"),
    pytest.param({"secondaryRegion": "us-east-1"}, "secondaryRegion", "same as", id="same-region"),
    pytest.param({"primaryRegion": "us-middle-9"}, "primaryRegion", "unknown region", id="region"),
    pytest.param(
        {"consistencyMode": "strong", "secondaryRegion": "eu-west-1"},
        "consistencyMode",
        "both regions in one region set, not us-east-1, eu-west-1",
        id="strong-outside-region-set",
    ),
    pytest.param({"consistencyMode": "quorum"}, "consistencyMode", "unknown mode", id="mode"),
    pytest.param(
        {"healthCheckIntervalSeconds": "15"}, "healthCheckIntervalSeconds", "10 (fast)", id="iv"
    ),
    pytest.param(
        {"healthCheckFailureThreshold": "11"}, "healthCheckFailureThreshold", "1 to 10", id="thr"
    ),
    pytest.param(
        {"healthCheckFailureThreshold": "0"}, "healthCheckFailureThreshold", "1 to 10", id="thr0"
    ),
    pytest.param(
        {"healthCheckFailureThreshold": "three"},
        "healthCheckFailureThreshold",
        "whole number",
        id="not-a-number",
    ),
    pytest.param(
        {
            "healthCheckIntervalSeconds": "30",
            "healthCheckFailureThreshold": "10",
            "rtoTargetSeconds": "300",
        },
        "rtoTargetSeconds",
        "failover can take 420 s",
        id="rto-budget-above-target",
    ),
    pytest.param(
        {"rpoTargetSeconds": "20"},
        "replicationLagAlarmSeconds",
        "above the RPO target of 20 s",
        id="rpo-budget-above-target",
    ),
    pytest.param({"replicationLagAlarmSeconds": "0"}, "replicationLagAlarmSeconds", "not positive"),
    pytest.param({"logRetentionDays": "45"}, "logRetentionDays", "retention period", id="logs"),
    pytest.param({"alarmEmail": "ops"}, "alarmEmail", "e-mail address", id="email"),
    pytest.param(
        {"apiThrottleRateLimit": "500"}, "apiThrottleBurstLimit", "smaller than", id="burst"
    ),
    pytest.param(
        {"merchantThrottleRateLimit": "150", "merchantThrottleBurstLimit": "300"},
        "merchantThrottleRateLimit",
        "above apiThrottleRateLimit",
        id="merchant-above-stage",
    ),
    pytest.param(
        {"merchantThrottleBurstLimit": "5"},
        "merchantThrottleBurstLimit",
        "smaller than merchantThrottleRateLimit",
        id="merchant-burst",
    ),
    pytest.param(
        {"wafRequestsPerIpPer5Minutes": "5"},
        "wafRequestsPerIpPer5Minutes",
        "out of range",
        id="waf-rate",
    ),
    pytest.param(
        {"consistencyMode": "strong", "primaryRegion": "eu-west-1", "secondaryRegion": "eu-west-3"},
        "witnessRegion",
        "missing: the region set offers several witness regions",
        id="eu-set-needs-a-witness",
    ),
    pytest.param(
        {"consistencyMode": "strong", "witnessRegion": "eu-west-2"},
        "witnessRegion",
        "cannot be the witness of us-east-1, us-east-2",
        id="witness-outside-the-set",
    ),
    pytest.param(
        {"witnessRegion": "us-west-2"}, "witnessRegion", "only strong", id="witness-eventual"
    ),
    pytest.param(
        {"auditLogRetentionDays": "180"},
        "auditLogRetentionDays",
        "less than 12 months",
        id="audit-retention-short",
    ),
    pytest.param(
        {"auditLogRetentionDays": "500"},
        "auditLogRetentionDays",
        "not a CloudWatch Logs retention period",
        id="audit-retention-odd",
    ),
    pytest.param(
        {"apiGatewayLoggingRoleArn": "apigateway-cloudwatch"},
        "apiGatewayLoggingRoleArn",
        "not an IAM role ARN",
        id="logging-role-not-an-arn",
    ),
    pytest.param(
        {"archiverStreamShards": "0"}, "archiverStreamShards", "out of range", id="no-shards"
    ),
    pytest.param(
        {"transactionLogRetentionDays": "30"},
        "transactionLogRetentionDays",
        "30 days is out of range",
        id="transaction-logs-kept-too-briefly",
    ),
    pytest.param(
        {"transactionLogRetentionDays": "forever"},
        "transactionLogRetentionDays",
        "expected a whole number",
        id="transaction-logs-kept-forever",
    ),
    pytest.param(
        {"merchantKeyMaxAgeDays": "0"},
        "merchantKeyMaxAgeDays",
        "0 days is out of range",
        id="key-age-zero",
    ),
    pytest.param(
        {"merchantKeyMaxAgeDays": "731"},
        "merchantKeyMaxAgeDays",
        "731 days is out of range",
        id="key-age-over-two-years",
    ),
    pytest.param(
        {"merchantKeyMaxAgeDays": "90d"},
        "merchantKeyMaxAgeDays",
        "expected a whole number",
        id="key-age-with-unit",
    ),
    pytest.param({"tags": {"aws:owner": "x"}}, "tags", "not accepted", id="aws-tag"),
    pytest.param({"tags": "team=payments"}, "tags", "mapping", id="tags-not-a-map"),
    pytest.param({"domainNmae": "typo.example.com"}, "domainNmae", "unknown key", id="typo"),
]


@pytest.mark.parametrize(("overrides", "key", "problem"), REFUSALS)
def test_bad_configuration_is_refused_naming_key_and_fix(
    overrides: dict[str, Any], key: str, problem: str
) -> None:
    values = {**DOMAIN, **overrides}
    values = {k: v for k, v in values.items() if v is not None}
    with pytest.raises(ConfigError) as refused:
        StackConfig.from_mapping("test", values)
    message = str(refused.value)
    assert refused.value.key == key
    assert message.startswith(f"payments-dr:{key}: ")
    assert problem in message
    assert "Fix: " in message and not message.endswith("Fix: ")


@settings(max_examples=200, deadline=None)
@given(
    interval=st.sampled_from([10, 30]),
    threshold=st.integers(min_value=1, max_value=10),
    rto_target=st.integers(min_value=1, max_value=1200),
    rpo_target=st.integers(min_value=1, max_value=600),
    lag=st.integers(min_value=1, max_value=600),
    mode=st.sampled_from(list(ConsistencyMode)),
)
def test_budget_is_refused_exactly_when_it_exceeds_a_target(
    interval: int, threshold: int, rto_target: int, rpo_target: int, lag: int, mode: ConsistencyMode
) -> None:
    values = {
        "healthCheckIntervalSeconds": interval,
        "healthCheckFailureThreshold": threshold,
        "rtoTargetSeconds": rto_target,
        "rpoTargetSeconds": rpo_target,
        "replicationLagAlarmSeconds": lag,
        "consistencyMode": mode,
    }
    rto_budget = interval * threshold + contract.ALIAS_RECORD_TTL_SECONDS + FAILOVER_MARGIN_SECONDS
    rpo_budget = 0 if mode is ConsistencyMode.STRONG else lag
    if rto_budget > rto_target:
        with pytest.raises(ConfigError) as refused:
            build(**values)
        assert refused.value.key == "rtoTargetSeconds"
    elif rpo_budget > rpo_target:
        with pytest.raises(ConfigError) as refused:
            build(**values)
        assert refused.value.key == "replicationLagAlarmSeconds"
    else:
        budget = build(**values).budget
        assert budget.rto_budget_seconds == rto_budget <= rto_target
        assert budget.rpo_budget_seconds == rpo_budget <= rpo_target


def _budget_values(**overrides: Any) -> dict[str, Any]:
    return {
        "healthCheckIntervalSeconds": 10,
        "healthCheckFailureThreshold": 3,
        "replicationLagAlarmSeconds": 30,
        **overrides,
    }


RTO_BUDGET = 10 * 3 + contract.ALIAS_RECORD_TTL_SECONDS + FAILOVER_MARGIN_SECONDS


@pytest.mark.parametrize(
    ("rto_target", "accepted"),
    [(RTO_BUDGET - 1, False), (RTO_BUDGET, True), (RTO_BUDGET + 1, True)],
    ids=["one-below-the-budget", "equal-to-the-budget", "one-above-the-budget"],
)
def test_the_rto_target_may_equal_the_budget_but_not_fall_below_it(
    rto_target: int, accepted: bool
) -> None:
    values = _budget_values(rtoTargetSeconds=rto_target)
    if accepted:
        assert build(**values).budget.rto_budget_seconds == RTO_BUDGET
    else:
        with pytest.raises(ConfigError) as refused:
            build(**values)
        assert refused.value.key == "rtoTargetSeconds"
        assert f"failover can take {RTO_BUDGET} s" in str(refused.value)


@pytest.mark.parametrize(
    ("lag", "accepted"),
    [(299, True), (300, True), (301, False)],
    ids=["lag-below-the-target", "lag-equal-to-the-target", "lag-above-the-target"],
)
@pytest.mark.parametrize("mode", list(ConsistencyMode))
def test_the_rpo_target_may_equal_the_lag_alarm_but_not_fall_below_it(
    lag: int, accepted: bool, mode: ConsistencyMode
) -> None:
    values = _budget_values(
        rpoTargetSeconds=300, replicationLagAlarmSeconds=lag, consistencyMode=mode
    )
    if accepted or mode is ConsistencyMode.STRONG:  # strong mode loses nothing: budget 0
        budget = build(**values).budget
        assert budget.rpo_budget_seconds == (0 if mode is ConsistencyMode.STRONG else lag)
    else:
        with pytest.raises(ConfigError) as refused:
            build(**values)
        assert refused.value.key == "replicationLagAlarmSeconds"
