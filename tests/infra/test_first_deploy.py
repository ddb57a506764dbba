"""What a first `pulumi up` on a fresh account needs, proven under the simulated provider.

Numbers in the test names refer to the items of the issue "First `pulumi up` on a fresh AWS
account": strong mode's replica stream (1), zones by ID (2), the account-wide API Gateway
setting (3), list actions (5), the logging role's trust (6), audit retention (8),
encryption (9), the archiver's concurrency (10), strong-mode alarms (11), the shared
validation record (12) and the X-Ray endpoint (13).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from payments_dr import contract
from payments_dr.contract import Function
from payments_dr.infra import iam
from payments_dr.infra.config import StackConfig
from payments_dr.infra.network import CONSTRAINED_ZONE_IDS, Zone, choose_zones
from payments_dr.infra.regional_api import execution_log_group_name
from payments_dr.simulated_aws import (
    REPLICA_STREAM_TYPE,
    SIMULATED_ACCOUNT_ID,
    US_EAST_1_ZONES,
    SimulatedAws,
)
from payments_dr.synth import SynthResult, synthesize_config

from .support import one, policy

TABLE = "aws:dynamodb/table:Table"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
FUNCTION = "aws:lambda/function:Function"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ACCOUNT_SETTING = "aws:apigateway/account:Account"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
RECORD = "aws:route53/record:Record"
ADOPTED_ROLE = "arn:aws:iam::123456789012:role/platform/apigateway-cloudwatch"


@pytest.fixture(scope="module")
def eu_adopting(artifact_path: Path) -> SynthResult:
    """Strong mode in the EU set, an adopted logging role, other retentions and shards."""
    config = StackConfig.from_mapping(
        "eu",
        {
            "domainName": "pay.example.eu",
            "consistencyMode": "strong",
            "primaryRegion": "eu-west-1",
            "secondaryRegion": "eu-central-1",
            "witnessRegion": "eu-west-2",
            "apiGatewayLoggingRoleArn": ADOPTED_ROLE,
            "archiverStreamShards": "16",
            "logRetentionDays": "30",
            "auditLogRetentionDays": "731",
        },
    )
    return synthesize_config(config, artifact_path)


def stream_mapping(stack: SynthResult, region: str) -> dict[str, Any]:
    return one(
        [m for m in stack.of_type(MAPPING, region) if "dynamodb" in m["inputs"]["eventSourceArn"]]
    )


# --- 1. strong mode deploys with the provider's replica behaviour ----------------------------
def test_1_the_simulated_provider_reports_no_stream_for_a_strong_replica() -> None:
    inputs = {
        "name": "t",
        "region": "us-east-1",
        "replicas": [{"regionName": "us-east-2", "consistencyMode": "STRONG"}],
    }
    args = type("Args", (), {"typ": TABLE, "name": "t", "inputs": inputs})()
    _, state = SimulatedAws().new_resource(args)  # type: ignore[arg-type]
    (replica,) = state["replicas"]
    assert replica["streamArn"] == ""
    assert state["streamArn"].startswith("arn:aws:dynamodb:us-east-1:")
    inputs["replicas"] = [{"regionName": "us-east-2"}]
    _, state = SimulatedAws().new_resource(args)  # type: ignore[arg-type]
    assert state["replicas"][0]["streamArn"].startswith("arn:aws:dynamodb:us-east-2:")


@pytest.mark.parametrize("which", ["strong", "eu_adopting"])
def test_1_each_archiver_reads_its_own_regions_stream_in_strong_mode(
    which: str, request: pytest.FixtureRequest
) -> None:
    stack: SynthResult = request.getfixturevalue(which)
    primary, secondary = stack.config.regions
    stream = one(stack.of_type(REPLICA_STREAM_TYPE))
    assert stream["region"] == secondary
    assert stream["inputs"] == {
        "region": secondary,
        "stream_view_type": contract.TABLE_STREAM_VIEW_TYPE,
        "table_name": contract.table_name(stack.config.stack),
    }
    table = one(stack.of_type(TABLE))
    assert table["urn"] in stream["dependencies"]  # enabled once the replica exists
    for region in (primary, secondary):
        arn = stream_mapping(stack, region)["inputs"]["eventSourceArn"]
        assert arn.startswith(f"arn:aws:dynamodb:{region}:{SIMULATED_ACCOUNT_ID}:table/")
        assert "/stream/" in arn
    assert stream["urn"] in stream_mapping(stack, secondary)["dependencies"]


def test_1_eventual_mode_reads_the_providers_replica_stream(eventual: SynthResult) -> None:
    assert not eventual.of_type(REPLICA_STREAM_TYPE)
    secondary = eventual.config.secondary_region
    assert f":{secondary}:" in stream_mapping(eventual, secondary)["inputs"]["eventSourceArn"]


def test_1_eu_region_set_with_its_chosen_witness(eu_adopting: SynthResult) -> None:
    table = one(eu_adopting.of_type(TABLE))
    assert table["region"] == "eu-west-1"
    assert table["inputs"]["globalTableWitness"] == {"regionName": "eu-west-2"}
    assert [r["regionName"] for r in table["inputs"]["replicas"]] == ["eu-central-1"]


# --- 2. zones by ID ---------------------------------------------------------------------------
def test_2_zones_are_chosen_by_id_where_every_endpoint_is_offered() -> None:
    names = ["z-a", "z-b", "z-c", "z-d"]
    ids = ["use1-az4", "use1-az3", "use1-az1", "use1-az2"]
    everywhere = names
    assert choose_zones("r", names, ids, [everywhere, everywhere]) == [
        Zone("use1-az1", "z-c"),
        Zone("use1-az2", "z-d"),
    ]
    # A zone one endpoint service lacks is skipped; so is a constrained one.
    assert choose_zones("r", names, ids, [everywhere, ["z-a", "z-b", "z-d"]]) == [
        Zone("use1-az2", "z-d"),
        Zone("use1-az4", "z-a"),
    ]
    assert "use1-az3" in CONSTRAINED_ZONE_IDS


def test_2_too_few_usable_zones_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="offers 1 zones where Lambda and the"):
        choose_zones("r", ["a", "b"], ["use1-az3", "use1-az1"], [["a", "b"]])


def test_2_subnets_avoid_the_constrained_zone_whatever_its_name(stack: SynthResult) -> None:
    subnets = stack.of_type("aws:ec2/subnet:Subnet", "us-east-1")
    ids = sorted(s["inputs"]["availabilityZoneId"] for s in subnets)
    # By name order the account's zones start with use1-az4, use1-az6; by ID: az1, az2.
    assert list(US_EAST_1_ZONES.values())[:2] == ["use1-az4", "use1-az6"]
    assert ids == ["use1-az1", "use1-az2"]
    assert not any("availabilityZone" in s["inputs"] for s in subnets)
    for subnet in subnets:
        assert subnet["name"].endswith(subnet["inputs"]["availabilityZoneId"])


# --- 3. the account-wide API Gateway logging setting -----------------------------------------
def test_3_the_logging_setting_and_the_stacks_role_outlive_the_stack(stack: SynthResult) -> None:
    for region in stack.config.regions:
        setting = one(stack.of_type(ACCOUNT_SETTING, region))
        assert setting["retain_on_delete"] is True
        role = one(
            [
                r
                for r in stack.of_type(ROLE)
                if r["urn"].endswith(f"service-{region}-apigateway-logging")
            ]
        )
        assert role["retain_on_delete"] is True
        assert setting["inputs"]["cloudwatchRoleArn"].split("/")[-1].startswith(role["name"])
        role_policy = one([p for p in stack.of_type(ROLE_POLICY) if p["name"] == role["name"]])
        assert role_policy["retain_on_delete"] is True


def test_3_an_adopted_role_replaces_the_stacks_own(eu_adopting: SynthResult) -> None:
    roles = [r for r in eu_adopting.of_type(ROLE) if "apigateway" in r["name"]]
    assert roles == []
    for region in eu_adopting.config.regions:
        setting = one(eu_adopting.of_type(ACCOUNT_SETTING, region))
        assert setting["inputs"]["cloudwatchRoleArn"] == ADOPTED_ROLE
        assert setting["retain_on_delete"] is True


# --- 5, 6. list actions and the logging role's trust -----------------------------------------
def test_5_flow_logs_find_their_group_in_the_accounts_log_group_space(
    stack: SynthResult,
) -> None:
    for region in stack.config.regions:
        document = policy(
            one(
                [
                    p
                    for p in stack.of_type(ROLE_POLICY)
                    if p["name"] == f"network-{region}-flow-logs"
                ]
            )
        )
        (find,) = [s for s in document["Statement"] if "logs:DescribeLogGroups" in s["Action"]]
        assert find["Action"] == ["logs:DescribeLogGroups"]
        assert find["Resource"] == [f"arn:aws:logs:{region}:{SIMULATED_ACCOUNT_ID}:log-group:*"]


def test_6_api_gateway_trust_carries_no_source_account_condition(stack: SynthResult) -> None:
    for role in stack.of_type(ROLE):
        document = policy(role, "assumeRolePolicy")
        (statement,) = document["Statement"]
        if statement["Principal"] == {"Service": "apigateway.amazonaws.com"}:
            assert "Condition" not in statement
        else:
            assert statement["Condition"] == {
                "StringEquals": {"aws:SourceAccount": SIMULATED_ACCOUNT_ID}
            }
    assert iam.api_gateway_assume_role_policy()["Statement"][0]["Action"] == "sts:AssumeRole"


# --- 8, 9. audit retention and encryption ----------------------------------------------------
def log_groups(stack: SynthResult) -> dict[str, dict[str, Any]]:
    return {g["name"]: g["inputs"] for g in stack.of_type(LOG_GROUP)}


@pytest.mark.parametrize(
    ("which", "audit", "functions"), [("eventual", 365, 90), ("eu_adopting", 731, 30)]
)
def test_8_audit_logs_keep_a_year_function_logs_may_keep_less(
    which: str, audit: int, functions: int, request: pytest.FixtureRequest
) -> None:
    stack: SynthResult = request.getfixturevalue(which)
    groups = stack.of_type(LOG_GROUP)
    assert len(groups) == 2 * (len(Function) + 4)
    for group in groups:
        name = group["inputs"]["name"]
        expected = functions if name.startswith("/aws/lambda/") else audit
        assert group["inputs"]["retentionInDays"] == expected, name
        assert group["inputs"]["kmsKeyId"].startswith(f"arn:aws:kms:{group['region']}:")


def test_9_execution_logs_are_created_encrypted_before_the_stage(stack: SynthResult) -> None:
    for region in stack.config.regions:
        stage = one(stack.of_type("aws:apigateway/stage:Stage", region))
        group = one(
            [g for g in stack.of_type(LOG_GROUP, region) if g["name"].endswith("execution-logs")]
        )
        assert group["inputs"]["name"] == execution_log_group_name(
            stage["inputs"]["restApi"], contract.API_STAGE
        )
        assert group["inputs"]["name"].startswith("API-Gateway-Execution-Logs_")
        assert group["urn"] in stage["dependencies"]


def test_9_function_environments_are_encrypted_with_the_regions_key(stack: SynthResult) -> None:
    for function in stack.of_type(FUNCTION):
        region = function["region"]
        key = function["inputs"]["kmsKeyArn"]
        assert key.startswith(f"arn:aws:kms:{region}:")
        role_policy = one(
            [p for p in stack.of_type(ROLE_POLICY) if p["name"] == f"{function['name']}-policy"]
        )
        (decrypt,) = [
            s for s in policy(role_policy)["Statement"] if s["Sid"] == "DecryptEnvironment"
        ]
        assert decrypt["Resource"] == [key]
        assert decrypt["Condition"] == {
            "StringEquals": {"kms:ViaService": f"lambda.{region}.amazonaws.com"}
        }


# --- 10. the archiver keeps up with its stream -----------------------------------------------
@pytest.mark.parametrize(("which", "shards"), [("eventual", 8), ("eu_adopting", 16)])
def test_10_archiver_reserves_one_execution_per_stream_shard(
    which: str, shards: int, request: pytest.FixtureRequest
) -> None:
    stack: SynthResult = request.getfixturevalue(which)
    name = contract.function_name(stack.config.stack, Function.LOG_ARCHIVER)
    for region in stack.config.regions:
        archiver = one([f for f in stack.of_type(FUNCTION, region) if f["inputs"]["name"] == name])
        assert archiver["inputs"]["reservedConcurrentExecutions"] == shards
        assert stream_mapping(stack, region)["inputs"]["parallelizationFactor"] == 1
        lag = one(
            [a for a in stack.of_type(ALARM, region) if a["inputs"]["metricName"] == "IteratorAge"]
        )
        assert lag["inputs"]["dimensions"] == {"FunctionName": name}
    assert stack.reserved_concurrency(stack.config.primary_region) == sum(
        stack.config.reserved_concurrency.values()
    )


# --- 11. strong mode alarms on what it publishes ---------------------------------------------
def alarm_metrics(stack: SynthResult, region: str) -> dict[str, dict[str, Any]]:
    return {a["inputs"]["metricName"]: a["inputs"] for a in stack.of_type(ALARM, region)}


def test_11_strong_mode_alarms_on_failed_and_slow_writes(strong: SynthResult) -> None:
    table_name = contract.table_name(strong.config.stack)
    for region in strong.config.regions:
        metrics = alarm_metrics(strong, region)
        assert "ReplicationLatency" not in metrics
        errors = metrics["SystemErrors"]
        assert errors["dimensions"] == {"TableName": table_name, "Operation": "PutItem"}
        assert errors["statistic"] == "Sum"
        assert errors["threshold"] == 0
        latency = metrics["SuccessfulRequestLatency"]
        assert latency["extendedStatistic"] == "p99"
        assert "statistic" not in latency
        assert latency["threshold"] == 500
        assert latency["dimensions"] == errors["dimensions"]


def test_11_eventual_mode_keeps_the_lag_alarm(eventual: SynthResult) -> None:
    for region in eventual.config.regions:
        metrics = alarm_metrics(eventual, region)
        assert "ReplicationLatency" in metrics
        assert "SystemErrors" not in metrics


# --- 12. the shared validation record --------------------------------------------------------
def validation_record(stack: SynthResult) -> dict[str, Any]:
    """The failover name's validation record (each regional name has its own besides)."""
    components = {
        r["urn"]
        for r in stack.resources
        if r["type"] == "payments-dr:infra:CertificateValidationRecord"
    }
    return one(
        [
            r
            for r in stack.of_type(RECORD)
            if r["inputs"].get("type") == "CNAME" and r["parent"] in components
        ]
    )


def test_12_the_validation_record_belongs_to_no_region(
    eventual: SynthResult, artifact_path: Path
) -> None:
    record = validation_record(eventual)
    parent = one([r for r in eventual.resources if r["urn"] == record["parent"]])
    assert parent["type"] == "payments-dr:infra:CertificateValidationRecord"
    assert parent["parent"] is None or "RegionalService" not in parent["parent"]
    validations = eventual.of_type("aws:acm/certificateValidation:CertificateValidation")
    shared = [
        v
        for v in validations
        if v["inputs"]["validationRecordFqdns"] == [record["inputs"]["name"].rstrip(".")]
    ]
    assert len(shared) == 2  # both regions' failover-name certificates
    assert len(validations) == 4  # and each regional name's own
    swapped = StackConfig.from_mapping(
        eventual.config.stack,
        {
            "domainName": eventual.config.domain_name,
            "primaryRegion": eventual.config.secondary_region,
            "secondaryRegion": eventual.config.primary_region,
        },
    )
    # Whichever region is primary, the record keeps its URN: no delete and re-create.
    assert validation_record(synthesize_config(swapped, artifact_path))["urn"] == record["urn"]


# --- 13. X-Ray from a VPC without NAT --------------------------------------------------------
def test_13_traces_leave_through_an_xray_endpoint_limited_to_trace_calls(
    stack: SynthResult,
) -> None:
    for region in stack.config.regions:
        (endpoint,) = [
            e
            for e in stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint", region)
            if e["inputs"]["serviceName"] == f"com.amazonaws.{region}.xray"
        ]
        assert endpoint["inputs"]["vpcEndpointType"] == "Interface"
        assert endpoint["inputs"]["privateDnsEnabled"] is True
        (statement,) = json.loads(endpoint["inputs"]["policy"])["Statement"]
        assert statement["Action"] == ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
        assert statement["Condition"] == {
            "StringEquals": {"aws:PrincipalAccount": SIMULATED_ACCOUNT_ID}
        }


# --- 4. the zone stack up creates first ------------------------------------------------------
def test_4_stack_up_targets_the_zone_by_the_urns_the_program_gives_it(
    eventual: SynthResult,
) -> None:
    component, zone = contract.hosted_zone_urns(contract.PROJECT, eventual.config.stack)
    assert one(eventual.of_type(contract.HOSTED_ZONE_TYPE))["urn"] == component
    assert one(eventual.of_type(contract.ROUTE53_ZONE_TYPE))["urn"] == zone
