"""Building blocks of every alarm set: the encrypted alarm topic, the alarm names and a
factory that gives every alarm the same period, missing-data treatment and actions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from payments_dr import contract
from payments_dr.infra import resource_policies
from payments_dr.infra.metrics import Metric

ALARM_PERIOD_SECONDS = 60


def alarm_name(stack: str, region: str, purpose: str) -> str:
    return f"{contract.PROJECT}-{stack}-{region}-{purpose}"


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
            period=ALARM_PERIOD_SECONDS,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=evaluation_periods,
            threshold=threshold,
            comparison_operator=comparison,
            # No data means no traffic (or no writes to replicate), not a fault.
            treat_missing_data="notBreaching",
            alarm_actions=[self.topic_arn],
            ok_actions=[self.topic_arn],
            tags=self.tags,
            opts=self.opts,
        )
