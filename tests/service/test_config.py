"""A function's configuration: deploy-time settings from the environment, and the `mode`
cache (refresh period, random delay before each read, stale limit) against moto's SSM."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from payments_dr import contract
from payments_dr.contract import Mode, Param
from payments_dr.service.config import (
    MODE_STALE_LIMIT_SECONDS,
    ConfigUnavailable,
    ModeCache,
    ServiceConfig,
)
from payments_dr.service.deps import ServiceDeps

from .conftest import STACK, FakeClock, Region, client_error

REFRESH, SPREAD = 5.0, 4.0


class CountingSsm:
    """Counts reads and can be switched to fail, like SSM during an outage."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.reads = 0
        self.failing = False
        self.names: list[str] = []

    def get_parameter(self, **kwargs: Any) -> Any:
        self.reads += 1
        self.names.append(kwargs["Name"])
        if self.failing:
            raise client_error("InternalServerError", "GetParameter", 500)
        return self._client.get_parameter(**kwargs)


class HangingSsm(CountingSsm):
    """Reads block until released, like SSM that accepts a connection and never answers."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.hanging = False
        self.release = threading.Event()

    def get_parameter(self, **kwargs: Any) -> Any:
        if self.hanging:
            self.release.wait(120)  # released by the test; the cap only ends a failed one
        return super().get_parameter(**kwargs)


class RecordedDelays:
    """Stands in for the sleep before a read: records it, and moves the fake clock on."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.delays: list[float] = []
        self.cut_short = 0

    def __call__(self, wake: threading.Event, seconds: float) -> bool:
        self.delays.append(seconds)
        if wake.is_set():
            self.cut_short += 1
            return True
        self.clock.advance(seconds)
        return False


def mode_name(region: Region) -> str:
    return contract.ssm_parameter_name(STACK, region.name, Param.MODE)


def cache_for(region: Region, ssm: Any, clock: FakeClock, **kwargs: Any) -> ModeCache:
    kwargs.setdefault("spread_seconds", 0.0)
    kwargs.setdefault("refresh_seconds", REFRESH)
    return ModeCache(ssm, mode_name(region), clock, **kwargs)


# --- deploy-time settings ------------------------------------------------------------------
def environment(region: Region) -> dict[str, str]:
    values = {
        Param.TABLE_NAME: region.table_name,
        Param.RETRY_QUEUE_URL: region.queue_url,
        Param.DLQ_URL: region.dlq_url,
        Param.LOG_BUCKET: region.bucket,
        Param.REGION_ROLE: contract.RegionRole.SECONDARY.value,
        Param.PEER_REGION: contract.DEFAULT_PRIMARY_REGION,
        Param.PEER_RETRY_QUEUE_URL: region.peer_queue_url,
        Param.PEER_SQS_ENDPOINT: "https://vpce-1.sqs.us-east-1.vpce.amazonaws.com",
    }
    return {contract.param_env_var(param): value for param, value in values.items()}


def test_settings_come_from_the_environment_without_any_ssm_call(
    region: Region, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "os.environ",
        {
            **environment(region),
            "AWS_REGION": region.name,
            contract.ENV_SSM_PATH: contract.ssm_path(STACK, region.name),
            contract.ENV_MODE_REFRESH_SECONDS: "7",
            contract.ENV_MODE_READ_SPREAD_SECONDS: "3",
        },
    )
    deps = ServiceDeps.from_environment(services=("dynamodb",))
    assert deps.ssm is None  # a function that does not read `mode` has no SSM client
    assert deps.config == ServiceConfig(
        table_name=region.table_name,
        retry_queue_url=region.queue_url,
        dlq_url=region.dlq_url,
        log_bucket=region.bucket,
        region_role=contract.RegionRole.SECONDARY,
        peer_region=contract.DEFAULT_PRIMARY_REGION,
        peer_retry_queue_url=region.peer_queue_url,
        peer_sqs_endpoint="https://vpce-1.sqs.us-east-1.vpce.amazonaws.com",
    )
    assert deps.mode.fence_delay_seconds == 10


@pytest.mark.parametrize(
    ("param", "value"), [(Param.TABLE_NAME, None), (Param.REGION_ROLE, "tertiary")]
)
def test_a_missing_or_invalid_setting_fails_the_cold_start(
    region: Region, param: Param, value: str | None
) -> None:
    environ = environment(region)
    if value is None:
        del environ[contract.param_env_var(param)]
    else:
        environ[contract.param_env_var(param)] = value
    with pytest.raises(ConfigUnavailable, match=param.value):
        ServiceConfig.from_environment(environ)


# --- the mode cache ------------------------------------------------------------------------
def test_only_the_mode_parameter_is_read_once_per_refresh_period(region: Region) -> None:
    ssm, clock = CountingSsm(region.ssm), FakeClock()
    cache = cache_for(region, ssm, clock)
    assert cache.get() is Mode.ACTIVE
    clock.advance(REFRESH - 0.1)
    cache.get()
    assert ssm.reads == 1
    clock.advance(0.1)
    region.set_mode(Mode.FENCED)
    assert cache.get() is Mode.FENCED
    assert ssm.names == [mode_name(region)] * 2


def test_every_read_waits_a_random_delay_within_the_spread(region: Region) -> None:
    clock = FakeClock()
    delays = RecordedDelays(clock)
    asked: list[tuple[float, float]] = []

    def jitter(low: float, high: float) -> float:
        asked.append((low, high))
        return 0.75 * high

    cache = cache_for(region, region.ssm, clock, spread_seconds=SPREAD, wait=delays, jitter=jitter)
    assert cache.get() is Mode.ACTIVE  # a cold caller waits for the delayed read
    assert delays.delays == [0.75 * SPREAD]
    clock.advance(REFRESH)
    cache.get()
    assert asked == [(0.0, SPREAD)] * 2


def test_a_fence_reaches_a_busy_container_within_refresh_plus_spread(region: Region) -> None:
    clock = FakeClock()
    cache = cache_for(
        region,
        region.ssm,
        clock,
        spread_seconds=SPREAD,
        wait=RecordedDelays(clock),
        jitter=lambda low, high: high,  # the longest delay
    )
    cache.get()
    region.set_mode(Mode.FENCED)
    seen = []
    for _ in range(int((REFRESH + SPREAD) * 2) + 1):
        seen.append((clock.now, cache.get()))
        clock.advance(0.5)
    fenced_at = next(at for at, mode in seen if mode is Mode.FENCED)
    assert fenced_at - seen[0][0] <= cache.fence_delay_seconds


def test_without_a_usable_mode_the_health_check_cuts_the_delay_short(region: Region) -> None:
    class SleepingWait:
        """Really sleeps (the read runs on its own thread), unless woken."""

        def __init__(self) -> None:
            self.woken = threading.Event()

        def __call__(self, wake: threading.Event, seconds: float) -> bool:
            if wake.wait(seconds):
                self.woken.set()
                return True
            return False

    wait = SleepingWait()
    # A delay no loaded machine confuses with a read: finishing well inside it means cut short.
    long_spread = 120.0
    cache = cache_for(
        region,
        region.ssm,
        FakeClock(),
        refresh_seconds=long_spread + 1,
        spread_seconds=long_spread,
        wait=wait,
        jitter=lambda a, b: b,
    )
    started = time.monotonic()
    assert cache.get(urgent=True) is Mode.ACTIVE
    assert time.monotonic() - started < long_spread / 2
    assert wait.woken.is_set()


def test_a_read_that_outlasts_the_fence_delay_still_answers_the_call_that_waited(
    region: Region,
) -> None:
    """The lab runs 20x faster than wall time: a GetParameter slowed by a loaded machine can
    take longer, in simulated seconds, than refresh + spread. The mode it read is still the
    freshest there is for the call that waited for it (a health check answered 503 so)."""
    clock = FakeClock()

    class SlowSsm:
        def get_parameter(self, **kwargs: Any) -> Any:
            answer = region.ssm.get_parameter(**kwargs)
            clock.advance(cache.fence_delay_seconds + 1)
            return answer

    cache = cache_for(region, SlowSsm(), clock)
    assert cache.get(urgent=True) is Mode.ACTIVE
    # The next call, later still, has no usable mode until its own read: that read is slow
    # too, and answers it.
    clock.advance(REFRESH)
    assert cache.get() is Mode.ACTIVE


def test_a_failed_read_serves_the_last_mode_until_the_stale_limit(region: Region) -> None:
    ssm, clock = CountingSsm(region.ssm), FakeClock()
    cache = cache_for(region, ssm, clock)
    cache.get()
    ssm.failing = True
    clock.advance(MODE_STALE_LIMIT_SECONDS)
    assert cache.get() is Mode.ACTIVE
    clock.advance(1)
    with pytest.raises(ConfigUnavailable):
        cache.get()
    ssm.failing = False
    clock.advance(REFRESH)
    assert cache.get() is Mode.ACTIVE  # recovers at the next read


def test_an_old_mode_is_not_used_when_ssm_answers(region: Region) -> None:
    """Idle past refresh + spread, a container waits for a new read instead of acting on a
    mode that may predate a fence."""
    ssm, clock = HangingSsm(region.ssm), FakeClock()
    cache = cache_for(region, ssm, clock, refresh_wait_seconds=0.05)
    cache.get()
    ssm.hanging = True
    clock.advance(cache.fence_delay_seconds + 1)
    results: list[Mode] = []
    waiter = threading.Thread(target=lambda: results.append(cache.get()))
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive()
    region.set_mode(Mode.FENCED)
    ssm.release.set()
    waiter.join(60)  # an event: generous for a loaded machine
    assert results == [Mode.FENCED]


def test_failed_reads_are_spaced_by_the_refresh_period(region: Region) -> None:
    ssm, clock = CountingSsm(region.ssm), FakeClock()
    cache = cache_for(region, ssm, clock)
    cache.get()
    ssm.failing = True
    clock.advance(REFRESH)
    for _ in range(10):
        cache.get()
    assert ssm.reads == 2  # one failed read, not one per call


def test_never_read_is_unavailable(region: Region) -> None:
    ssm = CountingSsm(region.ssm)
    ssm.failing = True
    with pytest.raises(ConfigUnavailable):
        cache_for(region, ssm, FakeClock()).get()


def test_an_invalid_mode_is_unavailable(region: Region) -> None:
    region.ssm.put_parameter(Name=mode_name(region), Value="paused", Type="String", Overwrite=True)
    with pytest.raises(ConfigUnavailable):
        cache_for(region, region.ssm, FakeClock()).get()


def test_a_hanging_read_does_not_hold_callers_that_have_a_usable_mode(region: Region) -> None:
    ssm, clock = HangingSsm(region.ssm), FakeClock()
    cache = cache_for(region, ssm, clock)
    cache.get()
    ssm.hanging = True
    clock.advance(REFRESH)
    started = time.monotonic()
    for _ in range(5):
        assert cache.get() is Mode.ACTIVE
    # One bounded wait for the read in flight per call, never the read itself: it hangs
    # until the test releases it (120 s at most).
    assert time.monotonic() - started < 60
    assert ssm.reads == 1  # the hanging read has not finished; no second one was started
    region.set_mode(Mode.FENCED)
    ssm.release.set()
    clock.advance(0.1)
    deadline = time.monotonic() + 60  # an event, polled: generous for a loaded machine
    while cache.get() is not Mode.FENCED:
        assert time.monotonic() < deadline, "the finished read was never served"
    assert ssm.reads == 2


@pytest.mark.parametrize(("refresh", "spread"), [(0.0, 0.0), (5.0, 6.0), (5.0, -1.0)])
def test_a_spread_beyond_the_refresh_period_is_refused(
    region: Region, refresh: float, spread: float
) -> None:
    with pytest.raises(ValueError, match="spread"):
        ModeCache(
            region.ssm,
            mode_name(region),
            FakeClock(),
            refresh_seconds=refresh,
            spread_seconds=spread,
        )


def test_the_next_read_is_due_a_refresh_period_after_the_last_read(region: Region) -> None:
    """Anchored on the read, not on the request that asked for it: containers that started
    together drift apart instead of reading in waves."""
    ssm, clock = CountingSsm(region.ssm), FakeClock()
    cache = cache_for(
        region,
        ssm,
        clock,
        spread_seconds=SPREAD,
        wait=RecordedDelays(clock),
        jitter=lambda low, high: high,
    )
    started = clock.now
    cache.get()  # asked at 0, read at SPREAD
    clock.now = started + REFRESH  # a refresh period after the request, not after the read
    cache.get()
    assert ssm.reads == 1
    clock.now = started + SPREAD + REFRESH
    cache.get()
    assert ssm.reads == 2


def test_close_ends_a_read_waiting_in_its_delay_without_reading(region: Region) -> None:
    """What the lab does on stop: no read may call SSM after its clients are gone."""
    ssm, clock = CountingSsm(region.ssm), FakeClock()
    cache = cache_for(
        region,
        ssm,
        clock,
        spread_seconds=SPREAD,
        jitter=lambda low, high: high,
        wait=lambda wake, seconds: wake.wait(120),  # only a wake ends the delay
    )
    assert cache.get(urgent=True) is Mode.ACTIVE  # the first read, its delay cut short
    clock.advance(REFRESH)
    assert cache.get() is Mode.ACTIVE  # the next read starts and waits in its delay
    readers = [thread for thread in threading.enumerate() if thread.name == "mode-refresh"]
    assert readers and all(thread.is_alive() for thread in readers)

    assert cache.close() is True
    assert not any(thread.is_alive() for thread in readers)
    assert ssm.reads == 1
    clock.advance(REFRESH)
    with pytest.raises(ConfigUnavailable):  # no read starts after close: the mode ages out
        cache.get(urgent=True)
    assert ssm.reads == 1


def test_close_waits_for_a_read_in_its_call(region: Region) -> None:
    ssm, clock = HangingSsm(region.ssm), FakeClock()
    cache = cache_for(region, ssm, clock)
    cache.get()
    ssm.hanging = True
    clock.advance(REFRESH)
    cache.get()  # the read hangs in GetParameter
    assert cache.close(timeout_seconds=0.01) is False  # still in its call
    ssm.release.set()
    assert cache.close() is True
    assert ssm.reads == 2
