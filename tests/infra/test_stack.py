"""The whole program evaluated under mocks: each requirement, in each region, in both modes.

Numbers in the test names refer to the numbered requirements of the stack's issue.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

import pytest

from payments_dr import contract
from payments_dr.contract import ConsistencyMode, Function, Param, RegionOutput, StackOutput
from payments_dr.infra import iam, role_names
from payments_dr.infra.config_regions import STRONG_CONSISTENCY_REGION_SETS
from payments_dr.service.openapi import load_openapi
from payments_dr.simulated_aws import SIMULATED_ACCOUNT_ID as ACCOUNT
from payments_dr.synth import SynthResult

from .support import one, policy

TABLE = "aws:dynamodb/table:Table"
FUNCTION = "aws:lambda/function:Function"
QUEUE = "aws:sqs/queue:Queue"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def regions(stack: SynthResult) -> tuple[str, str]:
    return stack.config.regions


def region_output(stack: SynthResult, region: str) -> dict[str, Any]:
    result: dict[str, Any] = stack.outputs[StackOutput.REGIONS][region]
    return result


def by_name(stack: SynthResult, resource_type: str, region: str, name: str) -> dict[str, Any]:
    return one([r for r in stack.of_type(resource_type, region) if r["inputs"]["name"] == name])


def key_arn(stack: SynthResult, region: str) -> str:
    table = one(stack.of_type(TABLE))
    if region == stack.config.primary_region:
        arn: str = table["inputs"]["serverSideEncryption"]["kmsKeyArn"]
    else:
        arn = table["inputs"]["replicas"][0]["kmsKeyArn"]
    assert f":{region}:" in arn
    return arn


def log_key_arn(stack: SynthResult, region: str) -> str:
    """The region's key for log groups and the alarm topic, found through its alias."""
    alias_name = f"alias/{contract.PROJECT}-{stack.config.stack}-logs"
    alias = by_name(stack, "aws:kms/alias:Alias", region, alias_name)
    return f"arn:aws:kms:{region}:{ACCOUNT}:key/{alias['inputs']['targetKeyId']}"


def archive_failures_arn(stack_name: str, region: str) -> str:
    return f"arn:aws:sqs:{region}:{ACCOUNT}:{contract.archive_failures_queue_name(stack_name)}"


def regional_domain(stack: SynthResult, region: str) -> str:
    return f"api.{region}.{stack.config.domain_name}"


def api_id(stack: SynthResult, region: str) -> str:
    """The REST API's id, as the stage received it."""
    stage = one(stack.of_type("aws:apigateway/stage:Stage", region))
    rest_api: str = stage["inputs"]["restApi"]
    return rest_api


def urn_of(stack: SynthResult, resource_type: str, region: str) -> str:
    urn: str = one(stack.of_type(resource_type, region))["urn"]
    return urn


# --- layers ----------------------------------------------------------------------------------
def test_one_component_per_layer_and_every_resource_inside_one(stack: SynthResult) -> None:
    components = {r["urn"]: r for r in stack.resources if not r["custom"]}
    types = sorted(r["type"] for r in components.values())
    assert types == sorted(
        [
            "payments-dr:infra:Data",
            "payments-dr:infra:LogKeys",
            "payments-dr:infra:IdSecret",
            "payments-dr:infra:Storage",
            "payments-dr:infra:HostedZone",
            "payments-dr:infra:CertificateValidationRecord",
            "payments-dr:infra:FailoverDns",
            "payments-dr:infra:TrafficSwitch",
            *["payments-dr:infra:Dashboard"] * 2,
            *["payments-dr:infra:CrossRegionCanary"] * 2,
            *["payments-dr:infra:Network"] * 2,
            "payments-dr:infra:RegionPeering",
            *["payments-dr:infra:RegionalService"] * 2,
            *["payments-dr:infra:Monitoring"] * 2,
            *["payments-dr:infra:Firewall"] * 2,
        ]
    )
    for resource in stack.resources:
        if resource["custom"]:
            assert resource["parent"] in components, resource["urn"]


def test_resource_names_are_unique_per_type(stack: SynthResult) -> None:
    keys = [(r["type"], r["name"]) for r in stack.resources]
    assert len(keys) == len(set(keys))


# --- network ---------------------------------------------------------------------------------
def test_private_network_in_two_zones_without_internet_access(stack: SynthResult) -> None:
    types = {r["type"] for r in stack.resources}
    assert not types & {
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/eip:Eip",
    }
    # The only routes lead to the other region's VPC, through the peering connection.
    for route in stack.of_type("aws:ec2/route:Route"):
        assert set(route["inputs"]) == {
            "region",
            "routeTableId",
            "destinationCidrBlock",
            "vpcPeeringConnectionId",
        }
    cidrs = []
    for region in regions(stack):
        vpc = one(stack.of_type("aws:ec2/vpc:Vpc", region))
        cidrs.append(ipaddress.ip_network(vpc["inputs"]["cidrBlock"]))
        subnets = stack.of_type("aws:ec2/subnet:Subnet", region)
        assert len(subnets) >= 2
        assert len({s["inputs"]["availabilityZoneId"] for s in subnets}) == len(subnets)
        assert all(s["inputs"]["mapPublicIpOnLaunch"] is False for s in subnets)
        endpoints = {
            (e["inputs"]["serviceName"], e["inputs"]["vpcEndpointType"])
            for e in stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint", region)
        }
        assert endpoints == {
            (f"com.amazonaws.{region}.dynamodb", "Gateway"),
            (f"com.amazonaws.{region}.s3", "Gateway"),
            (f"com.amazonaws.{region}.sqs", "Interface"),
            (f"com.amazonaws.{region}.ssm", "Interface"),
            (f"com.amazonaws.{region}.xray", "Interface"),
            (f"com.amazonaws.{region}.secretsmanager", "Interface"),
        }
        for endpoint in stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint", region):
            (statement,) = policy(endpoint)["Statement"]
            assert statement["Condition"]["StringEquals"]["aws:PrincipalAccount"] == ACCOUNT
            for resource in statement["Resource"]:
                assert resource == "*" or resource.split(":")[3] in ("", region), resource
        rules = stack.of_type(
            "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", region
        ) + stack.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", region)
        assert {(r["inputs"]["fromPort"], r["inputs"]["toPort"]) for r in rules} == {(443, 443)}
        # Address ranges only for the other region's VPC, across the peering.
        peer_vpc = one(stack.of_type("aws:ec2/vpc:Vpc", stack.config.peer_region(region)))
        ranges = {r["inputs"]["cidrIpv4"] for r in rules if "cidrIpv4" in r["inputs"]}
        assert ranges == {peer_vpc["inputs"]["cidrBlock"]}
        flow_log = one(stack.of_type("aws:ec2/flowLog:FlowLog", region))["inputs"]
        assert flow_log["trafficType"] == "ALL"
        assert flow_log["logDestination"].startswith(f"arn:aws:logs:{region}:{ACCOUNT}:")
    assert not cidrs[0].overlaps(cidrs[1])


def test_the_regions_reach_each_others_sqs_privately_through_peering(stack: SynthResult) -> None:
    primary, secondary = regions(stack)
    (connection,) = stack.of_type("aws:ec2/vpcPeeringConnection:VpcPeeringConnection", primary)
    assert connection["inputs"]["peerRegion"] == secondary
    (accepter,) = stack.of_type(
        "aws:ec2/vpcPeeringConnectionAccepter:VpcPeeringConnectionAccepter", secondary
    )
    assert accepter["inputs"]["autoAccept"] is True
    for region in (primary, secondary):
        peer = stack.config.peer_region(region)
        (route,) = stack.of_type("aws:ec2/route:Route", region)
        peer_vpc = one(stack.of_type("aws:ec2/vpc:Vpc", peer))
        assert route["inputs"]["destinationCidrBlock"] == peer_vpc["inputs"]["cidrBlock"]
        parameters = {
            p["inputs"]["name"]: p["inputs"]["value"]
            for p in stack.of_type("aws:ssm/parameter:Parameter", region)
        }
        endpoint = parameters[ssm(stack, region, Param.PEER_SQS_ENDPOINT)]
        # The peer's own SQS endpoint, by its endpoint-specific regional name.
        assert endpoint.startswith("https://vpce-")
        assert endpoint.endswith(f".sqs.{peer}.vpce.amazonaws.com")
        assert f"-{peer}" not in endpoint.split(".")[0]  # not one of the zonal names
        assert parameters[ssm(stack, region, Param.PEER_RETRY_QUEUE_URL)] == (
            f"https://sqs.{peer}.amazonaws.com/{ACCOUNT}/"
            f"{contract.retry_queue_name(stack.config.stack)}"
        )


def ssm(stack: SynthResult, region: str, param: Param) -> str:
    return contract.ssm_parameter_name(stack.config.stack, region, param)


# --- 1. data ---------------------------------------------------------------------------------
def test_1_global_table_with_pitr_streams_protection_and_cmk(stack: SynthResult) -> None:
    primary, secondary = regions(stack)
    table = one(stack.of_type(TABLE))
    inputs = table["inputs"]
    assert table["region"] == primary
    assert inputs["name"] == contract.table_name(stack.config.stack)
    assert inputs["billingMode"] == "PAY_PER_REQUEST"
    assert inputs["pointInTimeRecovery"] == {"enabled": True}
    assert inputs["streamEnabled"] is True
    assert inputs["streamViewType"] == contract.TABLE_STREAM_VIEW_TYPE
    assert inputs["deletionProtectionEnabled"] is True
    assert inputs["hashKey"] == contract.TABLE_HASH_KEY
    assert inputs["serverSideEncryption"]["enabled"] is True
    replicas = inputs["replicas"]
    assert [r["regionName"] for r in replicas] == [secondary]
    for replica in replicas:
        assert replica["pointInTimeRecovery"] is True
        assert replica["deletionProtectionEnabled"] is True
        assert replica["kmsKeyArn"].startswith(f"arn:aws:kms:{replica['regionName']}:")

    key = one(
        [k for k in stack.of_type("aws:kms/key:Key", primary) if k["name"] == "data-key-" + primary]
    )
    assert key["inputs"]["multiRegion"] is True
    assert key["inputs"]["enableKeyRotation"] is True
    assert inputs["serverSideEncryption"]["kmsKeyArn"].startswith(f"arn:aws:kms:{primary}:")
    replica_key = one(stack.of_type("aws:kms/replicaKey:ReplicaKey", secondary))
    assert replica_key["inputs"]["primaryKeyArn"] == inputs["serverSideEncryption"]["kmsKeyArn"]
    assert (
        replicas[0]["kmsKeyArn"].split("/")[-1]
        == replica_key["inputs"]["primaryKeyArn"].split("/")[-1]
    )


def test_1_eventual_mode_has_no_witness(eventual: SynthResult) -> None:
    inputs = one(eventual.of_type(TABLE))["inputs"]
    assert "globalTableWitness" not in inputs
    assert all("consistencyMode" not in replica for replica in inputs["replicas"])


def test_1_strong_mode_adds_strong_replica_and_witness(strong: SynthResult) -> None:
    inputs = one(strong.of_type(TABLE))["inputs"]
    assert [r["consistencyMode"] for r in inputs["replicas"]] == ["STRONG"]
    witness = inputs["globalTableWitness"]["regionName"]
    assert witness == "us-west-2"
    assert witness not in strong.config.regions
    assert {*strong.config.regions, witness} == set(STRONG_CONSISTENCY_REGION_SETS["US"])


# --- 2. functions ----------------------------------------------------------------------------
def comparable(function: dict[str, Any]) -> dict[str, Any]:
    """A function's settings without what must differ per region."""
    inputs = dict(function["inputs"])
    for regional in ("region", "role", "vpcConfig", "description", "environment", "kmsKeyArn"):
        inputs.pop(regional)
    return inputs


def test_2_identical_functions_in_both_regions(stack: SynthResult) -> None:
    primary, secondary = regions(stack)
    for function in Function:
        name = contract.function_name(stack.config.stack, function)
        first = by_name(stack, FUNCTION, primary, name)
        second = by_name(stack, FUNCTION, secondary, name)
        assert comparable(first) == comparable(second)
        settings = contract.FUNCTIONS[function]
        inputs = first["inputs"]
        assert inputs["handler"] == settings.handler
        assert inputs["timeout"] == settings.timeout_seconds
        assert inputs["memorySize"] == settings.memory_mb
        assert inputs["reservedConcurrentExecutions"] == stack.config.reserved_concurrency[function]
        assert inputs["runtime"] == contract.LAMBDA_RUNTIME
    archives = {json.dumps(f["inputs"]["code"]) for f in stack.of_type(FUNCTION)}
    assert len(archives) == 1  # one artifact everywhere


def test_2_functions_private_traced_logged_and_configured_at_deploy_time(
    stack: SynthResult,
) -> None:
    for region in regions(stack):
        parameters = {
            p["inputs"]["name"].rsplit("/", 1)[-1]: p["inputs"]["value"]
            for p in stack.of_type("aws:ssm/parameter:Parameter", region)
        }
        subnet_count = len(stack.of_type("aws:ec2/subnet:Subnet", region))
        log_groups = {
            g["inputs"]["name"]: g
            for g in stack.of_type("aws:cloudwatch/logGroup:LogGroup", region)
        }
        id_readers = {
            contract.function_name(stack.config.stack, f) for f in contract.ID_KEY_READERS
        }
        for function in stack.of_type(FUNCTION, region):
            inputs = function["inputs"]
            vpc = inputs["vpcConfig"]
            assert len(vpc["subnetIds"]) == subnet_count >= 2
            assert len(vpc["securityGroupIds"]) == 1
            assert inputs["tracingConfig"] == {"mode": "Active"}
            assert inputs["reservedConcurrentExecutions"] > 0
            variables = inputs["environment"]["variables"]
            assert variables[contract.ENV_SSM_PATH] == contract.ssm_path(stack.config.stack, region)
            # The deploy-time settings, equal to the region's SSM parameters; only `mode` is
            # left to read at run time, with its refresh period and spread.
            deploy_time = {contract.param_env_var(p): p for p in contract.DEPLOY_TIME_PARAMS}
            assert set(variables) == {
                contract.ENV_SSM_PATH,
                contract.ENV_MODE_REFRESH_SECONDS,
                contract.ENV_MODE_READ_SPREAD_SECONDS,
                "POWERTOOLS_SERVICE_NAME",
                "POWERTOOLS_METRICS_NAMESPACE",
                "POWERTOOLS_TRACER_CAPTURE_RESPONSE",
                *deploy_time,
                *([contract.ENV_ID_SECRET_ID] if inputs["name"] in id_readers else []),
            }
            for name, param in deploy_time.items():
                assert variables[name] == parameters[param.value], name
            assert variables[contract.ENV_MODE_REFRESH_SECONDS] == str(
                stack.config.mode_refresh_seconds
            )
            assert variables[contract.ENV_MODE_READ_SPREAD_SECONDS] == str(
                stack.config.mode_read_spread_seconds
            )
            log_group = log_groups[inputs["loggingConfig"]["logGroup"]]
            assert log_group["inputs"]["retentionInDays"] == stack.config.log_retention_days
            assert log_group["inputs"]["kmsKeyId"] == log_key_arn(stack, region)


def test_2_functions_use_their_own_regions_subnets(stack: SynthResult) -> None:
    for region in regions(stack):
        security_group = one(
            [
                g
                for g in stack.of_type("aws:ec2/securityGroup:SecurityGroup", region)
                if g["name"].endswith("functions-sg")
            ]
        )
        urns = {s["urn"] for s in stack.of_type("aws:ec2/subnet:Subnet", region)} | {
            security_group["urn"]
        }
        for function in stack.of_type(FUNCTION, region):
            assert urns <= set(function["dependencies"]), function["name"]


def test_2_event_sources_retry_queue_and_table_stream(stack: SynthResult) -> None:
    name = stack.config.stack
    for region in regions(stack):
        mappings = stack.of_type("aws:lambda/eventSourceMapping:EventSourceMapping", region)
        by_function = {m["inputs"]["functionName"].split(":")[-1]: m for m in mappings}
        assert set(by_function) == {
            contract.function_name(name, Function.RETRY_WORKER),
            contract.function_name(name, Function.LOG_ARCHIVER),
        }
        retry = by_function[contract.function_name(name, Function.RETRY_WORKER)]["inputs"]
        assert retry["eventSourceArn"] == (
            f"arn:aws:sqs:{region}:{ACCOUNT}:{contract.retry_queue_name(name)}"
        )
        assert retry["functionResponseTypes"] == ["ReportBatchItemFailures"]
        assert retry["batchSize"] == contract.RETRY_BATCH_SIZE
        stream = by_function[contract.function_name(name, Function.LOG_ARCHIVER)]["inputs"]
        table_arn = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{contract.table_name(name)}"
        assert stream["eventSourceArn"].startswith(f"{table_arn}/stream/")
        assert stream["startingPosition"] == "TRIM_HORIZON"
        # Never dropped after a few retries: a failing batch is retried for most of the day,
        # and discarded by the age limit before the stream's 24 h retention trims it.
        assert stream["maximumRetryAttempts"] == -1
        assert 12 * 3600 <= stream["maximumRecordAgeInSeconds"] < 24 * 3600
        # ...and a batch that still fails leaves a record of its range in this region.
        assert stream["destinationConfig"] == {
            "onFailure": {"destinationArn": archive_failures_arn(name, region)}
        }


# --- 3. API ----------------------------------------------------------------------------------
def test_3_rest_api_from_the_openapi_document_with_validation(stack: SynthResult) -> None:
    document = load_openapi()
    for region in regions(stack):
        api = one(stack.of_type("aws:apigateway/restApi:RestApi", region))
        assert api["inputs"]["endpointConfiguration"] == {"types": "REGIONAL"}
        body = json.loads(api["inputs"]["body"])
        assert (
            body["x-amazon-apigateway-request-validator"]
            in body["x-amazon-apigateway-request-validators"]
        )
        validator = body["x-amazon-apigateway-request-validators"][
            body["x-amazon-apigateway-request-validator"]
        ]
        assert validator == {"validateRequestBody": True, "validateRequestParameters": True}
        api_function = f"function:{contract.function_name(stack.config.stack, Function.API)}"
        assert set(body["paths"]) == set(document["paths"])
        for path, operations in document["paths"].items():
            for method in operations:
                integration = body["paths"][path][method]["x-amazon-apigateway-integration"]
                assert integration["type"] == "aws_proxy"
                assert integration["httpMethod"] == "POST"
                assert f"arn:aws:apigateway:{region}:lambda:" in integration["uri"]
                assert f":{region}:" in integration["uri"] and api_function in integration["uri"]


def test_3_gateway_errors_use_the_services_error_shape(stack: SynthResult) -> None:
    error_schema = load_openapi()["components"]["schemas"]["Error"]
    for region in regions(stack):
        api = one(stack.of_type("aws:apigateway/restApi:RestApi", region))
        responses = json.loads(api["inputs"]["body"])["x-amazon-apigateway-gateway-responses"]
        assert {"BAD_REQUEST_BODY", "BAD_REQUEST_PARAMETERS", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(
            responses
        )
        for response in responses.values():
            template = response["responseTemplates"]["application/json"]
            # API Gateway substitutes messageString as a quoted JSON string.
            rendered = json.loads(
                template.replace("$context.error.messageString", json.dumps('Invalid "body"'))
            )
            assert set(rendered) == set(error_schema["required"])
            assert rendered["code"] in error_schema["properties"]["code"]["enum"]
            assert rendered["message"] == 'Invalid "body"'


def test_7_a_failing_authorizer_answers_503_with_retry_after(stack: SynthResult) -> None:
    for region in regions(stack):
        api = one(stack.of_type("aws:apigateway/restApi:RestApi", region))
        responses = json.loads(api["inputs"]["body"])["x-amazon-apigateway-gateway-responses"]
        for response_type in ("AUTHORIZER_FAILURE", "AUTHORIZER_CONFIGURATION_ERROR"):
            response = responses[response_type]
            assert response["statusCode"] == "503"
            retry_after = response["responseParameters"]["gatewayresponse.header.Retry-After"]
            assert retry_after == f"'{contract.RETRY_AFTER_SECONDS}'"
        # A throttled client is told when a token is back rather than left to guess.
        throttled = responses["THROTTLED"]["responseParameters"]
        assert throttled["gatewayresponse.header.Retry-After"] == "'1'"


def test_3_stage_with_access_logs_metrics_and_throttling(stack: SynthResult) -> None:
    for region in regions(stack):
        stage = one(stack.of_type("aws:apigateway/stage:Stage", region))["inputs"]
        assert stage["stageName"] == contract.API_STAGE
        assert stage["xrayTracingEnabled"] is True
        access = stage["accessLogSettings"]
        assert access["destinationArn"].startswith(f"arn:aws:logs:{region}:")
        assert "$context.requestId" in access["format"]
        settings = one(stack.of_type("aws:apigateway/methodSettings:MethodSettings", region))
        assert settings["inputs"]["methodPath"] == "*/*"
        values = settings["inputs"]["settings"]
        assert values["metricsEnabled"] is True
        assert values["throttlingRateLimit"] == stack.config.api_throttle_rate_limit
        assert values["throttlingBurstLimit"] == stack.config.api_throttle_burst_limit
        assert values["dataTraceEnabled"] is False
        account = one(stack.of_type("aws:apigateway/account:Account", region))
        assert account["inputs"]["cloudwatchRoleArn"].startswith("arn:aws:iam::")


def test_3_custom_domains_tls12_with_dns_validated_certificates(stack: SynthResult) -> None:
    """Per region the failover name and the region's own name, each on its own certificate."""
    zone_id = stack.outputs[StackOutput.HOSTED_ZONE_ID]
    cname_records = [
        r for r in stack.of_type("aws:route53/record:Record") if r["inputs"]["type"] == "CNAME"
    ]
    validation_records = {r["inputs"]["name"].rstrip("."): r for r in cname_records}
    validated_by: dict[str, set[str]] = {}
    for region in regions(stack):
        names = (stack.config.api_domain, regional_domain(stack, region))
        certificates = {
            c["inputs"]["domainName"]: c
            for c in stack.of_type("aws:acm/certificate:Certificate", region)
        }
        assert set(certificates) == set(names)
        validations = stack.of_type("aws:acm/certificateValidation:CertificateValidation", region)
        domains = {
            d["inputs"]["domainName"]: d["inputs"]
            for d in stack.of_type("aws:apigateway/domainName:DomainName", region)
        }
        assert set(domains) == set(names)
        mappings = stack.of_type("aws:apigateway/basePathMapping:BasePathMapping", region)
        assert sorted(m["inputs"]["domainName"] for m in mappings) == sorted(names)
        for name in names:
            assert certificates[name]["inputs"]["validationMethod"] == "DNS"
            (validation,) = [
                v["inputs"] for v in validations if certificates[name]["urn"] in v["dependencies"]
            ]
            assert validation["certificateArn"].startswith(f"arn:aws:acm:{region}:")
            (fqdn,) = validation["validationRecordFqdns"]
            assert fqdn.endswith(name)
            assert validation_records[fqdn]["inputs"]["zoneId"] == zone_id
            validated_by.setdefault(fqdn, set()).add(region)
            domain = domains[name]
            assert domain["securityPolicy"] == "TLS_1_2"
            assert domain["endpointConfiguration"] == {"types": "REGIONAL"}
            assert domain["regionalCertificateArn"] == validation["certificateArn"]
        for mapping in mappings:
            assert mapping["inputs"]["stageName"] == contract.API_STAGE
            assert "basePath" not in mapping["inputs"]  # the stage at the root of both names
    # One record owned by one resource validates both regions' failover-name certificates: a
    # second owner of the same name would delete it from under the other region's certificate
    # when replaced. Each regional name has its own.
    assert len(cname_records) == 3
    assert sorted(len(by) for by in validated_by.values()) == [1, 1, 2]


def test_3_each_regions_own_name_points_at_its_own_domain(stack: SynthResult) -> None:
    zone_id = stack.outputs[StackOutput.HOSTED_ZONE_ID]
    for region in regions(stack):
        name = regional_domain(stack, region)
        (record,) = [
            r["inputs"]
            for r in stack.of_type("aws:route53/record:Record")
            if r["inputs"]["name"] == name
        ]
        assert record["type"] == "A" and record["zoneId"] == zone_id
        assert "failoverRoutingPolicies" not in record and "healthCheckId" not in record
        (alias,) = record["aliases"]
        assert alias["name"].endswith(f".execute-api.{region}.amazonaws.com")
        assert alias["evaluateTargetHealth"] is False
        assert region_output(stack, region)[RegionOutput.API_ENDPOINT] == f"https://{name}"


def test_3_the_default_execute_api_endpoint_is_disabled(stack: SynthResult) -> None:
    for region in regions(stack):
        api = one(stack.of_type("aws:apigateway/restApi:RestApi", region))["inputs"]
        assert api["disableExecuteApiEndpoint"] is True
        assert api["securityPolicy"] == "TLS_1_2"
        # In the document too, whose hash redeploys the stage: the setting applies from then.
        body = json.loads(api["body"])
        assert body["x-amazon-apigateway-endpoint-configuration"] == {
            "disableExecuteApiEndpoint": True
        }
    # No output hands out a URL of the disabled endpoint.
    assert not re.search(r"https://[^\"]*execute-api", json.dumps(stack.outputs))


def test_3_invoke_permission_scoped_to_the_api_stage(stack: SynthResult) -> None:
    for region in regions(stack):
        api_name = contract.function_name(stack.config.stack, Function.API)
        permission = one(
            [
                p
                for p in stack.of_type("aws:lambda/permission:Permission", region)
                if p["inputs"]["function"] == api_name
            ]
        )["inputs"]
        assert permission["principal"] == "apigateway.amazonaws.com"
        assert permission["action"] == "lambda:InvokeFunction"
        assert permission["function"] == contract.function_name(stack.config.stack, Function.API)
        assert permission["sourceArn"] == (
            f"arn:aws:execute-api:{region}:{ACCOUNT}:{api_id(stack, region)}/{contract.API_STAGE}/*"
        )


# --- 4. DNS ----------------------------------------------------------------------------------
def test_4_health_checks_probe_each_regions_own_name(stack: SynthResult) -> None:
    checks = [
        c for c in stack.of_type("aws:route53/healthCheck:HealthCheck") if c["inputs"].get("fqdn")
    ]
    assert len(checks) == 2
    for region in regions(stack):
        host = regional_domain(stack, region)
        check = one([c for c in checks if c["inputs"]["fqdn"] == host])["inputs"]
        assert check["type"] == "HTTPS"
        assert check["port"] == 443
        assert check["resourcePath"] == contract.HEALTH_PATH  # the stage is at the root
        assert check["requestInterval"] == stack.config.health_check_interval_seconds
        assert check["failureThreshold"] == stack.config.health_check_failure_threshold
        assert check["enableSni"] is True
        assert region_output(stack, region)[RegionOutput.HEALTH_CHECK_URL] == (
            f"https://{host}{contract.HEALTH_PATH}"
        )
        # Created after the name resolves and the stage is mapped on it.
        check_urn = one([c for c in checks if c["inputs"]["fqdn"] == host])["urn"]
        dependencies = one([r for r in stack.resources if r["urn"] == check_urn])["dependencies"]
        alias = [
            r["urn"]
            for r in stack.of_type("aws:route53/record:Record")
            if r["inputs"]["name"] == host
        ]
        assert set(alias) <= set(dependencies)


def test_4_failover_alias_records_tied_to_health_checks(stack: SynthResult) -> None:
    zone_id = stack.outputs[StackOutput.HOSTED_ZONE_ID]
    records = [
        r["inputs"]
        for r in stack.of_type("aws:route53/record:Record")
        if r["inputs"].get("failoverRoutingPolicies")
    ]
    assert len(records) == 2
    roles = {}
    for record in records:
        assert record["name"] == stack.config.api_domain
        assert record["type"] == "A"
        assert record["zoneId"] == zone_id
        (policy_type,) = [p["type"] for p in record["failoverRoutingPolicies"]]
        (alias,) = record["aliases"]
        region = next(
            r
            for r in regions(stack)
            if alias["name"] == region_output(stack, r)[RegionOutput.CUSTOM_DOMAIN_TARGET]
        )
        assert (
            record["healthCheckId"]
            == region_output(stack, region)[RegionOutput.RECORD_HEALTH_CHECK_ID]
        )
        roles[policy_type] = region
    assert roles == {
        "PRIMARY": stack.config.primary_region,
        "SECONDARY": stack.config.secondary_region,
    }


def test_4_existing_zone_is_used_instead_of_a_new_one(artifact_path: Any, tmp_path: Any) -> None:
    from payments_dr.synth import synthesize

    path = tmp_path / "Pulumi.existing.yaml"
    path.write_text(
        "config:\n  payments-dr:domainName: pay.example.com\n"
        "  payments-dr:hostedZoneId: Z0123456789ABCDEFGHIJ\n",
        encoding="utf-8",
    )
    result = synthesize(path, artifact_path)
    assert not result.of_type("aws:route53/zone:Zone")
    assert result.outputs[StackOutput.HOSTED_ZONE_ID] == "Z0123456789ABCDEFGHIJ"
    assert result.outputs[StackOutput.NAME_SERVERS] == []  # already delegated by its owner
    assert {r["inputs"]["zoneId"] for r in result.of_type("aws:route53/record:Record")} == {
        "Z0123456789ABCDEFGHIJ"
    }


# --- 5. storage ------------------------------------------------------------------------------
def log_storage(stack: SynthResult, resource_type: str, region: str) -> list[dict[str, Any]]:
    """The transaction-log bucket's resources (the canary has an artifact bucket too)."""
    return [r for r in stack.of_type(resource_type, region) if r["name"].startswith("storage-")]


def test_5_log_buckets_versioned_encrypted_private_tls_only(stack: SynthResult) -> None:
    for region in regions(stack):
        bucket = one(log_storage(stack, "aws:s3/bucket:Bucket", region))["inputs"]["bucket"]
        assert bucket == region_output(stack, region)[RegionOutput.LOG_BUCKET]
        versioning = one(log_storage(stack, "aws:s3/bucketVersioning:BucketVersioning", region))
        assert versioning["inputs"]["versioningConfiguration"] == {"status": "Enabled"}
        encryption = one(
            log_storage(
                stack,
                "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                region,
            )
        )["inputs"]["rules"][0]["applyServerSideEncryptionByDefault"]
        assert encryption == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn(stack, region)}
        block = one(
            log_storage(stack, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", region)
        )
        for flag in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        ):
            assert block["inputs"][flag] is True
        bucket_policy = policy(one(log_storage(stack, "aws:s3/bucketPolicy:BucketPolicy", region)))
        deny = [s for s in bucket_policy["Statement"] if s["Effect"] == "Deny"]
        assert {"Bool": {"aws:SecureTransport": "false"}} in [s["Condition"] for s in deny]
        assert all(s["Effect"] == "Deny" for s in bucket_policy["Statement"])
        lifecycle = one(
            log_storage(
                stack, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", region
            )
        )["inputs"]["rules"]
        assert all(rule["status"] == "Enabled" for rule in lifecycle)
        assert any("noncurrentVersionExpiration" in rule for rule in lifecycle)


def test_5_replication_both_ways_with_rtc_metrics_and_delete_markers(stack: SynthResult) -> None:
    for source in regions(stack):
        destination = stack.config.peer_region(source)
        config = one(
            stack.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig", source)
        )
        inputs = config["inputs"]
        assert inputs["bucket"] == region_output(stack, source)[RegionOutput.LOG_BUCKET]
        (rule,) = inputs["rules"]
        assert rule["status"] == "Enabled"
        assert rule["deleteMarkerReplication"] == {"status": "Enabled"}
        target = rule["destination"]
        assert target["bucket"] == (
            f"arn:aws:s3:::{region_output(stack, destination)[RegionOutput.LOG_BUCKET]}"
        )
        assert target["replicationTime"] == {"status": "Enabled", "time": {"minutes": 15}}
        assert target["metrics"] == {"status": "Enabled", "eventThreshold": {"minutes": 15}}
        assert target["encryptionConfiguration"]["replicaKmsKeyId"] == key_arn(stack, destination)
        assert rule["sourceSelectionCriteria"]["sseKmsEncryptedObjects"] == {"status": "Enabled"}
        # Versioning on both sides must exist before S3 accepts the configuration.
        versionings = {
            one(log_storage(stack, "aws:s3/bucketVersioning:BucketVersioning", r))["urn"]
            for r in regions(stack)
        }
        assert versionings <= set(config["dependencies"])


def test_5_replication_role_per_direction_least_privilege(stack: SynthResult) -> None:
    replication_policies = [
        r for r in stack.of_type(ROLE_POLICY) if r["name"].startswith("storage-replication-")
    ]
    assert len(replication_policies) == 2
    for resource in replication_policies:
        source = resource["name"].removeprefix("storage-replication-")
        destination = stack.config.peer_region(source)
        source_bucket = f"arn:aws:s3:::{region_output(stack, source)[RegionOutput.LOG_BUCKET]}"
        target_bucket = f"arn:aws:s3:::{region_output(stack, destination)[RegionOutput.LOG_BUCKET]}"
        document = policy(resource)
        resources = {r for s in document["Statement"] for r in s["Resource"]}
        assert resources == {
            source_bucket,
            f"{source_bucket}/*",
            f"{target_bucket}/*",
            key_arn(stack, source),
            key_arn(stack, destination),
        }
        write = next(s for s in document["Statement"] if "s3:ReplicateObject" in s["Action"])
        assert write["Resource"] == [f"{target_bucket}/*"]


# --- 6. monitoring ---------------------------------------------------------------------------
def alarms(stack: SynthResult, region: str) -> dict[str, dict[str, Any]]:
    """The region's operational alarms (the traffic switches are switches, not pages)."""
    prefix = f"{contract.PROJECT}-{stack.config.stack}-{region}-"
    return {
        a["inputs"]["name"].removeprefix(prefix): a["inputs"]
        for a in stack.of_type(ALARM, region)
        if a["inputs"]["namespace"] != contract.SWITCH_NAMESPACE
    }


def test_6_replication_latency_alarm_towards_the_other_region(eventual: SynthResult) -> None:
    stack = eventual  # strong mode alarms on its writes instead (test_first_deploy)
    for region in regions(stack):
        alarm = alarms(stack, region)["replication-latency"]
        assert alarm["namespace"] == "AWS/DynamoDB"
        assert alarm["metricName"] == "ReplicationLatency"
        assert alarm["dimensions"] == {
            "TableName": contract.table_name(stack.config.stack),
            "ReceivingRegion": stack.config.peer_region(region),
        }
        assert alarm["threshold"] == 30000
        assert alarm["comparisonOperator"] == "GreaterThanThreshold"


def test_6_an_overwritten_payment_version_pages_in_the_region_that_kept_it(
    stack: SynthResult,
) -> None:
    strong = stack.config.consistency_mode is ConsistencyMode.STRONG
    for region in regions(stack):
        found = alarms(stack, region)
        if strong:  # one outcome per key: nothing to overwrite
            assert "replication-conflicts" not in found
            continue
        alarm = found["replication-conflicts"]
        # What the log archiver counts (Powertools: the function's own namespace and service).
        assert alarm["namespace"] == contract.SERVICE_METRICS_NAMESPACE
        assert alarm["metricName"] == contract.REPLICATION_CONFLICTS_METRIC
        assert alarm["dimensions"] == {"service": contract.service_name(Function.LOG_ARCHIVER)}
        assert (alarm["statistic"], alarm["threshold"]) == ("Sum", 0)
        assert alarm["comparisonOperator"] == "GreaterThanThreshold"
        archiver = by_name(
            stack,
            FUNCTION,
            region,
            contract.function_name(stack.config.stack, Function.LOG_ARCHIVER),
        )
        variables = archiver["inputs"]["environment"]["variables"]
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == alarm["namespace"]
        assert variables["POWERTOOLS_SERVICE_NAME"] == alarm["dimensions"]["service"]


def test_6_operational_alarms_notify_the_regions_encrypted_topic(stack: SynthResult) -> None:
    name = stack.config.stack
    for region in regions(stack):
        topic = one(stack.of_type("aws:sns/topic:Topic", region))["inputs"]
        assert topic["kmsMasterKeyId"] == log_key_arn(stack, region)
        topic_arn = region_output(stack, region)[RegionOutput.ALARM_TOPIC_ARN]
        found = alarms(stack, region)
        assert found["dlq-not-empty"]["dimensions"] == {"QueueName": contract.dlq_name(name)}
        assert found["dlq-not-empty"]["threshold"] == 0
        assert found["api-5xx"]["metricName"] == "5XXError"
        assert found["api-5xx"]["dimensions"]["Stage"] == contract.API_STAGE
        s3 = found["s3-replication-failed"]
        assert s3["metricName"] == "OperationsFailedReplication"
        assert (
            s3["dimensions"]["SourceBucket"]
            == region_output(stack, region)[RegionOutput.LOG_BUCKET]
        )
        archive_lag = found["archive-lag"]
        assert archive_lag["metricName"] == "IteratorAge"
        assert archive_lag["dimensions"] == {
            "FunctionName": contract.function_name(name, Function.LOG_ARCHIVER)
        }
        assert archive_lag["threshold"] == 15 * 60 * 1000  # milliseconds
        archive_failures = found["archive-failures-not-empty"]
        assert archive_failures["namespace"] == "AWS/SQS"
        assert archive_failures["metricName"] == "ApproximateNumberOfMessagesVisible"
        assert archive_failures["dimensions"] == {
            "QueueName": contract.archive_failures_queue_name(name)
        }
        assert archive_failures["threshold"] == 0
        assert archive_failures["comparisonOperator"] == "GreaterThanThreshold"
        assert "archive-failures-not-empty" in region_output(stack, region)[RegionOutput.ALARM_ARNS]
        for function in Function:
            for metric in ("errors", "throttles"):
                alarm = found[f"{function.value}-{metric}"]
                assert alarm["namespace"] == "AWS/Lambda"
                assert alarm["dimensions"] == {
                    "FunctionName": contract.function_name(name, function)
                }
        for alarm in found.values():
            assert alarm["alarmActions"] == [topic_arn]
            assert alarm["okActions"] == [topic_arn]  # recovery is news to the on-call too
        assert set(region_output(stack, region)[RegionOutput.ALARM_ARNS]) == set(found)


# --- 7. configuration in SSM -----------------------------------------------------------------
def test_7_ssm_parameters_per_region_under_one_path(stack: SynthResult) -> None:
    name = stack.config.stack
    for region in regions(stack):
        params = {
            p["inputs"]["name"]: p for p in stack.of_type("aws:ssm/parameter:Parameter", region)
        }
        expected = {contract.ssm_parameter_name(name, region, param) for param in Param}
        assert set(params) == expected
        output = region_output(stack, region)

        def value(param: Param, found: dict[str, Any] = params, r: str = region) -> Any:
            return found[contract.ssm_parameter_name(name, r, param)]["inputs"]["value"]

        assert value(Param.TABLE_NAME) == contract.table_name(name)
        assert value(Param.RETRY_QUEUE_URL) == output[RegionOutput.RETRY_QUEUE_URL]
        assert value(Param.DLQ_URL) == output[RegionOutput.DLQ_URL]
        assert value(Param.ARCHIVE_FAILURES_QUEUE_URL) == (
            f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/"
            f"{contract.archive_failures_queue_name(name)}"
        )
        assert value(Param.LOG_BUCKET) == output[RegionOutput.LOG_BUCKET]
        assert value(Param.REGION_ROLE) == stack.config.role_of(region).value
        assert value(Param.PEER_REGION) == stack.config.peer_region(region)
        assert value(Param.API_ENDPOINT) == output[RegionOutput.API_ENDPOINT]
        assert value(Param.MODE) == contract.Mode.ACTIVE.value
        mode = params[contract.ssm_parameter_name(name, region, Param.MODE)]
        assert mode["ignore_changes"] == ["value"]  # a deployment never lifts a fence


# --- 8. queues -------------------------------------------------------------------------------
def test_8_retry_queue_redrives_to_an_encrypted_dlq(stack: SynthResult) -> None:
    name = stack.config.stack
    for region in regions(stack):
        dlq = by_name(stack, QUEUE, region, contract.dlq_name(name))["inputs"]
        retry = by_name(stack, QUEUE, region, contract.retry_queue_name(name))["inputs"]
        assert dlq["messageRetentionSeconds"] == 1209600
        for queue in (dlq, retry):
            assert queue["kmsMasterKeyId"] == key_arn(stack, region)
        redrive = json.loads(retry["redrivePolicy"])
        assert redrive["deadLetterTargetArn"] == (
            f"arn:aws:sqs:{region}:{ACCOUNT}:{contract.dlq_name(name)}"
        )
        assert redrive["maxReceiveCount"] == contract.RETRY_MAX_RECEIVE_COUNT
        assert retry["visibilityTimeoutSeconds"] == contract.RETRY_QUEUE_VISIBILITY_SECONDS
        allow = json.loads(dlq["redriveAllowPolicy"])
        assert allow["redrivePermission"] == "byQueue"
        assert allow["sourceQueueArns"] == [
            f"arn:aws:sqs:{region}:{ACCOUNT}:{contract.retry_queue_name(name)}"
        ]


def test_8_archive_failures_queue_is_encrypted_terminal_and_kept_14_days(
    stack: SynthResult,
) -> None:
    name = stack.config.stack
    for region in regions(stack):
        queue = by_name(stack, QUEUE, region, contract.archive_failures_queue_name(name))
        inputs = queue["inputs"]
        assert inputs["kmsMasterKeyId"] == key_arn(stack, region)
        assert inputs["messageRetentionSeconds"] == 14 * 24 * 3600
        # Terminal: it redrives nowhere, and no queue may dead-letter into it.
        assert "redrivePolicy" not in inputs
        assert json.loads(inputs["redriveAllowPolicy"]) == {"redrivePermission": "denyAll"}


def test_9_log_archiver_sends_only_to_its_regions_archive_failures_queue(
    stack: SynthResult,
) -> None:
    name = stack.config.stack
    role_policies = {r["name"]: r for r in stack.of_type(ROLE_POLICY)}
    failure_queues = {archive_failures_arn(name, region) for region in regions(stack)}
    for region in regions(stack):
        for function in Function:
            document = policy(role_policies[f"service-{region}-{function.value}-policy"])
            granted = {
                (action, resource)
                for statement in document["Statement"]
                for action in statement["Action"]
                for resource in statement["Resource"]
                if action.startswith("sqs:")
            }
            if function is Function.LOG_ARCHIVER:
                # Every SQS right it has: one action, on one queue.
                assert granted == {("sqs:SendMessage", archive_failures_arn(name, region))}
            else:
                assert not {resource for _, resource in granted} & failure_queues, function


# --- 9. IAM ----------------------------------------------------------------------------------
def test_9_one_role_per_function_per_region_scoped_to_its_region(stack: SynthResult) -> None:
    roles = {r["name"]: r for r in stack.of_type(ROLE)}
    role_policies = {r["name"]: r for r in stack.of_type(ROLE_POLICY)}
    for region in regions(stack):
        for function in Function:
            prefix = f"service-{region}-{function.value}"
            role = roles[f"{prefix}-role"]
            trust = policy(role, "assumeRolePolicy")["Statement"][0]
            assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
            name = contract.function_name(stack.config.stack, function)
            deployed = by_name(stack, FUNCTION, region, name)
            assert role["inputs"]["name"] == role_names.function_role_name(function, region)
            assert deployed["inputs"]["role"] == role_names.role_arn(
                ACCOUNT, stack.config.stack, role["inputs"]["name"]
            )
            document = policy(role_policies[f"{prefix}-policy"])
            for statement in document["Statement"]:
                assert statement["Effect"] == "Allow"
                assert all("*" not in action for action in statement["Action"])
                for resource in statement["Resource"]:
                    if resource == "*":
                        assert set(statement["Action"]) <= iam.ACTIONS_WITHOUT_RESOURCE_SCOPE
                        continue
                    arn_region = resource.split(":")[3]
                    if function is Function.API and arn_region == stack.config.peer_region(region):
                        # Its retries queue in the peer region, to outlive this one.
                        assert statement["Sid"] in (
                            "QueueRetriesInPeerRegion",
                            "EncryptQueuedRetries",
                        )
                        continue
                    assert arn_region in ("", region), (function, resource)
            resources = {r for s in document["Statement"] for r in s["Resource"]}
            table = contract.table_name(stack.config.stack)
            table_arn = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{table}"
            if function is Function.LOG_ARCHIVER:
                assert f"{table_arn}/stream/*" in resources
            else:
                assert table_arn in resources


def test_9_no_role_policy_uses_wildcard_actions(stack: SynthResult) -> None:
    for resource in stack.of_type(ROLE_POLICY):
        for statement in policy(resource)["Statement"]:
            actions = statement["Action"]
            actions = [actions] if isinstance(actions, str) else actions
            assert all("*" not in action for action in actions), resource["name"]


# --- 10. outputs -----------------------------------------------------------------------------
def test_10_outputs_use_the_contract_names(stack: SynthResult) -> None:
    outputs = stack.outputs
    assert set(outputs) == {o.value for o in StackOutput}
    primary, secondary = regions(stack)
    assert outputs[StackOutput.FAILOVER_URL] == f"https://{stack.config.api_domain}"
    assert outputs[StackOutput.API_DOMAIN] == stack.config.api_domain
    assert outputs[StackOutput.TABLE_NAME] == contract.table_name(stack.config.stack)
    assert len(outputs[StackOutput.NAME_SERVERS]) == 4  # the zone is new: delegate to these
    assert outputs[StackOutput.DR_BUDGET] == {
        str(k): v for k, v in stack.config.budget.to_dict().items()
    }
    assert (
        outputs[StackOutput.PRIMARY_API_ENDPOINT]
        == region_output(stack, primary)[RegionOutput.API_ENDPOINT]
    )
    assert (
        outputs[StackOutput.SECONDARY_API_ENDPOINT]
        == region_output(stack, secondary)[RegionOutput.API_ENDPOINT]
    )
    for region in (primary, secondary):
        output = region_output(stack, region)
        assert set(output) == {o.value for o in RegionOutput}
        assert output[RegionOutput.ROLE] == stack.config.role_of(region).value
        assert output[RegionOutput.API_ENDPOINT] == f"https://{regional_domain(stack, region)}"
        assert output[RegionOutput.CUSTOM_DOMAIN_URL] == f"https://{stack.config.api_domain}"
        assert output[RegionOutput.SSM_PATH] == contract.ssm_path(stack.config.stack, region)
        assert output[RegionOutput.FUNCTION_NAMES] == {
            f.value: contract.function_name(stack.config.stack, f) for f in Function
        }
        assert all(f":{region}:" in arn for arn in output[RegionOutput.ALARM_ARNS].values())


def test_synthesis_is_repeatable_in_one_process(eventual: SynthResult, artifact_path: Any) -> None:
    from payments_dr.synth import synthesize_config

    again = synthesize_config(eventual.config, artifact_path)
    assert again.resources == eventual.resources
    assert again.outputs == eventual.outputs


def test_strong_mode_in_another_pair_of_the_region_set(
    artifact_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    primary, secondary, witness = "us-west-2", "us-east-2", "us-east-1"
    from payments_dr.infra.config import StackConfig
    from payments_dr.synth import synthesize_config

    config = StackConfig.from_mapping(
        "pair",
        {
            "domainName": "pay.example.com",
            "consistencyMode": "strong",
            "primaryRegion": primary,
            "secondaryRegion": secondary,
        },
    )
    result = synthesize_config(config, artifact_path)
    table = one(result.of_type(TABLE))
    assert table["region"] == primary
    assert table["inputs"]["globalTableWitness"] == {"regionName": witness}
    assert {r["region"] for r in result.of_type(FUNCTION)} == {primary, secondary}
    # No stack region in us-east-1, yet both health checks are alarmed there, where Route 53
    # publishes their metrics, and nothing is left to warn about.
    health_alarms = [
        a for a in result.of_type(ALARM) if a["inputs"]["metricName"] == "HealthCheckStatus"
    ]
    assert {a["region"] for a in health_alarms} == {witness}
    assert len(health_alarms) == 2
    assert "Route 53" not in caplog.text


# --- authentication, firewall, per-merchant throttling (issue 7) ------------------------------
def api_body(stack: SynthResult, region: str) -> dict[str, Any]:
    api = one(stack.of_type("aws:apigateway/restApi:RestApi", region))
    body: dict[str, Any] = json.loads(api["inputs"]["body"])
    return body


def test_authorizer_on_every_payment_method_and_health_open(stack: SynthResult) -> None:
    authorizer_name = contract.function_name(stack.config.stack, Function.AUTHORIZER)
    for region in regions(stack):
        body = api_body(stack, region)
        scheme = body["components"]["securitySchemes"]["MerchantKey"]
        assert scheme["x-amazon-apigateway-authtype"] == "custom"
        authorizer = scheme["x-amazon-apigateway-authorizer"]
        assert authorizer["type"] == "request"
        assert authorizer["identitySource"] == "method.request.header.Authorization"
        assert authorizer["authorizerResultTtlInSeconds"] == contract.AUTHORIZER_CACHE_TTL_SECONDS
        # Each region's gateway calls its own region's authorizer: no cross-region dependency.
        assert f"arn:aws:apigateway:{region}:lambda:" in authorizer["authorizerUri"]
        assert f":{region}:{ACCOUNT}:function:{authorizer_name}" in authorizer["authorizerUri"]
        assert body["x-amazon-apigateway-api-key-source"] == "AUTHORIZER"
        for path, operations in body["paths"].items():
            for method, operation in operations.items():
                if (method, path) == ("get", contract.HEALTH_PATH):
                    assert operation["security"] == []
                else:
                    assert operation["security"] == [{"MerchantKey": [], "UsagePlanKey": []}]


def test_authorizer_function_deployed_like_the_others_in_both_regions(
    stack: SynthResult,
) -> None:
    name = contract.function_name(stack.config.stack, Function.AUTHORIZER)
    settings = contract.FUNCTIONS[Function.AUTHORIZER]
    for region in regions(stack):
        function = by_name(stack, FUNCTION, region, name)["inputs"]
        assert function["handler"] == settings.handler
        assert function["vpcConfig"]["subnetIds"]
        permission = one(
            [
                p["inputs"]
                for p in stack.of_type("aws:lambda/permission:Permission", region)
                if p["inputs"]["function"] == name
            ]
        )
        assert permission["principal"] == "apigateway.amazonaws.com"
        assert permission["sourceArn"].startswith(f"arn:aws:execute-api:{region}:{ACCOUNT}:")
        assert permission["sourceArn"].endswith("/authorizers/*")


def test_usage_plan_per_region_throttles_each_merchant(stack: SynthResult) -> None:
    for region in regions(stack):
        plan = one(stack.of_type("aws:apigateway/usagePlan:UsagePlan", region))
        inputs = plan["inputs"]
        assert inputs["name"] == contract.usage_plan_name(stack.config.stack)
        assert inputs["throttleSettings"] == {
            "rateLimit": stack.config.merchant_throttle_rate_limit,
            "burstLimit": stack.config.merchant_throttle_burst_limit,
        }
        (api_stage,) = inputs["apiStages"]
        assert api_stage["stage"] == contract.API_STAGE
        assert api_stage["apiId"] == api_id(stack, region)
        assert region_output(stack, region)[RegionOutput.USAGE_PLAN_ID].startswith("sim-")


def test_web_acl_associated_with_each_regions_stage(stack: SynthResult) -> None:
    for region in regions(stack):
        acl = one(stack.of_type("aws:wafv2/webAcl:WebAcl", region))
        rules = {rule["name"]: rule for rule in acl["inputs"]["rules"]}
        for group in ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"):
            statement = rules[group]["statement"]["managedRuleGroupStatement"]
            assert (statement["vendorName"], statement["name"]) == ("AWS", group)
        rate = rules["requests-per-client-ip"]["statement"]["rateBasedStatement"]
        assert rate["aggregateKeyType"] == "IP"
        assert rate["limit"] == stack.config.waf_requests_per_ip_per_5_minutes
        size = rules["body-size-limit"]["statement"]["sizeConstraintStatement"]
        assert size["comparisonOperator"] == "GT"
        assert size["fieldToMatch"]["body"]["oversizeHandling"] == "MATCH"
        for rule in rules.values():
            assert rule["visibilityConfig"]["cloudwatchMetricsEnabled"] is True
        assert acl["inputs"]["scope"] == "REGIONAL"
        association = one(stack.of_type("aws:wafv2/webAclAssociation:WebAclAssociation", region))
        acl_arn = region_output(stack, region)[RegionOutput.WEB_ACL_ARN]
        assert acl_arn.startswith(f"arn:aws:wafv2:{region}:{ACCOUNT}:regional/webacl/")
        assert association["inputs"]["webAclArn"] == acl_arn
        assert association["inputs"]["resourceArn"] == (
            f"arn:aws:apigateway:{region}::/restapis/{api_id(stack, region)}"
            f"/stages/{contract.API_STAGE}"
        )


def test_waf_logs_encrypted_without_the_authorization_header(stack: SynthResult) -> None:
    for region in regions(stack):
        logging_config = one(
            stack.of_type("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration", region)
        )["inputs"]
        assert logging_config["redactedFields"] == [{"singleHeader": {"name": "authorization"}}]
        (destination,) = logging_config["logDestinationConfigs"]
        group_name = destination.split(":log-group:")[1]
        assert group_name.startswith("aws-waf-logs-")
        group = by_name(stack, "aws:cloudwatch/logGroup:LogGroup", region, group_name)
        assert group["inputs"]["kmsKeyId"] == log_key_arn(stack, region)
        assert "waf-blocked-requests" in region_output(stack, region)[RegionOutput.ALARM_ARNS]
