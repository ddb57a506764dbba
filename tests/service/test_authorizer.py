"""The REQUEST authorizer against moto: who gets in, what API Gateway is told, what is logged."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from payments_dr import contract
from payments_dr.service.api import build_api_handler
from payments_dr.service.authorizer import MethodArn, build_authorizer
from payments_dr.service.credentials import (
    KEY_ID_PATTERN,
    SECRET_PATTERN,
    CredentialStore,
    IssuedKey,
    KeyChanged,
    MerchantRecord,
    PreviousKey,
    issue_key,
    parse_key,
    rotate_key,
)
from payments_dr.service.model import iso_timestamp
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


@pytest.mark.parametrize(
    "spelling",
    [
        "Bearer  {key}",
        "Bearer {key} ",
        " Bearer {key}",
        "bearer {key}",
        "BEARER {key}",
        "Bearer\t{key}",
        "Bearer {key} {key}",
    ],
)
def test_only_the_canonical_spelling_of_a_key_is_read(region: Region, spelling: str) -> None:
    """Each spelling would be its own authorizer-cache entry: a non-canonical one is refused
    before any table read, so it cannot force a read per request (issue 16, point 7)."""
    issued = enrol(region)
    authorize = build_authorizer(region.deps)
    assert effect(authorize(authorizer_event(region.name, bearer(issued.api_key)), None)) == "Allow"
    region.deps.dynamodb = FaultyClient(
        region.dynamodb, {"get_item": AssertionError("the table was read")}
    )
    event = authorizer_event(region.name, spelling.format(key=issued.api_key))
    assert_denied(build_authorizer(region.deps)(event, None))


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


# --- rotation: the previous key stays valid for its overlap window ----------------------

OVERLAP_SECONDS = 3600.0


def rotate(region: Region, overlap_seconds: float = OVERLAP_SECONDS) -> IssuedKey:
    store = CredentialStore(region.dynamodb, region.table_name)
    current = store.get(MERCHANT)
    assert current is not None
    rotated = rotate_key(current, region.clock(), overlap_seconds)
    store.rotate(current.key_id, rotated.record)
    return rotated


def verdict_for(region: Region, key: str) -> dict[str, Any]:
    return build_authorizer(region.deps)(authorizer_event(region.name, bearer(key)), None)


def test_after_a_rotation_both_keys_are_allowed_until_the_overlap_ends(region: Region) -> None:
    old = enrol(region)
    new = rotate(region)
    for key in (old.api_key, new.api_key):
        verdict = verdict_for(region, key)
        assert effect(verdict) == "Allow"
        assert verdict["context"] == {contract.AUTH_CONTEXT_MERCHANT_ID: MERCHANT}
        # One usage key per merchant: both keys draw on the same throttle.
        assert verdict["usageIdentifierKey"] == old.record.usage_key

    region.clock.advance(OVERLAP_SECONDS - 0.001)
    assert effect(verdict_for(region, old.api_key)) == "Allow"
    region.clock.advance(0.001)  # now == previous_expires_at: the window is half-open

    expired = verdict_for(region, old.api_key)
    assert_denied(expired)
    assert expired["principalId"] == MERCHANT  # a genuine key, told apart in the metrics
    assert effect(verdict_for(region, new.api_key)) == "Allow"


def test_a_second_rotation_drops_the_oldest_key_at_once(region: Region) -> None:
    first = enrol(region)
    second = rotate(region)
    third = rotate(region)
    assert_denied(verdict_for(region, first.api_key))
    assert effect(verdict_for(region, second.api_key)) == "Allow"
    assert effect(verdict_for(region, third.api_key)) == "Allow"


def test_revoking_after_a_rotation_denies_both_keys(region: Region) -> None:
    old = enrol(region)
    new = rotate(region)
    assert CredentialStore(region.dynamodb, region.table_name).revoke(MERCHANT, region.clock())
    for key in (old.api_key, new.api_key):
        verdict = verdict_for(region, key)
        assert_denied(verdict)
    (item,) = region.items()
    assert not any(name.startswith("previous_") for name in item)


def test_two_rotations_from_the_same_record_only_one_wins(region: Region) -> None:
    enrol(region)
    store = CredentialStore(region.dynamodb, region.table_name)
    start = store.get(MERCHANT)
    assert start is not None
    winner = rotate_key(start, region.clock(), OVERLAP_SECONDS)
    loser = rotate_key(start, region.clock(), OVERLAP_SECONDS)
    store.rotate(start.key_id, winner.record)
    with pytest.raises(KeyChanged):
        store.rotate(start.key_id, loser.record)
    assert store.get(MERCHANT) == winner.record
    assert effect(verdict_for(region, winner.api_key)) == "Allow"
    assert_denied(verdict_for(region, loser.api_key))


def test_a_rotation_racing_a_revoke_writes_nothing(region: Region) -> None:
    enrol(region)
    store = CredentialStore(region.dynamodb, region.table_name)
    start = store.get(MERCHANT)
    assert start is not None
    store.revoke(MERCHANT, region.clock())
    revoked = region.items()
    with pytest.raises(KeyChanged):
        store.rotate(start.key_id, rotate_key(start, region.clock(), OVERLAP_SECONDS).record)
    assert region.items() == revoked
    now_revoked = store.get(MERCHANT)
    assert now_revoked is not None
    with pytest.raises(ValueError, match="no active key"):
        rotate_key(now_revoked, region.clock(), OVERLAP_SECONDS)


def test_a_record_written_before_rotation_existed_still_parses_and_admits(region: Region) -> None:
    issued = issue_key(MERCHANT, region.clock())
    record = issued.record
    legacy_item = {  # the attributes every record had before keys could be rotated
        contract.TABLE_HASH_KEY: {"S": contract.merchant_item_key(MERCHANT)},
        "merchant_id": {"S": MERCHANT},
        "key_id": {"S": record.key_id},
        "secret_sha256": {"S": record.secret_sha256},
        "status": {"S": "active"},
        "created_at": {"S": record.created_at},
        "usage_key": {"S": record.usage_key},
    }
    region.dynamodb.put_item(TableName=region.table_name, Item=legacy_item)
    assert CredentialStore(region.dynamodb, region.table_name).get(MERCHANT) == record
    assert effect(verdict_for(region, issued.api_key)) == "Allow"


def test_rotated_records_round_trip_through_the_table_format(region: Region) -> None:
    rotated = rotate_key(enrol(region).record, region.clock(), OVERLAP_SECONDS).record
    assert MerchantRecord.from_item(rotated.to_item()) == rotated
    assert rotated.previous is not None
    assert rotated.previous.expires_at == iso_timestamp(region.clock() + OVERLAP_SECONDS)


@pytest.mark.parametrize("written", ["2026-03-01T12:00:00.000Z", "2026-03-01T12:00:00"])
def test_an_expiry_is_read_as_utc_whatever_the_local_zone(
    written: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    expires_at = 1772366400.0  # 2026-03-01T12:00:00Z
    assert iso_timestamp(expires_at) == "2026-03-01T12:00:00.000Z"
    previous = PreviousKey(key_id="0badc0de", secret_sha256="0" * 64, expires_at=written)
    monkeypatch.setenv("TZ", "America/New_York")  # five hours behind UTC in March
    time.tzset()
    try:
        assert previous.valid_at(expires_at - 0.001)
        assert not previous.valid_at(expires_at)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_rotation_keeps_every_secret_out_of_the_logs(
    region: Region, log_output: io.StringIO
) -> None:
    old = enrol(region)
    new = rotate(region)
    verdict_for(region, old.api_key)
    verdict_for(region, new.api_key)
    region.clock.advance(OVERLAP_SECONDS)
    verdict_for(region, old.api_key)
    written = log_output.getvalue()
    previous = new.record.previous
    assert previous is not None
    assert "previous key" in written and "rotated key expired" in written
    assert previous.key_id in written and previous.expires_at in written
    for issued in (old, new):
        secret = issued.api_key.rsplit(".", 1)[1]
        assert secret not in written and secret[:-4] not in written
        assert issued.record.secret_sha256 not in written


key_ids = st.from_regex(KEY_ID_PATTERN, fullmatch=True)
secrets_ = st.from_regex(SECRET_PATTERN, fullmatch=True)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_key_but_the_current_and_the_previous_is_denied(
    rotated_region: tuple[Region, IssuedKey, IssuedKey], data: st.DataObject
) -> None:
    region, old, new = rotated_region
    genuine = {old.api_key, new.api_key}
    real_ids = [old.record.key_id, new.record.key_id]
    real_secrets = [key.rsplit(".", 1)[1] for key in genuine]
    key_id = data.draw(st.sampled_from(real_ids) | key_ids, label="key id")
    secret = data.draw(st.sampled_from(real_secrets) | secrets_, label="secret")
    presented = f"pdr.{MERCHANT}.{key_id}.{secret}"
    assume(presented not in genuine)
    assert_denied(verdict_for(region, presented))


@pytest.fixture
def rotated_region(region: Region) -> tuple[Region, IssuedKey, IssuedKey]:
    """A merchant mid-rotation: both keys valid; hypothesis only reads it."""
    old = enrol(region)
    return region, old, rotate(region)
