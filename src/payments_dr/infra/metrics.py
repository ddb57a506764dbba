"""The CloudWatch metrics the alarms watch, named once: where each is published and the
dimensions that select it. The DR dashboard graphs the very same ones."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from payments_dr import contract

# Route 53 publishes health-check metrics only here, whatever the stack's regions.
ROUTE53_METRICS_REGION = "us-east-1"

DYNAMODB_NAMESPACE = "AWS/DynamoDB"
SQS_NAMESPACE = "AWS/SQS"
API_GATEWAY_NAMESPACE = "AWS/ApiGateway"
S3_NAMESPACE = "AWS/S3"
LAMBDA_NAMESPACE = "AWS/Lambda"
ROUTE53_NAMESPACE = "AWS/Route53"
SYNTHETICS_NAMESPACE = "CloudWatchSynthetics"  # published in the canary's own region
CANARY_SUCCESS = "SuccessPercent"  # of the runs in the period
REPLICATION_LATENCY = "ReplicationLatency"  # milliseconds in DynamoDB, seconds in S3
MESSAGES_VISIBLE = "ApproximateNumberOfMessagesVisible"
OLDEST_MESSAGE_AGE = "ApproximateAgeOfOldestMessage"
API_5XX = "5XXError"
S3_OPERATIONS_FAILED = "OperationsFailedReplication"
ITERATOR_AGE = "IteratorAge"  # milliseconds
FUNCTION_ALARM_METRICS = ("Errors", "Throttles")
HEALTH_CHECK_STATUS = "HealthCheckStatus"
# Published for every table, whatever its consistency mode, per operation.
SYSTEM_ERRORS = "SystemErrors"
REQUEST_LATENCY = "SuccessfulRequestLatency"  # milliseconds
WRITE_OPERATION = "PutItem"  # the service's one write

# A dimension value: a plain string for the dashboard, any Pulumi input for an alarm.
V = TypeVar("V")


@dataclass(frozen=True)
class Metric(Generic[V]):
    """One CloudWatch metric: where it is published and the dimensions that select it."""

    namespace: str
    name: str
    dimensions: Mapping[str, V]


def table_replication_latency(table_name: V, receiving_region: V) -> Metric[V]:
    """Emitted in the region the writes come from, per receiving region."""
    return Metric(
        DYNAMODB_NAMESPACE,
        REPLICATION_LATENCY,
        {"TableName": table_name, "ReceivingRegion": receiving_region},
    )


def table_operation_metric(name: str, table_name: V, operation: V) -> Metric[V]:
    """A table metric of one operation (the service writes with PutItem), where it is called.

    Under multi-Region strong consistency a write returns once another region of the set
    has it, so replication trouble shows here, as failed or slow writes.
    """
    return Metric(DYNAMODB_NAMESPACE, name, {"TableName": table_name, "Operation": operation})


def queue_metric(name: str, queue_name: V) -> Metric[V]:
    return Metric(SQS_NAMESPACE, name, {"QueueName": queue_name})


def api_metric(name: str, api_name: V, stage: V) -> Metric[V]:
    return Metric(API_GATEWAY_NAMESPACE, name, {"ApiName": api_name, "Stage": stage})


def function_metric(name: str, function_name: V) -> Metric[V]:
    return Metric(LAMBDA_NAMESPACE, name, {"FunctionName": function_name})


def log_replication_metric(
    name: str, source_bucket: V, destination_bucket: V, rule_id: V
) -> Metric[V]:
    """S3 replication metrics of one rule, emitted in the source bucket's region."""
    return Metric(
        S3_NAMESPACE,
        name,
        {"SourceBucket": source_bucket, "DestinationBucket": destination_bucket, "RuleId": rule_id},
    )


def health_check_status(health_check_id: V) -> Metric[V]:
    """Published only in ROUTE53_METRICS_REGION."""
    return Metric(ROUTE53_NAMESPACE, HEALTH_CHECK_STATUS, {"HealthCheckId": health_check_id})


def service_metric(name: str, service: V) -> Metric[V]:
    """A metric a function publishes itself (Powertools, in its region); `service` is its
    `contract.service_name`."""
    return Metric(contract.SERVICE_METRICS_NAMESPACE, name, {"service": service})


def canary_success(canary_name: V) -> Metric[V]:
    """Per canary, in the region it runs in (the watching region, not the probed one)."""
    return Metric(SYNTHETICS_NAMESPACE, CANARY_SUCCESS, {"CanaryName": canary_name})
