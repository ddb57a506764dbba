"""Secrets Manager: every secret, and every replica of one, under a customer-managed key.

Without `kms_key_id` Secrets Manager uses the AWS managed key `aws/secretsmanager`, whose
policy lets any principal of the account that may call Secrets Manager decrypt through it:
the stack's key policies and their usage statements would protect nothing. A replica without
its own key falls back to that key in its region.
"""

from __future__ import annotations

from collections.abc import Iterator

from payments_dr.policy import tokens
from payments_dr.policy.model import ResourceRule, ResourceView
from payments_dr.policy.props import blocks, describe, text

AWS_MANAGED_KEY = "alias/aws/secretsmanager"


def _customer_managed(key: str) -> bool:
    return bool(key) and not key.endswith(AWS_MANAGED_KEY)


def _check_secret_key(view: ResourceView) -> Iterator[str]:
    if not _customer_managed(text(view.props.get("kmsKeyId"))):
        yield (
            f"{describe(view)} is not encrypted with a customer-managed KMS key. Fix: set"
            " kms_key_id to the region's key."
        )
    for replica in blocks(view.props.get("replicas")):
        if not _customer_managed(text(replica.get("kmsKeyId"))):
            yield (
                f"{describe(view)}: its replica in {text(replica.get('region'))} has no"
                " customer-managed KMS key. Fix: set kms_key_id on the replica to the key of"
                " its region."
            )


RULES = (
    ResourceRule(
        name="secrets-customer-managed-key",
        description=(
            "Secrets Manager secrets, and each of their replicas, use a customer-managed key."
        ),
        resource_types=frozenset({tokens.SECRETS_MANAGER_SECRET}),
        check=_check_secret_key,
    ),
)
