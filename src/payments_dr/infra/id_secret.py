"""The id secret: the HMAC key of payment ids, fingerprints and log digests
(`payments_dr.service.model.IdKey`).

One Secrets Manager secret, created in the first region and replicated to the second, each
copy encrypted with its region's data key. A function reads the copy of its own region once
per cold start (GetSecretValue with the secret's name), so the second region keeps working
with the first gone. Secrets Manager generates the value (GetRandomPassword); the stack hands
it over write-only (`secret_string_wo`), and Pulumi holds it, if at all, as a secret.

It never rotates: a new value would give a payment retried after the change a new id, and a
second charge. `protect` and `retain_on_delete` keep Pulumi from replacing or deleting it, the
version is written once (`secret_string_wo_version` stays 1), and the secret's resource
policy refuses every new value. Only the functions that compute ids may read it (IAM).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import pulumi
import pulumi_aws as aws

from payments_dr import contract
from payments_dr.infra.iam import PolicyDocument, Statement, allow, document

# The longest recovery window: a secret scheduled for deletion by mistake can be restored for
# 30 days (DeleteSecret's RecoveryWindowInDays is 7 to 30).
RECOVERY_WINDOW_DAYS: Final = 30
# Written once. Raising it would write a new value: every id would change (see above).
VALUE_VERSION: Final = 1
# What no principal may do to the secret: give it a new value, or delete it.
VALUE_CHANGES: Final = (
    "secretsmanager:DeleteSecret",
    "secretsmanager:PutSecretValue",
    "secretsmanager:RotateSecret",
    "secretsmanager:UpdateSecretVersionStage",
)


def secret_arn_pattern(region: str, account_id: str, stack: str) -> str:
    """The secret's copy in `region`. Secrets Manager appends six random characters to the
    name in its ARN; `??????` matches exactly those, never a longer name."""
    name = contract.id_secret_name(stack)
    return f"arn:aws:secretsmanager:{region}:{account_id}:secret:{name}-??????"


def reader_statements(region: str, account_id: str, stack: str, key_arn: str) -> list[Statement]:
    """For the role of a function in `contract.ID_KEY_READERS`: read this region's copy."""
    return [
        allow(
            "ReadIdSecret",
            ["secretsmanager:GetSecretValue"],
            [secret_arn_pattern(region, account_id, stack)],
        ),
        allow(
            "DecryptIdSecret",
            ["kms:Decrypt"],
            [key_arn],
            Condition={
                "StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}
            },
        ),
    ]


def endpoint_policy(region: str, account_id: str, stack: str) -> PolicyDocument:
    """The Secrets Manager VPC endpoint: reads of this region's id secret, nothing else."""
    return document(
        allow(
            "IdSecret",
            ["secretsmanager:GetSecretValue"],
            [secret_arn_pattern(region, account_id, stack)],
            Principal="*",
            Condition={"StringEquals": {"aws:PrincipalAccount": account_id}},
        )
    )


def secret_policy() -> PolicyDocument:
    """The secret's resource policy: no principal, the deployment included, may give it a new
    value or delete it (an explicit deny wins over any IAM grant). Reads are not denied here:
    Pulumi reads the version back on refresh; IAM grants them to the id functions only."""
    return document(
        {
            "Sid": "NeverChangeTheValue",
            "Effect": "Deny",
            "Principal": "*",
            "Action": list(VALUE_CHANGES),
            "Resource": "*",
        }
    )


@dataclass(frozen=True)
class IdSecretArgs:
    stack: str
    account_id: str
    primary_region: str
    secondary_region: str
    key_arns: Mapping[str, pulumi.Input[str]]  # each region's data key
    tags: Mapping[str, str] = field(default_factory=dict)


class IdSecret(pulumi.ComponentResource):
    """The replicated, never-rotating id secret."""

    def __init__(
        self, name: str, args: IdSecretArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("payments-dr:infra:IdSecret", name, None, opts)
        primary, secondary = args.primary_region, args.secondary_region
        # Replacing or deleting it would change every id: Pulumi refuses both (protect), and
        # a `pulumi destroy` after unprotecting leaves it in the account (retain_on_delete).
        kept = pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True)
        self.name = contract.id_secret_name(args.stack)
        self.secret = aws.secretsmanager.Secret(
            name,
            region=primary,
            name=self.name,
            description=(
                "HMAC key of payment ids and fingerprints. Never rotate or replace it: ids"
                " would change and retried payments would be charged twice (docs/security.md)"
            ),
            kms_key_id=args.key_arns[primary],
            replicas=[{"region": secondary, "kms_key_id": args.key_arns[secondary]}],
            recovery_window_in_days=RECOVERY_WINDOW_DAYS,
            tags=dict(args.tags),
            opts=kept,
        )
        # Generated by Secrets Manager, in the primary region, at the first deployment; later
        # runs generate another value that the write-only field never sends (its version is
        # unchanged), and ignore_changes keeps it out of every diff.
        value = aws.secretsmanager.get_random_password_output(
            password_length=contract.ID_SECRET_LENGTH,
            exclude_punctuation=True,
            require_each_included_type=True,
            region=primary,
        ).random_password
        self.version = aws.secretsmanager.SecretVersion(
            f"{name}-value",
            region=primary,
            secret_id=self.secret.id,
            secret_string_wo=pulumi.Output.secret(value),
            secret_string_wo_version=VALUE_VERSION,
            opts=pulumi.ResourceOptions.merge(
                kept, pulumi.ResourceOptions(ignore_changes=["secretStringWo"])
            ),
        )
        # After the value: the policy refuses PutSecretValue to everyone, the stack included.
        self.policy = aws.secretsmanager.SecretPolicy(
            f"{name}-policy",
            region=primary,
            secret_arn=self.secret.arn,
            policy=json.dumps(secret_policy()),
            block_public_policy=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.version]),
        )
        self.register_outputs({"name": self.name, "arn": self.secret.arn})

    def arn_in(self, region: str) -> pulumi.Output[str]:
        """The copy in `region`: a replica's ARN is the primary's, with its own region."""
        return self.secret.arn.apply(lambda arn: _in_region(arn, region))


def _in_region(arn: str, region: str) -> str:
    parts = arn.split(":")
    parts[3] = region
    return ":".join(parts)
