"""Every identity policy of the stack (function roles, endpoints, replication, service roles),
as plain JSON-able dicts; key, bucket and topic policies are in `resource_policies`.

Pure functions of ARNs and names, so each policy can be unit-tested without Pulumi. Actions are
always named; a `"*"` resource appears only for actions that have no resource-level permissions
(listed in `ACTIONS_WITHOUT_RESOURCE_SCOPE`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from payments_dr import contract
from payments_dr.contract import Function
from payments_dr.service.store import HEALTH_PROBE_KEY

# Partition keys of payment items (service.model.payment_id): the API and the retry worker
# write these and nothing else, never a `merchant#` credential or a `conflict#` record.
PAYMENT_KEY_PATTERN: Final = "pay_*"

PolicyDocument = dict[str, Any]
Statement = dict[str, Any]

# Actions AWS authorizes only against "*": there is no ARN to scope them to.
ACTIONS_WITHOUT_RESOURCE_SCOPE: Final = frozenset(
    {
        "xray:PutTraceSegments",  # X-Ray has no resource-level permissions
        "xray:PutTelemetryRecords",
        "ec2:DescribeNetworkInterfaces",  # EC2 Describe* calls are account-wide
        "ec2:DescribeSubnets",
        "dynamodb:ListStreams",  # lists every stream of the account and region
    }
)


@dataclass(frozen=True)
class FunctionScope:
    """The ARNs one function may touch in one region."""

    function: Function
    region: str
    account_id: str
    table_arn: str  # this region's replica
    queue_arn: str  # the retry queue
    dlq_arn: str  # its dead-letter queue: the worker parks conflicting payments there
    # The peer region's retry queue and key: the API queues there what its table refused.
    peer_region: str
    peer_queue_arn: str
    peer_key_arn: str
    # Where the archiver's stream mapping records dropped ranges; Lambda sends with the
    # function's role.
    archive_failures_queue_arn: str
    bucket_arn: str  # this region's transaction-log bucket
    key_arn: str  # this region's customer-managed key
    log_group_arn: str
    subnet_ids: Sequence[str]
    security_group_id: str
    ssm_path: str


def document(*statements: Statement) -> PolicyDocument:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(sid: str, actions: Sequence[str], resources: Sequence[str], **extra: Any) -> Statement:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(actions),
        "Resource": list(resources),
        **extra,
    }


def service_assume_role_policy(service: str, account_id: str) -> PolicyDocument:
    """Trust policy for an AWS service; SourceAccount blocks the confused-deputy problem."""
    return document(
        {
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        }
    )


def api_gateway_assume_role_policy() -> PolicyDocument:
    """Trust policy of API Gateway's logging role: no aws:SourceAccount condition.

    API Gateway is not documented to send aws:SourceAccount when it assumes a role, and it
    does not send it for integration credentials, where such a condition makes every call
    fail; the role can only write logs, so there is no deputy worth confusing.
    """
    return document(
        {
            "Effect": "Allow",
            "Principal": {"Service": "apigateway.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    )


def log_groups_list_arn(region: str, account_id: str) -> str:
    """What logs:DescribeLogGroups is authorized against: the account's log-group space.

    AWS evaluates it against `arn:aws:logs:REGION:ACCOUNT:log-group::log-stream:`, which a
    grant on one log group never matches.
    """
    return f"arn:aws:logs:{region}:{account_id}:log-group:*"


def _via(service: str, region: str) -> dict[str, Any]:
    return {"Condition": {"StringEquals": {"kms:ViaService": f"{service}.{region}.amazonaws.com"}}}


def _leading_keys(*patterns: str) -> dict[str, Any]:
    """Only items whose partition key matches one of `patterns`."""
    return {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(patterns)}}


def ssm_parameter_arns(region: str, account_id: str, path: str) -> list[str]:
    base = f"arn:aws:ssm:{region}:{account_id}:parameter{path}"
    return [base, f"{base}/*"]


def function_policy(scope: FunctionScope) -> PolicyDocument:
    """The inline policy of one function's role in one region."""
    region, account = scope.region, scope.account_id
    ec2 = f"arn:aws:ec2:{region}:{account}"
    statements: list[Statement] = [
        allow(
            "WriteOwnLogs",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [scope.log_group_arn, f"{scope.log_group_arn}:log-stream:*"],
        ),
        allow(
            "ReadOwnConfiguration",
            ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
            ssm_parameter_arns(region, account, scope.ssm_path),
        ),
        allow(
            "ManageVpcNetworkInterfaces",
            [
                "ec2:CreateNetworkInterface",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            [
                f"{ec2}:network-interface/*",
                f"{ec2}:security-group/{scope.security_group_id}",
                *(f"{ec2}:subnet/{subnet_id}" for subnet_id in scope.subnet_ids),
            ],
        ),
        allow(
            "DescribeVpcNetworking",
            ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
            ["*"],
        ),
        allow("SendTraces", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"]),
        # The environment is encrypted with the region's key; Lambda decrypts it at start.
        allow("DecryptEnvironment", ["kms:Decrypt"], [scope.key_arn], **_via("lambda", region)),
    ]
    statements.extend(_function_data_statements(scope))
    return document(*statements)


def _function_data_statements(scope: FunctionScope) -> list[Statement]:
    region = scope.region
    if scope.function is Function.API:
        return [
            allow(
                "WritePayments",
                ["dynamodb:PutItem"],
                [scope.table_arn],
                Condition=_leading_keys(PAYMENT_KEY_PATTERN),
            ),
            # Payments, and the health check's probe of the table.
            allow(
                "ReadPayments",
                ["dynamodb:GetItem"],
                [scope.table_arn],
                Condition=_leading_keys(PAYMENT_KEY_PATTERN, HEALTH_PROBE_KEY),
            ),
            # Outside this region's failure domain, so a 202 survives the loss of the region.
            allow("QueueRetriesInPeerRegion", ["sqs:SendMessage"], [scope.peer_queue_arn]),
            allow(
                "EncryptQueuedRetries",
                ["kms:GenerateDataKey", "kms:Decrypt"],
                [scope.peer_key_arn],
                **_via("sqs", scope.peer_region),
            ),
        ]
    if scope.function is Function.AUTHORIZER:
        return [
            # Only credential records: the authorizer has no business reading payments.
            allow(
                "ReadMerchantKeys",
                ["dynamodb:GetItem"],
                [scope.table_arn],
                Condition={
                    "ForAllValues:StringLike": {
                        "dynamodb:LeadingKeys": [f"{contract.MERCHANT_ITEM_PREFIX}*"]
                    }
                },
            ),
        ]
    if scope.function is Function.RETRY_WORKER:
        return [
            allow(
                "ApplyRetries",
                ["dynamodb:PutItem", "dynamodb:GetItem"],
                [scope.table_arn],
                Condition=_leading_keys(PAYMENT_KEY_PATTERN),
            ),
            allow(
                "ConsumeRetryQueue",
                [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes",
                ],
                [scope.queue_arn],
            ),
            allow("ParkConflicts", ["sqs:SendMessage"], [scope.dlq_arn]),
            allow(
                "EncryptRetries",
                ["kms:GenerateDataKey", "kms:Decrypt"],
                [scope.key_arn],
                **_via("sqs", region),
            ),
        ]
    return [
        allow(
            "ReadTableStream",
            ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
            [f"{scope.table_arn}/stream/*"],
        ),
        allow("FindTableStream", ["dynamodb:ListStreams"], ["*"]),
        # Versions that replication overwrote are kept as conflict records, nothing else.
        allow(
            "RecordConflicts",
            ["dynamodb:PutItem"],
            [scope.table_arn],
            Condition={
                "ForAllValues:StringLike": {
                    "dynamodb:LeadingKeys": [f"{contract.CONFLICT_ITEM_PREFIX}*"]
                }
            },
        ),
        allow(
            "ArchiveTransactions",
            ["s3:PutObject"],
            [f"{scope.bucket_arn}/{contract.log_region_prefix(region)}*"],
        ),
        allow(
            "EncryptArchive",
            ["kms:GenerateDataKey", "kms:Decrypt"],
            [scope.key_arn],
            **_via("s3", region),
        ),
        allow("RecordDroppedRanges", ["sqs:SendMessage"], [scope.archive_failures_queue_arn]),
        allow(
            "EncryptDroppedRanges",
            ["kms:GenerateDataKey", "kms:Decrypt"],
            [scope.key_arn],
            **_via("sqs", region),
        ),
    ]


def endpoint_policies(
    *,
    region: str,
    account_id: str,
    table_arn: str,
    queue_arn: str,
    dlq_arn: str,
    bucket_arn: str,
    ssm_path: str,
) -> dict[str, PolicyDocument]:
    """Policies of the VPC endpoints, by service: the calls the functions make, nothing else.

    A second fence after the roles: even a role with broader rights could not reach another
    table, bucket, queue or account through the VPC.
    """

    def endpoint_document(
        sid: str, actions: Sequence[str], resources: Sequence[str]
    ) -> PolicyDocument:
        return document(
            allow(
                sid,
                actions,
                resources,
                Principal="*",
                Condition={"StringEquals": {"aws:PrincipalAccount": account_id}},
            )
        )

    return {
        "dynamodb": endpoint_document(
            "PaymentsTable", ["dynamodb:GetItem", "dynamodb:PutItem"], [table_arn]
        ),
        "s3": endpoint_document(
            "TransactionLog",
            ["s3:PutObject"],
            [f"{bucket_arn}/{contract.log_region_prefix(region)}*"],
        ),
        "sqs": endpoint_document("RetryQueues", ["sqs:SendMessage"], [queue_arn, dlq_arn]),
        "ssm": endpoint_document(
            "RegionConfiguration",
            ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
            ssm_parameter_arns(region, account_id, ssm_path),
        ),
        # X-Ray has no resource-level permissions: only the actions are fenced.
        "xray": endpoint_document(
            "Traces", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"]
        ),
    }


def _s3_contexts(bucket_arn: str) -> list[str]:
    # With S3 Bucket Keys the encryption context is the bucket's ARN, without them the object's.
    return [bucket_arn, f"{bucket_arn}/*"]


def replication_policy(
    *,
    source_bucket_arn: str,
    destination_bucket_arn: str,
    source_key_arn: str,
    destination_key_arn: str,
    source_region: str,
    destination_region: str,
) -> PolicyDocument:
    """S3 cross-region replication in one direction: read the source, write the replica."""
    return document(
        allow(
            "ReadReplicationConfiguration",
            ["s3:GetReplicationConfiguration", "s3:ListBucket"],
            [source_bucket_arn],
        ),
        allow(
            "ReadSourceVersions",
            [
                "s3:GetObjectVersionForReplication",
                "s3:GetObjectVersionAcl",
                "s3:GetObjectVersionTagging",
            ],
            [f"{source_bucket_arn}/*"],
        ),
        allow(
            "WriteReplicas",
            ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
            [f"{destination_bucket_arn}/*"],
        ),
        allow(
            "DecryptSource",
            ["kms:Decrypt"],
            [source_key_arn],
            Condition={
                "StringEquals": {"kms:ViaService": f"s3.{source_region}.amazonaws.com"},
                "StringLike": {"kms:EncryptionContext:aws:s3:arn": _s3_contexts(source_bucket_arn)},
            },
        ),
        allow(
            "EncryptReplica",
            ["kms:Encrypt", "kms:GenerateDataKey"],
            [destination_key_arn],
            Condition={
                "StringEquals": {"kms:ViaService": f"s3.{destination_region}.amazonaws.com"},
                "StringLike": {
                    "kms:EncryptionContext:aws:s3:arn": _s3_contexts(destination_bucket_arn)
                },
            },
        ),
    )


def api_gateway_logging_policy(region: str, account_id: str) -> PolicyDocument:
    """API Gateway's account-level role for access and execution logs in one region."""
    groups = log_groups_list_arn(region, account_id)
    return document(
        allow(
            "WriteApiLogs",
            [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:DescribeLogGroups",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
            ],
            [groups, f"{groups}:log-stream:*"],
        )
    )


def flow_log_policy(log_group_arn: str, region: str, account_id: str) -> PolicyDocument:
    """VPC Flow Logs delivery into one log group."""
    return document(
        allow(
            "DeliverFlowLogs",
            ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            [log_group_arn, f"{log_group_arn}:log-stream:*"],
        ),
        allow(
            "FindLogGroup", ["logs:DescribeLogGroups"], [log_groups_list_arn(region, account_id)]
        ),
    )
