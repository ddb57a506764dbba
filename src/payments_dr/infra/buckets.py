"""The settings every bucket of the stack shares: nobody outside the account reads it."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws


def private_bucket(
    bucket_resource: str,
    prefix: str,
    region: str,
    bucket_name: str,
    key_arn: pulumi.Input[str],
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> tuple[aws.s3.Bucket, aws.s3.BucketVersioning]:
    """A bucket with public access blocked, no ACLs (the owner owns every object), versioning
    and encryption with the customer-managed key `key_arn`. Its policy and lifecycle are the
    caller's; a lifecycle must depend on the returned versioning."""
    bucket = aws.s3.Bucket(bucket_resource, region=region, bucket=bucket_name, tags=tags, opts=opts)
    aws.s3.BucketPublicAccessBlock(
        f"{prefix}-public-access-block",
        region=region,
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=opts,
    )
    aws.s3.BucketOwnershipControls(
        f"{prefix}-ownership",
        region=region,
        bucket=bucket.id,
        rule={"object_ownership": "BucketOwnerEnforced"},  # no ACLs at all
        opts=opts,
    )
    versioning = aws.s3.BucketVersioning(
        f"{prefix}-versioning",
        region=region,
        bucket=bucket.id,
        versioning_configuration={"status": "Enabled"},
        opts=opts,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{prefix}-encryption",
        region=region,
        bucket=bucket.id,
        rules=[
            {
                "apply_server_side_encryption_by_default": {
                    "sse_algorithm": "aws:kms",
                    "kms_master_key_id": key_arn,
                },
                "bucket_key_enabled": True,  # fewer KMS calls per object
            }
        ],
        opts=opts,
    )
    return bucket, versioning
