"""The identity policies' building blocks (`document`, `allow`, trust policies) and the
policies of the stack's service roles: S3 replication, API Gateway logging, VPC flow logs.

The function roles' policies and the VPC endpoint policies are in `function_policies`; key,
bucket and topic policies in `resource_policies`. Pure functions of ARNs and names, so each
policy can be unit-tested without Pulumi. Actions are always named; a `"*"` resource appears
only for actions that have no resource-level permissions (`ACTIONS_WITHOUT_RESOURCE_SCOPE`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

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
