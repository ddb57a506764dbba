"""Explicit dependencies of the handlers: region, SSM path, AWS clients and a clock.

The Lambda entry points build one ServiceDeps per cold start from the environment; tests
and the local lab build their own, e.g. one per simulated region with moto-backed or
fault-injecting clients.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# botocore directly: importing boto3 would pull in s3transfer and double the cold start.
from botocore.config import Config
from botocore.session import Session, get_session

from payments_dr import contract
from payments_dr.service.config import ConfigUnavailable, ModeCache, ServiceConfig, Wait, event_wait
from payments_dr.service.model import IdKey

# Short timeouts and few attempts: an API answer must come well inside API Gateway's and
# Route 53's limits, and a failed table write has the retry queue as its fallback.
CONNECT_TIMEOUT_SECONDS = 1.0
READ_TIMEOUT_SECONDS = 2.0
MAX_ATTEMPTS = 2  # the first call plus one retry

# What every build_* factory returns: a Lambda handler bound to one region's deps.
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class ServiceDeps:
    """What a handler needs. Clients a function does not use may be None (the archiver has
    no SQS client); one it uses only on a rare path is made on first use (`client`).
    `clock` gives epoch seconds: payment timestamps and the mode
    cache's age both follow it, and `wait` sleeps in the same time, so simulations can
    scale time."""

    region: str
    ssm_path: str
    config: ServiceConfig  # the deploy-time settings
    ssm: Any = None  # only functions reading `mode` (contract.MODE_READERS) need it
    dynamodb: Any = None
    sqs: Any = None
    s3: Any = None
    # SQS in the peer region; created on first use from the configuration when not given.
    peer_sqs: Any = None
    clock: Callable[[], float] = time.time
    wait: Wait = event_wait
    mode_refresh_seconds: float = contract.MODE_REFRESH_SECONDS
    mode_read_spread_seconds: float = contract.MODE_READ_SPREAD_SECONDS
    # Where clients made on first use come from; the Lambda entry points pass theirs.
    session: Session | None = None
    # The key of payment ids and fingerprints (contract.ID_KEY_READERS read it); None in
    # functions that compute none, whose handlers never ask for it.
    id_key: IdKey | None = None
    mode: ModeCache = field(init=False)  # the one value read from SSM at run time
    _client_lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.mode = ModeCache(
            self.ssm,
            f"{self.ssm_path}/{contract.Param.MODE.value}",
            self.clock,
            refresh_seconds=self.mode_refresh_seconds,
            spread_seconds=self.mode_read_spread_seconds,
            wait=self.wait,
        )

    def _session(self) -> Session:
        if self.session is None:
            self.session = get_session()
        return self.session

    def client(self, service: str) -> Any:
        """This region's client for `service`: the one given, else made on first use.

        For a call only a rare path makes (the retry worker's DLQ, the archiver's conflict
        records): a cold start does not build a client that most containers never use."""
        with self._client_lock:
            if getattr(self, service) is None:
                setattr(self, service, create_client(self._session(), service, self.region))
            return getattr(self, service)

    def close(self) -> None:
        """End the background reads (the mode's refresh) before the clients go away."""
        self.mode.close()

    def require_id_key(self) -> IdKey:
        """The id key, for the handlers that compute ids; a deps without one is a wiring bug."""
        if self.id_key is None:
            raise ConfigUnavailable("no payment id key: this function must read the id secret")
        return self.id_key

    def peer_queue_client(self, config: ServiceConfig) -> Any:
        """The peer region's SQS, through the peer's interface endpoint when one is set."""
        with self._client_lock:
            if self.peer_sqs is None:
                self.peer_sqs = create_client(
                    self._session(),
                    "sqs",
                    config.peer_region,
                    endpoint_url=config.peer_sqs_endpoint,
                )
            return self.peer_sqs

    @classmethod
    def from_environment(cls, services: tuple[str, ...], *, id_key: bool = False) -> ServiceDeps:
        """Deps for a Lambda function, with clients for the `services` every invocation
        uses (only the API reads SSM); others are made on first use (`client`). With `id_key`,
        the id secret is read from this region's Secrets Manager.

        Raises ConfigUnavailable when the environment lacks a setting or the id secret cannot
        be read: the function fails its cold start rather than serve half-configured."""
        environ = os.environ
        region = environ["AWS_REGION"]
        session = get_session()  # one session loads the shared botocore data once
        clients = {name: create_client(session, name, region) for name in services}
        key = None
        if id_key:
            # Imported here: the functions that read no secret skip its module and client.
            from payments_dr.service.id_secret import read_id_key

            secret_id = environ.get(contract.ENV_ID_SECRET_ID)
            if not secret_id:
                raise ConfigUnavailable(f"{contract.ENV_ID_SECRET_ID} is not set")
            key = read_id_key(create_client(session, "secretsmanager", region), secret_id)
        return cls(
            region=region,
            ssm_path=environ[contract.ENV_SSM_PATH],
            config=ServiceConfig.from_environment(environ),
            mode_refresh_seconds=float(
                environ.get(contract.ENV_MODE_REFRESH_SECONDS, contract.MODE_REFRESH_SECONDS)
            ),
            mode_read_spread_seconds=float(
                environ.get(
                    contract.ENV_MODE_READ_SPREAD_SECONDS, contract.MODE_READ_SPREAD_SECONDS
                )
            ),
            session=session,
            id_key=key,
            **clients,
        )


def create_client(
    session: Session, service: str, region: str, endpoint_url: str | None = None
) -> Any:
    config = Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        tcp_keepalive=True,
    )
    return session.create_client(
        service, region_name=region, config=config, endpoint_url=endpoint_url
    )
