"""Bad arguments are refused before anything is sent, with the argument named and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from payments_dr import contract
from payments_dr.client import HttpReply, InvalidArgument, PaymentsClient, UnexpectedAnswer
from payments_dr.client.arguments import IDEMPOTENCY_KEY_PATTERN, PAYMENT_ID_PATTERN
from payments_dr.service.openapi import load_openapi

from .fakes import (
    API_KEY,
    ENDPOINTS,
    PAYMENT,
    PRIMARY,
    FakeClock,
    ScriptedTransport,
    make_client,
)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": 12.5}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": "1250"}, "amount"),
        ({"currency": "eur"}, "currency"),
        ({"currency": None}, "currency"),
        ({"payment_token": ""}, "payment_token"),
        ({"reference": 7}, "reference"),
        ({"description": b"x"}, "description"),
        ({"idempotency_key": "short"}, "idempotency_key"),
        ({"idempotency_key": "has space in it"}, "idempotency_key"),
        ({"idempotency_key": "x" * 65}, "idempotency_key"),
    ],
)
def test_bad_payment_arguments_are_refused_unsent(changes: dict[str, Any], named: str) -> None:
    transport = ScriptedTransport()
    with pytest.raises(InvalidArgument, match=named):
        make_client(transport, FakeClock()).create_payment(**{**PAYMENT, **changes})
    assert transport.sent == []


def test_errors_never_echo_the_token() -> None:
    with pytest.raises(InvalidArgument) as raised:
        make_client(ScriptedTransport(), FakeClock()).create_payment(
            **{**PAYMENT, "amount": -1, "payment_token": "tok_secretvalue1"}
        )
    assert "tok_secretvalue1" not in str(raised.value)


@pytest.mark.parametrize(
    ("endpoints", "named"),
    [
        ({}, "endpoints"),
        ({PRIMARY: "http://api.us-east-1.pay.test"}, "https"),
        ({PRIMARY: "https://api.us-east-1.pay.test/live"}, "base URL"),
        ({PRIMARY: "https://api.us-east-1.pay.test?x=1"}, "base URL"),
        ({PRIMARY: "api.us-east-1.pay.test"}, "base URL"),
        ({PRIMARY: None}, "base URL"),
        ({"": "https://api.pay.test"}, "region name"),
    ],
)
def test_bad_endpoints_are_refused(endpoints: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidArgument, match=named):
        PaymentsClient(endpoints, API_KEY)


def test_plain_http_is_allowed_on_loopback_only_for_the_lab() -> None:
    client = PaymentsClient({PRIMARY: "http://127.0.0.1:8080/"}, API_KEY)
    assert client.regions == (PRIMARY,)


@pytest.mark.parametrize("api_key", ["", "pdr.acme.k1 hunter2x", " pdr.acme.k1.hunter2x", None])
def test_bad_api_keys_are_refused_without_echo(api_key: Any) -> None:
    with pytest.raises(InvalidArgument, match="api_key") as raised:
        PaymentsClient(ENDPOINTS, api_key)
    assert "hunter2x" not in str(raised.value)


def test_other_options_are_checked() -> None:
    with pytest.raises(InvalidArgument, match="preferred_region"):
        PaymentsClient(ENDPOINTS, API_KEY, preferred_region="eu-west-1")
    with pytest.raises(InvalidArgument, match="remembered_keys"):
        PaymentsClient(ENDPOINTS, API_KEY, remembered_keys=0)
    with pytest.raises(InvalidArgument, match="payment_id"):
        PaymentsClient(ENDPOINTS, API_KEY).get_payment("pay_../../v1/health")
    with pytest.raises(InvalidArgument, match="region"):
        PaymentsClient(ENDPOINTS, API_KEY).health("eu-west-1")


def test_repr_never_shows_the_key() -> None:
    assert API_KEY not in repr(PaymentsClient(ENDPOINTS, API_KEY))


def test_for_domain_uses_each_regions_own_name() -> None:
    client = PaymentsClient.for_domain("pay.example.com", API_KEY)
    assert client.regions == (contract.DEFAULT_PRIMARY_REGION, contract.DEFAULT_SECONDARY_REGION)
    assert client._endpoints == {
        region: f"https://api.{region}.pay.example.com" for region in client.regions
    }


@pytest.mark.parametrize(
    "domain_name", ["https://pay.example.com", "pay.example.com/", "", "PAY.example.com", "pay"]
)
def test_for_domain_wants_a_bare_domain(domain_name: str) -> None:
    with pytest.raises(InvalidArgument, match="domain_name"):
        PaymentsClient.for_domain(domain_name, API_KEY)


def test_the_patterns_are_the_api_documents() -> None:
    document = load_openapi()
    key = document["components"]["parameters"]["IdempotencyKey"]["schema"]["pattern"]
    payment_id = document["components"]["schemas"]["PaymentId"]["pattern"]
    assert f"^{IDEMPOTENCY_KEY_PATTERN.pattern}$" == key
    assert f"^{PAYMENT_ID_PATTERN.pattern}$" == payment_id


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"id": "pay_1"}',
        b'{"id": 1, "status": "accepted", "merchant_id": '
        b'"m", "amount": 1, "currency": "EUR", "region": "r", "created_at": "t"}',
    ],
)
def test_a_success_without_a_payment_is_an_unexpected_answer(body: bytes) -> None:
    transport = ScriptedTransport().script(PRIMARY, HttpReply(201, {}, body))
    with pytest.raises(UnexpectedAnswer):
        make_client(transport, FakeClock()).create_payment(**PAYMENT)
    assert len(transport.sent) == 1  # never retried: it may have been stored
