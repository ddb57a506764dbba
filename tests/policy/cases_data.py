"""Rule cases: tables, buckets, queues, keys and secrets."""

from __future__ import annotations

import json

from mutations import (
    BUCKET,
    EAST,
    ROOT_DECRYPTS,
    ROOT_KMS_STAR,
    TABLE,
    WEST,
    Case,
    consume_failure_destination,
    consume_retry_queue_without_redrive,
    drop,
    keep_dependencies,
    policy_json,
    set_at,
)
from policy_stack import ACCOUNT, STACK

from payments_dr.contract import log_bucket_name

CASES = [
    Case(
        "secret-aws-managed-key",
        set_at("id-secret", "alias/aws/secretsmanager", "kmsKeyId"),
        "secrets-customer-managed-key",
        "is not encrypted with a customer-managed KMS key",
        "id-secret",
    ),
    Case(
        "secret-replica-no-key",
        set_at("id-secret", None, "replicas", 0, "kmsKeyId"),
        "secrets-customer-managed-key",
        f"its replica in {WEST} has no customer-managed KMS key",
        "id-secret",
    ),
    Case(
        "table-pitr",
        set_at(TABLE, {"enabled": False}, "pointInTimeRecovery"),
        "dynamodb-point-in-time-recovery",
        "Table 'payments-table' in us-east-1 has no point-in-time recovery",
        TABLE,
    ),
    Case(
        "replica-pitr",
        set_at(TABLE, None, "replicas", 0, "pointInTimeRecovery"),
        "dynamodb-point-in-time-recovery",
        f"its replica in {WEST} has no point-in-time recovery",
        TABLE,
    ),
    Case(
        "table-aws-owned-key",
        set_at(TABLE, {"enabled": False}, "serverSideEncryption"),
        "dynamodb-customer-managed-key",
        "is not encrypted with a customer-managed KMS key",
        TABLE,
    ),
    Case(
        "replica-no-key",
        set_at(TABLE, None, "replicas", 0, "kmsKeyArn"),
        "dynamodb-customer-managed-key",
        f"its replica in {WEST} has no customer-managed KMS key",
        TABLE,
    ),
    Case(
        "table-deletable",
        set_at(TABLE, False, "deletionProtectionEnabled"),
        "dynamodb-deletion-protection",
        "has no deletion protection. Fix: set deletion_protection_enabled=True",
        TABLE,
    ),
    Case(
        "replica-deletable",
        set_at(TABLE, None, "replicas", 0, "deletionProtectionEnabled"),
        "dynamodb-deletion-protection",
        f"its replica in {WEST} has no deletion protection",
        TABLE,
    ),
    Case(
        "bucket-unversioned",
        set_at(f"txlog-versioning-{EAST}", {"status": "Suspended"}, "versioningConfiguration"),
        "s3-versioning",
        f"Bucket '{BUCKET}' in {EAST} is not versioned",
        BUCKET,
    ),
    Case(
        "bucket-sse-s3",
        set_at(
            f"txlog-encryption-{EAST}",
            [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}],
            "rules",
        ),
        "s3-sse-kms",
        "is not encrypted with SSE-KMS",
        BUCKET,
    ),
    Case(
        "bucket-public",
        set_at(f"txlog-public-access-{EAST}", False, "restrictPublicBuckets"),
        "s3-public-access-block",
        "does not block public access (restrictPublicBuckets not set)",
        BUCKET,
    ),
    Case(
        "bucket-without-public-access-block",
        drop(f"txlog-public-access-{EAST}"),
        "s3-public-access-block",
        "blockPublicAcls, blockPublicPolicy, ignorePublicAcls, restrictPublicBuckets not set",
        BUCKET,
    ),
    Case(
        "bucket-allows-plain-http",
        set_at(
            f"txlog-policy-{EAST}",
            policy_json({"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject"}),
            "policy",
        ),
        "s3-tls-only",
        "accepts requests without TLS",
        BUCKET,
    ),
    Case(
        "tls-deny-misses-objects",
        set_at(
            f"txlog-policy-{EAST}",
            policy_json(
                {
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "Action": "s3:*",
                    "Resource": f"arn:aws:s3:::{log_bucket_name(STACK, EAST, ACCOUNT)}",
                    "Condition": {"Bool": {"aws:SecureTransport": False}},
                }
            ),
            "policy",
        ),
        "s3-tls-only",
        "on the bucket and its objects",
        BUCKET,
    ),
    Case(
        "log-bucket-not-replicated",
        drop(f"txlog-replication-{EAST}"),
        "s3-log-replication",
        "holds transaction logs but is not replicated",
        BUCKET,
    ),
    Case(
        "replication-without-rtc",
        set_at(f"txlog-replication-{EAST}", None, "rules", 0, "destination", "replicationTime"),
        "s3-log-replication",
        "rule txlog has no Replication Time Control (15 minutes)",
        f"txlog-replication-{EAST}",
    ),
    Case(
        "replication-metrics-without-event-threshold",
        set_at(
            f"txlog-replication-{EAST}",
            None,
            "rules",
            0,
            "destination",
            "metrics",
            "eventThreshold",
        ),
        "s3-log-replication",
        "rule txlog has no 15-minute replication metrics event threshold",
        f"txlog-replication-{EAST}",
    ),
    Case(
        "replication-before-peer-versioning",
        keep_dependencies(f"txlog-replication-{EAST}", f"txlog-versioning-{EAST}"),
        "s3-log-replication",
        f"it does not depend on the versioning of {log_bucket_name(STACK, WEST, ACCOUNT)}",
        f"txlog-replication-{EAST}",
    ),
    Case(
        "queue-unencrypted",
        set_at(f"retry-{EAST}", None, "kmsMasterKeyId"),
        "sqs-encryption",
        f"Queue 'retry-{EAST}' in {EAST} is not encrypted",
        f"retry-{EAST}",
    ),
    Case(
        "queue-without-redrive",
        set_at(f"retry-{EAST}", None, "redrivePolicy"),
        "sqs-redrive-policy",
        "has no usable redrive policy",
        f"retry-{EAST}",
    ),
    Case(
        "redrive-never-triggers",
        set_at(
            f"retry-{WEST}",
            json.dumps({"deadLetterTargetArn": "arn:aws:sqs:x", "maxReceiveCount": 0}),
            "redrivePolicy",
        ),
        "sqs-redrive-policy",
        f"Queue 'retry-{WEST}' in {WEST} has no usable redrive policy",
        f"retry-{WEST}",
    ),
    Case(
        "consumed-work-queue-without-redrive",
        consume_retry_queue_without_redrive,
        "sqs-redrive-policy",
        f"Queue 'retry-{EAST}' in {EAST} has no usable redrive policy",
        f"retry-{EAST}",
    ),
    Case(
        # The queue is terminal only because the mapping sends failures to it.
        "mapping-loses-its-failure-destination",
        set_at(f"table-stream-source-{EAST}", None, "destinationConfig"),
        "sqs-redrive-policy",
        f"Queue 'archive-failures-{EAST}' in {EAST} has no usable redrive policy",
        f"archive-failures-{EAST}",
    ),
    Case(
        # Consumed, it is a work queue: being a failure destination as well exempts nothing.
        "consumed-failure-destination-without-redrive",
        consume_failure_destination,
        "sqs-redrive-policy",
        f"Queue 'archive-failures-{EAST}' in {EAST} has no usable redrive policy",
        f"archive-failures-{EAST}",
    ),
    Case(
        "failure-destination-short-retention",
        set_at(f"archive-failures-{WEST}", 86400.0, "messageRetentionSeconds"),
        "sqs-dlq-retention",
        "is a failure destination keeping messages 86400 s, less than 14 days",
        f"archive-failures-{WEST}",
    ),
    Case(
        "dlq-short-retention",
        set_at(f"retry-dlq-{EAST}", 345600.0, "messageRetentionSeconds"),
        "sqs-dlq-retention",
        "is a dead-letter queue keeping messages 345600 s, less than 14 days",
        f"retry-dlq-{EAST}",
    ),
    Case(
        "key-policy-gives-the-account-kms-star",
        set_at(f"log-key-{EAST}", json.dumps(ROOT_KMS_STAR), "policy"),
        "kms-administration-apart-from-use",
        "gives the account kms:* (statement 'EnableIamUserPermissions') with no separate",
        f"log-key-{EAST}",
    ),
    Case(
        "key-policy-lets-the-account-decrypt-directly",
        set_at(f"data-key-{WEST}", json.dumps(ROOT_DECRYPTS), "policy"),
        "kms-administration-apart-from-use",
        "lets the whole account use the key directly (statement 'Use')",
        f"data-key-{WEST}",
    ),
    Case(
        "key-without-a-policy",
        set_at(f"data-key-{EAST}", None, "policy"),
        "kms-administration-apart-from-use",
        "has no key policy, so AWS gives the account kms:*",
        f"data-key-{EAST}",
    ),
    Case(
        "queue-without-tls-policy",
        set_at(f"retry-{WEST}", None, "policy"),
        "sqs-tls-only",
        f"Queue 'retry-{WEST}' in {WEST} accepts requests without TLS",
        f"retry-{WEST}",
    ),
    Case(
        "queue-policy-denies-only-sends",
        set_at(
            f"retry-dlq-{EAST}",
            json.dumps(
                {
                    "Statement": [
                        {
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "sqs:SendMessage",
                            "Resource": "*",
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ]
                }
            ),
            "policy",
        ),
        "sqs-tls-only",
        "accepts requests without TLS",
        f"retry-dlq-{EAST}",
    ),
]
