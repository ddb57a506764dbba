"""Resource policies of the stack: the customer-managed keys, the buckets and the alarm topics.

Pure functions of ARNs and names, like `iam`. In a key policy a `"*"` resource means "this key".
"""

from __future__ import annotations

from typing import Any

from payments_dr.infra.iam import PolicyDocument, Statement, document


def key_policy(region: str, account_id: str) -> PolicyDocument:
    """Policy of the stack's customer-managed key (and its replica) in one region.

    The account keeps administration (without it the key becomes unmanageable); CloudWatch may
    use the key for alarm notifications to the encrypted topic, and CloudWatch Logs for this
    region's log groups only.
    """
    return document(
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
