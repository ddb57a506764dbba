"""The lab's API Gateway throttles like the stack: per merchant (usage plan), then per stage."""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments_dr import contract
from payments_dr.infra.gateway_responses import GATEWAY_RESPONSES, THROTTLED_RETRY_AFTER_SECONDS
from payments_dr.lab.apigw import THROTTLED, RegionApi, ThrottleLimits, TokenBucket
from payments_dr.lab.aws import RegionFaults
from payments_dr.lab.client_payments import ACKNOWLEDGED, REJECTED
from payments_dr.lab.drill import DrillOptions
from payments_dr.lab.lab import Lab
from payments_dr.lab.settings import BUILTIN_CONFIG, LabSettings
from payments_dr.service.model import payment_id

from .helpers import PRIMARY, SECONDARY, post_payment, request

# Small limits, so a handful of requests reaches them. Real time (scale 1): a request's few
# wall milliseconds refill almost nothing, so the counts below hold on a loaded machine.
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
    admitted_at: list[float] = []
    for gap, requests in steps:
        clock.seconds += gap
        admitted_at.extend(clock.seconds for _ in range(requests) if bucket.take())
    for first, start in enumerate(admitted_at):
        for last in range(first, len(admitted_at)):
            window = admitted_at[last] - start
            assert last - first + 1 <= limits.burst + limits.rate * window + 1e-6


def test_the_throttled_answer_is_the_deployed_gateway_response() -> None:
    status, headers, body = THROTTLED.render()
    template = GATEWAY_RESPONSES["THROTTLED"]["responseTemplates"]["application/json"]
    assert status == 429 and headers == {"Retry-After": str(THROTTLED_RETRY_AFTER_SECONDS)}
    assert set(body) == {"code", "message"} and f'"{body["code"]}"' in template
    assert body["code"] == "throttled" and body["message"] == "Too Many Requests"


def test_the_drill_retries_a_throttled_payment_and_stays_under_the_default_limits() -> None:
    assert 429 not in ACKNOWLEDGED and 429 not in REJECTED  # so the client tries again
    options = DrillOptions()
    # One client per merchant, one request at a time, at least a second between retries.
    per_merchant = max(
        options.payments_per_second / options.clients, 1 / options.initial_backoff_seconds
    )
    assert per_merchant <= BUILTIN_CONFIG.merchant_throttle_rate_limit
    assert options.clients * per_merchant < BUILTIN_CONFIG.api_throttle_rate_limit


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


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    settings = LabSettings(THROTTLED_CONFIG, time_scale=1.0, replication_lag_seconds=0.2)
    with Lab(settings) as running:
        yield running


def enrol_all(lab: Lab, merchants: list[str]) -> dict[str, str]:
    """API keys by merchant, every record replicated to both regions."""
    keys = {merchant: lab.enrol_merchant(merchant) for merchant in merchants}
    assert lab.settle(20)
    return keys


def new_key() -> str:
    return f"test-{uuid.uuid4().hex[:20]}"


def assert_throttled_and_not_written(
    lab: Lab, region: str, merchant: str, idempotency_key: str, answer: tuple
) -> None:
    status, headers, body = answer
    assert status == 429
    assert headers["Content-Type"] == "application/json"
    assert headers["Retry-After"] == str(THROTTLED_RETRY_AFTER_SECONDS)
    assert body == {"code": "throttled", "message": "Too Many Requests"}
    assert contract.REGION_HEADER not in headers  # the handler did not run
    assert payment_id(merchant, idempotency_key) not in lab.table_items(region)


def test_a_merchant_over_its_limit_is_throttled_while_another_is_served(lab: Lab) -> None:
    url = lab.region_url(PRIMARY)
    keys = enrol_all(lab, ["busy-merchant", "other-merchant"])
    busy_key, other_key = keys["busy-merchant"], keys["other-merchant"]
    before = set(lab.table_items(PRIMARY))
    started = lab.clock.now()
    admitted: list[str] = []
    throttled_key = ""
    while not throttled_key:
        assert len(admitted) <= MERCHANT.burst + 5, "the merchant is never throttled"
        key = new_key()
        answer = post_payment(url, key, busy_key)
        if answer[0] == 201:
            admitted.append(answer[2]["id"])
        else:
            assert_throttled_and_not_written(lab, PRIMARY, "busy-merchant", key, answer)
            throttled_key = key
    elapsed = lab.clock.now() - started
    assert MERCHANT.burst <= len(admitted) <= MERCHANT.burst + MERCHANT.rate * elapsed

    # The same moment, another merchant: its own bucket, and the stage has room.
    status, _, body = post_payment(url, new_key(), other_key)
    assert status == 201
    assert set(lab.table_items(PRIMARY)) - before == {*admitted, body["id"]}

    # One token's refill later (lab clock), the busy merchant is served again.
    lab.clock.sleep(1 / MERCHANT.rate)
    status, _, body = post_payment(url, throttled_key, busy_key)
    assert status == 201 and body["id"] == payment_id("busy-merchant", throttled_key)


def test_the_stage_limit_caps_all_merchants_together(lab: Lab) -> None:
    url = lab.region_url(SECONDARY)
    merchants = enrol_all(lab, [f"stage-merchant-{n}" for n in range(6)])
    started = lab.clock.now()
    answers: list[tuple[str, str, tuple]] = []
    # Each merchant stays within its own burst; together they are three times the stage's.
    for _ in range(MERCHANT.burst):
        for merchant, api_key in merchants.items():
            key = new_key()
            answers.append((merchant, key, post_payment(url, key, api_key)))
    elapsed = lab.clock.now() - started
    admitted = [answer for _, _, answer in answers if answer[0] == 201]
    refused = [(m, k, answer) for m, k, answer in answers if answer[0] != 201]
    assert refused, "the stage admitted every request"
    assert len(admitted) <= STAGE.burst + STAGE.rate * elapsed
    for merchant, key, answer in refused:
        assert_throttled_and_not_written(lab, SECONDARY, merchant, key, answer)

    # Later, the merchant's bucket and this method's stage bucket hold a token again (health
    # probes draw on their own method's limit, so they take none of it).
    lab.clock.sleep(max(1 / STAGE.rate, 1 / MERCHANT.rate))
    merchant, key, _ = refused[-1]
    assert post_payment(url, key, merchants[merchant])[0] == 201
