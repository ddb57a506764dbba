"""The REQUEST authorizer against moto: who gets in, what API Gateway is told, what is logged."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from payments_dr import contract
from payments_dr.service.api import build_api_handler
from payments_dr.service.authorizer import MethodArn, build_authorizer
from payments_dr.service.credentials import CredentialStore, IssuedKey, issue_key, parse_key
from payments_dr.service.observability import logger

from .conftest import VALID_REQUEST, FaultyClient, Region, api_event, provision

API_ID = "a1b2c3d4e5"
MERCHANT = "merchant-7"


def method_arn(region: str, method: str = "POST", path: str = contract.PAYMENTS_PATH) -> str:
    return f"arn:aws:execute-api:{region}:123456789012:{API_ID}/{contract.API_STAGE}/{method}{path}"


def authorizer_event(region: str, authorization: str | None) -> dict[str, Any]:
    """What API Gateway sends a REQUEST authorizer."""
    headers = {} if authorization is None else {contract.AUTH_HEADER: authorization}
    return {
        "type": "REQUEST",
        "methodArn": method_arn(region),
        "resource": contract.PAYMENTS_PATH,
        "path": contract.PAYMENTS_PATH,
        "httpMethod": "POST",
        "headers": headers,
        "requestContext": {"stage": contract.API_STAGE},
    }


def bearer(key: str) -> str:
    return f"{contract.AUTH_SCHEME} {key}"


def effect(verdict: dict[str, Any]) -> str:
    (statement,) = verdict["policyDocument"]["Statement"]
    return str(statement["Effect"])


def assert_denied(verdict: dict[str, Any]) -> None:
    assert effect(verdict) == "Deny"
    assert "context" not in verdict  # no merchant reaches the handler
    assert "usageIdentifierKey" not in verdict


def enrol(region: Region, merchant_id: str = MERCHANT) -> IssuedKey:
    issued = issue_key(merchant_id, region.clock())
    CredentialStore(region.dynamodb, region.table_name).create(issued.record)
    return issued


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Everything the service logger writes at INFO and above, as the function would log it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    previous_level = logger.log_level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(previous_level)


def test_a_valid_key_is_allowed_with_the_merchant_in_the_context(region: Region) -> None:
    issued = enrol(region)
    verdict = build_authorizer(region.deps)(
        authorizer_event(region.name, bearer(issued.api_key)), None
    )
    (statement,) = verdict["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert verdict["principalId"] == MERCHANT
    assert verdict["context"] == {contract.AUTH_CONTEXT_MERCHANT_ID: MERCHANT}
    assert verdict["usageIdentifierKey"] == issued.record.usage_key


def test_the_policy_names_only_the_payment_methods_of_this_stage(region: Region) -> None:
    issued = enrol(region)
    verdict = build_authorizer(region.deps)(
        authorizer_event(region.name, bearer(issued.api_key)), None
    )
    prefix = f"arn:aws:execute-api:{region.name}:123456789012:{API_ID}/{contract.API_STAGE}"
    (statement,) = verdict["policyDocument"]["Statement"]
    assert statement["Resource"] == [
        f"{prefix}/POST{contract.PAYMENTS_PATH}",
        f"{prefix}/GET{contract.PAYMENTS_PATH}/*",
    ]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer pdr.merchant-7",
        "Bearer pdr.merchant-7.0011aabb.short",
        "Bearer " + "x" * 500,
        "Bearer pdr.bad id.0011aabb." + "A" * 43,
    ],
    ids=["missing", "empty", "no-key", "wrong-scheme", "truncated", "short", "long", "bad-id"],
)
def test_missing_or_malformed_keys_are_denied(region: Region, authorization: str | None) -> None:
    enrol(region)
    assert_denied(build_authorizer(region.deps)(authorizer_event(region.name, authorization), None))


def test_a_wrong_secret_an_old_key_id_and_an_unknown_merchant_are_denied(region: Region) -> None:
    issued = enrol(region)
    _, merchant, key_id, secret = issued.api_key.split(".")
    wrong_secret = f"pdr.{merchant}.{key_id}.{'A' * 43}"
    wrong_key_id = f"pdr.{merchant}.{'f' * 8 if key_id != 'f' * 8 else '0' * 8}.{secret}"
    unknown = f"pdr.merchant-8.{key_id}.{secret}"
    authorize = build_authorizer(region.deps)
    for key in (wrong_secret, wrong_key_id, unknown):
        assert_denied(authorize(authorizer_event(region.name, bearer(key)), None))


def test_a_revoked_key_is_denied_explicitly(region: Region) -> None:
    issued = enrol(region)
    assert CredentialStore(region.dynamodb, region.table_name).revoke(MERCHANT, region.clock())
    verdict = build_authorizer(region.deps)(
        authorizer_event(region.name, bearer(issued.api_key)), None
    )
    assert_denied(verdict)
    assert verdict["principalId"] == MERCHANT


def test_a_reissued_key_replaces_the_revoked_one(region: Region) -> None:
    store = CredentialStore(region.dynamodb, region.table_name)
    old = enrol(region)
    store.revoke(MERCHANT, region.clock())
    new = enrol(region)
    authorize = build_authorizer(region.deps)
    assert_denied(authorize(authorizer_event(region.name, bearer(old.api_key)), None))
    assert effect(authorize(authorizer_event(region.name, bearer(new.api_key)), None)) == "Allow"


def test_the_table_unavailable_fails_closed(region: Region) -> None:
    issued = enrol(region)
    region.deps.dynamodb = FaultyClient(
        region.dynamodb, {"get_item": EndpointConnectionError(endpoint_url="https://dynamodb")}
    )
    # An exception is API Gateway's 500: no verdict, so nothing is cached or admitted.
    with pytest.raises(Exception, match="Could not connect"):
        build_authorizer(region.deps)(authorizer_event(region.name, bearer(issued.api_key)), None)


def test_the_secondary_authorizes_with_the_primary_table_unavailable(aws: None) -> None:
    primary = provision(contract.DEFAULT_PRIMARY_REGION, peer=contract.DEFAULT_SECONDARY_REGION)
    secondary = provision(contract.DEFAULT_SECONDARY_REGION, peer=contract.DEFAULT_PRIMARY_REGION)
    issued = enrol(primary)
    # What the global table's replication does: the record arrives in the secondary replica.
    CredentialStore(secondary.dynamodb, secondary.table_name).create(issued.record)
    outage = EndpointConnectionError(endpoint_url=f"https://dynamodb.{primary.name}")
    primary.deps.dynamodb = FaultyClient(primary.dynamodb, {"get_item": outage})
    event = authorizer_event(secondary.name, bearer(issued.api_key))
    verdict = build_authorizer(secondary.deps)(event, None)
    assert effect(verdict) == "Allow"
    assert verdict["context"][contract.AUTH_CONTEXT_MERCHANT_ID] == MERCHANT
    with pytest.raises(Exception, match="Could not connect"):
        build_authorizer(primary.deps)(authorizer_event(primary.name, bearer(issued.api_key)), None)


def test_only_the_hash_of_the_secret_is_stored(region: Region) -> None:
    issued = enrol(region)
    secret = issued.api_key.rsplit(".", 1)[1]
    stored = json.dumps(region.items())
    assert secret not in stored
    assert issued.record.secret_sha256 in stored
    assert secret not in repr(issued)


def test_no_credential_reaches_the_logs(region: Region, log_output: io.StringIO) -> None:
    issued = enrol(region)
    secret = issued.api_key.rsplit(".", 1)[1]
    authorize = build_authorizer(region.deps)
    authorize(authorizer_event(region.name, bearer(issued.api_key)), None)
    wrong = issued.api_key[:-4] + "AAAA"
    assert_denied(authorize(authorizer_event(region.name, bearer(wrong)), None))
    CredentialStore(region.dynamodb, region.table_name).revoke(MERCHANT, region.clock())
    authorize(authorizer_event(region.name, bearer(issued.api_key)), None)
    written = log_output.getvalue()
    assert "authorization refused" in written and "key revoked" in written  # logging happened
    assert MERCHANT in written
    assert secret not in written
    assert secret[:-4] not in written
    assert issued.record.secret_sha256 not in written


def test_a_denied_request_writes_nothing(region: Region) -> None:
    """On a Deny, API Gateway never runs the API handler; the handler itself also refuses a
    payment route reached without a verdict."""
    enrol(region)
    before = region.items()
    response = build_api_handler(region.deps)(
        api_event("POST", contract.PAYMENTS_PATH, json.dumps(VALID_REQUEST), merchant_id=None),
        None,
    )
    assert response["statusCode"] == 401
    assert region.items() == before


def test_method_arns_that_are_not_execute_api_are_refused() -> None:
    with pytest.raises(ValueError):
        MethodArn.parse("arn:aws:lambda:us-east-1:123456789012:function:x")


def test_issued_keys_parse_back_and_never_repeat() -> None:
    first, second = issue_key(MERCHANT, 0.0), issue_key(MERCHANT, 0.0)
    presented = parse_key(first.api_key)
    assert (presented.merchant_id, presented.key_id) == (MERCHANT, first.record.key_id)
    assert first.record.secret_matches(presented)
    assert first.api_key != second.api_key
    assert first.record.usage_key != second.record.usage_key
    assert not second.record.secret_matches(presented)
    with pytest.raises(ValueError):
        issue_key("bad id", 0.0)
