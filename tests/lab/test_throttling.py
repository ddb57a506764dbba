"""The lab's API Gateway throttles like the stack: per merchant (usage plan), then per stage."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments_dr import contract
from payments_dr.infra.gateway_responses import GATEWAY_RESPONSES, THROTTLED_RETRY_AFTER_SECONDS
from payments_dr.lab import lab as lab_module
from payments_dr.lab.apigw import THROTTLED, RegionApi, ThrottleLimits, TokenBucket
from payments_dr.lab.aws import RegionFaults
from payments_dr.lab.client_payments import (
    ACKNOWLEDGED,
    REJECTED,
    TrafficOptions,
    Workload,
    new_payment,
)
from payments_dr.lab.drill import DrillOptions
from payments_dr.lab.lab import Lab
from payments_dr.lab.settings import BUILTIN_CONFIG, LabSettings
from payments_dr.lab.traffic import Traffic

from .helpers import PRIMARY, SECONDARY, new_idempotency_key, post_payment, request

# Small limits, so a handful of requests reaches them. The lab's gateways run on a clock the
# tests stop while they count (ThrottleClock below).
STAGE = ThrottleLimits(rate=2, burst=4)
MERCHANT = ThrottleLimits(rate=1, burst=2)
THROTTLED_CONFIG = dataclasses.replace(
    BUILTIN_CONFIG,
    api_throttle_rate_limit=int(STAGE.rate),
    api_throttle_burst_limit=STAGE.burst,
    merchant_throttle_rate_limit=int(MERCHANT.rate),
    merchant_throttle_burst_limit=MERCHANT.burst,
    # Health probes have their own method's stage limit; a longer interval keeps them under it.
    health_check_interval_seconds=30,
)


class FakeClock:
    def __init__(self) -> None:
        self.seconds = 0.0

    def now(self) -> float:
        return self.seconds


# --- the bucket ----------------------------------------------------------------------------


def test_a_bucket_admits_its_burst_at_once_then_its_rate_per_second() -> None:
    clock = FakeClock()
    bucket = TokenBucket(clock.now, ThrottleLimits(rate=3, burst=5))
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    clock.seconds = 1.0
    assert [bucket.take() for _ in range(4)] == [True] * 3 + [False]
    clock.seconds = 1.2  # 0.6 of a token: not yet a request
    assert not bucket.take()
    clock.seconds = 100.0  # a long pause refills to the burst, no more
    assert sum(bucket.take() for _ in range(10)) == 5


@settings(deadline=None)  # real work per example; a loaded machine must not fail it
@given(
    rate=st.integers(min_value=1, max_value=50),
    extra_burst=st.integers(min_value=0, max_value=50),
    # (seconds since the previous step, requests arriving at that instant)
    steps=st.lists(
        st.tuples(st.floats(min_value=0, max_value=2), st.integers(min_value=0, max_value=60)),
        max_size=100,
    ),
)
def test_no_window_admits_more_than_the_burst_plus_the_rate_times_its_length(
    rate: int, extra_burst: int, steps: list[tuple[float, int]]
) -> None:
    limits = ThrottleLimits(rate=rate, burst=rate + extra_burst)  # burst >= rate, as validated
    clock = FakeClock()
    bucket = TokenBucket(clock.now, limits)
    admitted: list[tuple[float, int]] = []  # (instant, requests admitted then)
    for gap, requests in steps:
        clock.seconds += gap
        admitted.append((clock.seconds, sum(bucket.take() for _ in range(requests))))
    # Every window from one instant to a later one (requests at one instant count together).
    for first, (start, _) in enumerate(admitted):
        in_window = 0
        for end, count in admitted[first:]:
            in_window += count
            assert in_window <= limits.burst + limits.rate * (end - start) + 1e-6


def test_the_throttled_answer_is_the_deployed_gateway_response() -> None:
    status, headers, body = THROTTLED.render()
    template = GATEWAY_RESPONSES["THROTTLED"]["responseTemplates"]["application/json"]
    assert status == 429 and headers == {"Retry-After": str(THROTTLED_RETRY_AFTER_SECONDS)}
    assert set(body) == {"code", "message"} and f'"{body["code"]}"' in template
    assert body["code"] == "throttled" and body["message"] == "Too Many Requests"


# --- one region's API on a fake clock ------------------------------------------------------


def allow_with_usage_key(event: dict[str, Any], context: object) -> dict[str, Any]:
    """An authorizer that allows everyone and names the header's value as the usage key."""
    return {
        "principalId": "someone",
        "policyDocument": {"Statement": [{"Effect": "Allow", "Resource": "*"}]},
        "usageIdentifierKey": event["headers"][contract.AUTH_HEADER],
    }


@pytest.fixture
def region_api() -> Iterator[tuple[RegionApi, FakeClock, list[str]]]:
    clock = FakeClock()
    api = RegionApi(
        PRIMARY,
        "test",
        RegionFaults(),
        stage_limits=ThrottleLimits(rate=1, burst=3),
        merchant_limits=ThrottleLimits(rate=1, burst=2),
        now=clock.now,
    )
    served: list[str] = []

    def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        served.append(event["path"])
        return {"statusCode": 200, "body": "{}"}

    api.handler = handler
    api.authorizer = allow_with_usage_key
    api.start()
    try:
        yield api, clock, served
    finally:
        api.stop()


def test_usage_plan_then_stage_limit_per_method(
    region_api: tuple[RegionApi, FakeClock, list[str]],
) -> None:
    api, clock, served = region_api

    def get(path: str, merchant: str | None = None) -> int:
        headers = {contract.AUTH_HEADER: merchant} if merchant else {}
        return request(api.url, "GET", path, headers=headers)[0]

    ids = itertools.count()

    def payment() -> str:
        # Another id each time: the stage's bucket is the method's, whatever the id.
        return contract.PAYMENT_PATH.replace("{id}", f"pay_{next(ids)}")

    assert [get(payment(), "a") for _ in range(3)] == [200, 200, 429]  # a's usage plan
    assert get(payment(), "b") == 200  # b's own bucket; this method's third stage token
    assert get(payment(), "c") == 429  # c's bucket is full, this method's stage limit spent
    assert len(served) == 3  # nothing refused reached the handler
    # Another method has its own stage limit: spent payments never throttle the probes.
    assert [get(contract.HEALTH_PATH) for _ in range(4)] == [200, 200, 200, 429]
    assert len(served) == 6
    clock.seconds = 1.0
    assert get(payment(), "c") == 200
    assert len(served) == 7


# --- against a running lab ------------------------------------------------------------------


class ThrottleClock:
    """The gateways' clock in the lab: the lab's own, except that a test can stop it while it
    counts what a bucket admits, and step it on by exactly a refill. A slow request on a
    loaded machine then refills nothing, so the counts below are exact."""

    def __init__(self) -> None:
        self.base: Callable[[], float] = lambda: 0.0
        self._offset = 0.0
        self._stopped_at: float | None = None

    def now(self) -> float:
        return self._stopped_at if self._stopped_at is not None else self.base() + self._offset

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        self._stopped_at = self.now()
        try:
            yield
        finally:  # runs on from where it stood: time never goes back for a bucket
            self._offset = self._stopped_at - self.base()
            self._stopped_at = None

    def advance(self, seconds: float) -> None:
        assert self._stopped_at is not None, "advance only a stopped clock"
        self._stopped_at += seconds


@pytest.fixture(scope="module")
def throttle_clock() -> ThrottleClock:
    return ThrottleClock()


@pytest.fixture(scope="module")
def lab(throttle_clock: ThrottleClock) -> Iterator[Lab]:
    def region_api(*args: Any, now: Callable[[], float], **kwargs: Any) -> RegionApi:
        throttle_clock.base = now  # the lab's clock, which the gateways would have used
        return RegionApi(*args, now=throttle_clock.now, **kwargs)

    settings = LabSettings(THROTTLED_CONFIG, time_scale=1.0, replication_lag_seconds=0.2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lab_module, "RegionApi", region_api)
        running = Lab(settings)
        running.start()
    try:
        yield running
    finally:
        running.stop()


def enrol_all(lab: Lab, merchants: list[str]) -> dict[str, str]:
    """API keys by merchant, every record replicated to both regions."""
    keys = {merchant: lab.enrol_merchant(merchant) for merchant in merchants}
    assert lab.settle(60)
    return keys


def new_key() -> str:
    return new_idempotency_key("test")


def assert_throttled_and_not_written(
    lab: Lab, region: str, merchant: str, idempotency_key: str, answer: tuple
) -> None:
    status, headers, body = answer
    assert status == 429
    assert headers["Content-Type"] == "application/json"
    assert headers["Retry-After"] == str(THROTTLED_RETRY_AFTER_SECONDS)
    assert body == {"code": "throttled", "message": "Too Many Requests"}
    assert contract.REGION_HEADER not in headers  # the handler did not run
    assert lab.id_key.payment_id(merchant, idempotency_key) not in lab.table_items(region)


def test_a_merchant_over_its_limit_is_throttled_while_another_is_served(
    lab: Lab, throttle_clock: ThrottleClock
) -> None:
    url = lab.region_url(PRIMARY)
    keys = enrol_all(lab, ["busy-merchant", "other-merchant"])
    busy_key, other_key = keys["busy-merchant"], keys["other-merchant"]
    before = set(lab.table_items(PRIMARY))
    with throttle_clock.stopped():
        answers = [(key, post_payment(url, key, busy_key)) for key in [new_key() for _ in "123"]]
        assert [answer[0] for _, answer in answers] == [201] * MERCHANT.burst + [429]
        throttled_key, throttled = answers[-1]
        assert_throttled_and_not_written(lab, PRIMARY, "busy-merchant", throttled_key, throttled)

        # The same moment, another merchant: its own bucket, and the stage has room.
        status, _, body = post_payment(url, new_key(), other_key)
        assert status == 201
        admitted = {answer[2]["id"] for _, answer in answers[: MERCHANT.burst]}
        assert set(lab.table_items(PRIMARY)) - before == {*admitted, body["id"]}

        # One token's refill later, the busy merchant is served again, once.
        throttle_clock.advance(1 / MERCHANT.rate)
        status, _, body = post_payment(url, throttled_key, busy_key)
        assert status == 201 and body["id"] == lab.id_key.payment_id("busy-merchant", throttled_key)
        assert post_payment(url, new_key(), busy_key)[0] == 429


def test_the_stage_limit_caps_all_merchants_together(
    lab: Lab, throttle_clock: ThrottleClock
) -> None:
    url = lab.region_url(SECONDARY)
    merchants = enrol_all(lab, [f"stage-merchant-{n}" for n in range(6)])
    answers: list[tuple[str, str, tuple]] = []
    with throttle_clock.stopped():
        # Each merchant stays within its own burst; together they are three times the stage's.
        for _ in range(MERCHANT.burst):
            for merchant, api_key in merchants.items():
                key = new_key()
                answers.append((merchant, key, post_payment(url, key, api_key)))
        statuses = [answer[0] for _, _, answer in answers]
        assert statuses == [201] * STAGE.burst + [429] * (len(answers) - STAGE.burst)
        for merchant, key, answer in answers[STAGE.burst :]:
            assert_throttled_and_not_written(lab, SECONDARY, merchant, key, answer)

        # Later, the merchant's bucket and this method's stage bucket hold a token again
        # (health probes draw on their own method's limit, so they take none of it).
        throttle_clock.advance(max(1 / STAGE.rate, 1 / MERCHANT.rate))
        merchant, key, _ = answers[-1]
        assert post_payment(url, key, merchants[merchant])[0] == 201


def test_the_drill_client_retries_a_throttled_payment_until_it_is_served(
    lab: Lab, throttle_clock: ThrottleClock
) -> None:
    assert 429 not in ACKNOWLEDGED and 429 not in REJECTED  # so the client tries again
    api_key = enrol_all(lab, ["retrying-merchant"])["retrying-merchant"]
    url = lab.region_url(PRIMARY)
    with throttle_clock.stopped():
        for _ in range(MERCHANT.burst):  # spend the merchant's burst
            assert post_payment(url, new_key(), api_key)[0] == 201
    # The clock runs again: the client's retry, after the gateway's Retry-After, is served.
    options = TrafficOptions(1, 0.5, Workload.STEADY, 60.0, 1.0, 8.0)
    traffic = Traffic(lab, options, lab.clock.now(), api_keys={0: api_key})
    payment = new_payment(random.Random(0), 0, 1)
    payment.merchant_id = "retrying-merchant"
    traffic._submit(payment, api_key, PRIMARY)
    statuses = [attempt.status for attempt in payment.attempts]
    assert statuses[0] == 429 and statuses[-1] == 201 and payment.acknowledged
    assert set(statuses[:-1]) == {429}
    assert payment.payment_id(lab.id_key) in lab.table_items(PRIMARY)


def test_the_drills_default_clients_stay_under_the_default_limits() -> None:
    options = DrillOptions()
    # One client per merchant, one request at a time, at least a second between retries.
    per_merchant = max(
        options.payments_per_second / options.clients, 1 / options.initial_backoff_seconds
    )
    assert per_merchant <= BUILTIN_CONFIG.merchant_throttle_rate_limit
    assert options.clients * per_merchant < BUILTIN_CONFIG.api_throttle_rate_limit
