"""The pulumi-policy adapters run the shared rules the way the Pulumi engine calls them."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from payments_dr.policy import RULES, tokens
from payments_dr.policy.model import ResourceRule
from payments_dr.policy.pack import build_policies, targets_from_config

REPO = Path(__file__).resolve().parents[2]
Reports = list[tuple[str, str | None]]


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def _provider(region: str) -> PolicyProviderResource:
    return PolicyProviderResource(
        "pulumi:providers:aws", {"region": region}, "urn:provider", "default"
    )


def _policy(name: str) -> Any:
    return next(policy for policy in build_policies() if policy.name == name)


def _stack_resource(
    type_: str, name: str, props: dict[str, Any], dependencies: dict[str, list[PolicyResource]]
) -> PolicyResource:
    return PolicyResource(
        type_,
        unknown_checking_proxy(props),
        f"urn:{name}",
        name,
        _options(),
        _provider("us-east-1"),
        None,
        [d for deps in dependencies.values() for d in deps],
        dependencies,
    )


def test_one_mandatory_policy_per_rule_of_the_matching_kind() -> None:
    policies = build_policies()
    assert [p.name for p in policies] == [rule.name for rule in RULES]
    for policy, rule in zip(policies, RULES, strict=True):
        expected = (
            ResourceValidationPolicy if isinstance(rule, ResourceRule) else StackValidationPolicy
        )
        assert isinstance(policy, expected)
        assert policy.enforcement_level is EnforcementLevel.MANDATORY
        assert policy.description == rule.description


def test_resource_policy_reports_with_the_provider_region() -> None:
    reports: Reports = []
    args = ResourceValidationArgs(
        tokens.LAMBDA_FUNCTION,
        unknown_checking_proxy({"tracingConfig": {"mode": "PassThrough"}}),
        "urn:fn",
        "api",
        _options(),
        _provider("us-east-2"),
    )

    _policy("lambda-active-tracing").validate(args, lambda m, u: reports.append((m, u)))

    assert reports == [
        (
            "Function 'api' in us-east-2 has no active X-Ray tracing. "
            "Fix: set tracing_config={'mode': 'Active'}.",
            None,
        )
    ]


def test_resource_policy_ignores_other_resource_types() -> None:
    reports: Reports = []
    args = ResourceValidationArgs(
        tokens.SQS_QUEUE, unknown_checking_proxy({}), "urn:q", "q", _options(), None
    )
    _policy("lambda-active-tracing").validate(args, lambda m, u: reports.append((m, u)))
    assert reports == []


def test_stack_policy_joins_siblings_through_property_dependencies() -> None:
    """In a preview the bucket id is unknown; the engine's dependency list still joins them."""
    bucket = _stack_resource(tokens.S3_BUCKET, "logs", {"bucket": "logs-bucket"}, {})
    other = _stack_resource(tokens.S3_BUCKET, "other", {"bucket": "other-bucket"}, {})
    versioning = _stack_resource(
        tokens.S3_BUCKET_VERSIONING,
        "logs-versioning",
        {"bucket": UNKNOWN_STRING_VALUE, "versioningConfiguration": {"status": "Enabled"}},
        {"bucket": [bucket]},
    )
    reports: Reports = []

    _policy("s3-versioning").validate(
        StackValidationArgs([bucket, other, versioning]), lambda m, u: reports.append((m, u))
    )

    assert [urn for _, urn in reports] == ["urn:other"]
    assert "Bucket 'other' in us-east-1 is not versioned" in reports[0][0]


def test_stack_policy_reads_dr_targets_from_policy_config() -> None:
    check = _stack_resource(
        tokens.ROUTE53_HEALTH_CHECK,
        "health",
        {"requestInterval": 10.0, "failureThreshold": 3.0, "fqdn": "x.execute-api"},
        {},
    )
    record = _stack_resource(
        tokens.ROUTE53_RECORD,
        "primary",
        {
            "name": "api.example.com",
            "failoverRoutingPolicies": [{"type": "PRIMARY"}],
            "healthCheckId": UNKNOWN_STRING_VALUE,
            "aliases": [{"name": "d-1.execute-api", "zoneId": "Z1"}],
        },
        {"healthCheckId": [check]},
    )
    policy = _policy("dr-failover-within-rto")
    within: Reports = []
    policy.validate(StackValidationArgs([check, record]), lambda m, u: within.append((m, u)))
    beyond: Reports = []
    policy.validate(
        StackValidationArgs([check, record], config={"rtoTargetSeconds": 120}),
        lambda m, u: beyond.append((m, u)),
    )

    assert within == []
    assert [urn for _, urn in beyond] == ["urn:primary"]
    assert "fails over in up to 150 s" in beyond[0][0]
    assert "above the RTO target of 120 s" in beyond[0][0]


def test_dr_policies_publish_their_config_schema() -> None:
    schema = _policy("dr-replication-lag-alarm").config_schema
    assert schema is not None
    assert schema.properties["maxReplicationAlarmMs"]["default"] == 30_000.0
    assert targets_from_config({"maxReplicationAlarmMs": 10_000}).max_replication_alarm_ms == (
        10_000.0
    )
    assert _policy("s3-versioning").config_schema is None


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for line in requirements:
        name, separator, version = line.partition("==")
        if separator:
            pins[name.split("[")[0].strip().lower()] = version.strip()
    return pins


def test_pack_requirements_match_the_project_pins() -> None:
    lines = [
        line.strip()
        for line in (REPO / "policy" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pack_pins = _pins(lines)
    assert {"pulumi", "pulumi-policy"} <= set(pack_pins)
    assert pack_pins.items() <= _pins(project["optional-dependencies"]["stack"]).items()
    assert "-e .." in lines  # the pack imports the rules from this project


def test_pack_manifest_runs_python() -> None:
    manifest = yaml.safe_load((REPO / "policy" / "PulumiPolicy.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"
    assert manifest["description"]


def test_stack_policy_compares_archives_as_pulumi_policy_hands_them_over() -> None:
    def function(region: str, archive: str) -> PolicyResource:
        return PolicyResource(
            tokens.LAMBDA_FUNCTION,
            unknown_checking_proxy(
                {
                    "name": "payments-dr-dev-api",
                    "region": region,
                    "runtime": "python3.13",
                    "code": pulumi.FileArchive(archive),
                }
            ),
            f"urn:api-{region}",
            f"api-{region}",
            _options(),
            None,
            None,
            [],
            {},
        )

    policy = _policy("dr-identical-functions")
    same: Reports = []
    policy.validate(
        StackValidationArgs([function("us-east-1", "a.zip"), function("us-east-2", "a.zip")]),
        lambda m, u: same.append((m, u)),
    )
    drifted: Reports = []
    policy.validate(
        StackValidationArgs([function("us-east-1", "a.zip"), function("us-east-2", "b.zip")]),
        lambda m, u: drifted.append((m, u)),
    )

    assert same == []
    assert [urn for _, urn in drifted] == ["urn:api-us-east-2"]
    assert "artifact 'a.zip' vs 'b.zip'" in drifted[0][0]
