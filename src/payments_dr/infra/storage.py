"""Storage layer: a transaction-log bucket per region, replicated in both directions.

Each bucket is versioned, encrypted with the region's key, closed to the public and to plain
HTTP. Replication runs both ways (so failback finds complete logs) with Replication Time
Control; each direction waits for versioning on *both* buckets, which S3 requires.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from payments_dr import contract
from payments_dr.contract import Function
from payments_dr.infra import iam, resource_policies, role_names
from payments_dr.infra.buckets import private_bucket

RTC_MINUTES = 15  # the only value S3 Replication Time Control accepts
INFREQUENT_ACCESS_AFTER_DAYS = 30
GLACIER_AFTER_DAYS = 180
NONCURRENT_VERSION_EXPIRY_DAYS = 90
ABORT_MULTIPART_AFTER_DAYS = 7
# S3 bills objects in these classes for at least this long: a transition is worth making only
# when the object stays that long before it expires.
MINIMUM_STORAGE_DAYS = {"STANDARD_IA": 30, "GLACIER": 90}


def replication_rule_id(destination_region: str) -> str:
    """Names the rule; S3 replication metrics carry it as the RuleId dimension."""
    return f"txlog-to-{destination_region}"


@dataclass(frozen=True)
class StorageArgs:
    stack: str
    account_id: str
    regions: tuple[str, str]
    key_arns: Mapping[str, pulumi.Input[str]]
    log_retention_days: int  # transaction-log objects expire this long after they are written
    tags: Mapping[str, str]
    break_glass_role_arn: str | None = None  # the operators' role that may read the logs


class Storage(pulumi.ComponentResource):
    """Transaction-log buckets and two-way cross-region replication."""

    def __init__(
        self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("payments-dr:infra:Storage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.buckets: dict[str, aws.s3.Bucket] = {}
        self.bucket_names: dict[str, str] = {}
        self.bucket_arns: dict[str, str] = {}
        versionings: dict[str, aws.s3.BucketVersioning] = {}
        for region in args.regions:
            bucket_name = contract.log_bucket_name(args.stack, region, args.account_id)
            bucket, versioning = self._bucket(name, region, bucket_name, args, child)
            self.buckets[region] = bucket
            self.bucket_names[region] = bucket_name
            self.bucket_arns[region] = f"arn:aws:s3:::{bucket_name}"
            versionings[region] = versioning

        self.replication_roles: dict[str, aws.iam.Role] = {}
        self.replication_configs: dict[str, aws.s3.BucketReplicationConfig] = {}
        source, destination = args.regions
        for source_region, destination_region in ((source, destination), (destination, source)):
            role = aws.iam.Role(
                f"{name}-replication-{source_region}",
                # Named, so the data key and the bucket policies can name it before it exists.
                name=role_names.replication_role_name(source_region),
                path=role_names.role_path(args.stack),
                assume_role_policy=json.dumps(
                    iam.service_assume_role_policy("s3.amazonaws.com", args.account_id)
                ),
                description=f"S3 replication {source_region} -> {destination_region}",
                tags=dict(args.tags),
                opts=child,
            )
            policy = aws.iam.RolePolicy(
                f"{name}-replication-{source_region}",
                role=role.id,
                policy=pulumi.Output.all(
                    args.key_arns[source_region], args.key_arns[destination_region]
                ).apply(
                    functools.partial(
                        _replication_policy_json,
                        source_bucket_arn=self.bucket_arns[source_region],
                        destination_bucket_arn=self.bucket_arns[destination_region],
                        source_region=source_region,
                        destination_region=destination_region,
                    )
                ),
                opts=child,
            )
            self.replication_roles[source_region] = role
            self.replication_configs[source_region] = aws.s3.BucketReplicationConfig(
                f"{name}-replication-{source_region}",
                region=source_region,
                bucket=self.buckets[source_region].id,
                role=role.arn,
                rules=[
                    {
                        "id": replication_rule_id(destination_region),
                        "status": "Enabled",
                        "priority": 1,
                        "filter": {"prefix": contract.LOG_PREFIX},
                        "delete_marker_replication": {"status": "Enabled"},
                        "source_selection_criteria": {
                            "sse_kms_encrypted_objects": {"status": "Enabled"}
                        },
                        "destination": {
                            "bucket": self.buckets[destination_region].arn,
                            "storage_class": "STANDARD",
                            "encryption_configuration": {
                                "replica_kms_key_id": args.key_arns[destination_region]
                            },
                            "replication_time": {
                                "status": "Enabled",
                                "time": {"minutes": RTC_MINUTES},
                            },
                            "metrics": {
                                "status": "Enabled",
                                "event_threshold": {"minutes": RTC_MINUTES},
                            },
                        },
                    }
                ],
                # S3 rejects a replication configuration until both sides are versioned.
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[
                        versionings[source_region],
                        versionings[destination_region],
                        policy,
                    ],
                ),
            )

        self.register_outputs({"bucket_names": self.bucket_names})

    @staticmethod
    def _log_readers(region: str, args: StorageArgs) -> list[str]:
        """Who may read the objects of `region`'s bucket: its archiver, replication, and the
        break-glass role."""
        readers = [
            role_names.role_arn(
                args.account_id,
                args.stack,
                role_names.function_role_name(Function.LOG_ARCHIVER, region),
            ),
            *(
                role_names.role_arn(
                    args.account_id, args.stack, role_names.replication_role_name(source)
                )
                for source in args.regions
            ),
        ]
        if args.break_glass_role_arn is not None:
            readers.append(args.break_glass_role_arn)
        return readers

    def _bucket(
        self,
        name: str,
        region: str,
        bucket_name: str,
        args: StorageArgs,
        child: pulumi.ResourceOptions,
    ) -> tuple[aws.s3.Bucket, aws.s3.BucketVersioning]:
        prefix = f"{name}-{region}"
        bucket, versioning = private_bucket(
            f"{prefix}-bucket",
            prefix,
            region,
            bucket_name,
            args.key_arns[region],
            dict(args.tags),
            child,
        )
        aws.s3.BucketPolicy(
            f"{prefix}-tls-only",
            region=region,
            bucket=bucket.id,
            policy=json.dumps(
                resource_policies.log_bucket_policy(
                    f"arn:aws:s3:::{bucket_name}", self._log_readers(region, args)
                )
            ),
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{prefix}-lifecycle",
            region=region,
            bucket=bucket.id,
            rules=lifecycle_rules(args.log_retention_days),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        return bucket, versioning


def lifecycle_rules(retention_days: int) -> list[aws.s3.BucketLifecycleConfigurationRuleArgsDict]:
    """Age the logs into cheaper classes, expire them after `retention_days`.

    Expiry puts a delete marker on the current version; the version itself goes 90 days
    later with the noncurrent versions (time to undo a mistake). Each bucket expires its own
    copies: S3 does not replicate lifecycle actions, and both buckets get the same rules.
    """
    transitions: list[aws.s3.BucketLifecycleConfigurationRuleTransitionArgsDict] = [
        {"days": days, "storage_class": storage_class}
        for days, storage_class in (
            (INFREQUENT_ACCESS_AFTER_DAYS, "STANDARD_IA"),
            (GLACIER_AFTER_DAYS, "GLACIER"),
        )
        if days + MINIMUM_STORAGE_DAYS[storage_class] <= retention_days
    ]
    return [
        {
            "id": "age-transaction-logs",
            "status": "Enabled",
            "filter": {"prefix": contract.LOG_PREFIX},
            "transitions": transitions,
            "expiration": {"days": retention_days},
            "noncurrent_version_expiration": {"noncurrent_days": NONCURRENT_VERSION_EXPIRY_DAYS},
        },
        {
            "id": "abort-incomplete-uploads",
            "status": "Enabled",
            "filter": {},
            "abort_incomplete_multipart_upload": {
                "days_after_initiation": ABORT_MULTIPART_AFTER_DAYS
            },
            # The markers expiry leaves once their last version is gone.
            "expiration": {"expired_object_delete_marker": True},
        },
    ]


def _replication_policy_json(
    key_arns: list[str],
    *,
    source_bucket_arn: str,
    destination_bucket_arn: str,
    source_region: str,
    destination_region: str,
) -> str:
    source_key_arn, destination_key_arn = key_arns
    return json.dumps(
        iam.replication_policy(
            source_bucket_arn=source_bucket_arn,
            destination_bucket_arn=destination_bucket_arn,
            source_key_arn=source_key_arn,
            destination_key_arn=destination_key_arn,
            source_region=source_region,
            destination_region=destination_region,
        )
    )
