"""KMS: a key's policy keeps administration apart from use.

A statement that gives the account `kms:*` lets any principal whose IAM policy allows
`kms:Decrypt` on `*` decrypt everything under the key: administration and use are one.
Use must be granted on its own, to the principals that need it, through the service they
use it with (`kms:ViaService`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from payments_dr.policy import tokens
from payments_dr.policy.model import ResourceRule, ResourceView
from payments_dr.policy.props import (
    InvalidDocumentError,
    blocks,
    describe,
    get,
    policy_document,
    statements,
    strings,
)

_ACCOUNT = re.compile(r"^(arn:aws[\w-]*:iam::\d{12}:root|\d{12})$")
# Actions that read or write data under the key (kms:* and * included).
_USE = re.compile(r"^(\*|kms:\*|kms:(Decrypt|Encrypt|GenerateDataKey\w*\*?|ReEncrypt\w*\*?))$")


def _principals(statement: Mapping[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    return strings(get(principal, "AWS"))


def _broad(statement: Mapping[str, Any]) -> bool:
    """Allows the whole account, or anyone."""
    return any(p == "*" or _ACCOUNT.match(p) for p in _principals(statement))


def _has_via_service(statement: Mapping[str, Any]) -> bool:
    condition = statement.get("Condition")
    if not isinstance(condition, Mapping):
        return False
    return any(
        isinstance(block, Mapping) and any(key.lower() == "kms:viaservice" for key in block)
        for block in condition.values()
    )


def _check_key_policy(view: ResourceView) -> Iterator[str]:
    try:
        document = policy_document(view.props.get("policy"))
    except InvalidDocumentError as error:
        yield f"{describe(view)} has an unreadable key policy: {error}. Fix: a JSON object."
        return
    if document is None:
        yield (
            f"{describe(view)} has no key policy, so AWS gives the account kms:* (administration "
            "and use in one). Fix: set a policy that gives the account administrative actions "
            "only and grants use to the roles that need it, with kms:ViaService."
        )
        return
    allows = [s for s in statements(document) if s.get("Effect") == "Allow"]
    for statement in allows:
        if not _broad(statement):
            continue
        actions = [a for a in blocks(statement.get("Action")) if isinstance(a, str)]
        if statement.get("NotAction") is not None or {"*", "kms:*"} & set(actions):
            yield (
                f"{describe(view)} gives the account kms:* (statement "
                f"{statement.get('Sid', '?')!r}) with no separate administration: any "
                "principal an IAM policy allows kms:Decrypt on * decrypts with it. Fix: give the "
                "account administrative actions only (kms:Create*, kms:Describe*, kms:Put*, ...)"
                " and grant use in separate statements to the roles that need it, with "
                "kms:ViaService."
            )
        elif any(_USE.match(action) for action in actions) and not _has_via_service(statement):
            yield (
                f"{describe(view)} lets the whole account use the key directly (statement "
                f"{statement.get('Sid', '?')!r}). Fix: limit the statement with a kms:ViaService "
                "condition, or name the roles (aws:PrincipalArn) that use the key."
            )


RULES = (
    ResourceRule(
        name="kms-administration-apart-from-use",
        description=(
            "Key policies give the account no kms:* and no direct use: use goes to named "
            "principals or through a service (kms:ViaService)."
        ),
        resource_types=frozenset({tokens.KMS_KEY, tokens.KMS_REPLICA_KEY}),
        check=_check_key_policy,
    ),
)
