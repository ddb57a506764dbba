"""Alarm building blocks: the encrypted topic, the alarm factory, and Route 53's alarms.

Every alarm lives in the region of its metric and notifies a topic in that region. Route 53
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
from payments_dr.contract import Function
from payments_dr.infra import resource_policies
from payments_dr.infra.data import KEY_DELETION_WINDOW_DAYS
from payments_dr.infra.metrics import ROUTE53_METRICS_REGION, Metric, health_check_status

ALARM_PERIOD_SECONDS = 60


class AlarmPurpose(StrEnum):
    """Keys of a region's `alarm_arns` output."""

    REPLICATION_LATENCY = "replication-latency"  # eventual consistency
    REPLICATION_CONFLICTS = "replication-conflicts"  # eventual consistency
    REPLICATED_WRITE_ERRORS = "replicated-write-errors"  # strong consistency
    REPLICATED_WRITE_LATENCY = "replicated-write-latency"  # strong consistency
    DLQ_NOT_EMPTY = "dlq-not-empty"
    RETRY_QUEUE_AGE = "retry-queue-age"
    API_5XX = "api-5xx"
    S3_REPLICATION_FAILED = "s3-replication-failed"
    ARCHIVE_LAG = "archive-lag"
    ARCHIVE_FAILURES_NOT_EMPTY = "archive-failures-not-empty"
    HEALTH_CHECK = "health-check"
    CANARY = "canary"  # per probed region, in the watching region
    WAF_BLOCKED = "waf-blocked-requests"  # created with the region's web ACL
    MERCHANT_KEY_AGE = "merchant-key-age"


def alarm_name(stack: str, region: str, purpose: str) -> str:
    return f"{contract.PROJECT}-{stack}-{region}-{purpose}"


def function_alarm_key(function: Function, metric: str) -> str:
    return f"{function.value}-{metric.lower()}"


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
        health_check_alarms(factory, args.health_check_ids)
        self.alarms = factory.alarms
        self.alarm_arns = {key: alarm.arn for key, alarm in self.alarms.items()}
        self.register_outputs(
            {"key_arn": self.key.arn, "topic_arn": self.topic.arn, "alarm_arns": self.alarm_arns}
        )


def alarm_topic_name(stack: str) -> str:
    return f"{contract.PROJECT}-{stack}-alarms"


def alarm_topic(
    name: str,
    *,
    region: str,
    stack: str,
    account_id: str,
    key_arn: pulumi.Input[str],
    alarm_email: str | None,
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> aws.sns.Topic:
    """An encrypted topic only this account's alarms may publish to, and its e-mail subscriber."""
    topic = aws.sns.Topic(
        f"{name}-alarms",
        region=region,
        name=alarm_topic_name(stack),
        kms_master_key_id=key_arn,
        tags=dict(tags),
        opts=opts,
    )
    aws.sns.TopicPolicy(
        f"{name}-alarms-policy",
        region=region,
        arn=topic.arn,
        policy=topic.arn.apply(
            lambda arn: json.dumps(resource_policies.alarm_topic_policy(arn, account_id))
        ),
        opts=opts,
    )
    if alarm_email:
        aws.sns.TopicSubscription(
            f"{name}-alarms-email",
            region=region,
            topic=topic.arn,
            protocol="email",
            endpoint=alarm_email,
            opts=opts,
        )
    return topic


@dataclass(frozen=True)
class AlarmFactory:
    """Creates and keeps a component's alarms: one name scheme, one topic, one set of defaults."""

    resource_prefix: str
    region: str
    stack: str
    topic_arn: pulumi.Output[str]
    tags: dict[str, str]
    opts: pulumi.ResourceOptions
    alarms: dict[str, aws.cloudwatch.MetricAlarm] = field(default_factory=dict)

    def alarm(
        self,
        key: str,
        description: str,
        metric: Metric[pulumi.Input[str]],
        *,
        statistic: str,
        threshold: float,
        evaluation_periods: int = 1,
        comparison: str = "GreaterThanThreshold",
        # No data usually means no traffic (or no writes to replicate), not a fault.
        treat_missing_data: str = "notBreaching",
        period_seconds: int = ALARM_PERIOD_SECONDS,
    ) -> None:
        self.alarms[key] = aws.cloudwatch.MetricAlarm(
            f"{self.resource_prefix}-{key}",
            region=self.region,
            name=alarm_name(self.stack, self.region, key),
            alarm_description=description,
            namespace=metric.namespace,
            metric_name=metric.name,
            dimensions=dict(metric.dimensions),
            # Percentiles ("p99") are extended statistics in CloudWatch's API.
            statistic=None if statistic.startswith("p") else statistic,
            extended_statistic=statistic if statistic.startswith("p") else None,
            period=period_seconds,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=evaluation_periods,
            threshold=threshold,
            comparison_operator=comparison,
            treat_missing_data=treat_missing_data,
            alarm_actions=[self.topic_arn],
            ok_actions=[self.topic_arn],
            tags=self.tags,
            opts=self.opts,
        )


def health_check_alarms(
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
