"""HTTP for the client: urllib3 with its own retries and redirects off (the client decides),
TLS 1.2 or later with certificate checks, and one pool of connections per host."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import urllib3
from urllib3 import exceptions


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes


class Failure(StrEnum):
    """Why no answer came."""

    CONNECT = "connect"  # never connected (refused, no route, DNS, TLS): nothing was sent
    CONNECT_TIMEOUT = "connect-timeout"  # nothing was sent either
    READ_TIMEOUT = "read-timeout"  # sent; the region may have applied it
    NO_ANSWER = "no-answer"  # sent, then the connection broke: the same uncertainty

    @property
    def request_sent(self) -> bool:
        return self in (Failure.READ_TIMEOUT, Failure.NO_ANSWER)


class TransportError(Exception):
    def __init__(self, failure: Failure, detail: str) -> None:
        super().__init__(f"{failure.value}: {detail}")
        self.failure = failure


class Transport(Protocol):
    """What the client needs from HTTP; tests and benchmarks substitute their own."""

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        connect_timeout: float,
        read_timeout: float,
    ) -> HttpReply:
        """One request, no retries; raises `TransportError` when no answer arrives."""
        ...

    def close(self) -> None: ...


class Urllib3Transport:
    def __init__(self, max_connections_per_host: int = 10) -> None:
        self._pool = urllib3.PoolManager(
            num_pools=4,  # one per regional host, with room to spare
            maxsize=max_connections_per_host,
            block=False,
            retries=False,
            ssl_minimum_version=ssl.TLSVersion.TLSv1_2,
            cert_reqs="CERT_REQUIRED",
        )

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        connect_timeout: float,
        read_timeout: float,
    ) -> HttpReply:
        try:
            response = self._pool.request(
                method,
                url,
                body=body,
                headers=dict(headers),
                timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
                retries=False,
                redirect=False,
            )
        # NewConnectionError subclasses ConnectTimeoutError, so it comes first.
        except (exceptions.NewConnectionError, exceptions.SSLError) as error:
            raise TransportError(Failure.CONNECT, type(error).__name__) from error
        except exceptions.ConnectTimeoutError as error:
            raise TransportError(Failure.CONNECT_TIMEOUT, type(error).__name__) from error
        except exceptions.ReadTimeoutError as error:
            raise TransportError(Failure.READ_TIMEOUT, type(error).__name__) from error
        except exceptions.HTTPError as error:  # ProtocolError: reset or closed mid-answer
            raise TransportError(Failure.NO_ANSWER, type(error).__name__) from error
        return HttpReply(
            status=response.status,
            headers={name.lower(): value for name, value in response.headers.items()},
            body=response.data,
        )

    def close(self) -> None:
        self._pool.clear()
