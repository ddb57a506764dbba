"""A stopped lab leaves nothing running that could act on its stopped simulation."""

from __future__ import annotations

import dataclasses
import threading
import time

from payments_dr import contract
from payments_dr.contract import ConsistencyMode
from payments_dr.lab.lab import Lab

from .helpers import lab_settings, request


def mode_reads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "mode-refresh"]


def test_stopping_the_lab_ends_the_mode_reads_of_its_functions() -> None:
    """A mode read outliving the lab called the stopped moto (a real endpoint, then) and
    logged its failure to a closed log file: `--- Logging error ---` after `lab up` ended."""
    settings = lab_settings(ConsistencyMode.EVENTUAL, time_scale=0.1)
    # Reads spread over a whole refresh period: most of the time one waits in its delay.
    config = dataclasses.replace(
        settings.config, mode_refresh_seconds=8, mode_read_spread_seconds=8
    )
    with Lab(dataclasses.replace(settings, config=config)) as lab:
        for region in lab.regions:
            status, _, _ = request(lab.region_url(region), "GET", contract.HEALTH_PATH)
            assert status == 200  # the health check reads the mode
        deadline = time.monotonic() + 60  # polled: reads start with health checks and requests
        while not mode_reads():
            assert time.monotonic() < deadline, "no mode read ever started"
            time.sleep(0.01)
    assert mode_reads() == []
