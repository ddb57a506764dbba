"""The OpenAPI document: precise enough for API Gateway validation and fuzzing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import openapi_spec_validator
import pytest
import schemathesis

from payments_dr import contract
from payments_dr.service import model
from payments_dr.service.openapi import load_openapi

from .conftest import MERCHANT, VALID_REQUEST

# Keywords API Gateway's REST model import rejects or silently ignores (it speaks a subset of
# JSON Schema draft 4): relying on any of them would make gateway and service disagree.
UNSUPPORTED_KEYWORDS = {
    "format",
    "discriminator",
    "example",
    "examples",
    "nullable",
    "readOnly",
    "writeOnly",
    "exclusiveMinimum",
    "exclusiveMaximum",
}


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/")
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_paths_and_methods_come_from_the_contract() -> None:
    paths = load_openapi()["paths"]
    assert set(paths) == {contract.PAYMENTS_PATH, contract.PAYMENT_PATH, contract.HEALTH_PATH}
    assert set(paths[contract.PAYMENTS_PATH]) == {"post"}
    assert set(paths[contract.PAYMENT_PATH]) == {"get"}
    assert set(paths[contract.HEALTH_PATH]) == {"get"}


def test_post_requires_the_idempotency_header_and_a_json_body() -> None:
    document = load_openapi()
    post = document["paths"][contract.PAYMENTS_PATH]["post"]
    parameters = [resolve(document, p["$ref"]) if "$ref" in p else p for p in post["parameters"]]
    header = next(p for p in parameters if p["in"] == "header")
    assert header["name"] == contract.IDEMPOTENCY_HEADER
    assert header["required"] is True
    assert post["requestBody"]["required"] is True
    assert set(post["requestBody"]["content"]) == {"application/json"}
    assert set(post["responses"]) == {"200", "201", "202", "400", "401", "403", "422", "429", "503"}


def test_payment_operations_need_a_merchant_key_and_health_stays_open() -> None:
    document = load_openapi()
    scheme = document["components"]["securitySchemes"]["MerchantKey"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    paths = document["paths"]
    assert paths[contract.PAYMENTS_PATH]["post"]["security"] == [{"MerchantKey": []}]
    assert paths[contract.PAYMENT_PATH]["get"]["security"] == [{"MerchantKey": []}]
    assert paths[contract.HEALTH_PATH]["get"]["security"] == []
    assert "security" not in document  # no default: every operation states its own


def test_every_reference_resolves() -> None:
    document = load_openapi()
    refs = [node["$ref"] for node in walk(document) if "$ref" in node]
    assert refs
    for ref in refs:
        assert isinstance(resolve(document, ref), dict), ref


def test_objects_are_closed_and_strings_bounded() -> None:
    schemas = load_openapi()["components"]["schemas"]
    for name, schema in schemas.items():
        for node in walk(schema):
            if node.get("type") == "object":
                assert node.get("additionalProperties") is False, name
                assert set(node["required"]) <= set(node["properties"]), name
            if node.get("type") == "string" and "enum" not in node:
                assert "maxLength" in node, name


def test_no_keywords_api_gateway_cannot_validate() -> None:
    document = load_openapi()
    for node in walk(document["components"]):
        # `properties` maps field names (which may be anything) to schemas.
        keywords = set(node) - set(node.get("properties", {}) if "type" in node else {})
        assert not keywords & UNSUPPORTED_KEYWORDS, keywords & UNSUPPORTED_KEYWORDS


def test_unavailable_answers_carry_retry_after() -> None:
    document = load_openapi()
    headers = document["components"]["responses"]["Unavailable"]["headers"]
    assert "Retry-After" in headers


def test_each_call_returns_an_independent_copy() -> None:
    first = load_openapi()
    first["paths"].clear()
    assert load_openapi()["paths"]


def test_document_is_valid_openapi_and_loads_in_schemathesis() -> None:
    openapi_spec_validator.validate(load_openapi())
    schema = schemathesis.openapi.from_dict(load_openapi())
    operations = {(op.ok().method, op.ok().path) for op in schema.get_all_operations()}
    assert operations == {
        ("post", contract.PAYMENTS_PATH),
        ("get", contract.PAYMENT_PATH),
        ("get", contract.HEALTH_PATH),
    }


REQUEST_CASES = [
    ({}, True),
    ({"description": "Order 1001, blue (large)"}, True),
    ({"amount": 0}, False),
    ({"amount": model.MAX_AMOUNT_MINOR + 1}, False),
    ({"amount": 19.99}, False),
    ({"amount": "1999"}, False),
    ({"currency": "usd"}, False),
    ({"merchant_id": "bad id"}, False),
    ({"payment_token": "4111111111111111"}, False),
    ({"reference": ""}, False),
    ({"description": "line\nbreak"}, False),
    ({"extra": 1}, False),
]


@pytest.mark.parametrize(("change", "valid"), REQUEST_CASES)
def test_gateway_schema_and_service_agree_on_requests(change: dict[str, Any], valid: bool) -> None:
    """API Gateway validates with the document's schema (JSON Schema draft 4), the service
    with model.py: both must draw the same line."""
    schema = load_openapi()["components"]["schemas"]["PaymentRequest"]
    request = {**VALID_REQUEST, **change}
    gateway_accepts = jsonschema.Draft4Validator(schema).is_valid(request)
    try:
        model.parse_payment_request(json.dumps(request), merchant_id=MERCHANT)
        service_accepts = True
    except model.InvalidRequest:
        service_accepts = False
    assert gateway_accepts == service_accepts == valid
