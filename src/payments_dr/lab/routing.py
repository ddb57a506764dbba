"""Route 53, simulated: health checkers, failover DNS answers with a TTL, and a router.

- Health checks follow Route 53's rules: several checkers probe the region's own health
  path every interval, staggered; a checker changes its verdict after `failure_threshold`
  consecutive results the other way; the region counts as healthy while more than 18% of
  the checkers see it healthy. A probe fails on a non-2xx/3xx status, no answer, or no
  answer within the timeout.
- Each failover record follows a CALCULATED check: the region's health check AND its traffic
  switch, an alarm held in the other region (infra/switch.py). CloudWatch evaluates the alarm
  once a period on its latest minute, and Route 53 follows it; with no new data the switch
  keeps its state, so a recovered region stays out until `failback` flips it.
- DNS answers PRIMARY while its record is healthy, else SECONDARY when that one is, else
  PRIMARY (Route 53 treats "all unhealthy" as "all healthy").
- Clients keep an answer for the record's TTL, so traffic moves at most one TTL after the
  health status changes. The router plays the client side of that: it forwards each
  request to the region its cached answer names.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from payments_dr import contract
from payments_dr.lab.clock import SimClock
from payments_dr.lab.httpserver import JsonRequestHandler, LoopbackServer
from payments_dr.lab.threads import BackgroundLoop

log = logging.getLogger(__name__)

# A probe may take at least this long in wall time, whatever the time scale, so that the
# machine's own slowness is not mistaken for a fault.
MIN_PROBE_TIMEOUT_WALL_SECONDS = 1.0
FORWARD_TIMEOUT_WALL_SECONDS = 10.0
ROUTED_TO_HEADER = "X-Lab-Routed-To"
# Marks the router's own 502: the region did not answer at all (a network error to a client).
NO_ANSWER_HEADER = "X-Lab-No-Answer"
# Headers that describe one connection, or that the relaying server writes itself.
_NOT_RELAYED = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "host",
    "content-length",
    "server",
    "date",
}


def probe(url: str, timeout_wall_seconds: float) -> bool:
    """One Route 53 HTTP probe: healthy on a 2xx or 3xx answer within the timeout."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port, timeout=timeout_wall_seconds
    )
    try:
        connection.request("GET", parts.path)
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    return 200 <= status < 400


@dataclass
class _Checker:
    healthy: bool = True  # a new Route 53 health check starts out healthy
    streak: int = 0  # consecutive results contradicting the current verdict


class RegionHealthCheck:
    """The health check of one region, with several staggered checkers."""

    def __init__(
        self,
        region: str,
        health_url: str,
        clock: SimClock,
        interval_seconds: float,
        failure_threshold: int,
        checkers: int,
        healthy_fraction: float,
        on_change: Callable[[str, bool], None],
        fault_began_at: Callable[[], float] = lambda: float("-inf"),
    ) -> None:
        self.region = region
        self.health_url = health_url
        self._clock = clock
        self._interval = interval_seconds
        self._threshold = failure_threshold
        self._checkers = [_Checker() for _ in range(checkers)]
        self._healthy_fraction = healthy_fraction
        self._on_change = on_change
        self._fault_began_at = fault_began_at
        self._timeout_wall = max(
            clock.to_wall(contract.HEALTH_CHECK_TIMEOUT_SECONDS), MIN_PROBE_TIMEOUT_WALL_SECONDS
        )
        self.healthy = True
        self.probes = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # One thread per checker: a slow probe delays only its own checker, as on Route 53.
        self._threads = [
            threading.Thread(
                target=self._run_checker,
                args=(index,),
                name=f"lab-health-{region}-{index}",
                daemon=True,
            )
            for index in range(checkers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join()

    def _run_checker(self, index: int) -> None:
        # Checkers are staggered evenly, so the region is probed every interval / checkers.
        next_probe = self._clock.now() + self._interval * index / len(self._checkers)
        while not self._clock.wait(self._stop, next_probe - self._clock.now()):
            started = self._clock.now()
            healthy = probe(self.health_url, self._timeout_wall)
            # A probe's verdict belongs to the time it started. On a loaded machine a probe can
            # take seconds of simulated time; one that started before the latest fault began
            # cannot tell that fault, so its failure is not counted.
            if healthy or started >= self._fault_began_at():
                self.record(index, healthy)
            next_probe = max(next_probe + self._interval, self._clock.now())

    def record(self, checker_index: int, probe_ok: bool) -> None:
        """Apply one probe result to one checker, then recompute the region's status."""
        with self._lock:
            self._record(checker_index, probe_ok)

    def _record(self, checker_index: int, probe_ok: bool) -> None:
        self.probes += 1
        checker = self._checkers[checker_index]
        if probe_ok == checker.healthy:
            checker.streak = 0
        else:
            checker.streak += 1
            if checker.streak >= self._threshold:
                checker.healthy = probe_ok
                checker.streak = 0
        healthy_share = sum(c.healthy for c in self._checkers) / len(self._checkers)
        healthy = healthy_share > self._healthy_fraction
        if healthy != self.healthy:
            self.healthy = healthy
            self._on_change(self.region, healthy)


class TrafficSwitchCheck(BackgroundLoop):
    """One region's switch: an alarm in the peer region on the switch metric, evaluated once
    a period (what CloudWatch does) and followed by the region's record (what Route 53 does)."""

    def __init__(
        self,
        region: str,
        cloudwatch: Any,  # the holding region's (fault-free) client
        holder_down: Callable[[], bool],  # CloudWatch in the holding region is out
        stack: str,
        clock: SimClock,
        on_change: Callable[[], None],
    ) -> None:
        self.region = region
        self.serves = True  # a new CLOUDWATCH_METRIC check is healthy
        self._cloudwatch = cloudwatch
        self._holder_down = holder_down
        self._stack = stack
        self._clock = clock
        self._on_change = on_change
        super().__init__(f"lab-switch-{region}")

    def _run(self) -> None:
        while not self._clock.wait(self._stop, contract.SWITCH_PERIOD_SECONDS):
            self.evaluate()

    def evaluate(self) -> None:
        if self._holder_down():
            return  # no evaluation: the check keeps its last known status
        now = self._clock.epoch()
        dimensions = contract.switch_dimensions(self._stack, self.region)
        points = self._cloudwatch.get_metric_statistics(
            Namespace=contract.SWITCH_NAMESPACE,
            MetricName=contract.SWITCH_METRIC,
            Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
            StartTime=datetime.fromtimestamp(now - 3 * 3600, UTC),
            EndTime=datetime.fromtimestamp(now, UTC),
            Period=contract.SWITCH_PERIOD_SECONDS,
            Statistics=["Maximum"],
        )["Datapoints"]
        if not points:
            return
        away = max(points, key=lambda point: point["Timestamp"])["Maximum"] >= 1
        self._cloudwatch.set_alarm_state(
            AlarmName=contract.switch_alarm_name(self._stack, self.region),
            StateValue="ALARM" if away else "OK",
            StateReason="lab: evaluated the latest minute",
        )
        if self.serves == away:
            self.serves = not away
            self._on_change()


class RecordHealth:
    """What a failover record follows: its region's health check AND its switch."""

    def __init__(
        self,
        check: RegionHealthCheck,
        on_change: Callable[[str, bool, str], None],
    ) -> None:
        self.region = check.region
        self.check = check
        self.switch: TrafficSwitchCheck | None = None
        self.healthy = True
        self._on_change = on_change  # (region, healthy, what changed)
        self._lock = threading.Lock()

    def recompute(self, cause: str) -> None:
        with self._lock:
            switch_serves = self.switch is None or self.switch.serves
            healthy = self.check.healthy and switch_serves
            if healthy == self.healthy:
                return
            self.healthy = healthy
        self._on_change(self.region, healthy, cause)


class FailoverDns:
    """Failover records PRIMARY/SECONDARY, answered from health, cached for the TTL."""

    def __init__(
        self,
        clock: SimClock,
        primary: RecordHealth,
        secondary: RecordHealth,
        ttl_seconds: float,
        on_switch: Callable[[str], None] = lambda _region: None,
    ) -> None:
        self._clock = clock
        self._primary = primary
        self._secondary = secondary
        self._ttl = ttl_seconds
        self._on_switch = on_switch  # told the region clients move to
        self._lock = threading.Lock()
        self._cached: str | None = None
        self._expires_at = float("-inf")

    def answer(self) -> str:
        """What Route 53 answers right now."""
        if self._primary.healthy or not self._secondary.healthy:
            return self._primary.region
        return self._secondary.region

    def cached_answer(self) -> str | None:
        """The answer clients hold now, without refreshing it."""
        with self._lock:
            return self._cached

    def resolve(self) -> str:
        """What a client uses: the cached answer until its TTL runs out."""
        with self._lock:
            now = self._clock.now()
            if self._cached is None or now >= self._expires_at:
                previous, self._cached = self._cached, self.answer()
                self._expires_at = now + self._ttl
                if previous is not None and previous != self._cached:
                    self._on_switch(self._cached)
            return self._cached


class FailoverRouter(LoopbackServer):
    """The failover name's endpoint: forwards each request where DNS sends the client."""

    def __init__(self, dns: FailoverDns, region_urls: dict[str, str]) -> None:
        self._dns = dns
        self._region_urls = region_urls
        super().__init__(self._request_handler_class(), "lab-failover-router")

    def forward(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[str, int, list[tuple[str, str]], bytes] | tuple[str, None, None, None]:
        """(region, status, headers, body) from the resolved region; no status: no answer."""
        region = self._dns.resolve()
        parts = urlsplit(self._region_urls[region])
        connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=FORWARD_TIMEOUT_WALL_SECONDS
        )
        try:
            # Header by header: a header the client repeated reaches the region repeated, as
            # through DNS, so the region refuses what it would refuse from the client.
            connection.putrequest(method, target, skip_accept_encoding=True)
            for name, value in headers:
                if name.lower() not in _NOT_RELAYED:
                    connection.putheader(name, value)
            if body:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            response = connection.getresponse()
            return region, response.status, response.getheaders(), response.read()
        except (OSError, http.client.HTTPException):
            return region, None, None, None
        finally:
            connection.close()

    def _request_handler_class(self) -> type[BaseHTTPRequestHandler]:
        router = self

        class RequestHandler(JsonRequestHandler):
            server_version = "lab-failover-router"
            # Headers and body go out in separate writes; without this, Nagle's algorithm and
            # delayed ACKs add ~40 ms to every answer.
            disable_nagle_algorithm = True

            def __getattr__(self, name: str) -> Callable[[], None]:
                # Any HTTP method, even one http.server has never heard of, lands in one place:
                # the router relays whatever method a client uses.
                if name.startswith("do_"):
                    return lambda: self._relay(name.removeprefix("do_"))
                raise AttributeError(name)

            def _relay(self, method: str) -> None:
                body = self.read_body()
                if body is None:
                    return
                region, status, headers, payload = router.forward(
                    method, self.path, list(self.headers.items()), body
                )
                if status is None or headers is None or payload is None:
                    # The client's connection to that region failed: say so, as a network
                    # error would, but legibly for someone using curl.
                    message = f"simulated network: {region} did not answer"
                    self._write(
                        502,
                        [("Content-Type", "application/json"), (NO_ANSWER_HEADER, "1")],
                        region,
                        json.dumps({"message": message}).encode(),
                    )
                    return
                self._write(status, headers, region, payload)

            def _write(
                self, status: int, headers: list[tuple[str, str]], region: str, payload: bytes
            ) -> None:
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in _NOT_RELAYED:
                        self.send_header(name, value)
                self.send_header(ROUTED_TO_HEADER, region)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("router %s", format % args)

        return RequestHandler
