"""The per-region breaker: when the client leaves a region, and how it comes back."""

from __future__ import annotations

import threading

import pytest

from payments_dr.client import (
    BreakerEvent,
    BreakerPolicy,
    BreakerState,
    ClientEvent,
    Failure,
    HttpReply,
    InvalidArgument,
    PaymentsUnavailable,
    RetryPolicy,
)
from payments_dr.client.breaker import CircuitBreaker

from .fakes import (
    FENCED,
    HEALTHY,
    PAYMENT,
    PRIMARY,
    SECONDARY,
    FakeClock,
    ScriptedTransport,
    created,
    make_client,
    reply,
)

REGION_FAILURES = [
    Failure.CONNECT,
    Failure.CONNECT_TIMEOUT,
    Failure.READ_TIMEOUT,
    Failure.NO_ANSWER,
    reply(500),
    reply(502),
    reply(503, retry_after="2"),
    reply(504),
]


@pytest.mark.parametrize("failure", REGION_FAILURES, ids=str)
def test_region_failures_move_the_call_to_the_other_region(failure: Failure | HttpReply) -> None:
    clock = FakeClock()
    transport = ScriptedTransport().script(PRIMARY, failure).script(SECONDARY, created(SECONDARY))
    client = make_client(transport, clock)  # threshold 2
    result = client.create_payment(**PAYMENT)
    assert transport.regions() == [PRIMARY, PRIMARY, SECONDARY]
    assert (result.region, result.attempts, result.status) == (SECONDARY, 3, 201)
    assert client.breaker_state(PRIMARY) is BreakerState.OPEN


@pytest.mark.parametrize("answer", [reply(429), reply(408), reply(400), reply(403)], ids=str)
def test_throttling_and_final_answers_never_open_the_breaker(answer: HttpReply) -> None:
    transport = ScriptedTransport().script(PRIMARY, answer)
    client = make_client(transport, FakeClock(), retry=RetryPolicy(max_attempts=4))
    with pytest.raises(Exception):  # noqa: B017 - unavailable or rejected, either way
        client.create_payment(**PAYMENT)
    assert set(transport.regions()) == {PRIMARY}
    assert client.breaker_state(PRIMARY) is BreakerState.CLOSED


def test_a_success_resets_the_failure_count() -> None:
    transport = ScriptedTransport().script(
        PRIMARY, reply(502), created(PRIMARY), reply(502), created(PRIMARY)
    )
    client = make_client(transport, FakeClock())
    client.create_payment(**PAYMENT)
    client.create_payment(**PAYMENT)
    assert transport.regions() == [PRIMARY] * 4
    assert client.breaker_state(PRIMARY) is BreakerState.CLOSED


def test_while_open_calls_go_straight_to_the_other_region() -> None:
    clock = FakeClock()
    transport = (
        ScriptedTransport().script(PRIMARY, Failure.NO_ANSWER).script(SECONDARY, created(SECONDARY))
    )
    client = make_client(transport, clock, breaker=BreakerPolicy(open_seconds=30))
    client.create_payment(**PAYMENT)
    for _ in range(3):
        clock.time += 5
        assert client.create_payment(**PAYMENT).attempts == 1
    assert transport.regions() == [PRIMARY, PRIMARY] + [SECONDARY] * 4
    assert not [s for s in transport.sent if s.path.endswith("/health")]


def test_moves_back_only_after_the_preferred_regions_health_passes() -> None:
    clock = FakeClock()
    events: list[ClientEvent] = []
    transport = (
        ScriptedTransport()
        .script(PRIMARY, Failure.CONNECT, Failure.CONNECT, created(PRIMARY))
        .script(PRIMARY, FENCED, HEALTHY, kind="health")
        .script(SECONDARY, created(SECONDARY))
    )
    client = make_client(transport, clock, events, breaker=BreakerPolicy(open_seconds=30))
    assert client.create_payment(**PAYMENT).region == SECONDARY

    clock.time += 31  # due for a probe: fenced, so the call stays in the DR region
    assert client.create_payment(**PAYMENT).region == SECONDARY
    assert client.breaker_state(PRIMARY) is BreakerState.OPEN
    clock.time += 10  # the failed probe restarted the wait: no probe yet
    assert client.create_payment(**PAYMENT).region == SECONDARY
    clock.time += 21  # due again: healthy, so back to the preferred region
    result = client.create_payment(**PAYMENT)
    assert (result.region, result.attempts) == (PRIMARY, 1)

    health = [s for s in transport.sent if s.path == "/v1/health"]
    assert [s.region for s in health] == [PRIMARY, PRIMARY]
    assert all("Authorization" not in s.headers for s in health)  # the check is open
    states = [(e.region, e.state) for e in events if isinstance(e, BreakerEvent)]
    assert states == [
        (PRIMARY, BreakerState.OPEN),
        (PRIMARY, BreakerState.HALF_OPEN),
        (PRIMARY, BreakerState.OPEN),
        (PRIMARY, BreakerState.HALF_OPEN),
        (PRIMARY, BreakerState.CLOSED),
    ]


def test_an_unreachable_probe_keeps_the_region_out() -> None:
    clock = FakeClock()
    transport = (
        ScriptedTransport()
        .script(PRIMARY, Failure.CONNECT)
        .script(PRIMARY, Failure.CONNECT_TIMEOUT, kind="health")
        .script(SECONDARY, created(SECONDARY))
    )
    client = make_client(transport, clock, breaker=BreakerPolicy(open_seconds=30))
    client.create_payment(**PAYMENT)
    clock.time += 31
    assert client.create_payment(**PAYMENT).region == SECONDARY
    assert client.breaker_state(PRIMARY) is BreakerState.OPEN


def test_with_every_region_open_the_longest_open_one_is_tried() -> None:
    clock = FakeClock()
    transport = ScriptedTransport().script(PRIMARY, reply(503)).script(SECONDARY, reply(503))
    client = make_client(
        transport,
        clock,
        retry=RetryPolicy(max_attempts=6, deadline_seconds=1000),
        breaker=BreakerPolicy(failure_threshold=1, open_seconds=600),
    )
    with pytest.raises(PaymentsUnavailable) as raised:
        client.create_payment(**PAYMENT)
    assert raised.value.regions_tried == (PRIMARY, SECONDARY)
    # Both open: the one that opened first, and the failure restarts its wait.
    assert transport.regions() == [PRIMARY, SECONDARY, PRIMARY, SECONDARY, PRIMARY, SECONDARY]


def test_with_every_region_open_one_that_answers_beats_one_that_is_silent() -> None:
    clock = FakeClock()
    transport = (
        ScriptedTransport()
        .script(PRIMARY, Failure.CONNECT_TIMEOUT)
        .script(SECONDARY, reply(503), reply(503), created(SECONDARY))
    )
    client = make_client(
        transport,
        clock,
        retry=RetryPolicy(max_attempts=6, deadline_seconds=1000),
        breaker=BreakerPolicy(failure_threshold=2, open_seconds=600),
    )
    result = client.create_payment(**PAYMENT)
    # Both open after four attempts; the silent primary is not tried again.
    assert transport.regions() == [PRIMARY, PRIMARY, SECONDARY, SECONDARY, SECONDARY]
    assert (result.region, result.attempts) == (SECONDARY, 5)


def test_one_caller_probes_while_the_others_use_the_other_region() -> None:
    clock = FakeClock()
    policy = BreakerPolicy(open_seconds=10)
    changes: list[BreakerState] = []
    breaker = CircuitBreaker(PRIMARY, policy, clock, lambda _, state: changes.append(state))
    breaker.record_failure(answered=False)
    breaker.record_failure(answered=False)
    clock.time += 10
    start = threading.Barrier(8)
    claimed: list[bool] = []

    def claim() -> None:
        start.wait()
        claimed.append(breaker.claim_probe())

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == [False] * 7 + [True]
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.probe_result(True)
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


@pytest.mark.parametrize(
    "policy",
    [
        {"failure_threshold": 0},
        {"failure_threshold": 1.5},
        {"open_seconds": 0},
        {"open_seconds": float("inf")},
    ],
)
def test_bad_breaker_policies_are_refused(policy: dict[str, float]) -> None:
    with pytest.raises(InvalidArgument, match="BreakerPolicy"):
        BreakerPolicy(**policy)


def test_preferred_region_can_be_the_second_endpoint() -> None:
    transport = ScriptedTransport().script(SECONDARY, created(SECONDARY))
    client = make_client(transport, FakeClock(), preferred_region=SECONDARY)
    assert client.regions == (SECONDARY, PRIMARY)
    assert client.create_payment(**PAYMENT).region == SECONDARY
