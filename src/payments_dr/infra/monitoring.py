"""Monitoring layer of one region: an encrypted SNS topic and the alarms that notify it.

DynamoDB emits `ReplicationLatency` in the region a write came *from*, so each region alarms
on replication towards its peer. Route 53's health-check alarms go to us-east-1
(`alarms.health_check_alarms`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

from payments_dr import contract
from payments_dr.contract import ConsistencyMode, Function
from payments_dr.infra.alarms import (
    AlarmFactory,
    AlarmPurpose,
    alarm_topic,
    function_alarm_key,
    health_check_alarms,
)
from payments_dr.infra.metrics import (
    API_5XX,
    FUNCTION_ALARM_METRICS,
    ITERATOR_AGE,
    MESSAGES_VISIBLE,
    OLDEST_MESSAGE_AGE,
    REQUEST_LATENCY,
    ROUTE53_METRICS_REGION,
    S3_OPERATIONS_FAILED,
    SYSTEM_ERRORS,
    WRITE_OPERATION,
    api_metric,
    function_metric,
    log_replication_metric,
    queue_metric,
    service_metric,
    table_operation_metric,
    table_replication_latency,
)

RETRY_QUEUE_MAX_AGE_SECONDS = 300  # a retry older than this means the worker is not draining
API_5XX_PER_MINUTE = 5
# The archiver retries a failing batch until its records leave the stream (24 h); long before
# that, a growing backlog means the transaction log is falling behind the table.
ARCHIVE_MAX_LAG_SECONDS = 15 * 60
# A strongly consistent write waits for one more region of the set: a round trip of tens of
# ms in the US set. Half a second at p99 for three minutes means the quorum is in trouble.
STRONG_WRITE_P99_MS = 500
STRONG_WRITE_LATENCY_STATISTIC = "p99"
# The key-age alarm looks at the last hour (a sliding window, evaluated every minute): a key
# in use shows up at its first table read, and an hour without an over-age key in use (after
# a rotation, every read sees a new key) clears the alarm without flapping between reads.
KEY_AGE_ALARM_PERIOD_SECONDS = 3600
KEY_ROTATION_RUNBOOK = "docs/runbooks/merchant-key-rotation.md"


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
    merchant_key_max_age_days: int
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
        self._factory.alarm(
            AlarmPurpose.MERCHANT_KEY_AGE,
            f"A merchant key in use in {region} is more than {args.merchant_key_max_age_days}"
            " days old: find it with `payments-dr merchant list` and rotate it"
            f" ({KEY_ROTATION_RUNBOOK})",
            # The age in days of each key the authorizer admits from the table (its current
            # key, at each cache miss). One metric per region: no merchant dimension.
            service_metric(
                contract.MERCHANT_KEY_AGE_METRIC, contract.service_name(Function.AUTHORIZER)
            ),
            statistic="Maximum",
            threshold=args.merchant_key_max_age_days,
            period_seconds=KEY_AGE_ALARM_PERIOD_SECONDS,
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
            health_check_alarms(self._factory, args.health_check_ids)

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
            self._factory.alarm(
                AlarmPurpose.REPLICATION_CONFLICTS,
                f"Replication in {region} overwrote a payment version this region had"
                " acknowledged; it is kept as a conflict record: reconcile it with the merchant"
                " (`payments-dr conflicts list`)",
                service_metric(
                    contract.REPLICATION_CONFLICTS_METRIC,
                    contract.service_name(Function.LOG_ARCHIVER),
                ),
                statistic="Sum",
                threshold=0,
                evaluation_periods=1,
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
