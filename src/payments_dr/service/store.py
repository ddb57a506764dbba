"""Data access for payments: one conditional write per payment, reads, and a health probe.

Items use DynamoDB's low-level attribute-value format with a fixed schema, which keeps
boto3's resource layer (and its import cost) out of the functions and money out of floats.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from enum import Enum, StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from payments_dr.contract import TABLE_HASH_KEY
from payments_dr.service.model import Payment, PaymentRequest, PaymentStatus

CONDITIONAL_CHECK_FAILED = "ConditionalCheckFailedException"
# A key no payment can have (ids start with "pay_"): reading it proves the table answers.
HEALTH_PROBE_KEY = "health-probe"


class Attr(StrEnum):
    """Attribute names of a payment item."""

    PK = TABLE_HASH_KEY  # the payment id
    MERCHANT_ID = "merchant_id"
    AMOUNT = "amount"  # N, integer minor units
    CURRENCY = "currency"
    PAYMENT_TOKEN = "payment_token"
    REFERENCE = "reference"  # optional
    DESCRIPTION = "description"  # optional
    FINGERPRINT = "fingerprint"  # SHA-256 of the canonical request
    REGION = "region"  # region that accepted the request
    CREATED_AT = "created_at"


class PutOutcome(Enum):
    CREATED = "created"  # this call stored the payment
    REPLAYED = "replayed"  # already stored from the same request
    CONFLICT = "conflict"  # the id is taken by a different request


class TableUnavailable(RuntimeError):
    """The table did not confirm the operation (throttled, failing, missing, timed out)."""


class CorruptItem(ValueError):
    """An item that does not hold a valid payment."""


def to_item(payment: Payment) -> dict[str, dict[str, str]]:
    request = payment.request
    item = {
        Attr.PK.value: {"S": payment.id},
        Attr.MERCHANT_ID.value: {"S": request.merchant_id},
        Attr.AMOUNT.value: {"N": str(request.amount)},
        Attr.CURRENCY.value: {"S": request.currency},
        Attr.PAYMENT_TOKEN.value: {"S": request.payment_token},
        Attr.FINGERPRINT.value: {"S": payment.fingerprint},
        Attr.REGION.value: {"S": payment.region},
        Attr.CREATED_AT.value: {"S": payment.created_at},
    }
    if request.reference is not None:
        item[Attr.REFERENCE.value] = {"S": request.reference}
    if request.description is not None:
        item[Attr.DESCRIPTION.value] = {"S": request.description}
    return item


def integer_from_number(text: str) -> int:
    """DynamoDB numbers arrive as decimal strings; money must come back as an exact int."""
    try:
        number = Decimal(text)
    except InvalidOperation as error:
        raise CorruptItem(f"not a number: {text!r}") from error
    if not number.is_finite() or number != number.to_integral_value():
        raise CorruptItem(f"not an integer: {text!r}")
    return int(number)


def from_item(item: dict[str, dict[str, str]]) -> Payment:
    def text(attr: Attr) -> str:
        return item[attr.value]["S"]

    def optional_text(attr: Attr) -> str | None:
        value = item.get(attr.value)
        return None if value is None else value["S"]

    try:
        request = PaymentRequest(
            merchant_id=text(Attr.MERCHANT_ID),
            amount=integer_from_number(item[Attr.AMOUNT.value]["N"]),
            currency=text(Attr.CURRENCY),
            payment_token=text(Attr.PAYMENT_TOKEN),
            reference=optional_text(Attr.REFERENCE),
            description=optional_text(Attr.DESCRIPTION),
        )
        return Payment(
            id=text(Attr.PK),
            request=request,
            fingerprint=text(Attr.FINGERPRINT),
            region=text(Attr.REGION),
            created_at=text(Attr.CREATED_AT),
            status=PaymentStatus.ACCEPTED,
        )
    except KeyError as error:
        raise CorruptItem(f"item lacks {error}") from error


class PaymentStore:
    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._dynamodb = dynamodb_client
        self._table = table_name

    def put_once(self, payment: Payment) -> tuple[PutOutcome, Payment]:
        """Store the payment unless its id exists: one conditional write either way.

        On a taken id, DynamoDB returns the existing item with the failure, so deciding
        between replay and conflict costs no extra read.
        """
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=to_item(payment),
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": Attr.PK.value},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != CONDITIONAL_CHECK_FAILED:
                raise TableUnavailable(str(error)) from error
            existing = self._existing_item(error, payment.id)
            outcome = (
                PutOutcome.REPLAYED
                if existing.fingerprint == payment.fingerprint
                else PutOutcome.CONFLICT
            )
            return outcome, existing
        except BotoCoreError as error:
            raise TableUnavailable(str(error)) from error
        return PutOutcome.CREATED, payment

    def _existing_item(self, error: ClientError, payment_id: str) -> Payment:
        item = error.response.get("Item")
        if item:
            return from_item(item)
        # Older endpoints omit the item: a strongly consistent read sees the winning write.
        existing = self.get(payment_id)
        if existing is None:
            raise TableUnavailable(f"{payment_id} failed its condition but cannot be read")
        return existing

    def get(self, payment_id: str) -> Payment | None:
        try:
            response = self._dynamodb.get_item(
                TableName=self._table,
                Key={Attr.PK.value: {"S": payment_id}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as error:
            raise TableUnavailable(str(error)) from error
        item = response.get("Item")
        return None if item is None else from_item(item)

    def probe(self) -> None:
        """Raise TableUnavailable unless the table answers a strongly consistent read.

        Consistent, because that is what a multi-Region strong replica cut off from the other
        regions can no longer serve (nor writes), while its eventually consistent reads still
        work: such a region must report itself unhealthy.
        """
        try:
            self._dynamodb.get_item(
                TableName=self._table,
                Key={Attr.PK.value: {"S": HEALTH_PROBE_KEY}},
                ProjectionExpression="#pk",
                ExpressionAttributeNames={"#pk": Attr.PK.value},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as error:
            raise TableUnavailable(str(error)) from error
