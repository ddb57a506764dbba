"""Watch each region from the other: a CloudWatch Synthetics canary in the watching region
probes the *other* region's own API name (health, then a test payment written and read
back, `payments_dr.service.canary`), and an alarm on its success rate notifies the watching
region's topic. When a region fails, the page about it comes from the region that did not.

The canary runs outside the VPC (the stack's subnets have no route to the internet, and the
probe must reach the other region's public API name, as a merchant would). Its test merchant
key lives in a Secrets Manager secret of the watching region, encrypted with that region's
key; the stack creates the secret empty and `payments-dr canary enrol` puts the key in it,
so no key ever passes through code, state or outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pulumi
import pulumi_aws as aws

import payments_dr
from payments_dr import contract
from payments_dr.infra import canary_iam, iam, resource_policies
from payments_dr.infra.alarms import AlarmFactory, AlarmPurpose
from payments_dr.infra.buckets import private_bucket
from payments_dr.infra.metrics import canary_success
from payments_dr.service.artifact import FILE_MODE, FIXED_TIMESTAMP

# The newest Python runtime (Python 3.11) at the time of writing; Synthetics deprecates
# runtimes on a schedule ("Runtime versions support policy"): 5.1 and older went on
# 3 February 2026.
CANARY_RUNTIME: Final = "syn-python-selenium-8.0"
CANARY_HANDLER: Final = "canary.handler"  # python/canary.py in the zip
CANARY_TIMEOUT_SECONDS: Final = 60
# Two failed runs in a row page: one failure can be a blip of the network between regions.
CANARY_FAILED_RUNS_TO_ALARM: Final = 2
ARTIFACT_RETENTION_DAYS: Final = 30
SECRET_RECOVERY_DAYS: Final = 7
CANARY_ZIP_PREFIX: Final = "payments-dr-canary"


def canary_alarm_key(target_region: str) -> str:
    return f"{AlarmPurpose.CANARY.value}-{target_region}"


def canary_bucket_name(stack: str, region: str, account_id: str) -> str:
    return f"{contract.PROJECT}-{stack}-canary-{account_id}-{region}"


def schedule_expression(minutes: int) -> str:
    return f"rate({minutes} minute{'s' if minutes > 1 else ''})"


@dataclass(frozen=True)
class CrossRegionCanaryArgs:
    stack: str
    region: str  # where the canary runs and alarms
    target_region: str  # the region it probes
    target_url: pulumi.Input[str]  # https://api.<target region>.<domain>
    account_id: str
    key_arn: pulumi.Input[str]  # the watching region's key
    alarm_topic_arn: pulumi.Output[str]  # the watching region's topic
    interval_minutes: int
    zip_path: Path
    tags: Mapping[str, str] = field(default_factory=dict)


class CrossRegionCanary(pulumi.ComponentResource):
    """One canary in `region` probing `target_region`, its bucket, role, secret and alarm."""

    def __init__(
        self, name: str, args: CrossRegionCanaryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("payments-dr:infra:CrossRegionCanary", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        region, tags = args.region, dict(args.tags)
        self.canary_name = contract.canary_name(args.stack, args.target_region)
        self.secret = aws.secretsmanager.Secret(
            f"{name}-merchant-key",
            region=region,
            name=contract.canary_secret_name(args.stack, args.target_region),
            description=(
                f"API key of the test merchant {contract.CANARY_MERCHANT_ID}, used by the canary"
                f" probing {args.target_region}; set by `payments-dr canary enrol`"
            ),
            kms_key_id=args.key_arn,
            recovery_window_in_days=SECRET_RECOVERY_DAYS,
            tags=tags,
            opts=child,
        )
        self.bucket_name = canary_bucket_name(args.stack, region, args.account_id)
        bucket = _artifact_bucket(name, region, self.bucket_name, args.key_arn, tags, child)
        prefix = f"{args.target_region}/"
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=json.dumps(
                iam.service_assume_role_policy("lambda.amazonaws.com", args.account_id)
            ),
            description=f"{self.canary_name} in {region}",
            tags=tags,
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.all(self.secret.arn, args.key_arn).apply(
                lambda resolved: json.dumps(
                    canary_iam.canary_policy(
                        canary_iam.CanaryScope(
                            region=region,
                            account_id=args.account_id,
                            canary_name=self.canary_name,
                            bucket_arn=f"arn:aws:s3:::{self.bucket_name}",
                            artifact_prefix=prefix,
                            secret_arn=resolved[0],
                            key_arn=resolved[1],
                        )
                    )
                )
            ),
            opts=child,
        )
        self.canary = aws.synthetics.Canary(
            name,
            region=region,
            name=self.canary_name,
            runtime_version=CANARY_RUNTIME,
            handler=CANARY_HANDLER,
            zip_file=str(args.zip_path),
            execution_role_arn=role.arn,
            artifact_s3_location=pulumi.Output.concat("s3://", bucket.bucket, "/", prefix),
            artifact_config={
                "s3_encryption": {"encryption_mode": "SSE_KMS", "kms_key_arn": args.key_arn}
            },
            kms_key_arn=args.key_arn,  # its environment
            schedule={"expression": schedule_expression(args.interval_minutes)},
            run_config={
                "timeout_in_seconds": CANARY_TIMEOUT_SECONDS,
                "active_tracing": True,
                "environment_variables": {
                    contract.ENV_CANARY_TARGET_URL: args.target_url,
                    contract.ENV_CANARY_TARGET_REGION: args.target_region,
                    contract.ENV_CANARY_SECRET_ID: self.secret.arn,
                },
            },
            start_canary=True,
            delete_lambda=True,  # `pulumi destroy` removes the function Synthetics made
            success_retention_period=ARTIFACT_RETENTION_DAYS,
            failure_retention_period=ARTIFACT_RETENTION_DAYS,
            tags=tags,
            # The role must carry its permissions before the first run.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        factory = AlarmFactory(name, region, args.stack, args.alarm_topic_arn, tags, child)
        factory.alarm(
            canary_alarm_key(args.target_region),
            f"The canary in {region} cannot pay through {args.target_region}'s API"
            f" ({CANARY_FAILED_RUNS_TO_ALARM} runs in a row): check {args.target_region} and"
            " fail over if it is failing (runbooks: failover)",
            canary_success(self.canary.name),
            statistic="Average",
            threshold=100,
            comparison="LessThanThreshold",
            evaluation_periods=CANARY_FAILED_RUNS_TO_ALARM,
            # A canary that stopped running watches nothing: silence pages too.
            treat_missing_data="breaching",
            period_seconds=args.interval_minutes * 60,
        )
        self.alarms = factory.alarms
        self.alarm_arns = {key: alarm.arn for key, alarm in self.alarms.items()}
        self.register_outputs(
            {"canary_name": self.canary.name, "secret_arn": self.secret.arn, **self.alarm_arns}
        )


def _artifact_bucket(
    name: str,
    region: str,
    bucket_name: str,
    key_arn: pulumi.Input[str],
    tags: dict[str, str],
    child: pulumi.ResourceOptions,
) -> aws.s3.Bucket:
    """Private, versioned, KMS-encrypted, TLS-only; run artifacts expire after a month."""
    prefix = f"{name}-artifacts"
    bucket, versioning = private_bucket(prefix, prefix, region, bucket_name, key_arn, tags, child)
    aws.s3.BucketPolicy(
        f"{name}-artifacts-tls-only",
        region=region,
        bucket=bucket.id,
        policy=json.dumps(resource_policies.tls_only_bucket_policy(f"arn:aws:s3:::{bucket_name}")),
        opts=child,
    )
    aws.s3.BucketLifecycleConfiguration(
        f"{name}-artifacts-lifecycle",
        region=region,
        bucket=bucket.id,
        rules=[
            {
                "id": "expire-run-artifacts",
                "status": "Enabled",
                "filter": {},
                "expiration": {"days": ARTIFACT_RETENTION_DAYS},
                "noncurrent_version_expiration": {"noncurrent_days": 1},
                "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
            }
        ],
        opts=pulumi.ResourceOptions(parent=child.parent, depends_on=[versioning]),
    )
    return bucket


# --- the code Synthetics runs ----------------------------------------------------------------
_SHIM = 'from payments_dr.service.canary import handler\n\n__all__ = ["handler"]\n'


def canary_zip_entries() -> dict[str, bytes]:
    """Synthetics' Python layout: modules under python/, the handler file at its top."""
    package = Path(payments_dr.__file__).parent
    return {
        "python/canary.py": _SHIM.encode(),
        "python/payments_dr/__init__.py": (package / "__init__.py").read_bytes(),
        "python/payments_dr/contract.py": (package / "contract.py").read_bytes(),
        "python/payments_dr/service/__init__.py": (
            package / "service" / "__init__.py"
        ).read_bytes(),
        "python/payments_dr/service/canary.py": (package / "service" / "canary.py").read_bytes(),
    }


def build_canary_zip(dest_dir: Path) -> Path:
    """A reproducible zip (sorted entries, fixed times and modes) named by its hash."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    entries = canary_zip_entries()
    # Written beside the target and renamed: concurrent builds never see a partial zip.
    handle, temporary_name = tempfile.mkstemp(prefix=f".{CANARY_ZIP_PREFIX}-", dir=dest_dir)
    os.close(handle)
    temporary = Path(temporary_name)
    with zipfile.ZipFile(temporary, "w") as archive:
        for archive_name in sorted(entries):
            info = zipfile.ZipInfo(archive_name, date_time=FIXED_TIMESTAMP)
            info.external_attr = FILE_MODE << 16
            info.create_system = 3
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[archive_name], compresslevel=9)
    digest = hashlib.sha256(temporary.read_bytes()).hexdigest()
    target = dest_dir / f"{CANARY_ZIP_PREFIX}-{digest[:16]}.zip"
    temporary.chmod(0o644)
    temporary.replace(target)
    return target
