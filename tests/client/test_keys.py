"""Idempotency keys: generated when missing, returned, and never sent with two bodies."""

from __future__ import annotations

import contextlib
import json
import re
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments_dr.client import (
    Failure,
    IdempotencyKeyReused,
    PaymentsUnavailable,
    RequestRejected,
    RetryPolicy,
    new_idempotency_key,
)

from .fakes import (
    PAYMENT,
    PRIMARY,
    SECONDARY,
    FakeClock,
    ScriptedTransport,
    created,
    make_client,
    reply,
)


def test_a_generated_key_is_sent_and_returned() -> None:
    transport = ScriptedTransport().script(PRIMARY, created(PRIMARY))
    result = make_client(transport, FakeClock()).create_payment(**PAYMENT)
    assert result.idempotency_key is not None
    assert transport.sent[0].headers["Idempotency-Key"] == result.idempotency_key
    assert re.fullmatch(r"[A-Za-z0-9_-]{8,64}", result.idempotency_key)


def test_generated_keys_are_unique_and_hold_no_digit_a_card_number_could_hide_in() -> None:
    keys = {new_idempotency_key() for _ in range(2000)}
    assert len(keys) == 2000
    assert not any(re.search(r"\d", key) for key in keys)


def test_every_retry_in_every_region_sends_the_same_key_and_bytes() -> None:
    transport = (
        ScriptedTransport()
        .script(PRIMARY, Failure.NO_ANSWER, reply(503))
        .script(SECONDARY, reply(429), created(SECONDARY))
    )
    result = make_client(transport, FakeClock()).create_payment(
        **PAYMENT, reference="order-77", idempotency_key="order-77-try"
    )
    assert result.attempts == 4 and result.region == SECONDARY
    sent = transport.api_requests()
    assert {s.region for s in sent} == {PRIMARY, SECONDARY}
    assert {s.headers["Idempotency-Key"] for s in sent} == {"order-77-try"}
    assert len({s.body for s in sent}) == 1
    assert json.loads(sent[0].body or b"") == {**PAYMENT, "reference": "order-77"}
    assert sent[0].headers["Authorization"] == "Bearer pdr.acme.k1.s3cr3tvalue"
    assert sent[0].headers["Content-Type"] == "application/json"


def test_the_same_payment_encodes_to_the_same_bytes() -> None:
    transport = ScriptedTransport().script(PRIMARY, created(PRIMARY))
    client = make_client(transport, FakeClock())
    client.create_payment(amount=5, currency="USD", payment_token="tok_abcdefgh", reference="r-1")
    client.create_payment(reference="r-1", payment_token="tok_abcdefgh", currency="USD", amount=5)
    first, second = transport.sent
    assert first.body == second.body and first.body == (
        b'{"amount":5,"currency":"USD","payment_token":"tok_abcdefgh","reference":"r-1"}'
    )


def test_reusing_a_key_for_another_payment_is_refused_before_anything_is_sent() -> None:
    transport = ScriptedTransport().script(PRIMARY, created(PRIMARY))
    client = make_client(transport, FakeClock())
    client.create_payment(**PAYMENT, idempotency_key="order-0001")
    with pytest.raises(IdempotencyKeyReused, match="idempotency_key"):
        client.create_payment(**{**PAYMENT, "amount": 9999}, idempotency_key="order-0001")
    assert len(transport.sent) == 1
    # The same payment again under its key is a retry, and is sent.
    assert client.create_payment(**PAYMENT, idempotency_key="order-0001").created
    assert len(transport.sent) == 2


def test_a_key_whose_payment_was_unanswered_stays_bound_to_it() -> None:
    transport = (
        ScriptedTransport().script(PRIMARY, Failure.NO_ANSWER).script(SECONDARY, Failure.NO_ANSWER)
    )
    client = make_client(transport, FakeClock(), retry=RetryPolicy(max_attempts=2))
    with pytest.raises(PaymentsUnavailable):
        client.create_payment(**PAYMENT, idempotency_key="order-0003")
    with pytest.raises(IdempotencyKeyReused):
        client.create_payment(**{**PAYMENT, "currency": "USD"}, idempotency_key="order-0003")


@pytest.mark.parametrize("status", [400, 401, 403])
def test_a_key_refused_before_storage_may_carry_the_corrected_payment(status: int) -> None:
    transport = ScriptedTransport().script(PRIMARY, reply(status), created(PRIMARY))
    client = make_client(transport, FakeClock())
    with pytest.raises(RequestRejected):
        client.create_payment(**PAYMENT, idempotency_key="order-0004")
    fixed = client.create_payment(**{**PAYMENT, "amount": 1300}, idempotency_key="order-0004")
    assert fixed.created


def test_the_ledger_forgets_the_oldest_keys_beyond_its_size() -> None:
    transport = ScriptedTransport().script(PRIMARY, created(PRIMARY))
    client = make_client(transport, FakeClock(), remembered_keys=2)
    for key in ("key-aaaa", "key-bbbb", "key-cccc"):
        client.create_payment(**PAYMENT, idempotency_key=key)
    client.create_payment(**{**PAYMENT, "amount": 1}, idempotency_key="key-aaaa")  # forgotten
    with pytest.raises(IdempotencyKeyReused):
        client.create_payment(**{**PAYMENT, "amount": 1}, idempotency_key="key-cccc")


@settings(max_examples=60, deadline=None)
@given(
    calls=st.lists(
        st.tuples(
            st.sampled_from(["key-one1", "key-two2", "key-three"]),
            st.integers(min_value=1, max_value=3),
            st.sampled_from(["EUR", "USD"]),
        ),
        min_size=1,
        max_size=12,
    ),
    failures=st.lists(st.booleans(), min_size=1, max_size=6),
)
def test_no_key_ever_goes_out_with_two_bodies(
    calls: list[tuple[str, int, str]], failures: list[bool]
) -> None:
    answers = [Failure.NO_ANSWER if fail else created(PRIMARY) for fail in failures]
    transport = ScriptedTransport().script(PRIMARY, *answers).script(SECONDARY, *reversed(answers))
    client = make_client(transport, FakeClock(), retry=RetryPolicy(max_attempts=3))
    for key, amount, currency in calls:
        with contextlib.suppress(IdempotencyKeyReused, PaymentsUnavailable):
            client.create_payment(
                amount=amount, currency=currency, payment_token="tok_abcdefgh", idempotency_key=key
            )
    bodies: dict[str, set[bytes | None]] = defaultdict(set)
    for sent in transport.api_requests():
        bodies[sent.headers["Idempotency-Key"]].add(sent.body)
    assert all(len(seen) == 1 for seen in bodies.values())
