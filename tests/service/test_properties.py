"""Property-based tests: hostile bodies and headers get 400/422, never 5xx, never a write."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from payments_dr import contract
from payments_dr.service import model, retry_message
from payments_dr.service.api import build_api_handler

from .conftest import ID_KEY, VALID_REQUEST, Region, api_event, post_event, provision

SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
STRING_FIELDS = {
    "merchant_id": model.MERCHANT_ID_PATTERN,
    "payment_token": model.PAYMENT_TOKEN_PATTERN,
    "reference": model.REFERENCE_PATTERN,
    "description": model.DESCRIPTION_PATTERN,
}


def invalid_amounts() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(max_value=0),
        st.integers(min_value=model.MAX_AMOUNT_MINOR + 1),
        st.floats(),
        st.booleans(),
        st.text(max_size=12),
        st.none(),
        st.lists(st.integers(), max_size=2),
    )


def invalid_field_values() -> st.SearchStrategy[tuple[str, Any]]:
    broken_strings = [
        st.tuples(
            st.just(name),
            json_values.filter(lambda v, p=p: not (isinstance(v, str) and p.fullmatch(v))),
        )
        for name, p in STRING_FIELDS.items()
    ]
    return st.one_of(
        st.tuples(st.just("amount"), invalid_amounts()),
        st.tuples(
            st.just("currency"),
            json_values.filter(lambda v: not (isinstance(v, str) and v in model.CURRENCIES)),
        ),
        *broken_strings,
    )


@st.composite
def invalid_requests(draw: st.DrawFn) -> str:
    """Bodies that are almost right, or not JSON objects at all."""
    kind = draw(st.sampled_from(["field", "unknown", "missing", "not-object", "text"]))
    fields: dict[str, Any] = dict(VALID_REQUEST)
    if kind == "field":
        name, value = draw(invalid_field_values())
        fields[name] = value
    elif kind == "unknown":
        name = draw(st.text(max_size=20).filter(lambda n: n not in fields))
        fields[name] = draw(json_values)
    elif kind == "missing":
        del fields[draw(st.sampled_from(sorted(model.BODY_REQUIRED_FIELDS)))]
    elif kind == "not-object":
        return json.dumps(draw(json_values.filter(lambda v: not isinstance(v, dict))))
    else:
        return draw(st.text(max_size=200))
    return json.dumps(fields)


@pytest.fixture(scope="module")
def hostile_region() -> Iterator[Region]:
    with mock_aws():
        yield provision(contract.DEFAULT_PRIMARY_REGION)


def assert_nothing_written(region: Region) -> None:
    assert region.items() == []
    assert region.queue_depth(region.queue_url) == 0


@SETTINGS
@given(body=invalid_requests())
def test_malformed_bodies_are_400_and_write_nothing(hostile_region: Region, body: str) -> None:
    response = build_api_handler(hostile_region.deps)(post_event(body), None)
    assert response["statusCode"] == 400, response["body"]
    assert json.loads(response["body"])["code"] == "bad_request"
    assert_nothing_written(hostile_region)


@SETTINGS
@given(
    key=st.one_of(st.none(), st.text(max_size=100)).filter(
        lambda k: k is None or not model.IDEMPOTENCY_KEY_PATTERN.fullmatch(k)
    ),
    content_type=st.one_of(st.just("application/json"), st.text(max_size=30)),
)
def test_bad_idempotency_keys_are_400_and_write_nothing(
    hostile_region: Region, key: str | None, content_type: str
) -> None:
    headers = {"Content-Type": content_type}
    if key is not None:
        headers[contract.IDEMPOTENCY_HEADER] = key
    event = api_event("POST", contract.PAYMENTS_PATH, json.dumps(VALID_REQUEST), headers)
    response = build_api_handler(hostile_region.deps)(event, None)
    assert response["statusCode"] == 400
    assert_nothing_written(hostile_region)


@SETTINGS
@given(raw=st.binary(max_size=300), declared_base64=st.booleans())
def test_arbitrary_bytes_never_cause_a_server_error(
    hostile_region: Region, raw: bytes, declared_base64: bool
) -> None:
    import base64

    body = base64.b64encode(raw).decode() if declared_base64 else raw.decode("latin-1")
    event = {**post_event(VALID_REQUEST), "body": body, "isBase64Encoded": declared_base64}
    response = build_api_handler(hostile_region.deps)(event, None)
    assert response["statusCode"] == 400
    assert_nothing_written(hostile_region)


@SETTINGS
@given(path_id=st.text(max_size=60))
def test_arbitrary_payment_ids_are_400_or_404(hostile_region: Region, path_id: str) -> None:
    event = api_event("GET", f"{contract.PAYMENTS_PATH}/{path_id}")
    response = build_api_handler(hostile_region.deps)(event, None)
    assert response["statusCode"] in {400, 404}


@settings(max_examples=150, deadline=None)
@given(
    body=st.one_of(
        st.text(max_size=200),
        json_values.map(json.dumps),
        st.fixed_dictionaries(
            {"version": st.just(1), "id": json_values, "request": json_values}
        ).map(json.dumps),
    )
)
def test_any_malformed_retry_message_is_poison(body: str) -> None:
    """The worker must classify every bad message the same way, never crash otherwise."""
    with pytest.raises(retry_message.PoisonMessage):
        retry_message.decode(body, ID_KEY)
