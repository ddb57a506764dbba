"""Names and ARNs of the stack's own IAM roles.

Roles sit under the IAM path `/payments-dr/<stack>/` with fixed names, so their ARNs are known
before they exist: the key and bucket policies, created first, name them.
"""

from __future__ import annotations

from payments_dr import contract
from payments_dr.contract import Function


def role_path(stack: str) -> str:
    """The IAM path of the stack's own roles: their ARNs are known before they exist, so key
    and bucket policies created first can name them."""
    return f"/{contract.PROJECT}/{stack}/"


def role_arn(account_id: str, stack: str, name: str) -> str:
    return f"arn:aws:iam::{account_id}:role{role_path(stack)}{name}"


def function_role_name(function: Function, region: str) -> str:
    return f"{function.value}-{region}"


def replication_role_name(source_region: str) -> str:
    return f"s3-replication-{source_region}"
