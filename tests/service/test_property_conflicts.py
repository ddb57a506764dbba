"""Property: reusing an Idempotency-Key with any other request never changes the stored one."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from payments_dr import contract
from payments_dr.service import model
from payments_dr.service.api import build_api_handler
from payments_dr.service.store import Attr

from .conftest import ID_KEY, MERCHANT, VALID_REQUEST, Region, post_event, provision

KEYS = (f"key-{n:08d}" for n in itertools.count())  # a fresh key for every example


@pytest.fixture(scope="module")
def conflict_region() -> Iterator[Region]:
    with mock_aws():
        yield provision(contract.DEFAULT_PRIMARY_REGION)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    amount=st.integers(min_value=1, max_value=model.MAX_AMOUNT_MINOR),
    other_amount=st.integers(min_value=1, max_value=model.MAX_AMOUNT_MINOR),
    currency=st.sampled_from(sorted(model.CURRENCIES)),
)
def test_key_reuse_with_any_other_request_is_422_and_keeps_the_original(
    conflict_region: Region, amount: int, other_amount: int, currency: str
) -> None:
    region = conflict_region
    api = build_api_handler(region.deps)
    key = next(KEYS)
    original = {**VALID_REQUEST, "amount": amount, "currency": currency}
    created = api(post_event(original, key=key), None)
    assert created["statusCode"] == 201
    assert json.loads(created["body"])["amount"] == amount
    item_key = {Attr.PK.value: {"S": ID_KEY.payment_id(MERCHANT, key)}}
    stored = region.dynamodb.get_item(TableName=region.table_name, Key=item_key)["Item"]
    response = api(post_event({**original, "amount": other_amount}, key=key), None)
    assert response["statusCode"] == (200 if other_amount == amount else 422)
    assert region.dynamodb.get_item(TableName=region.table_name, Key=item_key)["Item"] == stored
