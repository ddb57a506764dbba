"""The SSM configuration cache: max age, stale limit, validation of values."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from payments_dr import contract
from payments_dr.service.config import (
    CONFIG_MAX_AGE_SECONDS,
    CONFIG_STALE_LIMIT_SECONDS,
    ConfigCache,
    ConfigUnavailable,
)

from .conftest import STACK, FakeClock, Region, client_error


class CountingSsm:
    """Counts reads and can be switched to fail, like SSM during an outage."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.reads = 0
        self.failing = False

    def get_parameters_by_path(self, **kwargs: Any) -> Any:
        self.reads += 1
        if self.failing:
            raise client_error("InternalServerError", "GetParametersByPath", 500)
        return self._client.get_parameters_by_path(**kwargs)


class HangingSsm(CountingSsm):
    """Reads block until released, like SSM that accepts a connection and never answers."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.hanging = False
        self.release = threading.Event()

    def get_parameters_by_path(self, **kwargs: Any) -> Any:
        if self.hanging:
            self.release.wait(120)  # released by the test; the cap only ends a failed one
        return super().get_parameters_by_path(**kwargs)


def cache_for(region: Region, ssm: Any, clock: FakeClock) -> ConfigCache:
    return ConfigCache(ssm, contract.ssm_path(STACK, region.name), clock)


def test_values_are_read_once_per_max_age(region: Region) -> None:
    ssm, clock = CountingSsm(region.ssm), FakeClock()
    cache = cache_for(region, ssm, clock)
    config = cache.get()
    assert config.table_name == region.table_name
    assert config.mode is contract.Mode.ACTIVE
    clock.advance(CONFIG_MAX_AGE_SECONDS - 0.1)
    cache.get()
    assert ssm.reads == 1
    clock.advance(0.1)
    cache.get()
    assert ssm.reads == 2


def test_a_failed_refresh_serves_the_last_values_until_the_stale_limit(region: Region) -> None:
    ssm, clock = CountingSsm(region.ssm), FakeClock()
    cache = cache_for(region, ssm, clock)
    first = cache.get()
    ssm.failing = True
    clock.advance(CONFIG_STALE_LIMIT_SECONDS)
    assert cache.get() == first
    clock.advance(1)
    with pytest.raises(ConfigUnavailable):
        cache.get()
    ssm.failing = False
    clock.advance(CONFIG_MAX_AGE_SECONDS)
    assert cache.get() == first  # recovers at the next refresh


def test_failed_refreshes_are_spaced_by_the_max_age(region: Region) -> None:
    ssm, clock = CountingSsm(region.ssm), FakeClock()
    cache = cache_for(region, ssm, clock)
    cache.get()
    ssm.failing = True
    clock.advance(CONFIG_MAX_AGE_SECONDS)
    for _ in range(10):
        cache.get()
    assert ssm.reads == 2  # one failed refresh, not one per call


def test_never_loaded_is_unavailable(region: Region) -> None:
    ssm = CountingSsm(region.ssm)
    ssm.failing = True
    with pytest.raises(ConfigUnavailable):
        cache_for(region, ssm, FakeClock()).get()


@pytest.mark.parametrize(
    ("param", "value"),
    [(contract.Param.MODE, "paused"), (contract.Param.REGION_ROLE, "tertiary")],
)
def test_invalid_values_make_configuration_unavailable(
    region: Region, param: contract.Param, value: str
) -> None:
    region.ssm.put_parameter(
        Name=contract.ssm_parameter_name(STACK, region.name, param),
        Value=value,
        Type="String",
        Overwrite=True,
    )
    with pytest.raises(ConfigUnavailable):
        cache_for(region, region.ssm, FakeClock()).get()


def test_a_missing_parameter_makes_configuration_unavailable(region: Region) -> None:
    region.ssm.delete_parameter(
        Name=contract.ssm_parameter_name(STACK, region.name, contract.Param.DLQ_URL)
    )
    with pytest.raises(ConfigUnavailable):
        cache_for(region, region.ssm, FakeClock()).get()


def test_a_hanging_refresh_does_not_hold_callers_that_have_usable_values(region: Region) -> None:
    ssm, clock = HangingSsm(region.ssm), FakeClock()
    cache = cache_for(region, ssm, clock)
    first = cache.get()
    ssm.hanging = True
    clock.advance(CONFIG_MAX_AGE_SECONDS)
    for _ in range(5):
        assert cache.get() == first
    # The read still hangs (only the test releases it), so no caller waited for it to end;
    # and no second read was started beside it.
    assert not ssm.release.is_set() and ssm.reads == 1
    region.set_mode(contract.Mode.FENCED)
    ssm.release.set()
    clock.advance(0.1)
    deadline = time.monotonic() + 60  # an event, polled: generous for a loaded machine
    while cache.get().mode is not contract.Mode.FENCED:
        assert time.monotonic() < deadline, "the finished refresh was never served"
    assert ssm.reads == 2


def test_without_usable_values_a_caller_waits_for_the_read(region: Region) -> None:
    ssm, clock = HangingSsm(region.ssm), FakeClock()
    cache = ConfigCache(
        ssm, contract.ssm_path(STACK, region.name), clock, refresh_wait_seconds=0.05
    )
    cache.get()
    ssm.hanging = True
    clock.advance(CONFIG_STALE_LIMIT_SECONDS + 1)
    results: list[str] = []
    waiter = threading.Thread(target=lambda: results.append(cache.get().table_name))
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive()  # past the stale limit, nothing usable: it waits for SSM
    ssm.release.set()
    waiter.join(60)
    assert results == [region.table_name]
