"""The retry rules: which answers are final, how long to wait, when to give up.

Times in `RetryPolicy` and `BreakerPolicy` are seconds of the client's clock (the lab runs it
on simulated time); `Timeouts` are socket timeouts, always in real seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Protocol

from payments_dr.client.errors import InvalidArgument


class Clock(Protocol):
    """Monotonic seconds and a way to wait; `payments_dr.lab.clock.SimClock` is one."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


class Outcome(StrEnum):
    """What an answer (or its absence) means for the call."""

    SUCCESS = "success"  # 2xx
    FINAL = "final"  # a 4xx the client must not retry
    THROTTLED = "throttled"  # 408/429: retry the same region, the region is fine
    REGION_FAILURE = "region-failure"  # 5xx, no connection, timeout, lost answer


# Answers that say "later", not "never"; neither says anything bad about the region.
RETRY_SAME_REGION = frozenset({408, 429})


def classify(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.SUCCESS
    if status in RETRY_SAME_REGION:
        return Outcome.THROTTLED
    if status >= 500:
        return Outcome.REGION_FAILURE
    return Outcome.FINAL  # 400, 401, 403, 404, 422 and every other 3xx/4xx


def _positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidArgument(f"{name} must be a positive number of seconds, got {value!r}")
    if math.isinf(value):
        raise InvalidArgument(f"{name} must be finite, got {value!r}")


@dataclass(frozen=True)
class Timeouts:
    """Socket timeouts in real seconds, whatever clock the client runs on."""

    connect_seconds: float = 2.0
    read_seconds: float = 5.0  # between bytes of the answer; the API answers in well under 1 s
    health_seconds: float = 2.0  # a health probe, connect and read (Route 53 waits about 2 s)

    def __post_init__(self) -> None:
        for name in ("connect_seconds", "read_seconds", "health_seconds"):
            _positive(f"Timeouts.{name}", getattr(self, name))


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, within an attempt count and a deadline."""

    max_attempts: int = 6
    base_delay_seconds: float = 0.2
    max_delay_seconds: float = 5.0
    # The whole call, attempts and waits, on the client's clock.
    deadline_seconds: float = 30.0

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise InvalidArgument(
                f"RetryPolicy.max_attempts must be an integer, got {self.max_attempts!r}"
            )
        if self.max_attempts < 1:
            raise InvalidArgument("RetryPolicy.max_attempts must be at least 1")
        for name in ("base_delay_seconds", "max_delay_seconds", "deadline_seconds"):
            _positive(f"RetryPolicy.{name}", getattr(self, name))
        if self.max_delay_seconds < self.base_delay_seconds:
            raise InvalidArgument(
                "RetryPolicy.max_delay_seconds must be at least base_delay_seconds"
            )

    def backoff(self, retry: int, unit_random: float) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**(retry - 1))) for the n-th retry."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (retry - 1))
        return unit_random * ceiling


def retry_after_seconds(headers: Mapping[str, str], wall_now: float) -> float | None:
    """The server's Retry-After (delta seconds or an HTTP date) as seconds from now."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - wall_now
        except (TypeError, ValueError, IndexError):
            return None  # unreadable: fall back to our own backoff
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)
