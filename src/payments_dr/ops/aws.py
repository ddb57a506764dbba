"""Region-specific AWS clients for the operations commands, and the errors they report."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config

# Exit codes shared by every operations command.
EXIT_OK = 0
EXIT_FAILED = 1  # the operation ran and did not reach its goal (timeout, failed task)
EXIT_ENVIRONMENT = 2  # cannot start: missing stack, outputs, Pulumi CLI or credentials
EXIT_REFUSED = 3  # a safety check refused the operation; `--force` overrides where offered
EXIT_INTERRUPTED = 130  # Ctrl-C; the shells' convention for SIGINT (128 + 2)

# Route 53 is a global service whose API lives in us-east-1.
ROUTE53_API_REGION = "us-east-1"

# Commands run during incidents: fail fast on a dead region instead of retrying for minutes.
_CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 3})


class OpsError(Exception):
    """A failure the operator can act on; printed as one message without a traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_ENVIRONMENT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Aws:
    """Hands out one boto3 client per (service, region), created on first use.

    `clients` presets clients for some (service, region) pairs, which is how tests put
    moto-backed or stubbed clients in front of the commands.
    """

    def __init__(
        self,
        session: boto3.session.Session | None = None,
        clients: Mapping[tuple[str, str], Any] | None = None,
    ) -> None:
        self._session = session or boto3.session.Session()
        self._clients: dict[tuple[str, str], Any] = dict(clients or {})
        self._lock = threading.Lock()  # sessions are not thread-safe; clients are

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._session.client(
                    service, region_name=region, config=_CLIENT_CONFIG
                )
            return self._clients[key]

    def endpoint_client(self, service: str, region: str, endpoint_url: str) -> Any:
        """A client for one given endpoint (the ARC cluster's data plane has five)."""
        key = (service, endpoint_url)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._session.client(
                    service, region_name=region, endpoint_url=endpoint_url, config=_CLIENT_CONFIG
                )
            return self._clients[key]

    def route53(self) -> Any:
        return self.client("route53", ROUTE53_API_REGION)

    def require_credentials(self) -> None:
        if self._session.get_credentials() is None:
            raise OpsError(
                "no AWS credentials found: set AWS_PROFILE (or the AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY pair) for the account that runs the stack"
            )
