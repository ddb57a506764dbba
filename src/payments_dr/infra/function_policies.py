"""The functions' policies: each function role's inline policy in one region, and the VPC
endpoint policies that admit the same calls, a second fence after the roles.

Pure functions of ARNs and names (a `FunctionScope`), built from the blocks in `iam`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from payments_dr import contract
from payments_dr.contract import Function
from payments_dr.infra.iam import PolicyDocument, Statement, allow, document
from payments_dr.service.store import HEALTH_PROBE_KEY

# Partition keys of payment items (service.model.payment_id): the API and the retry worker
# write these and nothing else, never a `merchant#` credential or a `conflict#` record.
PAYMENT_KEY_PATTERN: Final = "pay_*"


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


def _via(service: str, region: str) -> dict[str, Any]:
    return {"Condition": {"StringEquals": {"kms:ViaService": f"{service}.{region}.amazonaws.com"}}}


def _leading_keys(*patterns: str) -> dict[str, Any]:
    """Only items whose partition key matches one of `patterns`."""
    return {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(patterns)}}


def mode_parameter_arn(region: str, account_id: str, path: str) -> str:
    """The one parameter a function reads at run time (the rest is in its environment)."""
    return f"arn:aws:ssm:{region}:{account_id}:parameter{path}/{contract.Param.MODE.value}"


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
                "ReadModeFence",
                ["ssm:GetParameter"],
                [mode_parameter_arn(region, scope.account_id, scope.ssm_path)],
            ),
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
            "RegionModeFence",
            ["ssm:GetParameter"],
            [mode_parameter_arn(region, account_id, ssm_path)],
        ),
        # X-Ray has no resource-level permissions: only the actions are fenced.
        "xray": endpoint_document(
            "Traces", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"]
        ),
    }
