"""One region's Lambda functions: log group, role and policy per function, and event sources."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from payments_dr import contract
from payments_dr.contract import Function
from payments_dr.infra import function_policies, iam, id_secret, role_names
from payments_dr.infra.queues import (
    RegionQueues,
    archive_failures_queue_arn,
    dlq_arn,
    retry_queue_arn,
)

if TYPE_CHECKING:
    from payments_dr.infra.service import RegionalServiceArgs

LAMBDA_ARCHITECTURE = "arm64"  # the artifact is pure Python; Graviton is cheaper per ms
# Powertools' switch for recording each handler's response as trace metadata.
TRACER_CAPTURE_RESPONSE_ENV = "POWERTOOLS_TRACER_CAPTURE_RESPONSE"
# A failing stream batch is retried for 23 h, not dropped after a few attempts: a short S3
# outage must not punch holes in the transaction log. The archiver's errors alarm pages while
# the shard waits. A batch still failing then is discarded *by this limit*, an hour before the
# stream (24 h retention) would trim it: Lambda documents sending discarded records to the
# on-failure destination when a retry or age limit is reached, and says nothing of records
# that expire under "retry forever". So the archive-failures queue always learns the shard and
# sequence range, and the hole can be found and rebuilt.
RETRY_UNTIL_DISCARDED = -1
STREAM_RECORD_MAX_AGE_SECONDS = 23 * 3600


def log_group_name(function_name: str) -> str:
    return f"/aws/lambda/{function_name}"


def create_function(
    name: str,
    function: Function,
    args: RegionalServiceArgs,
    *,
    ssm_path: str,
    environment: Mapping[str, pulumi.Input[str]],
    retry_queue: aws.sqs.Queue,
    parent: pulumi.Resource,
) -> tuple[aws.lambda_.Function, aws.cloudwatch.LogGroup]:
    """The function with its own log group and least-privilege role.

    `environment` carries the deploy-time settings; only the API also reads SSM, for `mode`.
    The functions that compute ids also get the id secret's name, and the right to read it.
    """
    region, account = args.region, args.account_id
    child = pulumi.ResourceOptions(parent=parent)
    prefix = f"{name}-{function.value}"
    function_name = contract.function_name(args.stack, function)
    settings = contract.FUNCTIONS[function]
    log_group = aws.cloudwatch.LogGroup(
        f"{prefix}-logs",
        region=region,
        name=log_group_name(function_name),
        retention_in_days=args.log_retention_days,
        kms_key_id=args.log_key_arn,
        tags=dict(args.tags),
        opts=child,
    )
    role = aws.iam.Role(
        f"{prefix}-role",
        # Named, so the data key and the bucket policy can name it before it exists.
        name=role_names.function_role_name(function, region),
        path=role_names.role_path(args.stack),
        assume_role_policy=json.dumps(
            iam.service_assume_role_policy("lambda.amazonaws.com", account)
        ),
        description=f"{function_name} in {region}",
        tags=dict(args.tags),
        opts=child,
    )
    policy = aws.iam.RolePolicy(
        f"{prefix}-policy",
        role=role.id,
        policy=pulumi.Output.all(
            args.key_arn,
            args.peer_key_arn,
            retry_queue.arn,
            args.security_group_id,
            *args.subnet_ids,
        ).apply(
            functools.partial(
                _function_policy_json,
                function=function,
                region=region,
                account_id=account,
                table_arn=args.table_arn,
                dlq_arn=dlq_arn(region, account, args.stack),
                peer_region=args.peer_region,
                peer_queue_arn=retry_queue_arn(args.peer_region, account, args.stack),
                archive_failures_queue_arn=archive_failures_queue_arn(region, account, args.stack),
                bucket_arn=args.bucket_arn,
                log_group_arn=(
                    f"arn:aws:logs:{region}:{account}:log-group:{log_group_name(function_name)}"
                ),
                ssm_path=ssm_path,
                stack=args.stack,
            )
        ),
        opts=child,
    )
    if function in contract.ID_KEY_READERS:
        if args.id_secret_arn is None:
            raise ValueError(f"{function.value} computes payment ids: it needs the id secret")
        environment = {**environment, contract.ENV_ID_SECRET_ID: args.id_secret_arn}
    lambda_function = aws.lambda_.Function(
        prefix,
        region=region,
        name=function_name,
        description=f"{contract.PROJECT} {function.value} ({args.role.value} region)",
        runtime=contract.LAMBDA_RUNTIME,
        architectures=[LAMBDA_ARCHITECTURE],
        handler=settings.handler,
        code=pulumi.FileArchive(str(args.artifact_path)),
        memory_size=settings.memory_mb,
        timeout=settings.timeout_seconds,
        reserved_concurrent_executions=args.reserved_concurrency[function],
        role=role.arn,
        vpc_config={
            "subnet_ids": list(args.subnet_ids),
            "security_group_ids": [args.security_group_id],
        },
        tracing_config={"mode": "Active"},
        logging_config={"log_format": "JSON", "log_group": log_group.name},
        kms_key_arn=args.key_arn,  # the environment, encrypted with the region's key
        environment={
            "variables": {
                **environment,
                contract.ENV_SSM_PATH: ssm_path,
                contract.ENV_MODE_REFRESH_SECONDS: str(args.mode_refresh_seconds),
                contract.ENV_MODE_READ_SPREAD_SECONDS: str(args.mode_read_spread_seconds),
                "POWERTOOLS_SERVICE_NAME": contract.service_name(function),
                "POWERTOOLS_METRICS_NAMESPACE": contract.SERVICE_METRICS_NAMESPACE,
                # Responses hold payments and usage keys: none goes into X-Ray metadata. The
                # handlers also pass capture_response=False; this makes it visible to policy.
                TRACER_CAPTURE_RESPONSE_ENV: "false",
            }
        },
        tags=dict(args.tags),
        # The role must carry its permissions before Lambda validates the VPC settings.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[policy, log_group]),
    )
    return lambda_function, log_group


def create_event_sources(
    name: str,
    args: RegionalServiceArgs,
    functions: dict[Function, aws.lambda_.Function],
    queues: RegionQueues,
    opts: pulumi.ResourceOptions,
) -> None:
    """The retry queue feeds the retry worker; the table's stream feeds the log archiver."""
    aws.lambda_.EventSourceMapping(
        f"{name}-retry-queue-source",
        region=args.region,
        event_source_arn=queues.retry_queue.arn,
        function_name=functions[Function.RETRY_WORKER].arn,
        batch_size=contract.RETRY_BATCH_SIZE,
        function_response_types=["ReportBatchItemFailures"],
        scaling_config={
            # As many pollers as the worker may run (SQS accepts no fewer than 2), so the
            # queue is never drained into throttled invocations.
            "maximum_concurrency": max(2, args.reserved_concurrency[Function.RETRY_WORKER])
        },
        opts=opts,
    )
    aws.lambda_.EventSourceMapping(
        f"{name}-table-stream-source",
        region=args.region,
        event_source_arn=args.stream_arn,
        function_name=functions[Function.LOG_ARCHIVER].arn,
        starting_position="TRIM_HORIZON",  # archive every change the stream still holds
        batch_size=contract.STREAM_BATCH_SIZE,
        parallelization_factor=contract.STREAM_PARALLELIZATION_FACTOR,
        # The archiver reports the first failed record itself; bisecting on top of that
        # could archive overlapping halves of a batch under different keys.
        function_response_types=["ReportBatchItemFailures"],
        maximum_retry_attempts=RETRY_UNTIL_DISCARDED,
        maximum_record_age_in_seconds=STREAM_RECORD_MAX_AGE_SECONDS,
        destination_config={
            "on_failure": {"destination_arn": queues.archive_failures_queue.arn},
        },
        opts=opts,
    )


def _function_policy_json(
    resolved: list[str],
    *,
    function: Function,
    region: str,
    account_id: str,
    table_arn: str,
    dlq_arn: str,
    peer_region: str,
    peer_queue_arn: str,
    archive_failures_queue_arn: str,
    bucket_arn: str,
    log_group_arn: str,
    ssm_path: str,
    stack: str,
) -> str:
    key_arn, peer_key_arn, queue_arn, security_group_id, *subnet_ids = resolved
    scope = function_policies.FunctionScope(
        function=function,
        region=region,
        account_id=account_id,
        table_arn=table_arn,
        queue_arn=queue_arn,
        dlq_arn=dlq_arn,
        peer_region=peer_region,
        peer_queue_arn=peer_queue_arn,
        peer_key_arn=peer_key_arn,
        archive_failures_queue_arn=archive_failures_queue_arn,
        bucket_arn=bucket_arn,
        key_arn=key_arn,
        log_group_arn=log_group_arn,
        subnet_ids=subnet_ids,
        security_group_id=security_group_id,
        ssm_path=ssm_path,
    )
    policy = function_policies.function_policy(scope)
    if function in contract.ID_KEY_READERS:
        policy["Statement"].extend(id_secret.reader_statements(region, account_id, stack, key_arn))
    return json.dumps(policy)
