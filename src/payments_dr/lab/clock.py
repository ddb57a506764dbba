"""Simulated time: the lab runs Route 53 and replication timings faster than real time."""

from __future__ import annotations

import threading
import time


class SimClock:
    """Converts between wall-clock seconds and simulated seconds.

    `time_scale` is wall seconds per simulated second: 0.01 plays a 30 s health-check
    detection in 0.3 s. Simulated time starts at 0 when the clock is created.
    """

    def __init__(self, time_scale: float) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be positive, got {time_scale}")
        self.time_scale = time_scale
        self._wall_start = time.monotonic()
        self._epoch_start = time.time()

    def now(self) -> float:
        """Simulated seconds since the clock started."""
        return (time.monotonic() - self._wall_start) / self.time_scale

    def to_wall(self, simulated_seconds: float) -> float:
        return simulated_seconds * self.time_scale

    def epoch(self) -> float:
        """Simulated Unix time, for code that reads the time of day (caches, timestamps)."""
        return self._epoch_start + self.now()

    def at_wall_time(self, unix_seconds: float) -> float:
        """The simulated time of a wall-clock Unix timestamp, e.g. a stream record's."""
        return (unix_seconds - self._epoch_start) / self.time_scale

    def epoch_at_wall_time(self, unix_seconds: float) -> float:
        """The simulated Unix time of a wall-clock Unix timestamp: what the service would
        read in a stream record if the world ran at the lab's speed."""
        return self._epoch_start + self.at_wall_time(unix_seconds)

    def since_start(self, simulated_epoch: float) -> float:
        """Simulated seconds since the clock started, from a simulated Unix time."""
        return simulated_epoch - self._epoch_start

    def sleep(self, simulated_seconds: float) -> None:
        time.sleep(max(0.0, self.to_wall(simulated_seconds)))

    def wait(self, stop: threading.Event, simulated_seconds: float) -> bool:
        """Sleep unless `stop` is set first; True when stopped."""
        return stop.wait(max(0.0, self.to_wall(simulated_seconds)))
