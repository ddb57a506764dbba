"""The cross-region canary against a stub HTTP server: every step, every way it fails, its
entry point with the key in (moto's) Secrets Manager, and the zip Synthetics runs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from moto import mock_aws

from payments_dr import contract
from payments_dr.service import canary
from payments_dr.service.canary import ProbeFailed, probe
from payments_dr.service.model import contains_card_number

TARGET = "us-east-1"
WATCHER = "us-east-2"
KEY = "pdr.dr-canary.k1.secret-value"


@dataclass
class Scripted:
    """What the stub answers, and what it was asked."""

    health: tuple[int, dict[str, Any]] = (200, {"status": "ok", "reasons": []})
    write_status: int = 201
    read_amount: int = canary.PROBE_AMOUNT
    served_by: str = TARGET
    requests: list[dict[str, Any]] = field(default_factory=list)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)


def stub_handler(script: Scripted) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def answer(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header(contract.REGION_HEADER, script.served_by)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def record(self, body: bytes = b"") -> None:
            script.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": body,
                }
            )

        def do_GET(self) -> None:
            self.record()
            if self.path == contract.HEALTH_PATH:
                self.answer(*script.health)
                return
            payment_id = self.path.rsplit("/", 1)[-1]
            stored = script.payments.get(payment_id)
            if stored is None:
                self.answer(404, {"code": "not_found", "message": "no such payment"})
                return
            self.answer(200, {**stored, "amount": script.read_amount})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            self.record(body)
            if script.write_status != 201:
                self.answer(script.write_status, {"code": "unavailable", "message": "fenced"})
                return
            payment = {"id": "pay_abc123", **json.loads(body), "status": "succeeded"}
            script.payments[payment["id"]] = payment
            self.answer(201, payment)

    return Handler


@pytest.fixture
def stub() -> Iterator[tuple[str, Scripted]]:
    script = Scripted()
    server = ThreadingHTTPServer(("127.0.0.1", 0), stub_handler(script))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_healthy_region_passes_all_three_steps(stub: tuple[str, Scripted]) -> None:
    url, script = stub
    result = probe(url, TARGET, KEY, idempotency_key="canary-1")
    assert result.steps == ("health: 200", "write: 201", "read: 200")
    assert result.payment_id == "pay_abc123"
    health, write, read = script.requests
    assert (health["method"], health["path"]) == ("GET", contract.HEALTH_PATH)
    assert contract.AUTH_HEADER not in health["headers"]  # the health route is open
    assert (write["method"], write["path"]) == ("POST", contract.PAYMENTS_PATH)
    assert write["headers"][contract.AUTH_HEADER] == f"Bearer {KEY}"
    assert write["headers"][contract.IDEMPOTENCY_HEADER] == "canary-1"
    assert json.loads(write["body"]) == {
        "amount": canary.PROBE_AMOUNT,
        "currency": canary.PROBE_CURRENCY,
        "payment_token": canary.PROBE_TOKEN,
    }
    assert read["path"] == f"{contract.PAYMENTS_PATH}/pay_abc123"
    assert read["headers"][contract.AUTH_HEADER] == f"Bearer {KEY}"


def test_every_run_uses_a_new_idempotency_key(stub: tuple[str, Scripted]) -> None:
    url, script = stub
    probe(url, TARGET, KEY)
    probe(url, TARGET, KEY)
    keys = [
        r["headers"][contract.IDEMPOTENCY_HEADER] for r in script.requests if r["method"] == "POST"
    ]
    assert len(set(keys)) == 2
    # The service refuses a key with a card-shaped digit run: a generated key never has one.
    assert not any(contains_card_number(key) or any(c.isdigit() for c in key) for key in keys)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"health": (503, {"status": "unhealthy", "reasons": ["fenced"]})}, "health: 503 (fenced)"),
        ({"health": (200, {"status": "degraded"})}, "health: 200"),
        ({"write_status": 503}, "write: 503 (unavailable)"),
        ({"read_amount": 2}, "read: the payment read back differs"),
        ({"served_by": WATCHER}, f"health: answered by {WATCHER}, not {TARGET}"),
    ],
)
def test_a_failing_step_fails_the_run_naming_it(
    stub: tuple[str, Scripted], change: dict[str, Any], message: str
) -> None:
    url, script = stub
    for name, value in change.items():
        setattr(script, name, value)
    with pytest.raises(ProbeFailed, match=message.replace("(", r"\(").replace(")", r"\)")):
        probe(url, TARGET, KEY)


def test_no_answer_fails_the_run_without_hanging() -> None:
    # A port nothing listens on: connection refused, reported as the health step's failure.
    with pytest.raises(ProbeFailed, match=f"health: no answer from {TARGET}"):
        probe("http://127.0.0.1:9", TARGET, KEY, timeout=1)


def test_the_key_never_appears_in_a_failure(stub: tuple[str, Scripted]) -> None:
    url, script = stub
    script.write_status = 401
    with pytest.raises(ProbeFailed) as failed:
        probe(url, TARGET, KEY)
    assert KEY not in str(failed.value)


def test_the_entry_point_reads_the_key_from_secrets_manager(
    stub: tuple[str, Scripted], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url, script = stub
    with mock_aws():
        secret = boto3.client("secretsmanager", region_name=WATCHER).create_secret(
            Name=contract.canary_secret_name("test", TARGET), SecretString=KEY
        )
        monkeypatch.setenv("AWS_REGION", WATCHER)
        monkeypatch.setenv(contract.ENV_CANARY_TARGET_URL, url)
        monkeypatch.setenv(contract.ENV_CANARY_TARGET_REGION, TARGET)
        monkeypatch.setenv(contract.ENV_CANARY_SECRET_ID, secret["ARN"])
        result = canary.handler({}, None)
    assert result == {"target": TARGET, "steps": ["health: 200", "write: 201", "read: 200"]}
    assert script.requests[1]["headers"][contract.AUTH_HEADER] == f"Bearer {KEY}"
    assert KEY not in capsys.readouterr().out  # the run's log names steps, not the key


def test_an_empty_secret_store_names_the_command_that_fills_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with mock_aws(), pytest.raises(ProbeFailed, match="run `payments-dr canary enrol`"):
        canary.read_api_key("payments-dr/test/canary-key/us-east-1", WATCHER)
