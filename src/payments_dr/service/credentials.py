"""Merchant API keys: their format, their hashed records in the payments table, verification.

A key reads `pdr.<merchant id>.<key id>.<secret>`. The merchant id makes the lookup one
GetItem; the key id tells a reissued key from a revoked one; the secret is 32 random bytes
(256 bits), of which only the SHA-256 is stored. A secret that strong cannot be guessed
from its hash, so a slow password hash would only add latency to every cold verification.

A record holds the merchant's current key and, after a rotation, at most one previous key
that stays valid until its expiry time, so a merchant can switch keys without a gap.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from payments_dr.contract import MERCHANT_ITEM_PREFIX, TABLE_HASH_KEY, merchant_item_key
from payments_dr.service.model import MERCHANT_ID_PATTERN, contains_card_number, iso_timestamp

KEY_PREFIX = "pdr"
SECRET_BYTES = 32
KEY_ID_PATTERN = re.compile(r"[0-9a-f]{8}")
# base64url of 32 bytes, unpadded: 43 characters that never include the "." separator.
SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")
MAX_KEY_LENGTH = 160  # longer header values are refused before any parsing
CONDITIONAL_CHECK_FAILED = "ConditionalCheckFailedException"
SECONDS_PER_DAY = 86_400


class MerchantAttr(StrEnum):
    """Attribute names of a merchant credential record."""

    PK = TABLE_HASH_KEY  # merchant#<merchant id>
    MERCHANT_ID = "merchant_id"
    KEY_ID = "key_id"
    SECRET_SHA256 = "secret_sha256"
    STATUS = "status"
    CREATED_AT = "created_at"
    REVOKED_AT = "revoked_at"
    USAGE_KEY = "usage_key"  # value of the merchant's API Gateway API key (not a credential)
    # The key a rotation replaced, valid until its expiry (absent before the first rotation).
    PREVIOUS_KEY_ID = "previous_key_id"
    PREVIOUS_SECRET_SHA256 = "previous_secret_sha256"
    PREVIOUS_EXPIRES_AT = "previous_expires_at"


class KeyStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


class MalformedKey(ValueError):
    """The presented value is not shaped like a merchant key."""


class CredentialStoreUnavailable(RuntimeError):
    """The table did not answer a credential read or write."""


class MerchantExists(RuntimeError):
    """The merchant already holds an active key."""


class KeyChanged(RuntimeError):
    """The record no longer holds the active key a rotation meant to replace."""


@dataclass(frozen=True)
class PresentedKey:
    merchant_id: str
    key_id: str
    secret: str

    def __repr__(self) -> str:  # keeps the secret out of tracebacks and debug output
        return f"PresentedKey(merchant_id={self.merchant_id!r}, key_id={self.key_id!r})"


@dataclass(frozen=True)
class PreviousKey:
    """The key a rotation replaced: accepted until `expires_at` (ISO 8601, UTC)."""

    key_id: str
    secret_sha256: str
    expires_at: str

    def valid_at(self, now: float) -> bool:
        return now < utc_epoch(self.expires_at)


def utc_epoch(timestamp: str) -> float:
    """Seconds since the epoch of a record's ISO 8601 time. The service always writes "Z"; a
    value edited by hand without a zone still means UTC, so the authorizer and an operator's
    machine agree whatever their zones."""
    moment = datetime.fromisoformat(timestamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass(frozen=True)
class MerchantRecord:
    merchant_id: str
    key_id: str
    secret_sha256: str
    status: KeyStatus
    created_at: str  # when the current key was issued
    usage_key: str
    revoked_at: str | None = None
    previous: PreviousKey | None = None

    def to_item(self) -> dict[str, dict[str, str]]:
        item = {
            MerchantAttr.PK.value: {"S": merchant_item_key(self.merchant_id)},
            MerchantAttr.MERCHANT_ID.value: {"S": self.merchant_id},
            MerchantAttr.KEY_ID.value: {"S": self.key_id},
            MerchantAttr.SECRET_SHA256.value: {"S": self.secret_sha256},
            MerchantAttr.STATUS.value: {"S": self.status.value},
            MerchantAttr.CREATED_AT.value: {"S": self.created_at},
            MerchantAttr.USAGE_KEY.value: {"S": self.usage_key},
        }
        if self.revoked_at is not None:
            item[MerchantAttr.REVOKED_AT.value] = {"S": self.revoked_at}
        if self.previous is not None:
            item[MerchantAttr.PREVIOUS_KEY_ID.value] = {"S": self.previous.key_id}
            item[MerchantAttr.PREVIOUS_SECRET_SHA256.value] = {"S": self.previous.secret_sha256}
            item[MerchantAttr.PREVIOUS_EXPIRES_AT.value] = {"S": self.previous.expires_at}
        return item

    @classmethod
    def from_item(cls, item: dict[str, dict[str, str]]) -> MerchantRecord:
        revoked_at = item.get(MerchantAttr.REVOKED_AT.value)
        previous_key_id = item.get(MerchantAttr.PREVIOUS_KEY_ID.value)
        previous = (
            None  # a record never rotated, including every record written before rotation
            if previous_key_id is None
            else PreviousKey(
                key_id=previous_key_id["S"],
                secret_sha256=item[MerchantAttr.PREVIOUS_SECRET_SHA256.value]["S"],
                expires_at=item[MerchantAttr.PREVIOUS_EXPIRES_AT.value]["S"],
            )
        )
        return cls(
            merchant_id=item[MerchantAttr.MERCHANT_ID.value]["S"],
            key_id=item[MerchantAttr.KEY_ID.value]["S"],
            secret_sha256=item[MerchantAttr.SECRET_SHA256.value]["S"],
            status=KeyStatus(item[MerchantAttr.STATUS.value]["S"]),
            created_at=item[MerchantAttr.CREATED_AT.value]["S"],
            usage_key=item[MerchantAttr.USAGE_KEY.value]["S"],
            revoked_at=None if revoked_at is None else revoked_at["S"],
            previous=previous,
        )

    def key_age_days(self, now: float) -> float:
        """Days since the current key was issued (never negative: clocks differ a little)."""
        return max(0.0, now - utc_epoch(self.created_at)) / SECONDS_PER_DAY

    def secret_matches(self, key: PresentedKey) -> bool:
        """The key is the record's current or previous key (expiry aside). The key id picks
        the stored hash; the secret is compared in constant time, so response times reveal
        nothing about either hash."""
        if key.key_id == self.key_id:
            stored = self.secret_sha256
        elif self.previous is not None and key.key_id == self.previous.key_id:
            stored = self.previous.secret_sha256
        else:
            return False
        return hmac.compare_digest(secret_digest(key.secret), stored)


@dataclass(frozen=True)
class IssuedKey:
    """A new key: `api_key` is shown to the operator once and never stored."""

    api_key: str
    record: MerchantRecord

    def __repr__(self) -> str:
        return f"IssuedKey(record={self.record!r})"


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_key_id_and_secret() -> tuple[str, str]:
    secret = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")
    return secrets.token_hex(4), secret


def issue_key(merchant_id: str, now: float) -> IssuedKey:
    if not MERCHANT_ID_PATTERN.fullmatch(merchant_id):
        raise ValueError("merchant id must be 3-64 characters of A-Z a-z 0-9 _ - (not leading)")
    if contains_card_number(merchant_id):  # it is stored, logged and in every payment
        raise ValueError("merchant id must not contain a card number")
    key_id, secret = _new_key_id_and_secret()
    record = MerchantRecord(
        merchant_id=merchant_id,
        key_id=key_id,
        secret_sha256=secret_digest(secret),
        status=KeyStatus.ACTIVE,
        created_at=iso_timestamp(now),
        # API Gateway accepts it only from the authorizer (key source AUTHORIZER), so it
        # grants nothing; random rather than derived so that stacks sharing an account
        # never collide.
        usage_key=f"usage-{secrets.token_hex(16)}",
    )
    return IssuedKey(api_key=f"{KEY_PREFIX}.{merchant_id}.{key_id}.{secret}", record=record)


def rotate_key(record: MerchantRecord, now: float, overlap_seconds: float) -> IssuedKey:
    """A new current key for `record`; its current key becomes the previous one, valid
    until `now + overlap_seconds`. An older previous key is dropped. The usage key stays:
    throttling belongs to the merchant, not to a key."""
    if record.status is not KeyStatus.ACTIVE:
        raise ValueError(f"merchant {record.merchant_id} has no active key to rotate")
    key_id, secret = _new_key_id_and_secret()
    while key_id == record.key_id:  # one chance in 2**32; a reused id would hide the old key
        key_id, secret = _new_key_id_and_secret()
    rotated = replace(
        record,
        key_id=key_id,
        secret_sha256=secret_digest(secret),
        created_at=iso_timestamp(now),
        previous=PreviousKey(
            key_id=record.key_id,
            secret_sha256=record.secret_sha256,
            expires_at=iso_timestamp(now + overlap_seconds),
        ),
    )
    return IssuedKey(api_key=f"{KEY_PREFIX}.{record.merchant_id}.{key_id}.{secret}", record=rotated)


def parse_key(value: str | None) -> PresentedKey:
    """Split an API key into its parts, refusing anything not shaped exactly like one."""
    if value is None or len(value) > MAX_KEY_LENGTH:
        raise MalformedKey("no key or an overlong one")
    parts = value.split(".")
    if len(parts) != 4 or parts[0] != KEY_PREFIX:
        raise MalformedKey("not a merchant key")
    _, merchant_id, key_id, secret = parts
    if not (
        MERCHANT_ID_PATTERN.fullmatch(merchant_id)
        and KEY_ID_PATTERN.fullmatch(key_id)
        and SECRET_PATTERN.fullmatch(secret)
    ):
        raise MalformedKey("not a merchant key")
    return PresentedKey(merchant_id=merchant_id, key_id=key_id, secret=secret)


class CredentialStore:
    """Merchant records in one region's replica of the payments table."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._dynamodb = dynamodb_client
        self._table = table_name

    def get(self, merchant_id: str) -> MerchantRecord | None:
        try:
            response = self._dynamodb.get_item(
                TableName=self._table,
                Key={TABLE_HASH_KEY: {"S": merchant_item_key(merchant_id)}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as error:
            raise CredentialStoreUnavailable(str(error)) from error
        item = response.get("Item")
        return None if item is None else MerchantRecord.from_item(item)

    def create(self, record: MerchantRecord) -> None:
        """Store a new active record unless the merchant already has an active key."""
        stored = self._put_if(
            record,
            "attribute_not_exists(#pk) OR #status = :revoked",
            {"#pk": TABLE_HASH_KEY, "#status": MerchantAttr.STATUS.value},
            {":revoked": {"S": KeyStatus.REVOKED.value}},
        )
        if not stored:
            raise MerchantExists(record.merchant_id)

    def rotate(self, replaced_key_id: str, rotated: MerchantRecord) -> None:
        """Store `rotated` (from `rotate_key`) in one conditional write that names the key it
        replaces: of two rotations from the same record, or a rotation racing a revoke, only
        one wins; the other raises KeyChanged and writes nothing."""
        stored = self._put_if(
            rotated,
            "#status = :active AND #key_id = :replaced",
            {"#status": MerchantAttr.STATUS.value, "#key_id": MerchantAttr.KEY_ID.value},
            {":active": {"S": KeyStatus.ACTIVE.value}, ":replaced": {"S": replaced_key_id}},
        )
        if not stored:
            raise KeyChanged(rotated.merchant_id)

    def _put_if(
        self,
        record: MerchantRecord,
        condition: str,
        names: dict[str, str],
        values: dict[str, dict[str, str]],
    ) -> bool:
        """One conditional PutItem of `record`; False when the condition did not hold."""
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=record.to_item(),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == CONDITIONAL_CHECK_FAILED:
                return False
            raise CredentialStoreUnavailable(str(error)) from error
        except BotoCoreError as error:
            raise CredentialStoreUnavailable(str(error)) from error
        return True

    def revoke(self, merchant_id: str, now: float) -> bool:
        """Mark the merchant's keys revoked, the current and any previous one (whose
        attributes go); False when the merchant has no record."""
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={TABLE_HASH_KEY: {"S": merchant_item_key(merchant_id)}},
                UpdateExpression=(
                    "SET #status = :revoked, #revoked_at = :now "
                    "REMOVE #previous_key_id, #previous_sha256, #previous_expires_at"
                ),
                ConditionExpression="attribute_exists(#pk)",
                ExpressionAttributeNames={
                    "#pk": TABLE_HASH_KEY,
                    "#status": MerchantAttr.STATUS.value,
                    "#revoked_at": MerchantAttr.REVOKED_AT.value,
                    "#previous_key_id": MerchantAttr.PREVIOUS_KEY_ID.value,
                    "#previous_sha256": MerchantAttr.PREVIOUS_SECRET_SHA256.value,
                    "#previous_expires_at": MerchantAttr.PREVIOUS_EXPIRES_AT.value,
                },
                ExpressionAttributeValues={
                    ":revoked": {"S": KeyStatus.REVOKED.value},
                    ":now": {"S": iso_timestamp(now)},
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == CONDITIONAL_CHECK_FAILED:
                return False
            raise CredentialStoreUnavailable(str(error)) from error
        except BotoCoreError as error:
            raise CredentialStoreUnavailable(str(error)) from error
        return True

    def list(self) -> list[MerchantRecord]:
        """Every merchant record, by merchant id. A filtered scan: operators list rarely."""
        paginator = self._dynamodb.get_paginator("scan")
        records: list[MerchantRecord] = []
        try:
            for page in paginator.paginate(
                TableName=self._table,
                FilterExpression="begins_with(#pk, :prefix)",
                ExpressionAttributeNames={"#pk": TABLE_HASH_KEY},
                ExpressionAttributeValues={":prefix": {"S": MERCHANT_ITEM_PREFIX}},
                ConsistentRead=True,
            ):
                records.extend(MerchantRecord.from_item(item) for item in page["Items"])
        except (ClientError, BotoCoreError) as error:
            raise CredentialStoreUnavailable(str(error)) from error
        return sorted(records, key=lambda record: record.merchant_id)
