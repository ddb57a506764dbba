"""The cross-region canary: from one region, probe the other region's API end to end.

Runs in CloudWatch Synthetics (a `syn-python-selenium` runtime, Python 3.11) in the
*watching* region, so the page that says "the other region is failing" does not depend on
the failing region. One run:

1. `GET /v1/health` answers 200 with status ok;
2. `POST /v1/payments` as the dedicated test merchant (1 minor unit, a fresh idempotency
   key) answers 201 from the target region;
3. `GET /v1/payments/{id}` reads the same payment back.

Any other answer raises `ProbeFailed`: Synthetics records the run as failed and the watching
region's alarm on `SuccessPercent` pages. Besides the shared contract, only the standard
library and boto3 (provided by the runtime) are imported; the merchant key is read from
Secrets Manager at each run and never logged.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from payments_dr import contract

DIGITS_TO_LETTERS = str.maketrans("0123456789", "ghijklmnop")

TIMEOUT_SECONDS = 5.0
# One cent of a test currency per run, under the test merchant: easy to find and to exclude.
PROBE_AMOUNT = 1
PROBE_CURRENCY = "USD"
PROBE_TOKEN = "tok_drcanary0"


class ProbeFailed(Exception):
    """The target region failed one step; the message names the step and what came back."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: dict[str, Any]


# (request, timeout) -> Answer; tests pass one bound to a stub server.
Send = Callable[[urllib.request.Request, float], Answer]


def send(request: urllib.request.Request, timeout: float) -> Answer:
    """HTTPS with certificate checks (urllib's default context); 4xx/5xx are answers too."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return _answer(response.status, response.headers.items(), response.read())
    except urllib.error.HTTPError as error:
        return _answer(error.code, error.headers.items(), error.read())


def _answer(status: int, headers: Any, raw: bytes) -> Answer:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = {}
    return Answer(
        status,
        {name.lower(): value for name, value in headers},
        body if isinstance(body, dict) else {},
    )


@dataclass(frozen=True)
class ProbeResult:
    payment_id: str
    steps: tuple[str, ...]


def probe(
    base_url: str,
    target_region: str,
    api_key: str,
    *,
    transport: Send = send,
    idempotency_key: str | None = None,
    timeout: float = TIMEOUT_SECONDS,
) -> ProbeResult:
    """Run the three steps against `base_url` (the target's own https://api.<region>.<domain>)."""
    base = base_url.rstrip("/")
    steps: list[str] = []

    def call(step: str, method: str, path: str, **kwargs: Any) -> Answer:
        request = urllib.request.Request(f"{base}{path}", method=method, **kwargs)
        try:
            answer = transport(request, timeout)
        except (OSError, urllib.error.URLError) as error:  # refused, reset, timed out, DNS
            raise ProbeFailed(f"{step}: no answer from {target_region} ({error})") from error
        served_by = answer.headers.get(contract.REGION_HEADER.lower())
        if served_by is not None and served_by != target_region:
            raise ProbeFailed(f"{step}: answered by {served_by}, not {target_region}")
        steps.append(f"{step}: {answer.status}")
        return answer

    health = call("health", "GET", contract.HEALTH_PATH)
    if health.status != 200 or health.body.get("status") != "ok":
        reasons = ", ".join(map(str, health.body.get("reasons") or [])) or "no reason given"
        raise ProbeFailed(f"health: {health.status} ({reasons})")

    # Letters only: the service refuses a key holding a card-shaped digit run (13 or more
    # digits, separators ignored), which a timestamp beside random hex can make.
    key = idempotency_key or "canary-" + uuid.uuid4().hex.translate(DIGITS_TO_LETTERS)
    headers = {
        contract.AUTH_HEADER: f"{contract.AUTH_SCHEME} {api_key}",
        contract.IDEMPOTENCY_HEADER: key,
        "Content-Type": "application/json",
    }
    payload = {"amount": PROBE_AMOUNT, "currency": PROBE_CURRENCY, "payment_token": PROBE_TOKEN}
    created = call(
        "write", "POST", contract.PAYMENTS_PATH, data=json.dumps(payload).encode(), headers=headers
    )
    payment_id = created.body.get("id")
    if created.status != 201 or not isinstance(payment_id, str):
        raise ProbeFailed(f"write: {created.status} ({created.body.get('code', 'no code')})")

    read = call(
        "read",
        "GET",
        f"{contract.PAYMENTS_PATH}/{payment_id}",
        headers={contract.AUTH_HEADER: headers[contract.AUTH_HEADER]},
    )
    if read.status != 200 or read.body.get("id") != payment_id:
        raise ProbeFailed(f"read: {read.status} ({read.body.get('code', 'another payment')})")
    if read.body.get("amount") != PROBE_AMOUNT or read.body.get("currency") != PROBE_CURRENCY:
        raise ProbeFailed("read: the payment read back differs from the one written")
    return ProbeResult(payment_id=payment_id, steps=tuple(steps))


def read_api_key(secret_id: str, region: str | None = None) -> str:
    """The test merchant's key, from the watching region's secret (KMS-encrypted)."""
    import boto3  # provided by the Synthetics runtime; imported here to keep tests light

    client = boto3.client("secretsmanager", region_name=region)
    try:
        value = client.get_secret_value(SecretId=secret_id)["SecretString"]
    except client.exceptions.ResourceNotFoundException as error:
        raise ProbeFailed(
            f"no test merchant key in {secret_id}: run `payments-dr canary enrol`"
        ) from error
    return str(value).strip()


def handler(event: Any = None, context: Any = None) -> dict[str, Any]:
    """The Synthetics entry point (handler `canary.handler`)."""
    environ = os.environ
    target_region = environ[contract.ENV_CANARY_TARGET_REGION]
    api_key = read_api_key(environ[contract.ENV_CANARY_SECRET_ID], environ.get("AWS_REGION"))
    result = probe(environ[contract.ENV_CANARY_TARGET_URL], target_region, api_key)
    print(
        json.dumps({"target": target_region, "steps": result.steps, "payment": result.payment_id})
    )
    return {"target": target_region, "steps": list(result.steps)}
