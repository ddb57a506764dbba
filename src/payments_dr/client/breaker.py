"""A circuit breaker per region: which regions the client sends to, and when it moves back.

- closed: the region takes requests; `failure_threshold` region failures in a row (no
  connection, a timeout, a lost answer, a 5xx) open it.
- open: the region takes no requests for `open_seconds`; then the next request first probes
  the region's deep health check (`GET /v1/health`), alone: the other callers keep using the
  other region meanwhile (half-open). A healthy answer closes the breaker; anything else
  opens it for another `open_seconds`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from payments_dr.client.errors import InvalidArgument
from payments_dr.client.policy import Clock


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"  # one caller is probing the region's health


@dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int = 2
    open_seconds: float = 30.0  # on the client's clock

    def __post_init__(self) -> None:
        if (
            isinstance(self.failure_threshold, bool)
            or not isinstance(self.failure_threshold, int)
            or self.failure_threshold < 1
        ):
            raise InvalidArgument(
                "BreakerPolicy.failure_threshold must be an integer of at least 1, "
                f"got {self.failure_threshold!r}"
            )
        if (
            isinstance(self.open_seconds, bool)
            or not isinstance(self.open_seconds, int | float)
            or not 0 < self.open_seconds < float("inf")
        ):
            raise InvalidArgument(
                f"BreakerPolicy.open_seconds must be a positive number, got {self.open_seconds!r}"
            )


class CircuitBreaker:
    """One region's breaker; thread-safe."""

    def __init__(
        self,
        region: str,
        policy: BreakerPolicy,
        clock: Clock,
        on_change: Callable[[str, BreakerState], None],
    ) -> None:
        self.region = region
        self._policy = policy
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self.opened_at = float("-inf")
        # Whether the last failure was an answer (a 5xx: the region is there, struggling) rather
        # than silence; with every breaker open, a region that answers is the better bet.
        self.last_failure_answered = False

    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def closed(self) -> bool:
        return self._state is BreakerState.CLOSED

    def claim_probe(self) -> bool:
        """True for the one caller that should now probe an open region's health."""
        with self._lock:
            due = self._clock.now() - self.opened_at >= self._policy.open_seconds
            if self._state is not BreakerState.OPEN or not due:
                return False
            changed = self._set(BreakerState.HALF_OPEN)
        self._emit(changed)
        return True

    def probe_result(self, healthy: bool) -> None:
        with self._lock:
            changed = self._close() if healthy else self._open()
        self._emit(changed)

    def record_success(self) -> None:
        """Any answer from the region but a 5xx: it is up."""
        with self._lock:
            changed = self._close()
        self._emit(changed)

    def record_failure(self, answered: bool) -> None:
        with self._lock:
            self._failures += 1
            self.last_failure_answered = answered
            changed = None
            if self._state is BreakerState.CLOSED:
                if self._failures >= self._policy.failure_threshold:
                    changed = self._open()
            elif self._state is BreakerState.OPEN:
                self.opened_at = self._clock.now()  # a fallback request failed: wait again
        self._emit(changed)

    def _open(self) -> BreakerState | None:
        self.opened_at = self._clock.now()
        return self._set(BreakerState.OPEN)

    def _close(self) -> BreakerState | None:
        self._failures = 0
        return self._set(BreakerState.CLOSED)

    def _set(self, state: BreakerState) -> BreakerState | None:
        """The new state when it changed; the caller reports it once the lock is released."""
        if state is self._state:
            return None
        self._state = state
        return state

    def _emit(self, changed: BreakerState | None) -> None:
        if changed is not None:
            self._on_change(self.region, changed)
