"""Monitoring layer of one region: an encrypted SNS topic and the alarms that notify it.

Every alarm lives in the region of its metric. DynamoDB emits `ReplicationLatency` in the
region a write came *from*, so each region alarms on replication towards its peer; Route 53
health-check metrics exist only in us-east-1, so their alarms are created there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import pulumi
import pulumi_aws as aws

from payments_dr import contract
from payments_dr.contract import Function
from payments_dr.infra import iam

ALARM_PERIOD_SECONDS = 60
ROUTE53_METRICS_REGION = "us-east-1"
RETRY_QUEUE_MAX_AGE_SECONDS = 300  # a retry older than this means the worker is not draining
API_5XX_PER_MINUTE = 5
# The archiver retries a failing batch until its records leave the stream (24 h); long before
# that, a growing backlog means the transaction log is falling behind the table.
ARCHIVE_MAX_LAG_SECONDS = 15 * 60


class AlarmPurpose(StrEnum):
    """Keys of a region's `alarm_arns` output."""

    REPLICATION_LATENCY = "replication-latency"
    DLQ_NOT_EMPTY = "dlq-not-empty"
    RETRY_QUEUE_AGE = "retry-queue-age"
    API_5XX = "api-5xx"
    S3_REPLICATION_FAILED = "s3-replication-failed"
    ARCHIVE_LAG = "archive-lag"
    ARCHIVE_FAILURES_NOT_EMPTY = "archive-failures-not-empty"
    HEALTH_CHECK = "health-check"
    WAF_BLOCKED = "waf-blocked-requests"  # created with the region's web ACL


def alarm_name(stack: str, region: str, purpose: str) -> str:
    return f"{contract.PROJECT}-{stack}-{region}-{purpose}"


def function_alarm_key(function: Function, metric: str) -> str:
    return f"{function.value}-{metric.lower()}"


@dataclass(frozen=True)
class MonitoringArgs:
    stack: str
    region: str
    peer_region: str
    account_id: str
    key_arn: pulumi.Input[str]
    table_name: pulumi.Input[str]
    replication_lag_alarm_seconds: int
    dlq_name: pulumi.Input[str]
    retry_queue_name: pulumi.Input[str]
    archive_failures_queue_name: pulumi.Input[str]
    function_names: Mapping[Function, str]
    api_name: pulumi.Input[str]
    api_stage: str
    source_bucket: str
    destination_bucket: str
    replication_rule_id: str
    alarm_email: str | None
    # Route 53 health checks to alarm on; only honoured in us-east-1, where their metrics are.
    health_check_ids: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


class Monitoring(pulumi.ComponentResource):
    """Alarm topic and alarms for one region."""

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("payments-dr:infra:Monitoring", name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        region = args.region

        self.topic = aws.sns.Topic(
            f"{name}-alarms",
            region=region,
            name=f"{contract.PROJECT}-{args.stack}-alarms",
            kms_master_key_id=args.key_arn,
            tags=dict(args.tags),
            opts=self._child,
        )
        aws.sns.TopicPolicy(
            f"{name}-alarms-policy",
            region=region,
            arn=self.topic.arn,
            policy=self.topic.arn.apply(
                lambda arn: json.dumps(iam.alarm_topic_policy(arn, args.account_id))
            ),
            opts=self._child,
        )
        if args.alarm_email:
            aws.sns.TopicSubscription(
                f"{name}-alarms-email",
                region=region,
                topic=self.topic.arn,
                protocol="email",
                endpoint=args.alarm_email,
                opts=self._child,
            )

        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        self._alarm(
            AlarmPurpose.REPLICATION_LATENCY,
            f"Table replication from {region} to {args.peer_region} lags more than "
            f"{args.replication_lag_alarm_seconds} s: the RPO budget is at risk",
            namespace="AWS/DynamoDB",
            metric_name="ReplicationLatency",
            dimensions={"TableName": args.table_name, "ReceivingRegion": args.peer_region},
            statistic="Maximum",
            threshold=args.replication_lag_alarm_seconds * 1000,  # the metric is in ms
            evaluation_periods=2,
        )
        self._alarm(
            AlarmPurpose.DLQ_NOT_EMPTY,
            "Payments gave up retrying: inspect and replay the dead-letter queue",
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": args.dlq_name},
            statistic="Maximum",
            threshold=0,
        )
        self._alarm(
            AlarmPurpose.RETRY_QUEUE_AGE,
            "Queued payments are not being applied: check the retry worker",
            namespace="AWS/SQS",
            metric_name="ApproximateAgeOfOldestMessage",
            dimensions={"QueueName": args.retry_queue_name},
            statistic="Maximum",
            threshold=RETRY_QUEUE_MAX_AGE_SECONDS,
        )
        self._alarm(
            AlarmPurpose.API_5XX,
            "The payment API answers with server errors",
            namespace="AWS/ApiGateway",
            metric_name="5XXError",
            dimensions={"ApiName": args.api_name, "Stage": args.api_stage},
            statistic="Sum",
            threshold=API_5XX_PER_MINUTE,
            evaluation_periods=2,
        )
        self._alarm(
            AlarmPurpose.S3_REPLICATION_FAILED,
            f"Transaction-log objects failed to replicate to {args.peer_region}",
            namespace="AWS/S3",
            metric_name="OperationsFailedReplication",
            dimensions={
                "SourceBucket": args.source_bucket,
                "DestinationBucket": args.destination_bucket,
                "RuleId": args.replication_rule_id,
            },
            statistic="Sum",
            threshold=0,
        )
        self._alarm(
            AlarmPurpose.ARCHIVE_LAG,
            f"The transaction log in {region} is more than {ARCHIVE_MAX_LAG_SECONDS // 60} min"
            " behind the table stream: check the log archiver",
            namespace="AWS/Lambda",
            metric_name="IteratorAge",
            dimensions={"FunctionName": args.function_names[Function.LOG_ARCHIVER]},
            statistic="Maximum",
            threshold=ARCHIVE_MAX_LAG_SECONDS * 1000,  # the metric is in ms
            evaluation_periods=2,
        )
        self._alarm(
            AlarmPurpose.ARCHIVE_FAILURES_NOT_EMPTY,
            f"The log archiver in {region} dropped stream records: the transaction log has a"
            " hole; rebuild the recorded range (runbook: transaction-log restore)",
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": args.archive_failures_queue_name},
            statistic="Maximum",
            threshold=0,
        )
        for function, function_name in args.function_names.items():
            for metric in ("Errors", "Throttles"):
                self._alarm(
                    function_alarm_key(function, metric),
                    f"{function_name} reports {metric.lower()}",
                    namespace="AWS/Lambda",
                    metric_name=metric,
                    dimensions={"FunctionName": function_name},
                    statistic="Sum",
                    threshold=0,
                )
        if region == ROUTE53_METRICS_REGION:
            for checked_region, health_check_id in args.health_check_ids.items():
                self._alarm(
                    f"{AlarmPurpose.HEALTH_CHECK.value}-{checked_region}",
                    f"Route 53 reports {checked_region} unhealthy: traffic fails over",
                    namespace="AWS/Route53",
                    metric_name="HealthCheckStatus",
                    dimensions={"HealthCheckId": health_check_id},
                    statistic="Minimum",
                    threshold=1,
                    comparison="LessThanThreshold",
                )

        self.alarm_arns = {key: alarm.arn for key, alarm in self.alarms.items()}
        self.register_outputs({"topic_arn": self.topic.arn, "alarm_arns": self.alarm_arns})

    def _alarm(
        self,
        key: str,
        description: str,
        *,
        namespace: str,
        metric_name: str,
        dimensions: Mapping[str, pulumi.Input[str]],
        statistic: str,
        threshold: float,
        evaluation_periods: int = 1,
        comparison: str = "GreaterThanThreshold",
    ) -> None:
        args = self._args
        self.alarms[key] = aws.cloudwatch.MetricAlarm(
            f"{self._name}-{key}",
            region=args.region,
            name=alarm_name(args.stack, args.region, key),
            alarm_description=description,
            namespace=namespace,
            metric_name=metric_name,
            dimensions=dict(dimensions),
            statistic=statistic,
            period=ALARM_PERIOD_SECONDS,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=evaluation_periods,
            threshold=threshold,
            comparison_operator=comparison,
            # No data means no traffic (or no writes to replicate), not a fault.
            treat_missing_data="notBreaching",
            alarm_actions=[self.topic.arn],
            ok_actions=[self.topic.arn],
            tags=dict(args.tags),
            opts=self._child,
        )
