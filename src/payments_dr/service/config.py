"""Region configuration read from SSM Parameter Store, cached per ServiceDeps instance."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from payments_dr.contract import Mode, Param, RegionRole
from payments_dr.service.observability import logger

# How long a read stays fresh. Fencing a region (mode=fenced) reaches every warm container
# within this time; at one GetParametersByPath per container per period, 100 warm API
# containers stay at 20 requests/s, half SSM's default throughput quota.
CONFIG_MAX_AGE_SECONDS = 5.0
# When SSM cannot be read, the last values keep serving this long before the region reports
# itself unhealthy: a short SSM blip must not fail a region over, a long one must.
CONFIG_STALE_LIMIT_SECONDS = 60.0
# How long a caller holding still-usable values waits for a refresh before using them. SSM
# answers in milliseconds; a hanging SSM (each read can take 7 s: two attempts of 1 s connect
# plus 2 s read, plus backoff) must neither stall payments nor fail the health check.
CONFIG_REFRESH_WAIT_SECONDS = 0.25
REQUIRED_PARAMS = (
    Param.TABLE_NAME,
    Param.RETRY_QUEUE_URL,
    Param.DLQ_URL,
    Param.LOG_BUCKET,
    Param.REGION_ROLE,
    Param.PEER_REGION,
    Param.PEER_RETRY_QUEUE_URL,
    Param.MODE,
)


class ConfigUnavailable(RuntimeError):
    """No configuration recent enough to act on."""


@dataclass(frozen=True)
class ServiceConfig:
    table_name: str
    retry_queue_url: str
    dlq_url: str
    log_bucket: str
    region_role: RegionRole
    peer_region: str
    peer_retry_queue_url: str
    mode: Mode
    peer_sqs_endpoint: str | None = None  # None: the peer region's public SQS endpoint

    @classmethod
    def from_parameters(cls, values: dict[str, str]) -> ServiceConfig:
        missing = [param.value for param in REQUIRED_PARAMS if param.value not in values]
        if missing:
            raise ConfigUnavailable(f"missing SSM parameters: {', '.join(missing)}")
        try:
            return cls(
                table_name=values[Param.TABLE_NAME],
                retry_queue_url=values[Param.RETRY_QUEUE_URL],
                dlq_url=values[Param.DLQ_URL],
                log_bucket=values[Param.LOG_BUCKET],
                region_role=RegionRole(values[Param.REGION_ROLE]),
                peer_region=values[Param.PEER_REGION],
                peer_retry_queue_url=values[Param.PEER_RETRY_QUEUE_URL],
                mode=Mode(values[Param.MODE]),
                peer_sqs_endpoint=values.get(Param.PEER_SQS_ENDPOINT) or None,
            )
        except ValueError as error:
            raise ConfigUnavailable(f"invalid SSM parameter value: {error}") from error


class ConfigCache:
    """Reads every parameter under one SSM path in a single paginated call, at most once per
    max age; on failure serves the last good values until they pass the stale limit.

    A refresh runs on its own thread. Callers with usable values wait for it only briefly,
    callers without (cold start, past the stale limit) until it ends.
    """

    def __init__(
        self,
        ssm_client: Any,
        path: str,
        clock: Callable[[], float],
        max_age_seconds: float = CONFIG_MAX_AGE_SECONDS,
        stale_limit_seconds: float = CONFIG_STALE_LIMIT_SECONDS,
        refresh_wait_seconds: float = CONFIG_REFRESH_WAIT_SECONDS,
    ) -> None:
        self._ssm = ssm_client
        self._path = path.rstrip("/")
        self._clock = clock
        self._max_age = max_age_seconds
        self._stale_limit = stale_limit_seconds
        self._refresh_wait = refresh_wait_seconds
        self._lock = threading.Lock()
        self._config: ServiceConfig | None = None
        self._loaded_at = 0.0  # start of the last successful read
        self._attempted_at = float("-inf")  # start of the last read, successful or not
        self._refresh_done = threading.Event()  # set while no refresh is in flight
        self._refresh_done.set()

    def get(self) -> ServiceConfig:
        with self._lock:
            now = self._clock()
            if self._refresh_done.is_set() and now - self._attempted_at >= self._max_age:
                self._attempted_at = now
                self._refresh_done = threading.Event()
                threading.Thread(
                    target=self._refresh,
                    args=(now, self._refresh_done),
                    name="config-refresh",
                    daemon=True,
                ).start()
            refresh_done = self._refresh_done
            has_usable = self._usable(now) is not None
        refresh_done.wait(self._refresh_wait if has_usable else None)
        with self._lock:
            config = self._usable(self._clock())
        if config is None:
            raise ConfigUnavailable(f"no configuration read from {self._path} recently")
        return config

    def _usable(self, now: float) -> ServiceConfig | None:
        if self._config is None or now - self._loaded_at > self._stale_limit:
            return None
        return self._config

    def _refresh(self, started: float, done: threading.Event) -> None:
        try:
            config = ServiceConfig.from_parameters(self._read_parameters())
        except Exception:
            # Whatever failed (SSM, network, bad values), the stale limit decides what happens.
            logger.warning("configuration refresh failed", path=self._path, exc_info=True)
        else:
            with self._lock:
                self._config, self._loaded_at = config, started
        finally:
            done.set()

    def _read_parameters(self) -> dict[str, str]:
        values: dict[str, str] = {}
        request: dict[str, Any] = {"Path": self._path, "Recursive": False}
        while True:
            page = self._ssm.get_parameters_by_path(**request)
            for parameter in page["Parameters"]:
                values[parameter["Name"].rsplit("/", 1)[-1]] = parameter["Value"]
            if not page.get("NextToken"):
                return values
            request["NextToken"] = page["NextToken"]
