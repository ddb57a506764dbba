"""Domain rules: validation, ids, fingerprints, and agreement with the OpenAPI document."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from payments_dr.service import model
from payments_dr.service.model import InvalidRequest, parse_payment_request
from payments_dr.service.openapi import load_openapi
from payments_dr.service.store import CorruptItem, from_item, integer_from_number, to_item

from .conftest import ID_KEY, MERCHANT, VALID_REQUEST


def request_schema() -> dict[str, Any]:
    schema: dict[str, Any] = load_openapi()["components"]["schemas"]["PaymentRequest"]
    return schema


def test_validation_bounds_match_the_openapi_document() -> None:
    properties = request_schema()["properties"]
    assert properties["amount"]["maximum"] == model.MAX_AMOUNT_MINOR
    assert properties["amount"]["minimum"] == 1
    assert set(properties["currency"]["enum"]) == model.CURRENCIES
    assert set(request_schema()["required"]) == model.BODY_REQUIRED_FIELDS
    assert set(properties) == model.BODY_REQUIRED_FIELDS | model.OPTIONAL_FIELDS
    payment_schema = load_openapi()["components"]["schemas"]["Payment"]
    merchant_pattern = payment_schema["properties"]["merchant_id"]["pattern"]
    assert merchant_pattern == f"^{model.MERCHANT_ID_PATTERN.pattern}$"
    patterns = {
        "payment_token": model.PAYMENT_TOKEN_PATTERN,
        "reference": model.REFERENCE_PATTERN,
        "description": model.DESCRIPTION_PATTERN,
    }
    for name, pattern in patterns.items():
        assert properties[name]["pattern"] == f"^{pattern.pattern}$", name
    document = load_openapi()
    key_schema = document["components"]["parameters"]["IdempotencyKey"]["schema"]
    assert key_schema["pattern"] == f"^{model.IDEMPOTENCY_KEY_PATTERN.pattern}$"
    id_schema = document["components"]["schemas"]["PaymentId"]
    assert id_schema["pattern"] == f"^{model.PAYMENT_ID_PATTERN.pattern}$"


def test_valid_request_parses_with_an_integer_amount() -> None:
    request = parse_payment_request(json.dumps(VALID_REQUEST), merchant_id=MERCHANT)
    assert request.amount == 1999
    assert type(request.amount) is int
    assert request.description is None


def test_base64_bodies_are_decoded() -> None:
    encoded = base64.b64encode(json.dumps(VALID_REQUEST).encode()).decode()
    assert (
        parse_payment_request(encoded, is_base64_encoded=True, merchant_id=MERCHANT).amount == 1999
    )


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 0},
        {"amount": -5},
        {"amount": model.MAX_AMOUNT_MINOR + 1},
        {"amount": 19.99},
        {"amount": 1999.0},
        {"amount": "1999"},
        {"amount": True},
        {"currency": "usd"},
        {"currency": "XXX"},
        {"merchant_id": "a"},
        {"merchant_id": "bad id"},
        {"payment_token": "4111111111111111"},
        {"reference": ""},
        {"description": "line\nbreak"},
        {"extra": 1},
    ],
)
def test_invalid_fields_are_rejected(change: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        parse_payment_request(json.dumps({**VALID_REQUEST, **change}), merchant_id=MERCHANT)


@pytest.mark.parametrize(
    "change",
    [
        {"payment_token": "tok_4111111111111111"},
        {"reference": "order-4111-1111-1111-1111"},
        {"reference": "5500005555555559"},
        {"description": "card 4012 8888 8888 1881 please"},
        {"description": "amex 378282246310005"},
    ],
)
def test_card_numbers_in_client_text_fields_are_refused(change: dict[str, Any]) -> None:
    (name,) = change
    with pytest.raises(InvalidRequest, match=f"{name} must not contain a card number"):
        parse_payment_request(json.dumps({**VALID_REQUEST, **change}), merchant_id=MERCHANT)


@pytest.mark.parametrize(
    "change",
    [
        {"reference": "order-4111-1111-1111-1113"},  # no 13-19 digit window passes Luhn
        {"reference": "0000000000000000"},  # no card number starts with 0
        {"reference": "inv-2026-000123"},  # digit groups too short to be a card number
        {"description": "order 123456789012 of 2026"},  # 12 digits
        {"payment_token": "tok_4f9a2c7e81b3"},
    ],
)
def test_numbers_that_are_not_card_numbers_are_accepted(change: dict[str, Any]) -> None:
    request = parse_payment_request(json.dumps({**VALID_REQUEST, **change}), merchant_id=MERCHANT)
    (name, value), *_ = change.items()
    assert getattr(request, name) == value


@pytest.mark.parametrize(
    "body",
    [
        '{"amount": 1, "amount": 2}',
        '{"amount": NaN}',
        '{"amount": Infinity}',
        "[" * 3000,
        "[]",
        '"text"',
        "\ud800",
    ],
)
def test_hostile_json_is_rejected(body: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_payment_request(body, merchant_id=MERCHANT)


def test_missing_required_field_is_named() -> None:
    fields = {k: v for k, v in VALID_REQUEST.items() if k != "currency"}
    with pytest.raises(InvalidRequest, match="currency"):
        parse_payment_request(json.dumps(fields), merchant_id=MERCHANT)


def test_payment_id_is_deterministic_and_distinct() -> None:
    payment_id = ID_KEY.payment_id
    assert payment_id("m-1", "key-00001") == payment_id("m-1", "key-00001")
    assert payment_id("m-1", "key-00001") != payment_id("m-1", "key-00002")
    assert payment_id("m-1", "key-00001") != payment_id("m-2", "key-00001")
    assert model.PAYMENT_ID_PATTERN.fullmatch(payment_id("m-1", "key-00001"))


def test_fingerprint_changes_with_any_field() -> None:
    request = parse_payment_request(json.dumps(VALID_REQUEST), merchant_id=MERCHANT)
    fingerprint = ID_KEY.fingerprint
    assert fingerprint(request) == fingerprint(
        parse_payment_request(json.dumps(VALID_REQUEST), merchant_id=MERCHANT)
    )
    for change in ({"amount": 2000}, {"currency": "USD"}, {"reference": "order-1002"}):
        other = parse_payment_request(json.dumps({**VALID_REQUEST, **change}), merchant_id=MERCHANT)
        assert fingerprint(other) != fingerprint(request)


def test_items_round_trip_without_floats() -> None:
    request = parse_payment_request(
        json.dumps({**VALID_REQUEST, "amount": model.MAX_AMOUNT_MINOR}), merchant_id=MERCHANT
    )
    payment = model.new_payment(request, "key-00001", "us-east-2", 1_764_100_000.5, ID_KEY)
    assert payment.created_at == "2025-11-25T19:46:40.500Z"
    assert from_item(to_item(payment)) == payment


@pytest.mark.parametrize("text", ["1.5", "NaN", "abc", "Infinity"])
def test_non_integer_amounts_in_the_table_are_corrupt(text: str) -> None:
    with pytest.raises(CorruptItem):
        integer_from_number(text)


def test_integral_decimal_text_is_an_exact_int() -> None:
    assert integer_from_number("100000000") == 100_000_000
    assert integer_from_number("1E+2") == 100
