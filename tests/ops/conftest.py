"""A deployed stack in moto, its outputs file, and a scripted Route 53 (botocore Stubber).

moto holds SSM, SQS, DynamoDB and CloudWatch for both regions. Route 53 health-check status
and TestDNSAnswer are not evaluated by moto, so tests script them with a Stubber.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber
from moto import mock_aws

from payments_dr import contract
from payments_dr.contract import Mode, Param, RegionOutput, RegionRole, StackOutput
from payments_dr.lab.aws import put_switch_alarm
from payments_dr.ops.aws import Aws

STACK = "drtest"
PRIMARY = contract.DEFAULT_PRIMARY_REGION
SECONDARY = contract.DEFAULT_SECONDARY_REGION
ZONE_ID = "Z0123456789ABCDEFGHIJ"
DOMAIN_NAME = "payments.example.com"
API_DOMAIN = f"api.{DOMAIN_NAME}"
ACCOUNT = "123456789012"
CHECKERS = 8  # observations a stubbed GetHealthCheckStatus returns
TARGETS = {
    PRIMARY: "d-prim000001.execute-api.us-east-1.amazonaws.com",
    SECONDARY: "d-seco000002.execute-api.us-east-2.amazonaws.com",
}
# Addresses each region's API Gateway domain resolves to, for the injected resolver.
ADDRESSES = {PRIMARY: ["198.51.100.10", "198.51.100.11"], SECONDARY: ["203.0.113.20"]}
ALARM_PURPOSES = ("replication-latency", "dlq-not-empty", "api-5xx")

# One session for every test: it caches the service models, which makes clients cheap to
# create (moto resets boto3's default session on every start).
SESSION = boto3.session.Session()


def resolve(host: str) -> set[str]:
    region = next((name for name, target in TARGETS.items() if target == host), None)
    return set(ADDRESSES[region]) if region else set()


def health_check_id(region: str) -> str:
    return f"hc-{region}"


def alarm_name(region: str, purpose: str) -> str:
    return f"{contract.PROJECT}-{STACK}-{region}-{purpose}"


def put_alarm(aws: Aws, region: str, purpose: str, state: str) -> str:
    """An alarm named as the stack names it, in `state`; its ARN. Its metric is irrelevant:
    the operations commands read only alarm states."""
    name = alarm_name(region, purpose)
    cloudwatch = aws.client("cloudwatch", region)
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/DynamoDB",
        MetricName="ReplicationLatency",
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=30000,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")
    return f"arn:aws:cloudwatch:{region}:{ACCOUNT}:alarm:{name}"


class FakeClock:
    """Monotonic clock whose sleep only advances time (and runs what time would bring)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.on_sleep: list[Callable[[], None]] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        for happen in self.on_sleep:
            happen()


def switch_output(aws: Aws, region: str) -> dict[str, Any]:
    """The switch of `region`, as infra/switch.py declares it: an alarm in the peer region."""
    peer = SECONDARY if region == PRIMARY else PRIMARY
    name = contract.switch_alarm_name(STACK, region)
    put_switch_alarm(aws.client("cloudwatch", peer), STACK, region)
    return {
        "kind": "alarm",
        "health_check_id": f"hc-switch-{region}",
        "region": peer,
        "alarm_name": name,
        "namespace": contract.SWITCH_NAMESPACE,
        "metric_name": contract.SWITCH_METRIC,
        "dimensions": contract.switch_dimensions(STACK, region),
    }


def evaluate_switch_alarms(aws: Aws) -> None:
    """What CloudWatch does and moto does not: each switch alarm follows its latest datapoint
    (and, with missing data ignored, keeps its state without one)."""
    for region in (PRIMARY, SECONDARY):
        peer = SECONDARY if region == PRIMARY else PRIMARY
        cloudwatch = aws.client("cloudwatch", peer)
        dimensions = contract.switch_dimensions(STACK, region)
        try:
            points = cloudwatch.get_metric_statistics(
                Namespace=contract.SWITCH_NAMESPACE,
                MetricName=contract.SWITCH_METRIC,
                Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
                # Simulated clocks move datapoints ahead of the wall clock.
                StartTime=datetime.now(UTC) - timedelta(hours=1),
                EndTime=datetime.now(UTC) + timedelta(hours=3),
                Period=60,
                Statistics=["Maximum"],
            )["Datapoints"]
        except EndpointConnectionError:
            continue  # CloudWatch down in that region evaluates nothing
        if points:
            latest = max(points, key=lambda point: point["Timestamp"])
            state = "ALARM" if latest["Maximum"] >= 1 else "OK"
            cloudwatch.set_alarm_state(
                AlarmName=contract.switch_alarm_name(STACK, region),
                StateValue=state,
                StateReason="test: evaluated",
            )


@dataclass
class Route53Script:
    """Scripts the Route 53 answers a command will read, in the order it reads them."""

    stubber: Stubber
    outputs: dict[str, Any] = field(default_factory=dict)

    def health(self, region: str, healthy: int, total: int = CHECKERS) -> None:
        observations = [
            {
                "Region": "us-east-1",
                "IPAddress": f"192.0.2.{index}",
                "StatusReport": {
                    "Status": "Success: HTTP Status Code 200, OK"
                    if index < healthy
                    else "Failure: HTTP Status Code 503, Service Unavailable",
                    "CheckedTime": datetime(2026, 1, 1, tzinfo=UTC),
                },
            }
            for index in range(total)
        ]
        self.stubber.add_response(
            "get_health_check_status",
            {"HealthCheckObservations": observations},
            {"HealthCheckId": health_check_id(region)},
        )

    def dns(self, region: str | None) -> None:
        records = ADDRESSES[region][:1] if region else ["192.0.2.250"]
        self.stubber.add_response(
            "test_dns_answer",
            {
                "Nameserver": "ns-1.awsdns-01.org",
                "RecordName": API_DOMAIN,
                "RecordType": "A",
                "RecordData": records,
                "ResponseCode": "NOERROR",
                "Protocol": "UDP",
            },
            {"HostedZoneId": ZONE_ID, "RecordName": API_DOMAIN, "RecordType": "A"},
        )

    def poll(self, primary_healthy: bool, secondary_healthy: bool, answer: str | None) -> None:
        """One observation: both health checks, then the DNS answer."""
        self.health(PRIMARY, CHECKERS if primary_healthy else 0)
        self.health(SECONDARY, CHECKERS if secondary_healthy else 0)
        self.dns(answer)


@dataclass
class Deployed:
    """The moto-backed stack: its outputs file, clients and the Route 53 script."""

    outputs_file: Path
    outputs: dict[str, Any]
    aws: Aws
    route53: Route53Script

    def mode(self, region: str) -> str:
        name = contract.ssm_parameter_name(STACK, region, Param.MODE)
        return str(self.aws.client("ssm", region).get_parameter(Name=name)["Parameter"]["Value"])

    def set_mode(self, region: str, mode: Mode) -> None:
        name = contract.ssm_parameter_name(STACK, region, Param.MODE)
        self.aws.client("ssm", region).put_parameter(
            Name=name, Value=mode.value, Type="String", Overwrite=True
        )

    def replication_latency(self, source: str, receiving: str, milliseconds: float) -> None:
        self.aws.client("cloudwatch", source).put_metric_data(
            Namespace="AWS/DynamoDB",
            MetricData=[
                {
                    "MetricName": "ReplicationLatency",
                    "Dimensions": [
                        {"Name": "TableName", "Value": contract.table_name(STACK)},
                        {"Name": "ReceivingRegion", "Value": receiving},
                    ],
                    # CloudWatch serves a minute once it is over.
                    "Timestamp": datetime.now(UTC) - timedelta(minutes=1),
                    "Value": milliseconds,
                    "Unit": "Milliseconds",
                }
            ],
        )

    def dead_letters(self, region: str, count: int) -> None:
        sqs = self.aws.client("sqs", region)
        url = self.outputs[StackOutput.REGIONS][region][RegionOutput.DLQ_URL]
        for index in range(count):
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": index}))

    def switch_state(self, region: str) -> str:
        """The switch alarm's state after CloudWatch evaluated it."""
        evaluate_switch_alarms(self.aws)
        switch = self.outputs[StackOutput.REGIONS][region][RegionOutput.SWITCH]
        alarms = self.aws.client("cloudwatch", switch["region"]).describe_alarms(
            AlarmNames=[switch["alarm_name"]]
        )["MetricAlarms"]
        return str(alarms[0]["StateValue"])

    def assert_stubs_used(self) -> None:
        self.route53.stubber.assert_no_pending_responses()


def _deploy_region(aws: Aws, region: str, role: RegionRole) -> dict[str, Any]:
    ssm = aws.client("ssm", region)
    sqs = aws.client("sqs", region)
    dynamodb = aws.client("dynamodb", region)
    dlq_url = sqs.create_queue(QueueName=contract.dlq_name(STACK))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": contract.RETRY_MAX_RECEIVE_COUNT}
    retry_url = sqs.create_queue(
        QueueName=contract.retry_queue_name(STACK),
        Attributes={"RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    dynamodb.create_table(**contract.table_definition(contract.table_name(STACK)))
    ssm.put_parameter(
        Name=contract.ssm_parameter_name(STACK, region, Param.MODE),
        Value=Mode.ACTIVE.value,
        Type="String",
    )
    usage_plan_id = aws.client("apigateway", region).create_usage_plan(
        name=contract.usage_plan_name(STACK), throttle={"rateLimit": 20.0, "burstLimit": 40}
    )["id"]
    alarm_arns = {purpose: put_alarm(aws, region, purpose, "OK") for purpose in ALARM_PURPOSES}
    regional_url = f"https://{contract.regional_api_domain(DOMAIN_NAME, region)}"
    return {
        RegionOutput.ROLE: role.value,
        RegionOutput.API_ENDPOINT: regional_url,
        RegionOutput.CUSTOM_DOMAIN_URL: f"https://{API_DOMAIN}",
        RegionOutput.CUSTOM_DOMAIN_TARGET: TARGETS[region],
        RegionOutput.HEALTH_CHECK_ID: health_check_id(region),
        RegionOutput.HEALTH_CHECK_URL: f"{regional_url}{contract.HEALTH_PATH}",
        RegionOutput.ALARM_ARNS: alarm_arns,
        RegionOutput.ALARM_TOPIC_ARN: f"arn:aws:sns:{region}:{ACCOUNT}:alarms",
        RegionOutput.LOG_BUCKET: contract.log_bucket_name(STACK, region, ACCOUNT),
        RegionOutput.SSM_PATH: contract.ssm_path(STACK, region),
        RegionOutput.RETRY_QUEUE_URL: retry_url,
        RegionOutput.DLQ_URL: dlq_url,
        RegionOutput.FUNCTION_NAMES: {
            function.value: contract.function_name(STACK, function)
            for function in contract.Function
        },
        RegionOutput.USAGE_PLAN_ID: usage_plan_id,
        RegionOutput.WEB_ACL_ARN: (
            f"arn:aws:wafv2:{region}:{ACCOUNT}:regional/webacl/{contract.PROJECT}-{STACK}/w1"
        ),
        RegionOutput.RECORD_HEALTH_CHECK_ID: f"hc-record-{region}",
        RegionOutput.SWITCH: switch_output(aws, region),
    }


def stack_outputs(regions: dict[str, Any]) -> dict[str, Any]:
    return {
        StackOutput.PRIMARY_API_ENDPOINT: regions[PRIMARY][RegionOutput.API_ENDPOINT],
        StackOutput.SECONDARY_API_ENDPOINT: regions[SECONDARY][RegionOutput.API_ENDPOINT],
        StackOutput.FAILOVER_URL: f"https://{API_DOMAIN}",
        StackOutput.API_DOMAIN: API_DOMAIN,
        StackOutput.HOSTED_ZONE_ID: ZONE_ID,
        StackOutput.NAME_SERVERS: [],
        StackOutput.TABLE_NAME: contract.table_name(STACK),
        StackOutput.DR_BUDGET: {
            contract.DrBudgetField.RTO_TARGET_SECONDS: 900,
            contract.DrBudgetField.RPO_TARGET_SECONDS: 300,
            contract.DrBudgetField.RTO_BUDGET_SECONDS: 120,
            contract.DrBudgetField.RPO_BUDGET_SECONDS: 30,
        },
        StackOutput.REGIONS: regions,
        StackOutput.FAILOVER_CONTROL: {"kind": "alarm"},
    }


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": PRIMARY,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def deployed(aws_credentials: None, tmp_path: Path) -> Iterator[Deployed]:
    with mock_aws():
        route53 = SESSION.client("route53", region_name="us-east-1")
        aws = Aws(SESSION, clients={("route53", "us-east-1"): route53})
        regions = {
            PRIMARY: _deploy_region(aws, PRIMARY, RegionRole.PRIMARY),
            SECONDARY: _deploy_region(aws, SECONDARY, RegionRole.SECONDARY),
        }
        outputs = stack_outputs(regions)
        outputs_file = tmp_path / "outputs.json"
        outputs_file.write_text(json.dumps(outputs))
        with Stubber(route53) as stubber:
            yield Deployed(outputs_file, outputs, aws, Route53Script(stubber))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
