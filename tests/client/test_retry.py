"""The retry rules: final answers, backoff with full jitter, Retry-After, attempts, deadline."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments_dr.client import (
    AttemptEvent,
    BreakerState,
    ClientEvent,
    Failure,
    IdempotencyConflict,
    InvalidArgument,
    Outcome,
    PaymentNotFound,
    PaymentsUnavailable,
    RequestRejected,
    RetryPolicy,
    Timeouts,
)
from payments_dr.client.policy import classify, retry_after_seconds

from .fakes import (
    PAYMENT,
    PRIMARY,
    FakeClock,
    ScriptedTransport,
    created,
    make_client,
    payment_json,
    reply,
)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 405, 409, 413, 415])
def test_a_final_answer_is_raised_after_one_attempt(status: int) -> None:
    clock = FakeClock()
    body = {"code": "bad_request", "message": "amount must be positive"}
    transport = ScriptedTransport().script(PRIMARY, reply(status, body))
    client = make_client(transport, clock)
    with pytest.raises(RequestRejected) as raised:
        client.create_payment(**PAYMENT)
    assert raised.value.status == status
    assert raised.value.code == "bad_request"
    assert raised.value.region == PRIMARY
    assert raised.value.attempts == 1
    assert len(transport.sent) == 1 and clock.sleeps == []
    # A 4xx says the region answered: it is no reason to leave it.
    assert client.breaker_state(PRIMARY) is BreakerState.CLOSED


def test_404_and_422_have_their_own_errors() -> None:
    transport = ScriptedTransport().script(PRIMARY, reply(404, {"code": "not_found"}))
    with pytest.raises(PaymentNotFound):
        make_client(transport, FakeClock()).get_payment("pay_" + "a" * 32)
    transport = ScriptedTransport().script(PRIMARY, reply(422, {"code": "idempotency_conflict"}))
    with pytest.raises(IdempotencyConflict) as raised:
        make_client(transport, FakeClock()).create_payment(**PAYMENT, idempotency_key="order-0001")
    assert raised.value.idempotency_key == "order-0001"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.SUCCESS),
        (201, Outcome.SUCCESS),
        (202, Outcome.SUCCESS),
        (408, Outcome.THROTTLED),
        (429, Outcome.THROTTLED),
        (500, Outcome.REGION_FAILURE),
        (502, Outcome.REGION_FAILURE),
        (503, Outcome.REGION_FAILURE),
        (504, Outcome.REGION_FAILURE),
        (301, Outcome.FINAL),
        (400, Outcome.FINAL),
        (422, Outcome.FINAL),
    ],
)
def test_classification(status: int, outcome: Outcome) -> None:
    assert classify(status) is outcome


@given(
    retry=st.integers(min_value=1, max_value=40),
    unit=st.floats(min_value=0, max_value=1, exclude_max=True),
    base=st.floats(min_value=0.01, max_value=2),
    cap_factor=st.floats(min_value=1, max_value=100),
)
def test_backoff_is_full_jitter_under_the_exponential_ceiling(
    retry: int, unit: float, base: float, cap_factor: float
) -> None:
    policy = RetryPolicy(base_delay_seconds=base, max_delay_seconds=base * cap_factor)
    ceiling = min(base * cap_factor, base * 2 ** (retry - 1))
    delay = policy.backoff(retry, unit)
    assert 0 <= delay <= ceiling
    assert delay == pytest.approx(unit * ceiling)


def test_waits_grow_exponentially_with_jitter_applied() -> None:
    clock = FakeClock()
    transport = ScriptedTransport().script(
        PRIMARY, reply(429), reply(429), reply(429), created(PRIMARY)
    )
    client = make_client(
        transport,
        clock,
        unit_random=0.5,
        retry=RetryPolicy(base_delay_seconds=1, max_delay_seconds=3),
    )
    result = client.create_payment(**PAYMENT)
    assert result.attempts == 4
    assert clock.sleeps == [0.5, 1.0, 1.5]  # half of 1, 2, then the 3 s cap


def test_429_waits_at_least_retry_after_and_stays_in_the_region() -> None:
    clock = FakeClock()
    transport = ScriptedTransport().script(
        PRIMARY, reply(429, {"code": "throttled"}, retry_after="3"), created(PRIMARY)
    )
    client = make_client(transport, clock, breaker=None)
    result = client.create_payment(**PAYMENT)
    assert result.region == PRIMARY and result.attempts == 2
    assert clock.sleeps == [3.0]  # the server's wait, above our 0.1 s of jitter
    assert client.breaker_state(PRIMARY) is BreakerState.CLOSED


def test_503_retry_after_holds_while_the_region_is_still_in_use() -> None:
    clock = FakeClock()
    transport = ScriptedTransport().script(PRIMARY, reply(503, retry_after="2"), created(PRIMARY))
    result = make_client(transport, clock).create_payment(**PAYMENT)
    assert result.region == PRIMARY and clock.sleeps == [2.0]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("2", 2.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        ("soon", None),
        ("", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_retry_after_values(header: str, expected: float | None) -> None:
    assert retry_after_seconds({"retry-after": header}, wall_now=0.0) == expected


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(datetime(2026, 1, 1, 12, 0, 7, tzinfo=UTC), usegmt=True)
    assert retry_after_seconds({"retry-after": header}, now.timestamp()) == pytest.approx(7.0)


def test_gives_up_after_max_attempts_with_the_key_to_retry_later() -> None:
    clock = FakeClock()
    transport = ScriptedTransport().script(PRIMARY, reply(429))
    client = make_client(transport, clock, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(PaymentsUnavailable) as raised:
        client.create_payment(**PAYMENT, idempotency_key="order-0002")
    error = raised.value
    assert error.attempts == 3 and error.regions_tried == (PRIMARY,)
    assert error.idempotency_key == "order-0002"
    assert "order-0002" in str(error) and "429 from us-east-1" in str(error)
    assert len(clock.sleeps) == 2  # no wait after the last attempt


def test_gives_up_rather_than_wait_past_the_deadline() -> None:
    clock = FakeClock()
    transport = ScriptedTransport().script(PRIMARY, reply(429, retry_after="20"))
    client = make_client(transport, clock, retry=RetryPolicy(deadline_seconds=30))
    with pytest.raises(PaymentsUnavailable) as raised:
        client.create_payment(**PAYMENT)
    assert raised.value.attempts == 2  # a third wait of 20 s would end past 30 s
    assert clock.sleeps == [20.0]


def test_events_report_every_attempt_for_metrics() -> None:
    clock = FakeClock()
    events: list[ClientEvent] = []
    transport = ScriptedTransport(clock, seconds_per_request=0.25).script(
        PRIMARY, Failure.READ_TIMEOUT, created(PRIMARY)
    )
    make_client(transport, clock, events).create_payment(**PAYMENT)
    attempts = [e for e in events if isinstance(e, AttemptEvent)]
    assert [(a.attempt, a.outcome, a.status, a.failure) for a in attempts] == [
        (1, Outcome.REGION_FAILURE, None, "read-timeout"),
        (2, Outcome.SUCCESS, 201, None),
    ]
    assert all(a.operation == "create_payment" and a.seconds == 0.25 for a in attempts)
    assert attempts[1].at > attempts[0].at


def test_a_failing_metrics_hook_never_fails_the_payment() -> None:
    def hook(event: ClientEvent) -> None:
        raise RuntimeError("metrics backend down")

    transport = ScriptedTransport().script(PRIMARY, created(PRIMARY))
    client = make_client(transport, FakeClock())
    client._on_event = hook
    assert client.create_payment(**PAYMENT).created


def test_get_payment_retries_and_reports_where_it_was_read() -> None:
    clock = FakeClock()
    transport = ScriptedTransport().script(PRIMARY, reply(502), reply(200, payment_json(PRIMARY)))
    result = make_client(transport, clock).get_payment("pay_" + "0" * 32)
    assert result.status == 200 and result.attempts == 2 and result.idempotency_key is None
    assert not result.replayed
    assert transport.sent[0].method == "GET" and transport.sent[0].body is None
    assert transport.sent[0].path == "/v1/payments/pay_" + "0" * 32


@pytest.mark.parametrize(
    "make",
    [
        lambda: RetryPolicy(max_attempts=0),
        lambda: RetryPolicy(max_attempts=True),
        lambda: RetryPolicy(base_delay_seconds=0),
        lambda: RetryPolicy(base_delay_seconds=2, max_delay_seconds=1),
        lambda: RetryPolicy(deadline_seconds=float("inf")),
        lambda: Timeouts(connect_seconds=-1),
        lambda: Timeouts(read_seconds="5"),
    ],
)
def test_bad_policies_are_refused_with_the_field_named(make: object) -> None:
    with pytest.raises(InvalidArgument, match=r"(RetryPolicy|Timeouts)\.\w+"):
        make()  # type: ignore[operator]
