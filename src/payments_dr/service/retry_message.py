"""The retry queue's message: a validated payment that the table did not confirm."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from payments_dr.service.model import (
    IdKey,
    Payment,
    PaymentStatus,
    validate_fields,
    validate_payment_id,
)

MESSAGE_VERSION = 1


class QueueUnavailable(RuntimeError):
    """The queue did not confirm the message."""


class PoisonMessage(ValueError):
    """A message that can never be applied; it must end in the DLQ."""


def encode(payment: Payment) -> str:
    request = payment.request
    fields = {
        "merchant_id": request.merchant_id,
        "amount": request.amount,
        "currency": request.currency,
        "payment_token": request.payment_token,
    }
    if request.reference is not None:
        fields["reference"] = request.reference
    if request.description is not None:
        fields["description"] = request.description
    return json.dumps(
        {
            "version": MESSAGE_VERSION,
            "id": payment.id,
            "fingerprint": payment.fingerprint,
            "region": payment.region,
            "created_at": payment.created_at,
            "request": fields,
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def decode(body: str, id_key: IdKey) -> Payment:
    """Rebuild the payment, re-validating it as strictly as the API did."""
    try:
        message: Any = json.loads(body)
        if message["version"] != MESSAGE_VERSION:
            raise PoisonMessage(f"unsupported message version {message['version']!r}")
        request = validate_fields(message["request"])
        payment = Payment(
            id=validate_payment_id(message["id"]),
            request=request,
            fingerprint=message["fingerprint"],
            region=str(message["region"]),
            created_at=str(message["created_at"]),
            status=PaymentStatus.ACCEPTED,
        )
    except PoisonMessage:
        raise
    except (ValueError, KeyError, TypeError) as error:  # InvalidRequest is a ValueError
        raise PoisonMessage(f"malformed retry message: {error}") from error
    if payment.fingerprint != id_key.fingerprint(request):
        raise PoisonMessage("the message's fingerprint does not match its request")
    return payment


def send(sqs_client: Any, queue_url: str, body: str, **attributes: str) -> None:
    message_attributes = {
        name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
    }
    try:
        if message_attributes:
            sqs_client.send_message(
                QueueUrl=queue_url, MessageBody=body, MessageAttributes=message_attributes
            )
        else:
            sqs_client.send_message(QueueUrl=queue_url, MessageBody=body)
    except (ClientError, BotoCoreError) as error:
        raise QueueUnavailable(str(error)) from error
