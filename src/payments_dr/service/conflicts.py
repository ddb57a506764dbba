"""Conflicts of eventual consistency: acknowledged payment versions that replication overwrote.

In eventual mode two regions can each accept the same payment id before either write has
replicated (the client retried through the other region, or reused its key with another
body). DynamoDB resolves that by last writer wins, and AWS records such conflicts nowhere.
The region whose version loses sees it: replication arrives there as a MODIFY whose old
image is the version that region acknowledged. The log archiver reads every such record from
its stream and keeps the overwritten version here, as a conflict record in the same table,
so it replicates to every region and cannot be lost with one of them. Operators list the
open records through a sparse index and resolve them (`payments-dr conflicts`).

Items use DynamoDB's attribute-value format, like the payment store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from payments_dr.contract import (
    CONFLICT_DETECTED_AT_ATTRIBUTE,
    CONFLICT_STATUS_ATTRIBUTE,
    CONFLICTS_INDEX,
    TABLE_HASH_KEY,
    ConflictStatus,
    conflict_item_key,
)
from payments_dr.service.model import PAYMENT_ID_PATTERN, iso_timestamp
from payments_dr.service.store import CONDITIONAL_CHECK_FAILED, Attr, TableUnavailable

# Fields of a version shown to operators; the payment token stays in the table.
SHOWN_FIELDS = (
    Attr.AMOUNT,
    Attr.CURRENCY,
    Attr.REFERENCE,
    Attr.FINGERPRINT,
    Attr.REGION,
    Attr.CREATED_AT,
)


class ConflictNotFound(LookupError):
    """No open conflict record has this key."""


@dataclass(frozen=True)
class Conflict:
    """One acknowledged version that replication overwrote, and what replaced it."""

    payment_id: str
    merchant_id: str
    acknowledged_by: str  # the region that accepted the overwritten version
    overwritten: dict[str, Any]  # that version, as the table held it
    stored: dict[str, Any]  # the version that replaced it
    overwritten_at: str  # when replication overwrote it (the stream record's time)
    detected_in: str
    detected_at: str
    status: ConflictStatus = ConflictStatus.OPEN
    resolution: str | None = None

    @property
    def key(self) -> str:
        return conflict_item_key(self.payment_id, _text(self.overwritten, Attr.FINGERPRINT))

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            TABLE_HASH_KEY: {"S": self.key},
            CONFLICT_STATUS_ATTRIBUTE: {"S": self.status.value},
            CONFLICT_DETECTED_AT_ATTRIBUTE: {"S": self.detected_at},
            "payment_id": {"S": self.payment_id},
            Attr.MERCHANT_ID.value: {"S": self.merchant_id},
            "acknowledged_by": {"S": self.acknowledged_by},
            "overwritten": {"M": self.overwritten},
            "stored": {"M": self.stored},
            "overwritten_at": {"S": self.overwritten_at},
            "detected_in": {"S": self.detected_in},
        }
        if self.resolution is not None:
            item["resolution"] = {"S": self.resolution}
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Conflict:
        resolution = item.get("resolution")
        return cls(
            payment_id=item["payment_id"]["S"],
            merchant_id=item[Attr.MERCHANT_ID.value]["S"],
            acknowledged_by=item["acknowledged_by"]["S"],
            overwritten=item["overwritten"]["M"],
            stored=item["stored"]["M"],
            overwritten_at=item["overwritten_at"]["S"],
            detected_in=item["detected_in"]["S"],
            detected_at=item[CONFLICT_DETECTED_AT_ATTRIBUTE]["S"],
            status=ConflictStatus(item[CONFLICT_STATUS_ATTRIBUTE]["S"]),
            resolution=None if resolution is None else resolution["S"],
        )

    def summary(self) -> dict[str, Any]:
        """What an operator needs to reconcile it, as JSON; no payment token."""
        return {
            "key": self.key,
            "payment_id": self.payment_id,
            "merchant_id": self.merchant_id,
            "acknowledged_by": self.acknowledged_by,
            "overwritten": _shown(self.overwritten),
            "stored": _shown(self.stored),
            "overwritten_at": self.overwritten_at,
            "detected_in": self.detected_in,
            "detected_at": self.detected_at,
            "status": self.status.value,
            "resolution": self.resolution,
        }


def _text(image: dict[str, Any], attr: Attr) -> str:
    value = image.get(attr.value) or {}
    return str(value.get("S") or value.get("N") or "")


def _shown(image: dict[str, Any]) -> dict[str, str]:
    return {attr.value: _text(image, attr) for attr in SHOWN_FIELDS if attr.value in image}


def _is_payment(image: dict[str, Any] | None) -> bool:
    key = (image or {}).get(TABLE_HASH_KEY, {}).get("S", "")
    return PAYMENT_ID_PATTERN.fullmatch(str(key)) is not None


def overwritten_version(record: dict[str, Any], detected_at: str) -> Conflict | None:
    """The conflict a stream record shows: a payment whose stored request changed.

    Payments are written once, with a condition, so a MODIFY of a payment item can only come
    from replication resolving two regions' writes. It loses an acknowledged request when the
    fingerprints differ; with equal fingerprints both regions accepted the same request.
    """
    change = record.get("dynamodb") or {}
    old, new = change.get("OldImage"), change.get("NewImage")
    if record.get("eventName") != "MODIFY" or not (_is_payment(old) and _is_payment(new)):
        return None
    assert old is not None and new is not None
    if _text(old, Attr.FINGERPRINT) == _text(new, Attr.FINGERPRINT):
        return None
    return Conflict(
        payment_id=old[TABLE_HASH_KEY]["S"],
        merchant_id=_text(old, Attr.MERCHANT_ID),
        acknowledged_by=_text(old, Attr.REGION),
        overwritten=old,
        stored=new,
        overwritten_at=iso_timestamp(float(change["ApproximateCreationDateTime"])),
        detected_in=str(record.get("awsRegion", "")),
        detected_at=detected_at,
    )


def accepted_twice(record: dict[str, Any]) -> bool:
    """Both regions accepted the same request for one id: stored once, nothing lost."""
    change = record.get("dynamodb") or {}
    old, new = change.get("OldImage"), change.get("NewImage")
    if record.get("eventName") != "MODIFY" or not (_is_payment(old) and _is_payment(new)):
        return False
    assert old is not None and new is not None
    return _text(old, Attr.FINGERPRINT) == _text(new, Attr.FINGERPRINT)


class ConflictStore:
    """Conflict records in one region's replica of the payments table."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._dynamodb = dynamodb_client
        self._table = table_name

    def record(self, conflict: Conflict) -> bool:
        """Keep the overwritten version; False when it was already recorded."""
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=conflict.to_item(),
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": TABLE_HASH_KEY},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == CONDITIONAL_CHECK_FAILED:
                return False
            raise TableUnavailable(str(error)) from error
        except BotoCoreError as error:
            raise TableUnavailable(str(error)) from error
        return True

    def list(self, status: ConflictStatus = ConflictStatus.OPEN) -> list[Conflict]:
        """Every conflict in `status`, oldest first (through the sparse index)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": CONFLICTS_INDEX,
            "KeyConditionExpression": "#status = :status",
            "ExpressionAttributeNames": {"#status": CONFLICT_STATUS_ATTRIBUTE},
            "ExpressionAttributeValues": {":status": {"S": status.value}},
        }
        conflicts: list[Conflict] = []
        try:
            while True:
                page = self._dynamodb.query(**request)
                conflicts.extend(Conflict.from_item(item) for item in page.get("Items", []))
                if not page.get("LastEvaluatedKey"):
                    return conflicts
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as error:
            raise TableUnavailable(str(error)) from error

    def resolve(self, key: str, resolution: str) -> Conflict:
        """Close an open conflict with the operator's resolution; ConflictNotFound otherwise."""
        try:
            response = self._dynamodb.update_item(
                TableName=self._table,
                Key={TABLE_HASH_KEY: {"S": key}},
                UpdateExpression="SET #status = :resolved, resolution = :resolution",
                ConditionExpression="#status = :open",
                ExpressionAttributeNames={"#status": CONFLICT_STATUS_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":resolved": {"S": ConflictStatus.RESOLVED.value},
                    ":open": {"S": ConflictStatus.OPEN.value},
                    ":resolution": {"S": resolution},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == CONDITIONAL_CHECK_FAILED:
                raise ConflictNotFound(f"no open conflict {key}") from error
            raise TableUnavailable(str(error)) from error
        except BotoCoreError as error:
            raise TableUnavailable(str(error)) from error
        return Conflict.from_item(response["Attributes"])
