"""HTTP requests become the API Gateway REST proxy events the real handler expects."""

from __future__ import annotations

import base64
import string
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments_dr import contract
from payments_dr.lab.apigw import (
    AUTHORIZER_FAILURE,
    MISSING_AUTHENTICATION_TOKEN,
    AuthorizerCache,
    allows,
    match_resource,
    proxy_event,
)


def event_for(target: str, body: bytes = b"", headers: list[tuple[str, str]] | None = None):
    path = target.split("?", 1)[0]
    matched = match_resource(path)
    assert matched is not None
    resource, path_parameters = matched
    return proxy_event(
        method="GET",
        target=target,
        headers=headers or [],
        body=body,
        resource=resource,
        path_parameters=path_parameters,
        source_ip="127.0.0.1",
        api_host="127.0.0.1:8080",
    )


def test_resources_are_matched_like_the_openapi_document() -> None:
    assert match_resource(contract.PAYMENTS_PATH) == (contract.PAYMENTS_PATH, None)
    assert match_resource(contract.HEALTH_PATH) == (contract.HEALTH_PATH, None)
    assert match_resource("/v1/payments/pay_1") == (contract.PAYMENT_PATH, {"id": "pay_1"})
    assert match_resource("/v1/payments/a/b") is None
    assert match_resource("/v2/payments") is None


def test_event_carries_stage_query_and_repeated_headers() -> None:
    event = event_for(
        "/v1/payments/pay_1?verbose=1&tag=a&tag=b",
        headers=[("Accept", "application/json"), ("X-Tag", "one"), ("X-Tag", "two")],
    )
    assert event["resource"] == contract.PAYMENT_PATH
    assert event["path"] == "/v1/payments/pay_1"
    assert event["pathParameters"] == {"id": "pay_1"}
    assert event["queryStringParameters"] == {"verbose": "1", "tag": "b"}
    assert event["multiValueQueryStringParameters"]["tag"] == ["a", "b"]
    assert event["headers"]["X-Tag"] == "two"
    assert event["multiValueHeaders"]["X-Tag"] == ["one", "two"]
    assert event["requestContext"]["stage"] == contract.API_STAGE
    assert event["requestContext"]["path"] == f"/{contract.API_STAGE}/v1/payments/pay_1"
    assert event["body"] is None and event["isBase64Encoded"] is False


def test_binary_bodies_are_base64_encoded_as_api_gateway_does() -> None:
    raw = b"\xff\xfe\x00payload"
    event = event_for(contract.PAYMENTS_PATH, body=raw)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


@given(st.text(alphabet=string.ascii_letters + string.digits + "_-.~%", min_size=1, max_size=40))
def test_any_single_segment_becomes_the_decoded_id_path_parameter(segment: str) -> None:
    # REST APIs route on the encoded path and hand Lambda the percent-decoded parameter, so a
    # `%2F` segment is one id holding a slash (which the service then refuses as malformed).
    matched = match_resource(f"/v1/payments/{segment}")
    assert matched == (contract.PAYMENT_PATH, {"id": unquote(segment)})


@pytest.mark.parametrize(
    ("segment", "decoded"),
    [("a%2Fb", "a/b"), ("%2F", "/"), ("pay_%61%62", "pay_ab"), ("100%", "100%"), ("%zz", "%zz")],
)
def test_percent_escapes_in_the_id_are_decoded_and_the_path_stays_encoded(
    segment: str, decoded: str
) -> None:
    event = event_for(f"/v1/payments/{segment}")
    assert event["pathParameters"] == {"id": decoded}
    assert event["path"] == f"/v1/payments/{segment}"
    assert event["resource"] == contract.PAYMENT_PATH


def test_a_raw_slash_makes_another_resource() -> None:
    assert match_resource("/v1/payments/a/b") is None


def verdict(*statements: tuple[str, list[str]]) -> dict[str, Any]:
    return {
        "policyDocument": {
            "Statement": [{"Effect": effect, "Resource": arns} for effect, arns in statements]
        }
    }


def test_authorizer_policies_are_evaluated_like_iam() -> None:
    stage = "arn:aws:execute-api:us-east-1:1:lab/live"
    arn = f"{stage}/GET/v1/payments/pay_1"
    assert allows(verdict(("Allow", [f"{stage}/GET/v1/payments/*"])), arn)
    assert not allows(verdict(("Allow", [f"{stage}/POST/*"])), arn)
    assert not allows(verdict(("Allow", ["*"]), ("Deny", [arn])), arn)  # an explicit Deny wins
    assert not allows({}, arn)


def test_authorizer_verdicts_expire_after_the_cache_time() -> None:
    now = [0.0]
    cache = AuthorizerCache(lambda: now[0], ttl_seconds=60)
    cache.put("Bearer k", {"principalId": "m"})
    now[0] = 59.9
    assert cache.get("Bearer k") == {"principalId": "m"}
    assert cache.get("Bearer other") is None
    now[0] = 60.0
    assert cache.get("Bearer k") is None


def test_gateway_answers_follow_the_stacks_gateway_responses() -> None:
    # The stack overrides the authorizer failure's status and adds Retry-After.
    assert AUTHORIZER_FAILURE.render() == (
        503,
        {"Retry-After": str(contract.RETRY_AFTER_SECONDS)},
        {"code": "unavailable", "message": "Authorizer error"},
    )
    # An unknown resource or method keeps API Gateway's 403, labelled as what it is.
    assert MISSING_AUTHENTICATION_TOKEN.render() == (
        403,
        {},
        {"code": "not_found", "message": "Missing Authentication Token"},
    )
