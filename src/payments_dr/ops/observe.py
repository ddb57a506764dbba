"""Read-only observations of a deployed stack: health checks, DNS answer, mode, alarms, lag."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from payments_dr.contract import Mode, Param
from payments_dr.ops.aws import Aws
from payments_dr.ops.outputs import StackOutputs

# Route 53 treats an endpoint as healthy when more than 18% of its checkers report it healthy
# (Route 53 developer guide, "How Amazon Route 53 determines whether a health check is healthy").
ROUTE53_HEALTHY_FRACTION = 0.18

# CloudWatch publishes ReplicationLatency once a minute while writes replicate; a reading
# older than a few minutes says nothing about what is waiting now.
REPLICATION_LOOKBACK = timedelta(minutes=5)
REPLICATION_PERIOD_SECONDS = 60

# host name -> its IPv4 addresses; injectable so tests need no network.
Resolver = Callable[[str], set[str]]


@dataclass(frozen=True)
class HealthCheckState:
    check_id: str
    checkers: int
    reporting_healthy: int

    @property
    def healthy(self) -> bool:
        return self.checkers > 0 and (
            self.reporting_healthy / self.checkers > ROUTE53_HEALTHY_FRACTION
        )

    def describe(self) -> str:
        word = "healthy" if self.healthy else "UNHEALTHY"
        return f"{word} {self.reporting_healthy}/{self.checkers}"


@dataclass(frozen=True)
class DnsAnswer:
    records: tuple[str, ...]
    region: str | None  # None when the records match no region's API Gateway domain

    def describe(self) -> str:
        return self.region or f"unknown ({', '.join(self.records) or 'no records'})"


def health_check_state(aws: Aws, check_id: str) -> HealthCheckState:
    response = aws.route53().get_health_check_status(HealthCheckId=check_id)
    reports = [item["StatusReport"]["Status"] for item in response["HealthCheckObservations"]]
    healthy = sum(1 for status in reports if status.startswith("Success"))
    return HealthCheckState(check_id, len(reports), healthy)


def resolve_ipv4(host: str) -> set[str]:
    try:
        infos = socket.getaddrinfo(host, 443, family=socket.AF_INET, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return set()
    return {str(info[4][0]) for info in infos}


def dns_answer(aws: Aws, outputs: StackOutputs, resolve: Resolver = resolve_ipv4) -> DnsAnswer:
    """Which region Route 53 answers for the API name right now.

    The failover records are aliases, so Route 53 answers with the addresses of the chosen
    region's API Gateway domain; matching them against each domain's own addresses (or its
    name, should an answer carry one) tells the regions apart.
    """
    response = aws.route53().test_dns_answer(
        HostedZoneId=outputs.hosted_zone_id, RecordName=outputs.api_domain, RecordType="A"
    )
    records = tuple(response.get("RecordData", []))
    for name, region in outputs.regions.items():
        target = region.custom_domain_target.rstrip(".")
        if any(record.rstrip(".") == target for record in records):
            return DnsAnswer(records, name)
        if set(records) & resolve(target):
            return DnsAnswer(records, name)
    return DnsAnswer(records, None)


def any_dns_answer(aws: Aws, outputs: StackOutputs, resolve: Resolver = resolve_ipv4) -> DnsAnswer:
    """Route 53's own answer (TestDNSAnswer, control plane in us-east-1) or, when that API
    fails, what public DNS answers here: the resolver's cache may lag one TTL behind."""
    try:
        return dns_answer(aws, outputs, resolve)
    except AWS_ERRORS:
        records = tuple(sorted(resolve(outputs.api_domain)))
    for name, region in outputs.regions.items():
        if set(records) & resolve(region.custom_domain_target.rstrip(".")):
            return DnsAnswer(records, name)
    return DnsAnswer(records, None)


def read_mode(aws: Aws, outputs: StackOutputs, region: str) -> str:
    name = f"{outputs.region(region).ssm_path}/{Param.MODE.value}"
    response = aws.client("ssm", region).get_parameter(Name=name)
    return str(response["Parameter"]["Value"])


def write_mode(aws: Aws, outputs: StackOutputs, region: str, mode: Mode) -> None:
    name = f"{outputs.region(region).ssm_path}/{Param.MODE.value}"
    aws.client("ssm", region).put_parameter(
        Name=name, Value=mode.value, Type="String", Overwrite=True
    )


def alarm_states(aws: Aws, outputs: StackOutputs, region: str) -> dict[str, str]:
    """Alarm purpose -> state (OK, ALARM, INSUFFICIENT_DATA, or MISSING if not found).

    Each alarm is read in the region its ARN names: a stack outside us-east-1 lists its
    Route 53 health-check alarms with the primary's, but they live in us-east-1.
    """
    arns = outputs.region(region).alarm_arns
    names: dict[str, dict[str, str]] = {}  # alarm region -> purpose -> alarm name
    for purpose, arn in arns.items():
        alarm_region = arn.split(":")[3] or region
        names.setdefault(alarm_region, {})[purpose] = arn.split(":alarm:", 1)[-1]
    states: dict[str, str] = {}
    for alarm_region, by_purpose in sorted(names.items()):
        found: dict[str, str] = {}
        paginator = aws.client("cloudwatch", alarm_region).get_paginator("describe_alarms")
        for batch in _chunks(sorted(by_purpose.values()), 100):  # at most 100 names a call
            for page in paginator.paginate(AlarmNames=batch, AlarmTypes=["MetricAlarm"]):
                found.update(
                    {alarm["AlarmName"]: alarm["StateValue"] for alarm in page["MetricAlarms"]}
                )
        states.update({purpose: found.get(name, "MISSING") for purpose, name in by_purpose.items()})
    return states


def replication_latency_ms(
    aws: Aws,
    outputs: StackOutputs,
    source: str,
    receiving: str,
    now: datetime | None = None,
) -> float | None:
    """Latest ReplicationLatency (ms) for writes from `source` to `receiving`.

    None means CloudWatch has no datapoint in the lookback window: no writes needed
    replicating. The metric lives in the source region.
    """
    end = now or datetime.now(UTC)
    datapoints = _latency_datapoints(
        aws, outputs, source, receiving, end - REPLICATION_LOOKBACK, end
    )
    if not datapoints:
        return None
    latest = max(datapoints, key=lambda point: point["Timestamp"])
    return float(latest["Maximum"])


def replication_latency_series(
    aws: Aws, outputs: StackOutputs, source: str, receiving: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Per-minute datapoints (Maximum and Average, ms) in a window, oldest first."""
    points = _latency_datapoints(aws, outputs, source, receiving, start, end)
    return sorted(points, key=lambda point: point["Timestamp"])


def _latency_datapoints(
    aws: Aws, outputs: StackOutputs, source: str, receiving: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    response = aws.client("cloudwatch", source).get_metric_statistics(
        Namespace="AWS/DynamoDB",
        MetricName="ReplicationLatency",
        Dimensions=[
            {"Name": "TableName", "Value": outputs.table_name},
            {"Name": "ReceivingRegion", "Value": receiving},
        ],
        StartTime=start,
        EndTime=end,
        Period=REPLICATION_PERIOD_SECONDS,
        Statistics=["Maximum", "Average"],
        Unit="Milliseconds",
    )
    return list(response["Datapoints"])


def dlq_depth(aws: Aws, outputs: StackOutputs, region: str) -> int:
    response = aws.client("sqs", region).get_queue_attributes(
        QueueUrl=outputs.region(region).dlq_url,
        AttributeNames=["ApproximateNumberOfMessages"],
    )
    return int(response["Attributes"]["ApproximateNumberOfMessages"])


def describe_aws_error(error: Exception) -> str:
    if isinstance(error, ClientError):
        return f"{error.response['Error'].get('Code')}: {error.response['Error'].get('Message')}"
    return str(error)


AWS_ERRORS = (ClientError, BotoCoreError)


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
