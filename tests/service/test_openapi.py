"""The OpenAPI document: precise enough for API Gateway validation and fuzzing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from payments_dr import contract
from payments_dr.service.openapi import load_openapi

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
    assert set(post["responses"]) == {"200", "201", "202", "400", "422", "503"}


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
