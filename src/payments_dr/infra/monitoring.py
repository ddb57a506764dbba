"""Monitoring layer of one region: an encrypted SNS topic and the alarms that notify it.

Every alarm lives in the region of its metric. DynamoDB emits `ReplicationLatency` in the
region a write came *from*, so each region alarms on replication towards its peer; Route 53
health-check metrics exist only in us-east-1, so their alarms are created there: by that
region's `Monitoring` when us-east-1 is a stack region, else by `HealthCheckAlarms`, which
brings its own key and topic to us-east-1.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import pulumi
import pulumi_aws as aws

from payments_dr import contract
from payments_dr.contract import ConsistencyMode, Function
from payments_dr.infra import resource_policies
from payments_dr.infra.alarms import (
    AlarmFactory,
    alarm_name,
    alarm_topic,
    alarm_topic_name,
)
from payments_dr.infra.data import KEY_DELETION_WINDOW_DAYS
from payments_dr.infra.metrics import (
    API_5XX,
    FUNCTION_ALARM_METRICS,
    ITERATOR_AGE,
    MESSAGES_VISIBLE,
    OLDEST_MESSAGE_AGE,
    REQUEST_LATENCY,
    S3_OPERATIONS_FAILED,
    SYSTEM_ERRORS,
    WRITE_OPERATION,
    api_metric,
    function_metric,
    health_check_status,
    log_replication_metric,
    queue_metric,
    table_operation_metric,
    table_replication_latency,
)

ROUTE53_METRICS_REGION = "us-east-1"
RETRY_QUEUE_MAX_AGE_SECONDS = 300  # a retry older than this means the worker is not draining
API_5XX_PER_MINUTE = 5
# The archiver retries a failing batch until its records leave the stream (24 h); long before
# that, a growing backlog means the transaction log is falling behind the table.
ARCHIVE_MAX_LAG_SECONDS = 15 * 60
# A strongly consistent write waits for one more region of the set: a round trip of tens of
# ms in the US set. Half a second at p99 for three minutes means the quorum is in trouble.
STRONG_WRITE_P99_MS = 500
STRONG_WRITE_LATENCY_STATISTIC = "p99"


class AlarmPurpose(StrEnum):
    """Keys of a region's `alarm_arns` output."""

    REPLICATION_LATENCY = "replication-latency"  # eventual consistency
    REPLICATED_WRITE_ERRORS = "replicated-write-errors"  # strong consistency
    REPLICATED_WRITE_LATENCY = "replicated-write-latency"  # strong consistency
    DLQ_NOT_EMPTY = "dlq-not-empty"
    RETRY_QUEUE_AGE = "retry-queue-age"
    API_5XX = "api-5xx"
    S3_REPLICATION_FAILED = "s3-replication-failed"
    ARCHIVE_LAG = "archive-lag"
    ARCHIVE_FAILURES_NOT_EMPTY = "archive-failures-not-empty"
    HEALTH_CHECK = "health-check"
    WAF_BLOCKED = "waf-blocked-requests"  # created with the region's web ACL


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
    consistency_mode: ConsistencyMode
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
        self.args = args
        self._child = pulumi.ResourceOptions(parent=self)
        region = args.region

        self.topic = alarm_topic(
            name,
            region=region,
            stack=args.stack,
            account_id=args.account_id,
            key_arn=args.key_arn,
            alarm_email=args.alarm_email,
            tags=args.tags,
            opts=self._child,
        )
        self._factory = AlarmFactory(
            name, region, args.stack, self.topic.arn, dict(args.tags), self._child
        )
        self.alarms = self._factory.alarms
        self._replication_alarms(args)
        self._factory.alarm(
            AlarmPurpose.DLQ_NOT_EMPTY,
            "Payments gave up retrying: inspect and replay the dead-letter queue",
            queue_metric(MESSAGES_VISIBLE, args.dlq_name),
            statistic="Maximum",
            threshold=0,
        )
        self._factory.alarm(
            AlarmPurpose.RETRY_QUEUE_AGE,
            "Queued payments are not being applied: check the retry worker",
            queue_metric(OLDEST_MESSAGE_AGE, args.retry_queue_name),
            statistic="Maximum",
            threshold=RETRY_QUEUE_MAX_AGE_SECONDS,
        )
        self._factory.alarm(
            AlarmPurpose.API_5XX,
            "The payment API answers with server errors",
            api_metric(API_5XX, args.api_name, args.api_stage),
            statistic="Sum",
            threshold=API_5XX_PER_MINUTE,
            evaluation_periods=2,
        )
        self._factory.alarm(
            AlarmPurpose.S3_REPLICATION_FAILED,
            f"Transaction-log objects failed to replicate to {args.peer_region}",
            log_replication_metric(
                S3_OPERATIONS_FAILED,
                args.source_bucket,
                args.destination_bucket,
                args.replication_rule_id,
            ),
            statistic="Sum",
            threshold=0,
        )
        self._factory.alarm(
            AlarmPurpose.ARCHIVE_LAG,
            f"The transaction log in {region} is more than {ARCHIVE_MAX_LAG_SECONDS // 60} min"
            " behind the table stream: check the log archiver",
            function_metric(ITERATOR_AGE, args.function_names[Function.LOG_ARCHIVER]),
            statistic="Maximum",
            threshold=ARCHIVE_MAX_LAG_SECONDS * 1000,  # the metric is in ms
            evaluation_periods=2,
        )
        self._factory.alarm(
            AlarmPurpose.ARCHIVE_FAILURES_NOT_EMPTY,
            f"The log archiver in {region} dropped stream records: the transaction log has a"
            " hole; rebuild the recorded range (runbook: transaction-log restore)",
            queue_metric(MESSAGES_VISIBLE, args.archive_failures_queue_name),
            statistic="Maximum",
            threshold=0,
        )
        for function, function_name in args.function_names.items():
            for metric in FUNCTION_ALARM_METRICS:
                self._factory.alarm(
                    function_alarm_key(function, metric),
                    f"{function_name} reports {metric.lower()}",
                    function_metric(metric, function_name),
                    statistic="Sum",
                    threshold=0,
                )
        if region == ROUTE53_METRICS_REGION:
            _health_check_alarms(self._factory, args.health_check_ids)

        self.alarm_arns = {key: alarm.arn for key, alarm in self.alarms.items()}
        self.register_outputs({"topic_arn": self.topic.arn, "alarm_arns": self.alarm_arns})

    def _replication_alarms(self, args: MonitoringArgs) -> None:
        """Eventual: the lag towards the peer. Strong: a write returns only once another
        region has it, so no lag builds up to alarm on (AWS documents `ReplicationLatency`
        for asynchronous propagation only); trouble shows as failed or slow writes."""
        region, peer = args.region, args.peer_region
        if args.consistency_mode is ConsistencyMode.EVENTUAL:
            self._factory.alarm(
                AlarmPurpose.REPLICATION_LATENCY,
                f"Table replication from {region} to {peer} lags more than "
                f"{args.replication_lag_alarm_seconds} s: the RPO budget is at risk",
                table_replication_latency(args.table_name, peer),
                statistic="Maximum",
                threshold=args.replication_lag_alarm_seconds * 1000,  # the metric is in ms
                evaluation_periods=2,
            )
            return
        self._factory.alarm(
            AlarmPurpose.REPLICATED_WRITE_ERRORS,
            f"Strongly consistent writes fail in {region}: the region cannot reach its"
            " quorum; check the replica, the witness and the failover",
            table_operation_metric(SYSTEM_ERRORS, args.table_name, WRITE_OPERATION),
            statistic="Sum",
            threshold=0,
            evaluation_periods=2,
        )
        self._factory.alarm(
            AlarmPurpose.REPLICATED_WRITE_LATENCY,
            f"Strongly consistent writes in {region} take more than"
            f" {STRONG_WRITE_P99_MS} ms (p99): the quorum across regions is struggling",
            table_operation_metric(REQUEST_LATENCY, args.table_name, WRITE_OPERATION),
            statistic=STRONG_WRITE_LATENCY_STATISTIC,
            threshold=STRONG_WRITE_P99_MS,
            evaluation_periods=3,
        )


@dataclass(frozen=True)
class HealthCheckAlarmsArgs:
    stack: str
    account_id: str
    health_check_ids: Mapping[str, pulumi.Input[str]]  # by checked region
    alarm_email: str | None
    tags: Mapping[str, str] = field(default_factory=dict)


class HealthCheckAlarms(pulumi.ComponentResource):
    """The Route 53 health-check alarms of a stack that has no region in us-east-1.

    Route 53 publishes health-check metrics only in us-east-1, so their alarms must live there
    even when the stack deploys nothing else there. They get a key and a topic of their own:
    the stack's multi-Region key has no replica in us-east-1, and a topic must be in the
    alarms' region.
    """

    def __init__(
        self, name: str, args: HealthCheckAlarmsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("payments-dr:infra:HealthCheckAlarms", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        region = ROUTE53_METRICS_REGION
        topic_arn = f"arn:aws:sns:{region}:{args.account_id}:{alarm_topic_name(args.stack)}"
        alarm_arns = (
            f"arn:aws:cloudwatch:{region}:{args.account_id}:alarm:"
            f"{alarm_name(args.stack, region, AlarmPurpose.HEALTH_CHECK.value)}-*"
        )
        self.key = aws.kms.Key(
            f"{name}-key",
            region=region,
            description=f"{contract.PROJECT} {args.stack}: health-check alarm topic",
            enable_key_rotation=True,
            deletion_window_in_days=KEY_DELETION_WINDOW_DAYS,
            policy=json.dumps(
                resource_policies.alarm_topic_key_policy(args.account_id, alarm_arns, topic_arn)
            ),
            tags=dict(args.tags),
            opts=child,
        )
        aws.kms.Alias(
            f"{name}-key-alias",
            region=region,
            name=f"alias/{contract.PROJECT}-{args.stack}-health-check-alarms",
            target_key_id=self.key.key_id,
            opts=child,
        )
        self.topic = alarm_topic(
            name,
            region=region,
            stack=args.stack,
            account_id=args.account_id,
            key_arn=self.key.arn,
            alarm_email=args.alarm_email,
            tags=args.tags,
            opts=child,
        )
        factory = AlarmFactory(name, region, args.stack, self.topic.arn, dict(args.tags), child)
        _health_check_alarms(factory, args.health_check_ids)
        self.alarms = factory.alarms
        self.alarm_arns = {key: alarm.arn for key, alarm in self.alarms.items()}
        self.register_outputs(
            {"key_arn": self.key.arn, "topic_arn": self.topic.arn, "alarm_arns": self.alarm_arns}
        )


def _health_check_alarms(
    factory: AlarmFactory, health_check_ids: Mapping[str, pulumi.Input[str]]
) -> None:
    """One alarm per checked region, firing when Route 53 sees that region unhealthy."""
    for checked_region, health_check_id in health_check_ids.items():
        factory.alarm(
            health_check_alarm_key(checked_region),
            f"Route 53 reports {checked_region} unhealthy: traffic fails over",
            health_check_status(health_check_id),
            statistic="Minimum",
            threshold=1,
            comparison="LessThanThreshold",
        )


def health_check_alarm_key(checked_region: str) -> str:
    return f"{AlarmPurpose.HEALTH_CHECK.value}-{checked_region}"
