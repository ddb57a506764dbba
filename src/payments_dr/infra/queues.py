"""One region's queues: the retry queue, its dead-letter queue and the archive-failures queue."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from payments_dr import contract
from payments_dr.infra.resource_policies import tls_only_queue_policy

KMS_DATA_KEY_REUSE_SECONDS = 300


def retry_queue_arn(region: str, account_id: str, stack: str) -> str:
    """Queue ARNs derive from the name, so policies can name the queue before it exists."""
    return f"arn:aws:sqs:{region}:{account_id}:{contract.retry_queue_name(stack)}"


def dlq_arn(region: str, account_id: str, stack: str) -> str:
    return f"arn:aws:sqs:{region}:{account_id}:{contract.dlq_name(stack)}"


def archive_failures_queue_arn(region: str, account_id: str, stack: str) -> str:
    return f"arn:aws:sqs:{region}:{account_id}:{contract.archive_failures_queue_name(stack)}"


@dataclass(frozen=True)
class RegionQueues:
    dlq: aws.sqs.Queue
    retry_queue: aws.sqs.Queue
    archive_failures_queue: aws.sqs.Queue


def create_queues(
    name: str,
    *,
    stack: str,
    region: str,
    account_id: str,
    key_arn: pulumi.Input[str],
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> RegionQueues:
    dlq = aws.sqs.Queue(
        f"{name}-dlq",
        region=region,
        name=contract.dlq_name(stack),
        policy=json.dumps(tls_only_queue_policy(dlq_arn(region, account_id, stack))),
        message_retention_seconds=contract.DLQ_RETENTION_SECONDS,
        kms_master_key_id=key_arn,
        kms_data_key_reuse_period_seconds=KMS_DATA_KEY_REUSE_SECONDS,
        # Only the retry queue may dead-letter into it.
        redrive_allow_policy=json.dumps(
            {
                "redrivePermission": "byQueue",
                "sourceQueueArns": [retry_queue_arn(region, account_id, stack)],
            }
        ),
        tags=dict(tags),
        opts=opts,
    )
    retry_queue = aws.sqs.Queue(
        f"{name}-retry-queue",
        region=region,
        name=contract.retry_queue_name(stack),
        policy=json.dumps(tls_only_queue_policy(retry_queue_arn(region, account_id, stack))),
        message_retention_seconds=contract.RETRY_QUEUE_RETENTION_SECONDS,
        visibility_timeout_seconds=contract.RETRY_QUEUE_VISIBILITY_SECONDS,
        kms_master_key_id=key_arn,
        kms_data_key_reuse_period_seconds=KMS_DATA_KEY_REUSE_SECONDS,
        redrive_policy=dlq.arn.apply(
            lambda arn: json.dumps(
                {"deadLetterTargetArn": arn, "maxReceiveCount": contract.RETRY_MAX_RECEIVE_COUNT}
            )
        ),
        tags=dict(tags),
        opts=opts,
    )
    # Terminal, like the DLQ: it holds records of dropped stream ranges (shard and
    # sequence numbers, no payment data), read by an operator rebuilding the log.
    archive_failures_queue = aws.sqs.Queue(
        f"{name}-archive-failures",
        region=region,
        name=contract.archive_failures_queue_name(stack),
        policy=json.dumps(
            tls_only_queue_policy(archive_failures_queue_arn(region, account_id, stack))
        ),
        message_retention_seconds=contract.ARCHIVE_FAILURES_RETENTION_SECONDS,
        kms_master_key_id=key_arn,
        kms_data_key_reuse_period_seconds=KMS_DATA_KEY_REUSE_SECONDS,
        # No queue may dead-letter into it.
        redrive_allow_policy=json.dumps({"redrivePermission": "denyAll"}),
        tags=dict(tags),
        opts=opts,
    )
    return RegionQueues(dlq, retry_queue, archive_failures_queue)
