"""Resource policies of the stack: the customer-managed keys, the buckets and the alarm topics.

Pure functions of ARNs and names, like `iam`. In a key policy a `"*"` resource means "this key".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from payments_dr.infra.iam import PolicyDocument, Statement, document

# What the account may do to a key through IAM: manage it, never use it. Using a key is
# granted only by the usage statements of its policy, each to the principals that need it
# and through the one service they use it with (kms:ViaService).
KEY_ADMINISTRATION_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:Create*",
    "kms:Delete*",
    "kms:Describe*",
    "kms:Disable*",
    "kms:Enable*",
    "kms:Get*",
    "kms:List*",
    "kms:Put*",
    "kms:ReplicateKey",
    "kms:Revoke*",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:Update*",
)
# CreateGrant only for AWS resources: it is how DynamoDB and Lambda get the use of the key.
KEY_USE_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*")


@dataclass(frozen=True)
class DataKeyUsers:
    """Who may use the data key of one region beyond DynamoDB and Lambda, by role ARN."""

    sqs: Sequence[str]  # send to or consume this region's queues
    s3: Sequence[str]  # archive into this region's bucket
    replication: Sequence[str]  # S3 replication roles, into and out of this region's bucket
    break_glass: str | None  # the operators' role that reads logs and dead letters


def key_policy(region: str, account_id: str, users: DataKeyUsers) -> PolicyDocument:
    """Policy of the stack's data key (and its replica) in one region: table, queues, buckets
    and function environments. Logs and alarms have a key of their own (`log_key_policy`).
    """
    via = _via_service
    statements = [
        _account_administers_key(account_id),
        # Any principal of the account that IAM lets use the table or a function, the
        # deployment included, and only through those services: like AWS managed keys.
        {
            "Sid": "AccountUsesKeyThroughDynamoDbAndLambda",
            "Effect": "Allow",
            "Principal": {"AWS": _root(account_id)},
            "Action": [*KEY_USE_ACTIONS, "kms:CreateGrant", "kms:DescribeKey"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "kms:CallerAccount": account_id,
                    "kms:ViaService": [via("dynamodb", region), via("lambda", region)],
                }
            },
        },
        # Secrets of the stack (the id secret, the canaries' keys) are encrypted with this key:
        # the deployment writes and replicates them, the functions allowed by IAM read them.
        {
            "Sid": "AccountUsesKeyThroughSecretsManager",
            "Effect": "Allow",
            "Principal": {"AWS": _root(account_id)},
            "Action": [*KEY_USE_ACTIONS, "kms:DescribeKey"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "kms:CallerAccount": account_id,
                    "kms:ViaService": via("secretsmanager", region),
                }
            },
        },
        _roles_use_key("FunctionsUseKeyThroughSqs", account_id, users.sqs, via("sqs", region)),
        _roles_use_key("ArchiverUsesKeyThroughS3", account_id, users.s3, via("s3", region)),
        _roles_use_key(
            "ReplicationUsesKeyThroughS3",
            account_id,
            users.replication,
            via("s3", region),
            actions=("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*"),
        ),
    ]
    if users.break_glass is not None:
        statements.append(
            _roles_use_key(
                "BreakGlassReadsThroughS3AndSqs",
                account_id,
                [users.break_glass],
                [via("s3", region), via("sqs", region)],
                actions=("kms:Decrypt",),
            )
        )
    return document(*statements)


def log_key_policy(
    region: str, account_id: str, alarm_arn_pattern: str, topic_arn: str
) -> PolicyDocument:
    """Policy of one region's key for its log groups and its alarm topic.

    The alarm topic key's statements, plus CloudWatch Logs for this region's log groups;
    no principal of the account uses it.
    """
    policy = alarm_topic_key_policy(account_id, alarm_arn_pattern, topic_arn)
    policy["Statement"].append(
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
        }
    )
    return policy


def alarm_topic_key_policy(
    account_id: str, alarm_arn_pattern: str, topic_arn: str
) -> PolicyDocument:
    """Policy of a key that only encrypts an alarm topic (the health-check alarms' in us-east-1).

    The account administers it; CloudWatch may use the key only on behalf of the alarms
    matching `alarm_arn_pattern`, and SNS only for the topic at `topic_arn`.
    """
    same_account = {"aws:SourceAccount": account_id}
    return document(
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


def _root(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:root"


def _via_service(service: str, region: str) -> str:
    return f"{service}.{region}.amazonaws.com"


def _account_administers_key(account_id: str) -> Statement:
    # Without it the key becomes unmanageable; without use actions, an IAM policy granting
    # kms:Decrypt on "*" reads nothing with it.
    return {
        "Sid": "AccountAdministersKey",
        "Effect": "Allow",
        "Principal": {"AWS": _root(account_id)},
        "Action": list(KEY_ADMINISTRATION_ACTIONS),
        "Resource": "*",
    }


def _roles_use_key(
    sid: str,
    account_id: str,
    role_arns: Sequence[str],
    via_services: str | Sequence[str],
    actions: Sequence[str] = ("kms:Decrypt", "kms:GenerateDataKey*"),
) -> Statement:
    """Named roles use the key, through the given services only. The principal is the account
    and the roles a condition: a key policy may not name a role before it exists, and the
    roles are created after the key."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": _root(account_id)},
        "Action": list(actions),
        "Resource": "*",
        "Condition": {
            "ArnEquals": {"aws:PrincipalArn": list(role_arns)},
            "StringEquals": {"kms:ViaService": via_services},
        },
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
    return document(
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


def tls_only_queue_policy(queue_arn: str) -> PolicyDocument:
    """Refuse every request to the queue that does not arrive over TLS: its messages hold
    payment tokens."""
    return document(
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sqs:*",
            "Resource": queue_arn,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )


def log_bucket_policy(bucket_arn: str, reader_role_arns: Sequence[str]) -> PolicyDocument:
    """TLS only, and object contents readable by the named roles alone: an IAM policy that
    grants s3:GetObject on "*" reads no transaction log."""
    policy = tls_only_bucket_policy(bucket_arn)
    policy["Statement"].append(
        {
            "Sid": "DenyObjectReadsButToNamedRoles",
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": f"{bucket_arn}/*",
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": list(reader_role_arns)}},
        }
    )
    return policy


def alarm_topic_policy(topic_arn: str, account_id: str) -> PolicyDocument:
    """Only this account's CloudWatch alarms may publish to the topic, and only over TLS."""
    return document(
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
