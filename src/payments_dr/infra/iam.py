"""Every IAM, key, bucket and topic policy document of the stack, as plain JSON-able dicts.

Pure functions of ARNs and names, so each policy can be unit-tested without Pulumi. Actions are
always named; a `"*"` resource appears only for actions that have no resource-level permissions
(listed in `ACTIONS_WITHOUT_RESOURCE_SCOPE`) and in key policies, where `"*"` means "this key".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from payments_dr import contract
from payments_dr.contract import Function

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
    # Where the archiver's stream mapping records dropped ranges; Lambda sends with the
    # function's role.
    archive_failures_queue_arn: str
    bucket_arn: str  # this region's transaction-log bucket
    key_arn: str  # this region's customer-managed key
    log_group_arn: str
    subnet_ids: Sequence[str]
    security_group_id: str
    ssm_path: str


def _document(*statements: Statement) -> PolicyDocument:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(sid: str, actions: Sequence[str], resources: Sequence[str], **extra: Any) -> Statement:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(actions),
        "Resource": list(resources),
        **extra,
    }


def service_assume_role_policy(service: str, account_id: str) -> PolicyDocument:
    """Trust policy for an AWS service; SourceAccount blocks the confused-deputy problem."""
    return _document(
        {
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        }
    )


def _via(service: str, region: str) -> dict[str, Any]:
    return {"Condition": {"StringEquals": {"kms:ViaService": f"{service}.{region}.amazonaws.com"}}}


def ssm_parameter_arns(region: str, account_id: str, path: str) -> list[str]:
    base = f"arn:aws:ssm:{region}:{account_id}:parameter{path}"
    return [base, f"{base}/*"]


def function_policy(scope: FunctionScope) -> PolicyDocument:
    """The inline policy of one function's role in one region."""
    region, account = scope.region, scope.account_id
    ec2 = f"arn:aws:ec2:{region}:{account}"
    statements: list[Statement] = [
        _allow(
            "WriteOwnLogs",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [scope.log_group_arn, f"{scope.log_group_arn}:log-stream:*"],
        ),
        _allow(
            "ReadOwnConfiguration",
            ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
            ssm_parameter_arns(region, account, scope.ssm_path),
        ),
        _allow(
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
        _allow(
            "DescribeVpcNetworking",
            ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
            ["*"],
        ),
        _allow("SendTraces", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"]),
    ]
    statements.extend(_function_data_statements(scope))
    return _document(*statements)


def _function_data_statements(scope: FunctionScope) -> list[Statement]:
    region = scope.region
    if scope.function is Function.API:
        return [
            _allow(
                "WritePayments",
                ["dynamodb:PutItem", "dynamodb:GetItem"],
                [scope.table_arn],
            ),
            _allow("QueueRetries", ["sqs:SendMessage"], [scope.queue_arn]),
            _allow(
                "EncryptQueuedRetries",
                ["kms:GenerateDataKey", "kms:Decrypt"],
                [scope.key_arn],
                **_via("sqs", region),
            ),
        ]
    if scope.function is Function.AUTHORIZER:
        return [
            # Only credential records: the authorizer has no business reading payments.
            _allow(
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
            _allow("ApplyRetries", ["dynamodb:PutItem", "dynamodb:GetItem"], [scope.table_arn]),
            _allow(
                "ConsumeRetryQueue",
                [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes",
                ],
                [scope.queue_arn],
            ),
            _allow("ParkConflicts", ["sqs:SendMessage"], [scope.dlq_arn]),
            _allow(
                "EncryptRetries",
                ["kms:GenerateDataKey", "kms:Decrypt"],
                [scope.key_arn],
                **_via("sqs", region),
            ),
        ]
    return [
        _allow(
            "ReadTableStream",
            ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
            [f"{scope.table_arn}/stream/*"],
        ),
        _allow("FindTableStream", ["dynamodb:ListStreams"], ["*"]),
        _allow(
            "ArchiveTransactions",
            ["s3:PutObject"],
            [f"{scope.bucket_arn}/{contract.log_region_prefix(region)}*"],
        ),
        _allow(
            "EncryptArchive",
            ["kms:GenerateDataKey", "kms:Decrypt"],
            [scope.key_arn],
            **_via("s3", region),
        ),
        _allow("RecordDroppedRanges", ["sqs:SendMessage"], [scope.archive_failures_queue_arn]),
        _allow(
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

    def document(sid: str, actions: Sequence[str], resources: Sequence[str]) -> PolicyDocument:
        return _document(
            _allow(
                sid,
                actions,
                resources,
                Principal="*",
                Condition={"StringEquals": {"aws:PrincipalAccount": account_id}},
            )
        )

    return {
        "dynamodb": document(
            "PaymentsTable", ["dynamodb:GetItem", "dynamodb:PutItem"], [table_arn]
        ),
        "s3": document(
            "TransactionLog",
            ["s3:PutObject"],
            [f"{bucket_arn}/{contract.log_region_prefix(region)}*"],
        ),
        "sqs": document("RetryQueues", ["sqs:SendMessage"], [queue_arn, dlq_arn]),
        "ssm": document(
            "RegionConfiguration",
            ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
            ssm_parameter_arns(region, account_id, ssm_path),
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
    return _document(
        _allow(
            "ReadReplicationConfiguration",
            ["s3:GetReplicationConfiguration", "s3:ListBucket"],
            [source_bucket_arn],
        ),
        _allow(
            "ReadSourceVersions",
            [
                "s3:GetObjectVersionForReplication",
                "s3:GetObjectVersionAcl",
                "s3:GetObjectVersionTagging",
            ],
            [f"{source_bucket_arn}/*"],
        ),
        _allow(
            "WriteReplicas",
            ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
            [f"{destination_bucket_arn}/*"],
        ),
        _allow(
            "DecryptSource",
            ["kms:Decrypt"],
            [source_key_arn],
            Condition={
                "StringEquals": {"kms:ViaService": f"s3.{source_region}.amazonaws.com"},
                "StringLike": {"kms:EncryptionContext:aws:s3:arn": _s3_contexts(source_bucket_arn)},
            },
        ),
        _allow(
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
    groups = f"arn:aws:logs:{region}:{account_id}:log-group:*"
    return _document(
        _allow(
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


def flow_log_policy(log_group_arn: str) -> PolicyDocument:
    """VPC Flow Logs delivery into one log group."""
    return _document(
        _allow(
            "DeliverFlowLogs",
            [
                "logs:CreateLogStream",
                "logs:DescribeLogGroups",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
            ],
            [log_group_arn, f"{log_group_arn}:log-stream:*"],
        )
    )


def key_policy(region: str, account_id: str) -> PolicyDocument:
    """Policy of the stack's customer-managed key (and its replica) in one region.

    The account keeps administration (without it the key becomes unmanageable); CloudWatch may
    use the key for alarm notifications to the encrypted topic, and CloudWatch Logs for this
    region's log groups only.
    """
    return _document(
        _account_administers_key(account_id),
        _service_uses_topic_key(
            "CloudWatchAlarmsPublishToEncryptedTopic",
            "cloudwatch.amazonaws.com",
            {"StringEquals": {"aws:SourceAccount": account_id}},
        ),
        {
            "Sid": "CloudWatchLogsEncryptRegionLogGroups",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": [
                "kms:Decrypt",
                "kms:DescribeKey",
                "kms:Encrypt",
                "kms:GenerateDataKey*",
                "kms:ReEncrypt*",
            ],
            "Resource": "*",
            "Condition": {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": (
                        f"arn:aws:logs:{region}:{account_id}:log-group:*"
                    )
                }
            },
        },
    )


def alarm_topic_key_policy(
    account_id: str, alarm_arn_pattern: str, topic_arn: str
) -> PolicyDocument:
    """Policy of a key that only encrypts an alarm topic (the health-check alarms' in us-east-1).

    The account keeps administration; CloudWatch may use the key only on behalf of the alarms
    matching `alarm_arn_pattern`, and SNS only for the topic at `topic_arn`.
    """
    same_account = {"aws:SourceAccount": account_id}
    return _document(
        _account_administers_key(account_id),
        _service_uses_topic_key(
            "CloudWatchAlarmsPublishToEncryptedTopic",
            "cloudwatch.amazonaws.com",
            {"StringEquals": same_account, "ArnLike": {"aws:SourceArn": alarm_arn_pattern}},
        ),
        _service_uses_topic_key(
            "SnsUsesKeyForTheAlarmTopic",
            "sns.amazonaws.com",
            {"StringEquals": same_account, "ArnEquals": {"aws:SourceArn": topic_arn}},
        ),
    )


def _account_administers_key(account_id: str) -> Statement:
    # Without it the key becomes unmanageable.
    return {
        "Sid": "AccountAdministersKey",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }


def _service_uses_topic_key(sid: str, service: str, condition: dict[str, Any]) -> Statement:
    """Lets `service` use the key for the messages of a topic it encrypts."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
        "Condition": condition,
    }


def tls_only_bucket_policy(bucket_arn: str) -> PolicyDocument:
    """Refuse every request to the bucket that does not arrive over TLS 1.2 or later."""
    resources = [bucket_arn, f"{bucket_arn}/*"]
    return _document(
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": resources,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "DenyOutdatedTls",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": resources,
            "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
        },
    )


def alarm_topic_policy(topic_arn: str, account_id: str) -> PolicyDocument:
    """Only this account's CloudWatch alarms may publish to the topic, and only over TLS."""
    return _document(
        {
            "Sid": "CloudWatchAlarmsPublish",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic_arn,
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        },
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sns:Publish",
            "Resource": topic_arn,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    )
