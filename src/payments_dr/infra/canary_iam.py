"""The policy of a cross-region canary's execution role: what Synthetics needs to run it
(artifacts, logs, its metrics, traces) and the test merchant's key, nothing else.

Synthetics runs a canary as a Lambda function named `cwsyn-<canary name>-<id>` and lists the
permissions its role needs in "Required roles and permissions for canaries" (CloudWatch user
guide); each is scoped here to this canary's bucket prefix, log groups and secret.
"""

from __future__ import annotations

from dataclasses import dataclass

from payments_dr.infra.iam import PolicyDocument, allow, document
from payments_dr.infra.metrics import SYNTHETICS_NAMESPACE


@dataclass(frozen=True)
class CanaryScope:
    region: str  # where the canary runs
    account_id: str
    canary_name: str
    bucket_arn: str  # its artifact bucket
    artifact_prefix: str  # its runs' folder in the bucket, e.g. "us-east-1/"
    secret_arn: str  # the test merchant's key
    key_arn: str  # the region's key: the secret and the artifacts are encrypted with it


def canary_policy(scope: CanaryScope) -> PolicyDocument:
    region, account = scope.region, scope.account_id
    log_groups = (
        f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/cwsyn-{scope.canary_name}-*"
    )
    return document(
        allow(
            "WriteRunArtifacts", ["s3:PutObject"], [f"{scope.bucket_arn}/{scope.artifact_prefix}*"]
        ),
        allow("LocateArtifactBucket", ["s3:GetBucketLocation"], [scope.bucket_arn]),
        # Synthetics checks the artifact bucket by listing buckets; the action has no
        # resource type.
        allow("ListBucketsForArtifacts", ["s3:ListAllMyBuckets"], ["*"]),
        allow(
            "WriteOwnLogs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            [log_groups, f"{log_groups}:log-stream:*"],
        ),
        allow(
            "PublishCanaryMetrics",
            ["cloudwatch:PutMetricData"],
            ["*"],
            Condition={"StringEquals": {"cloudwatch:namespace": SYNTHETICS_NAMESPACE}},
        ),
        allow("SendTraces", ["xray:PutTraceSegments"], ["*"]),
        allow("ReadTestMerchantKey", ["secretsmanager:GetSecretValue"], [scope.secret_arn]),
        allow(
            "DecryptTestMerchantKey",
            ["kms:Decrypt"],
            [scope.key_arn],
            Condition={
                "StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}
            },
        ),
        allow(
            "EncryptArtifacts",
            ["kms:GenerateDataKey"],
            [scope.key_arn],
            Condition={"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
        ),
    )
