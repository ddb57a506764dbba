"""A function's configuration: deploy-time settings from its environment, and the one value
that changes at run time, the region's `mode` fence, read from SSM.

SSM Parameter Store serves 40 transactions per second by default, shared by GetParameter,
GetParameters and GetParametersByPath in an account and region. When the DR region takes
over, its containers start cold together; each reads only `mode`, and every read (the first
one included) waits a random delay of up to the spread first, so N containers starting at
once read at about N / spread per second on average. `payments-dr synth` checks the busiest
second against the quota (`payments_dr.infra.ssm_budget`).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from payments_dr import contract
from payments_dr.contract import Mode, Param, RegionRole
from payments_dr.service.observability import logger

# When SSM cannot be read, the last mode keeps serving this long before the region reports
# itself unhealthy: a short SSM blip must not fail a region over, a long one must.
MODE_STALE_LIMIT_SECONDS = 60.0
# How long a caller holding a usable mode waits for a refresh before using it. SSM answers in
# milliseconds; a hanging SSM (each read can take 7 s: two attempts of 1 s connect plus 2 s
# read, plus backoff) must neither stall payments nor fail the health check.
MODE_REFRESH_WAIT_SECONDS = 0.25
# How long `ModeCache.close` waits for a GetParameter call in flight (at most about 7 s, as
# above; the lab's in-process SSM answers in milliseconds).
READ_JOIN_SECONDS = 8.0
REQUIRED_PARAMS = tuple(
    param for param in contract.DEPLOY_TIME_PARAMS if param is not Param.PEER_SQS_ENDPOINT
)

# Sleeps `seconds` unless the event is set first (True then); the lab passes simulated time.
Wait = Callable[[threading.Event, float], bool]


def event_wait(event: threading.Event, seconds: float) -> bool:
    return event.wait(seconds)


class ConfigUnavailable(RuntimeError):
    """No configuration recent enough to act on."""


@dataclass(frozen=True)
class ServiceConfig:
    """What does not change between deployments: names, URLs, the region's role."""

    table_name: str
    retry_queue_url: str
    dlq_url: str
    log_bucket: str
    region_role: RegionRole
    peer_region: str
    peer_retry_queue_url: str
    peer_sqs_endpoint: str | None = None  # None: the peer region's public SQS endpoint

    @classmethod
    def from_values(cls, values: Mapping[str, str]) -> ServiceConfig:
        """From values keyed by parameter name (`Param`)."""
        missing = [param.value for param in REQUIRED_PARAMS if not values.get(param.value)]
        if missing:
            raise ConfigUnavailable(f"missing settings: {', '.join(missing)}")
        try:
            role = RegionRole(values[Param.REGION_ROLE])
        except ValueError as error:
            raise ConfigUnavailable(f"invalid {Param.REGION_ROLE.value}: {error}") from error
        return cls(
            table_name=values[Param.TABLE_NAME],
            retry_queue_url=values[Param.RETRY_QUEUE_URL],
            dlq_url=values[Param.DLQ_URL],
            log_bucket=values[Param.LOG_BUCKET],
            region_role=role,
            peer_region=values[Param.PEER_REGION],
            peer_retry_queue_url=values[Param.PEER_RETRY_QUEUE_URL],
            peer_sqs_endpoint=values.get(Param.PEER_SQS_ENDPOINT) or None,
        )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> ServiceConfig:
        """From the function's environment, which the stack sets at deploy time."""
        values = {
            param.value: environ[contract.param_env_var(param)]
            for param in contract.DEPLOY_TIME_PARAMS
            if contract.param_env_var(param) in environ
        }
        return cls.from_values(values)


class ModeCache:
    """The region's `mode`, read with GetParameter at most once per refresh period, each read
    after a random delay of up to `spread_seconds`.

    A mode is used while it was read within refresh + spread seconds, so a fence reaches a
    container serving traffic within that time. When a read fails, the last mode keeps
    serving until the stale limit. Reads run on their own thread: callers holding a usable
    mode wait for one only briefly, callers without (cold start, a long idle container) until
    it ends. An `urgent` caller (the health check, which must answer within 2 s) cuts the
    delay short when it has no usable mode. `close` ends the refreshing when the container's
    world ends (the lab stopping a region): no read may outlive the clients it reads with.
    """

    def __init__(
        self,
        ssm_client: Any,
        parameter_name: str,
        clock: Callable[[], float],
        *,
        refresh_seconds: float = contract.MODE_REFRESH_SECONDS,
        spread_seconds: float = contract.MODE_READ_SPREAD_SECONDS,
        stale_limit_seconds: float = MODE_STALE_LIMIT_SECONDS,
        refresh_wait_seconds: float = MODE_REFRESH_WAIT_SECONDS,
        wait: Wait = event_wait,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        if refresh_seconds <= 0 or not 0 <= spread_seconds <= refresh_seconds:
            raise ValueError(
                f"need 0 < refresh ({refresh_seconds}) and 0 <= spread ({spread_seconds})"
                " <= refresh, or reads would bunch up"
            )
        self._ssm = ssm_client
        self._name = parameter_name
        self._clock = clock
        self._refresh = refresh_seconds
        self._spread = spread_seconds
        self._stale_limit = stale_limit_seconds
        self._refresh_wait = refresh_wait_seconds
        self._wait = wait
        self._jitter = jitter
        self._lock = threading.Lock()
        self._mode: Mode | None = None
        self._read_at = 0.0  # start of the last successful read
        self._failed = False  # whether the last read failed
        self._triggered_at = float("-inf")  # when the last read was asked for
        self._refresh_done = threading.Event()  # set while no read is in flight
        self._refresh_done.set()
        self._wake = threading.Event()  # ends the in-flight read's delay early
        self._reader: threading.Thread | None = None  # the read in flight, or the last one
        self._closed = False

    @property
    def fence_delay_seconds(self) -> float:
        """The oldest mode a container serving traffic acts on while SSM answers."""
        return self._refresh + self._spread

    def get(self, *, urgent: bool = False) -> Mode:
        with self._lock:
            now = self._clock()
            due = now - self._triggered_at >= self._refresh
            if due and self._refresh_done.is_set() and not self._closed:
                self._triggered_at = now
                self._refresh_done, self._wake = threading.Event(), threading.Event()
                self._reader = threading.Thread(
                    target=self._read,
                    args=(self._jitter(0.0, self._spread), self._wake, self._refresh_done),
                    name="mode-refresh",
                    daemon=True,
                )
                self._reader.start()
            has_usable = self._usable(now) is not None
            if urgent and not has_usable:
                self._wake.set()
            refresh_done = self._refresh_done
        refresh_done.wait(self._refresh_wait if has_usable else None)
        with self._lock:
            mode = self._usable(self._clock())
            if mode is None and not self._failed and self._read_at >= now:
                # Read after this call began: the freshest mode there is, however long the
                # call took (a slow read must not make its own answer stale).
                mode = self._mode
        if mode is None:
            raise ConfigUnavailable(f"{self._name} not read recently")
        return mode

    def close(self, timeout_seconds: float = READ_JOIN_SECONDS) -> bool:
        """Start no more reads; a read still in its delay ends without reading, one in its
        GetParameter call is waited for. False if that call outlasted `timeout_seconds`."""
        with self._lock:
            self._closed = True
            self._wake.set()
            reader = self._reader
        if reader is None:
            return True
        reader.join(timeout_seconds)
        return not reader.is_alive()

    def _usable(self, now: float) -> Mode | None:
        age = now - self._read_at
        limit = self._stale_limit if self._failed else self.fence_delay_seconds
        if self._mode is None or age > limit:
            return None
        return self._mode

    def _read(self, delay: float, wake: threading.Event, done: threading.Event) -> None:
        try:
            if delay > 0:
                self._wait(wake, delay)
            started = self._clock()
            with self._lock:
                if self._closed:
                    return  # woken by `close`: the clients may be gone
                # The next read is due a refresh period after this one, not after the request
                # that asked for it: containers that started together drift apart.
                self._triggered_at = started
            try:
                value = self._ssm.get_parameter(Name=self._name)["Parameter"]["Value"]
                mode = Mode(value)
            except Exception:
                # Whatever failed (SSM, network, a bad value), the stale limit decides.
                logger.warning("mode read failed", parameter=self._name, exc_info=True)
                with self._lock:
                    self._failed = True
            else:
                with self._lock:
                    self._mode, self._read_at, self._failed = mode, started, False
        finally:
            done.set()
