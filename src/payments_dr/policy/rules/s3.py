"""S3: every bucket versioned, SSE-KMS, private and TLS-only; transaction logs replicated with RTC.

pulumi-aws 7 splits a bucket's settings over sibling resources that name the bucket, so these are
stack rules: each bucket is joined with the siblings whose `bucket` property points at it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from payments_dr import contract
from payments_dr.policy import tokens
from payments_dr.policy.model import Finding, ResourceView, StackRule, StackView
from payments_dr.policy.props import (
    blocks,
    describe,
    get,
    number,
    refers_to,
    resolve,
    strings,
    text,
    tls_only_findings,
    truthy,
)

KMS_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse"})
PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
RTC_MINUTES = 15.0  # the only value S3 Replication Time Control accepts


def _settings_of(stack: StackView, bucket: ResourceView, setting_type: str) -> list[ResourceView]:
    """The sibling resources of `setting_type` that configure `bucket`."""
    buckets = _buckets(stack)
    return [
        setting
        for setting in stack.of_type(setting_type)
        if refers_to(setting, "bucket", bucket, buckets, "bucket")
    ]


def _buckets(stack: StackView) -> list[ResourceView]:
    return stack.of_type(tokens.S3_BUCKET)


def _check_versioning(stack: StackView) -> Iterator[Finding]:
    for bucket in _buckets(stack):
        settings = _settings_of(stack, bucket, tokens.S3_BUCKET_VERSIONING)
        if not any(
            text(get(s.props, "versioningConfiguration", "status")) == "Enabled" for s in settings
        ):
            yield Finding(
                f"{describe(bucket)} is not versioned. Fix: add an aws.s3.BucketVersioning for it "
                "with versioning_configuration={'status': 'Enabled'}.",
                bucket.urn,
            )


def _uses_kms_key(setting: ResourceView) -> bool:
    for rule in blocks(setting.props.get("rules")):
        default = get(rule, "applyServerSideEncryptionByDefault")
        if text(get(default, "sseAlgorithm")) in KMS_ALGORITHMS and text(
            get(default, "kmsMasterKeyId")
        ):
            return True
    return False


def _check_sse_kms(stack: StackView) -> Iterator[Finding]:
    for bucket in _buckets(stack):
        settings = _settings_of(stack, bucket, tokens.S3_BUCKET_ENCRYPTION)
        if not any(_uses_kms_key(s) for s in settings):
            yield Finding(
                f"{describe(bucket)} is not encrypted with SSE-KMS under a customer-managed key. "
                "Fix: add an aws.s3.BucketServerSideEncryptionConfiguration with "
                "sse_algorithm='aws:kms' and kms_master_key_id=<key ARN> (bucket_key_enabled "
                "keeps KMS costs down).",
                bucket.urn,
            )


def _check_public_access_block(stack: StackView) -> Iterator[Finding]:
    for bucket in _buckets(stack):
        settings = _settings_of(stack, bucket, tokens.S3_BUCKET_PUBLIC_ACCESS_BLOCK)
        missing = set(PUBLIC_ACCESS_FLAGS)
        for setting in settings:
            missing -= {flag for flag in PUBLIC_ACCESS_FLAGS if truthy(setting.props.get(flag))}
        if missing:
            yield Finding(
                f"{describe(bucket)} does not block public access ({', '.join(sorted(missing))} "
                "not set). Fix: add an aws.s3.BucketPublicAccessBlock with all four flags True.",
                bucket.urn,
            )


def _covers_bucket_and_objects(statement: Mapping[str, Any]) -> bool:
    resources = strings(statement.get("Resource"))
    if "*" in resources:
        return True
    return any(r.endswith("/*") for r in resources) and any(not r.endswith("/*") for r in resources)


def _check_tls_only(stack: StackView) -> Iterator[Finding]:
    for bucket in _buckets(stack):
        yield from tls_only_findings(
            bucket,
            _settings_of(stack, bucket, tokens.S3_BUCKET_POLICY),
            "s3",
            "attach an aws.s3.BucketPolicy with a statement that denies s3:* to Principal '*' on "
            "the bucket and its objects when aws:SecureTransport is false.",
            covers=_covers_bucket_and_objects,
        )


@cache
def _log_bucket_pattern() -> re.Pattern[str]:
    """The shape of the contract's transaction-log bucket names, with any stack/region/account."""
    placeholder = "PLACEHOLDER"
    template = re.escape(contract.log_bucket_name(placeholder, placeholder, placeholder))
    return re.compile("^" + template.replace(placeholder, "[a-z0-9-]+") + "$")


def holds_transaction_logs(bucket: ResourceView) -> bool:
    return bool(_log_bucket_pattern().match(text(bucket.props.get("bucket"))))


def _replication_rule_gaps(rule: Any) -> list[str]:
    gaps = []
    rule_id = text(get(rule, "id")) or "(unnamed)"
    if text(get(rule, "status")) != "Enabled":
        gaps.append(f"rule {rule_id} is not Enabled")
    rtc = get(rule, "destination", "replicationTime")
    if text(get(rtc, "status")) != "Enabled" or number(get(rtc, "time", "minutes")) != RTC_MINUTES:
        gaps.append(f"rule {rule_id} has no Replication Time Control (15 minutes)")
    metrics = get(rule, "destination", "metrics")
    if text(get(metrics, "status")) != "Enabled":
        gaps.append(f"rule {rule_id} has no replication metrics")
    elif number(get(metrics, "eventThreshold", "minutes")) != RTC_MINUTES:
        # S3 refuses RTC unless the metrics' event threshold is the same 15 minutes.
        gaps.append(f"rule {rule_id} has no 15-minute replication metrics event threshold")
    if text(get(rule, "deleteMarkerReplication", "status")) != "Enabled":
        gaps.append(f"rule {rule_id} does not replicate delete markers")
    if not text(get(rule, "destination", "encryptionConfiguration", "replicaKmsKeyId")):
        gaps.append(f"rule {rule_id} names no replica KMS key")
    if text(get(rule, "sourceSelectionCriteria", "sseKmsEncryptedObjects", "status")) != "Enabled":
        gaps.append(f"rule {rule_id} skips SSE-KMS encrypted objects")
    return gaps


def _replicated_buckets(
    stack: StackView, config: ResourceView, source: ResourceView
) -> list[ResourceView]:
    """The source bucket and every destination bucket its rules name."""
    buckets = _buckets(stack)
    found = {source.urn: source}
    for rule in blocks(config.props.get("rules")):
        arn = text(get(rule, "destination", "bucket"))
        name = arn.removeprefix("arn:aws:s3:::") if arn else ""
        for bucket in resolve(config, "rules", buckets, "bucket", value=name or None):
            found[bucket.urn] = bucket
    return list(found.values())


def _unversioned_dependencies(
    stack: StackView, config: ResourceView, source: ResourceView
) -> list[str]:
    """Buckets of the configuration whose versioning it does not wait for."""
    return [
        text(bucket.props.get("bucket")) or bucket.name
        for bucket in _replicated_buckets(stack, config, source)
        if not any(
            versioning.urn in config.dependencies
            for versioning in _settings_of(stack, bucket, tokens.S3_BUCKET_VERSIONING)
        )
    ]


def _check_log_replication(stack: StackView) -> Iterator[Finding]:
    for bucket in _buckets(stack):
        configs = _settings_of(stack, bucket, tokens.S3_BUCKET_REPLICATION)
        if holds_transaction_logs(bucket) and not configs:
            yield Finding(
                f"{describe(bucket)} holds transaction logs but is not replicated. Fix: add an "
                "aws.s3.BucketReplicationConfig to the other region's log bucket with "
                "Replication Time Control, depending on versioning of both buckets.",
                bucket.urn,
            )
        for config in configs:
            rules = blocks(config.props.get("rules"))
            gaps = (
                [gap for rule in rules for gap in _replication_rule_gaps(rule)]
                if rules
                else ["it has no rules"]
            )
            unordered = _unversioned_dependencies(stack, config, bucket)
            if unordered:
                # S3 refuses the configuration while either side is still unversioned.
                gaps.append(
                    f"it does not depend on the versioning of {', '.join(sorted(unordered))}"
                )
            if gaps:
                yield Finding(
                    f"{describe(config)} for {describe(bucket)}: {'; '.join(gaps)}. Fix: enable "
                    "each rule with replication_time (15 minutes) and metrics (event_threshold "
                    "15 minutes), delete-marker "
                    "replication, sse_kms_encrypted_objects and a replica_kms_key_id; "
                    "depends_on the BucketVersioning of both buckets.",
                    config.urn,
                )


RULES = (
    StackRule(
        name="s3-versioning",
        description="Every S3 bucket has versioning enabled.",
        check=_check_versioning,
    ),
    StackRule(
        name="s3-sse-kms",
        description="Every S3 bucket is encrypted with SSE-KMS under a customer-managed key.",
        check=_check_sse_kms,
    ),
    StackRule(
        name="s3-public-access-block",
        description="Every S3 bucket blocks all public access.",
        check=_check_public_access_block,
    ),
    StackRule(
        name="s3-tls-only",
        description="Every S3 bucket policy denies requests that do not use TLS.",
        check=_check_tls_only,
    ),
    StackRule(
        name="s3-log-replication",
        description=(
            "Transaction-log buckets are replicated, and every replication rule has Replication "
            "Time Control, metrics, delete-marker replication and a replica KMS key."
        ),
        check=_check_log_replication,
    ),
)
