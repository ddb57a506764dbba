"""Reads the stack's id secret once per cold start: the key of payment ids and fingerprints.

Secrets Manager, in the function's own region: the stack replicates the secret to the second
region, so a region reads its own copy and never needs the other one (static stability).
A missing or unreadable secret fails the cold start: no payment may get an id that the
other region, or a retry, would compute differently.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from payments_dr.service.config import ConfigUnavailable
from payments_dr.service.model import IdKey
from payments_dr.service.observability import logger


class IdKeyUnavailable(ConfigUnavailable):
    """The id secret could not be read or is not usable."""


def read_id_key(secretsmanager: Any, secret_id: str) -> IdKey:
    """The id key from `secret_id` (its name: the caller's region's copy), or raise."""
    try:
        value = secretsmanager.get_secret_value(SecretId=secret_id).get("SecretString")
        if not isinstance(value, str):
            raise ValueError("the secret holds no string value")
        return IdKey(value)
    except (BotoCoreError, ClientError, ValueError) as error:
        # The secret's name and the reason; never the value. The error codes
        # (ResourceNotFoundException, AccessDeniedException, DecryptionFailure...) name the fix.
        reason = str(error) if not isinstance(error, ValueError) else error.args[0]
        logger.error(
            "payment id secret unreadable: refusing to start, no payment may get an unkeyed id",
            secret_id=secret_id,
            reason=reason,
        )
        raise IdKeyUnavailable(f"payment id secret {secret_id} unreadable: {reason}") from error
