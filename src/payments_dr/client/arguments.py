"""Checks of the caller's arguments, before anything is sent, and the request's one encoding.

Every message names the argument and how to fix it, and never echoes a token or a key.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import string
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from payments_dr.client.errors import IdempotencyKeyReused, InvalidArgument

# The API's own patterns (openapi.json; a test keeps them in step).
IDEMPOTENCY_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,64}")
PAYMENT_ID_PATTERN = re.compile(r"pay_[0-9a-f]{32}")
# Generated keys are letters only: no digit run can ever look like a card number.
GENERATED_KEY_PREFIX = "pdr_"
GENERATED_KEY_LETTERS = 24  # 24 * log2(52) = 136 bits
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
DOMAIN_NAME_PATTERN = re.compile(r"(?=.{1,240}$)([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}")


def new_idempotency_key() -> str:
    letters = "".join(secrets.choice(string.ascii_letters) for _ in range(GENERATED_KEY_LETTERS))
    return GENERATED_KEY_PREFIX + letters


def checked_idempotency_key(idempotency_key: str | None) -> str:
    """The caller's key, checked, or a new one."""
    if idempotency_key is None:
        return new_idempotency_key()
    if not isinstance(idempotency_key, str) or not IDEMPOTENCY_KEY_PATTERN.fullmatch(
        idempotency_key
    ):
        raise InvalidArgument(
            "idempotency_key must be 8 to 64 characters of A-Z, a-z, 0-9, '_' and '-'; "
            "or leave it out and the client generates one"
        )
    return idempotency_key


def checked_payment_id(payment_id: str) -> str:
    if not isinstance(payment_id, str) or not PAYMENT_ID_PATTERN.fullmatch(payment_id):
        raise InvalidArgument("payment_id must be an id the API returned: 'pay_' and 32 hex digits")
    return payment_id


def checked_domain_name(domain_name: str) -> str:
    if not isinstance(domain_name, str) or not DOMAIN_NAME_PATTERN.fullmatch(domain_name):
        raise InvalidArgument(
            f"domain_name must be the stack's domain in lower case, such as 'pay.example.com' "
            f"(no scheme, no 'api.' prefix needed), got {domain_name!r}"
        )
    return domain_name


def checked_api_key(api_key: str) -> str:
    if not isinstance(api_key, str) or not api_key or any(c.isspace() for c in api_key):
        raise InvalidArgument(
            "api_key must be the merchant key as issued (pdr.<merchant>.<id>.<secret>), "
            "without spaces"
        )
    return api_key


class KeyLedger:
    """The body digest this client sent under each recent key: one key, one body."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._digests: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, key: str, body: bytes) -> None:
        digest = hashlib.sha256(body).hexdigest()
        with self._lock:
            if self._digests.get(key, digest) != digest:
                raise IdempotencyKeyReused(
                    "idempotency_key was already sent by this client with a different payment; "
                    "use a new key for a new payment, the same key only to retry the same one"
                )
            self._digests[key] = digest
            self._digests.move_to_end(key)
            while len(self._digests) > self._capacity:
                self._digests.popitem(last=False)

    def release(self, key: str) -> None:
        with self._lock:
            self._digests.pop(key, None)


def checked_endpoints(endpoints: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(endpoints, Mapping) or not endpoints:
        raise InvalidArgument(
            "endpoints must map each region to its URL, e.g. "
            "{'us-east-1': 'https://api.us-east-1.example.com', ...}"
        )
    checked: dict[str, str] = {}
    for region, url in endpoints.items():
        if not isinstance(region, str) or not region:
            raise InvalidArgument(f"endpoints has a region name that is not a string: {region!r}")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or not parts.hostname or parts.path not in ("", "/") or parts.query:
            raise InvalidArgument(
                f"endpoints[{region!r}] must be a base URL such as "
                f"https://api.{region}.example.com, got {url!r}"
            )
        if parts.scheme != "https" and not (
            parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
        ):
            raise InvalidArgument(
                f"endpoints[{region!r}] must use https (plain http only on loopback, for the "
                f"local lab), got {url!r}"
            )
        checked[region] = url.rstrip("/")
    return checked


def payment_body(
    amount: int,
    currency: str,
    payment_token: str,
    reference: str | None,
    description: str | None,
) -> bytes:
    """The request's one encoding: the same payment always gives the same bytes."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
        raise InvalidArgument(
            f"amount must be a positive integer in minor units (1250 for 12.50), got {amount!r}"
        )
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise InvalidArgument(f"currency must be an ISO 4217 code such as 'EUR', got {currency!r}")
    if not isinstance(payment_token, str) or not payment_token:
        raise InvalidArgument("payment_token must be the vault token (tok_...), never card data")
    body: dict[str, Any] = {"amount": amount, "currency": currency, "payment_token": payment_token}
    for name, value in (("reference", reference), ("description", description)):
        if value is not None:
            if not isinstance(value, str):
                raise InvalidArgument(f"{name} must be a string or None")
            body[name] = value
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
