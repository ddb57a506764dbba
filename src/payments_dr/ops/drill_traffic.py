"""The AWS drill's clients: clients of the failover name and merchants on the SDK, side by side.

Each kind (`--client dns|sdk|both`) runs `clients` clients that together pay at the drill's
rate, each with its own idempotency keys, keeping what it sent and was told (`ClientTally`).
`dns` clients POST through the failover name and retry a payment a few times with the same
key, waiting for Route 53; `sdk` clients each hold a
`PaymentsClient(outputs.api_endpoints, api_key)`, which fails over by itself.

Each client runs on a thread of its own, but the clients and the drill take turns: exactly one
runs at any moment, and a client that waits (between payments, or in a retry's backoff, the
SDK's included through the clock it is given) hands the turn back until its time comes
(`DrillTraffic.wait`, which is also how the drill waits). So both kinds meet the same fault at
the same moments, every wait ends on time, and tests run the whole drill on a fake clock
without races. Only a request in flight holds the others back: at most its timeout (5 s), a
few hundred milliseconds in practice.
"""

from __future__ import annotations

import json
import random
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from payments_dr.client import (
    AttemptEvent,
    ClientEvent,
    PaymentsClient,
    PaymentsUnavailable,
    RequestRejected,
    Transport,
    UnexpectedAnswer,
)
from payments_dr.contract import (
    AUTH_HEADER,
    AUTH_SCHEME,
    IDEMPOTENCY_HEADER,
    PAYMENTS_PATH,
    REGION_HEADER,
)
from payments_dr.drill_report import RequestSample
from payments_dr.lab.client_payments import ClientKind
from payments_dr.ops.synthetic import Sender
from payments_dr.service.model import PAYMENT_ID_PATTERN

DNS_ATTEMPTS_PER_PAYMENT = 4  # a client of the failover name retries with the same key
DNS_RETRY_BACKOFF_SECONDS = 1.0
RETRYABLE = frozenset({0, 429, 500, 502, 503, 504})
PAYMENT_TOKEN = "tok_drillsynthetic"
STOP_WAIT_SECONDS = 30.0  # wall seconds `close` waits for a client to finish its request


class _Stopped(BaseException):
    """Ends a client's thread at its next wait; BaseException, so no handler on the way
    (the SDK's included) takes it for a failed request."""


def client_kinds(kind: ClientKind) -> tuple[ClientKind, ...]:
    return (ClientKind.DNS, ClientKind.SDK) if kind is ClientKind.BOTH else (kind,)


@dataclass
class ClientTally:
    """What one client sent and was told; times in seconds since the traffic started."""

    kind: ClientKind
    samples: list[RequestSample] = field(default_factory=list)
    acknowledged: dict[str, str] = field(default_factory=dict)  # idempotency key -> payment id
    acknowledged_at: list[float] = field(default_factory=list)  # when each answer came
    duplicates: list[str] = field(default_factory=list)  # answered under an unexpected id
    failed: int = 0  # no final answer after every attempt
    rejected: int = 0  # a well-formed payment answered 4xx: a service fault
    sent: int = 0

    def first_success(self, since: float) -> float | None:
        """Seconds from `since` to the first acknowledgement this client heard after it."""
        return next((round(at - since, 3) for at in self.acknowledged_at if at >= since), None)


class DrillClient(ABC):
    """One client: a payment every `interval` seconds on the traffic's clock."""

    def __init__(
        self,
        traffic: DrillTraffic,
        kind: ClientKind,
        index: int,
        merchant_id: str,
        interval: float,
        offset: float,
    ) -> None:
        self.traffic = traffic
        self.tally = ClientTally(kind)
        self.merchant_id = merchant_id
        self.label = f"{kind.value[0]}{index:02d}"  # d00, s00, ...
        self.interval = interval
        self.wake_at = traffic.started + offset  # when it wants its next turn
        self.done = False
        self.error: BaseException | None = None  # raised on its thread, for the drill's
        self._turn = threading.Event()
        self._thread: threading.Thread | None = None

    def pause(self, seconds: float) -> None:
        """On the client's thread: hands the turn back for `seconds` of the drill's clock."""
        self.wake_at = self.traffic.clock() + max(0.0, seconds)
        self.traffic.turn_over.set()
        self._turn.wait()
        self._turn.clear()
        if self.traffic.stopping:
            raise _Stopped

    def take_turn(self) -> None:
        """On the drill's thread: lets the client run until it waits again."""
        self.traffic.turn_over.clear()
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._main, name=f"drill-{self.label}", daemon=True
            )
            self._thread.start()
        self._turn.set()
        self.traffic.turn_over.wait()

    def _main(self) -> None:
        try:
            self._turn.wait()
            self._turn.clear()
            next_at = self.wake_at
            while not self.traffic.stopping:
                self._pay_next()
                next_at = max(next_at + self.interval, self.traffic.clock())
                self.pause(next_at - self.traffic.clock())
        except _Stopped:
            pass
        except BaseException as error:  # Ctrl-C from a test fake too: raised on the drill thread
            self.error = error
        finally:
            self.done = True
            self.traffic.turn_over.set()

    def _pay_next(self) -> None:
        self.tally.sent += 1
        sequence = self.tally.sent
        # Letters keep the id's hex tail, the client and the counter apart: one run of 13+
        # digits could be refused as card-shaped.
        key = f"drill-{self.merchant_id[-12:]}-{self.label}n{sequence:06d}"
        self.pay(
            key,
            {
                "amount": 100 + sequence,
                "currency": "USD",
                "payment_token": PAYMENT_TOKEN,
                "reference": f"drill-{self.label}-{sequence}",
            },
        )

    def stop(self) -> None:
        """On the drill's thread: ends the client's thread at its next wait."""
        if self._thread is not None and not self.done:
            self.traffic.turn_over.clear()
            self._turn.set()
            self.traffic.turn_over.wait(STOP_WAIT_SECONDS)

    @abstractmethod
    def pay(self, key: str, fields: dict[str, Any]) -> None:
        """Sends one payment until answered for good or given up, and tallies it."""

    def acknowledge(self, key: str, answered_id: str) -> None:
        # Ids are keyed with the stack's id secret, which only the functions may read: the
        # drill cannot compute them, so it takes the answered id, flags one that is not an id
        # or that another key already got, and then looks each up in both regions.
        kind = self.tally.kind.value
        if not PAYMENT_ID_PATTERN.fullmatch(answered_id):
            self.tally.duplicates.append(
                f"{kind} client: key {key} answered {answered_id!r}, not a payment id"
            )
            return
        acknowledged = self.tally.acknowledged
        other = next((k for k, known in acknowledged.items() if known == answered_id), None)
        if other is not None:
            self.tally.duplicates.append(
                f"{kind} client: keys {other} and {key} were both answered id {answered_id}"
            )
        acknowledged[key] = answered_id
        self.tally.acknowledged_at.append(self.traffic.elapsed())

    @abstractmethod
    def close(self) -> None:
        """Releases its connections."""


class DnsClient(DrillClient):
    """Sends through the failover name: where it lands is Route 53's decision."""

    def __init__(self, *args: Any, url: str, api_key: str, send: Sender) -> None:
        super().__init__(*args)
        self.url = url
        self.api_key = api_key
        self.send = send

    def pay(self, key: str, fields: dict[str, Any]) -> None:
        body = json.dumps(fields).encode()
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: key,
            AUTH_HEADER: f"{AUTH_SCHEME} {self.api_key}",
        }
        for attempt in range(DNS_ATTEMPTS_PER_PAYMENT):
            answer = self.send(self.url, headers, body)
            self.tally.samples.append(
                RequestSample(
                    self.traffic.elapsed(), answer.headers.get(REGION_HEADER, ""), answer.status
                )
            )
            if answer.status not in RETRYABLE:
                break
            if attempt + 1 < DNS_ATTEMPTS_PER_PAYMENT:
                self.pause(DNS_RETRY_BACKOFF_SECONDS)
        if 200 <= answer.status < 300:
            self.acknowledge(key, str(answer.body.get("id", "")))
        elif answer.status in RETRYABLE:
            self.tally.failed += 1
        else:
            self.tally.rejected += 1

    def close(self) -> None:
        """Nothing to release: each request opens and closes its own connection."""


class _ClientClock:
    """The SDK's clock: the drill's, and its waits hand the turn back."""

    def __init__(self, client: DrillClient) -> None:
        self._client = client

    def now(self) -> float:
        return self._client.traffic.clock()

    def sleep(self, seconds: float) -> None:
        self._client.pause(seconds)


class SdkClient(DrillClient):
    """A merchant on the SDK: both regional endpoints, its own retries and breakers."""

    def __init__(
        self,
        *args: Any,
        endpoints: Mapping[str, str],
        api_key: str,
        transport: Transport | None,
        unit_random: Callable[[], float],
    ) -> None:
        super().__init__(*args)
        self.client = PaymentsClient(
            endpoints,
            api_key,
            clock=_ClientClock(self),
            unit_random=unit_random,
            transport=transport,
            on_event=self._record,
        )

    def _record(self, event: ClientEvent) -> None:
        if isinstance(event, AttemptEvent):
            status = event.status or 0  # None: no answer
            at = round(event.at + event.seconds - self.traffic.started, 3)
            self.tally.samples.append(RequestSample(at, event.region if status else "", status))

    def pay(self, key: str, fields: dict[str, Any]) -> None:
        try:
            result = self.client.create_payment(**fields, idempotency_key=key)
        except RequestRejected:
            self.tally.rejected += 1
        except (PaymentsUnavailable, UnexpectedAnswer):
            self.tally.failed += 1  # the SDK gave up (or a 2xx carried no payment)
        else:
            self.acknowledge(key, result.payment.id)

    def close(self) -> None:
        self.client.close()


@dataclass
class DrillTraffic:
    """Every client of the drill; `wait` (and `run_for`) is also the drill's way to wait."""

    clock: Callable[[], float]
    sleep: Callable[[float], None]
    started: float
    clients: list[DrillClient] = field(default_factory=list)
    turn_over: threading.Event = field(default_factory=threading.Event)
    stopping: bool = False

    def elapsed(self) -> float:
        return round(self.clock() - self.started, 3)

    def wait(self, seconds: float) -> None:
        """On the drill's thread: lets `seconds` pass, each client taking its turns."""
        deadline = self.clock() + seconds
        while (now := self.clock()) < deadline:
            waiting = [client for client in self.clients if not client.done]
            due = min(waiting, key=lambda client: client.wake_at, default=None)
            if due is not None and due.wake_at <= now:
                due.take_turn()
                if due.error is not None:
                    raise due.error
            else:
                self.sleep(min(deadline, due.wake_at if due else deadline) - now)

    run_for = wait

    @property
    def kinds(self) -> tuple[ClientKind, ...]:
        return tuple(dict.fromkeys(client.tally.kind for client in self.clients))

    def tallies(self, kinds: Iterable[ClientKind] | None = None) -> list[ClientTally]:
        wanted = set(self.kinds if kinds is None else kinds)
        return [client.tally for client in self.clients if client.tally.kind in wanted]

    def samples(self, kinds: Iterable[ClientKind] | None = None) -> list[RequestSample]:
        merged = [sample for tally in self.tallies(kinds) for sample in tally.samples]
        return sorted(merged, key=lambda sample: sample.at_seconds)

    def acknowledged_ids(self, kinds: Iterable[ClientKind] | None = None) -> set[str]:
        return {pay_id for tally in self.tallies(kinds) for pay_id in tally.acknowledged.values()}

    def close(self) -> None:
        """Ends every client's thread and releases its connections."""
        self.stopping = True
        for client in self.clients:
            client.stop()
            client.close()


def drill_traffic(
    *,
    failover_url: str,
    endpoints: Mapping[str, str],
    merchant_id: str,
    api_key: str,
    client_kind: ClientKind,
    clients: int,
    rate_per_second: float,
    send: Sender,
    transport: Transport | None,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    seed: int | None = None,
) -> DrillTraffic:
    """`clients` clients of each kind, together paying `rate_per_second` per kind, staggered.
    `transport` None: the SDK's own (urllib3); `seed` fixes the SDK's jitter (tests)."""
    traffic = DrillTraffic(clock, sleep, clock())
    interval = clients / rate_per_second
    for kind in client_kinds(client_kind):
        for index in range(clients):
            place = (traffic, kind, index, merchant_id, interval, interval * index / clients)
            if kind is ClientKind.DNS:
                url = failover_url.rstrip("/") + PAYMENTS_PATH
                traffic.clients.append(DnsClient(*place, url=url, api_key=api_key, send=send))
            else:
                jitter = random.Random(None if seed is None else seed + index).random
                traffic.clients.append(
                    SdkClient(
                        *place,
                        endpoints=endpoints,
                        api_key=api_key,
                        transport=transport,
                        unit_random=jitter,
                    )
                )
    return traffic
