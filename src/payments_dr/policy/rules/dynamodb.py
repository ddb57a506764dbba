"""DynamoDB: recoverable, encrypted with our own key, and hard to delete - in every region."""

from __future__ import annotations

from collections.abc import Iterator

from payments_dr.policy import tokens
from payments_dr.policy.model import ResourceRule, ResourceView
from payments_dr.policy.props import blocks, describe, get, text, truthy

_TABLES = frozenset({tokens.DYNAMODB_TABLE, tokens.DYNAMODB_TABLE_REPLICA})


def _inline_replicas(view: ResourceView) -> list[tuple[str, object]]:
    """(region, replica block) for each replica declared on a table."""
    return [
        (text(get(replica, "regionName")) or "?", replica)
        for replica in blocks(view.props.get("replicas"))
    ]


def _check_pitr(view: ResourceView) -> Iterator[str]:
    if view.type == tokens.DYNAMODB_TABLE_REPLICA:
        if not truthy(view.props.get("pointInTimeRecovery")):
            yield (
                f"{describe(view)} has no point-in-time recovery. "
                "Fix: set point_in_time_recovery=True on the replica."
            )
        return
    if not truthy(get(view.props, "pointInTimeRecovery", "enabled")):
        yield (
            f"{describe(view)} has no point-in-time recovery. "
            "Fix: set point_in_time_recovery={'enabled': True} on the table."
        )
    for region, replica in _inline_replicas(view):
        if not truthy(get(replica, "pointInTimeRecovery")):
            yield (
                f"{describe(view)}: its replica in {region} has no point-in-time recovery "
                "(replicas default to off). Fix: set point_in_time_recovery=True in that "
                "TableReplicaArgs."
            )


def _check_customer_managed_key(view: ResourceView) -> Iterator[str]:
    if view.type == tokens.DYNAMODB_TABLE_REPLICA:
        if not text(view.props.get("kmsKeyArn")):
            yield (
                f"{describe(view)} is not encrypted with a customer-managed KMS key. "
                "Fix: set kms_key_arn to the replica of the table's multi-region key."
            )
        return
    encryption = view.props.get("serverSideEncryption")
    if not truthy(get(encryption, "enabled")) or not text(get(encryption, "kmsKeyArn")):
        yield (
            f"{describe(view)} is not encrypted with a customer-managed KMS key "
            "(the AWS-owned key is the default). Fix: set server_side_encryption="
            "{'enabled': True, 'kms_key_arn': <multi-region key ARN>}."
        )
    for region, replica in _inline_replicas(view):
        if not text(get(replica, "kmsKeyArn")):
            yield (
                f"{describe(view)}: its replica in {region} has no customer-managed KMS key. "
                "Fix: set kms_key_arn in that TableReplicaArgs to the key's replica in "
                f"{region}."
            )


def _check_deletion_protection(view: ResourceView) -> Iterator[str]:
    if not truthy(view.props.get("deletionProtectionEnabled")):
        yield (
            f"{describe(view)} has no deletion protection. "
            "Fix: set deletion_protection_enabled=True."
        )
    for region, replica in _inline_replicas(view):
        if not truthy(get(replica, "deletionProtectionEnabled")):
            yield (
                f"{describe(view)}: its replica in {region} has no deletion protection "
                "(replicas default to off). Fix: set deletion_protection_enabled=True in that "
                "TableReplicaArgs."
            )


RULES = (
    ResourceRule(
        name="dynamodb-point-in-time-recovery",
        description="Every DynamoDB table and every replica has point-in-time recovery.",
        resource_types=_TABLES,
        check=_check_pitr,
    ),
    ResourceRule(
        name="dynamodb-customer-managed-key",
        description="DynamoDB tables and replicas are encrypted with a customer-managed KMS key.",
        resource_types=_TABLES,
        check=_check_customer_managed_key,
    ),
    ResourceRule(
        name="dynamodb-deletion-protection",
        description="DynamoDB tables and replicas have deletion protection on.",
        resource_types=_TABLES,
        check=_check_deletion_protection,
    ),
)
