"""A small fake world for the drill on AWS: moto for SSM, DynamoDB, SQS and CloudWatch, a fake
Route 53 whose health checks follow the SSM mode after a detection delay, a fake API that
answers from the region DNS points at, and the SDK's transport, which answers each regional
endpoint from its own region."""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from payments_dr import contract
from payments_dr.client import Failure, HttpReply, TransportError
from payments_dr.contract import IDEMPOTENCY_HEADER, REGION_HEADER, Mode, Param
from payments_dr.ops import aws_drill
from payments_dr.ops.aws import Aws
from payments_dr.ops.synthetic import HttpAnswer
from payments_dr.service.authorizer import bearer_token
from payments_dr.service.credentials import CredentialStore, parse_key

from .conftest import (
    ADDRESSES,
    DOMAIN_NAME,
    PRIMARY,
    SECONDARY,
    SESSION,
    STACK,
    Deployed,
    FakeClock,
    evaluate_switch_alarms,
    resolve,
)

TABLE = contract.table_name(STACK)

DETECTION_DELAY = 30.0  # fake Route 53: seconds a new mode takes to show in a health check


def mode_of(aws: Aws, region: str) -> str:
    # The fakes read AWS on every request: `Aws` reuses clients, which are slow to create.
    name = contract.ssm_parameter_name(STACK, region, Param.MODE)
    return str(aws.client("ssm", region).get_parameter(Name=name)["Parameter"]["Value"])


def fake_payment_id(merchant_id: str, idempotency_key: str) -> str:
    """The fake API's ids: the drill never computes ids (only the functions hold the id
    secret), it takes the answered ones."""
    return f"pay_{hashlib.sha256(f'{merchant_id}/{idempotency_key}'.encode()).hexdigest()[:32]}"


class FakeRoute53:
    """Health follows each region's mode, and each record its health and its switch alarm,
    once they have held for DETECTION_DELAY seconds."""

    def __init__(self, clock: FakeClock, aws: Aws) -> None:
        self.clock = clock
        self.aws = aws
        self.healthy = {PRIMARY: True, SECONDARY: True}
        self.pending: dict[str, tuple[bool, float]] = {}
        self.frozen = False  # True: health checks (and so DNS) never change

    def _update(self, region: str) -> bool:
        return self._follow(region, mode_of(self.aws, region) == Mode.ACTIVE)

    def _follow(self, key: str, wanted: bool) -> bool:
        if self.frozen:
            return self.healthy.get(key, True)
        if wanted == self.healthy.setdefault(key, True):
            self.pending.pop(key, None)
        else:
            _, since = self.pending.setdefault(key, (wanted, self.clock()))
            if self.clock() - since >= DETECTION_DELAY:
                self.healthy[key] = wanted
                del self.pending[key]
        return self.healthy[key]

    def _switch_serves(self, region: str) -> bool:
        evaluate_switch_alarms(self.aws)
        peer = SECONDARY if region == PRIMARY else PRIMARY
        (alarm,) = self.aws.client("cloudwatch", peer).describe_alarms(
            AlarmNames=[contract.switch_alarm_name(STACK, region)]
        )["MetricAlarms"]
        return self._follow(f"switch-{region}", alarm["StateValue"] != "ALARM")

    def get_health_check_status(self, HealthCheckId: str) -> dict[str, Any]:
        region = HealthCheckId.removeprefix("hc-")
        status = "Success: HTTP 200" if self._update(region) else "Failure: HTTP 503"
        return {"HealthCheckObservations": [{"StatusReport": {"Status": status}}] * 8}

    def serving(self) -> str:
        record_healthy = self._update(PRIMARY) and self._switch_serves(PRIMARY)
        return PRIMARY if record_healthy else SECONDARY

    def test_dns_answer(self, **_: Any) -> dict[str, Any]:
        return {"RecordData": ADDRESSES[self.serving()][:1]}


class FakeApi:
    """Answers like the service: 503 when fenced, else the write lands in that region's table
    and replicates to the other. Through the failover name it answers from the region DNS
    points at; the SDK's requests (`transport`) from the region their endpoint names."""

    def __init__(
        self,
        route53: FakeRoute53,
        drop_writes_in: str | None = None,
        refuse_keys_in: str | None = None,
        misname_payments_in: str | None = None,
        drop_sdk_writes_in: str | None = None,
        silent_when_fenced: bool = False,
        fenced_answer_seconds: float = 0.0,
    ) -> None:
        self.route53 = route53
        self.drop_writes_in = drop_writes_in
        self.refuse_keys_in = refuse_keys_in  # as if the key had not reached that region
        # Stores the payment under its id but answers another one, as a second write would.
        self.misname_payments_in = misname_payments_in
        self.drop_sdk_writes_in = drop_sdk_writes_in  # loses only the SDK's payments there
        self.silent_when_fenced = silent_when_fenced  # an outage: no answer at all
        # A fenced region that answers slowly (a read timeout for the SDK when long enough).
        self.fenced_answer_seconds = fenced_answer_seconds
        self.sdk_requests: dict[str, int] = {PRIMARY: 0, SECONDARY: 0}
        self.sdk_log: list[tuple[float, str]] = []  # (seconds since the drill began, region)
        self.transport = FakeTransport(self)

    def __call__(self, url: str, headers: dict[str, str], body: bytes) -> HttpAnswer:
        return self.answer(self.route53.serving(), headers, body, via_sdk=False)

    def fenced(self, region: str) -> bool:
        return mode_of(self.route53.aws, region) == Mode.FENCED

    def answer(
        self, region: str, headers: dict[str, str], body: bytes, via_sdk: bool
    ) -> HttpAnswer:
        if self.fenced(region):
            if self.silent_when_fenced:
                return HttpAnswer(0, {}, {})
            return HttpAnswer(503, {REGION_HEADER: region}, {"error": "region fenced"})
        # What the authorizer checks: a key whose record the drill stored before its traffic
        # (read from the primary's table: moto's tables do not replicate).
        key = parse_key(bearer_token(headers))
        store = CredentialStore(self.route53.aws.client("dynamodb", PRIMARY), TABLE)
        record = store.get(key.merchant_id)
        if record is None or not record.secret_matches(key) or region == self.refuse_keys_in:
            return HttpAnswer(403, {REGION_HEADER: region}, {"code": "forbidden"})
        fields = json.loads(body)
        assert "merchant_id" not in fields  # the merchant is the key's
        pay_id = fake_payment_id(key.merchant_id, headers[IDEMPOTENCY_HEADER])
        dropped = region == self.drop_writes_in or (via_sdk and region == self.drop_sdk_writes_in)
        if not dropped:
            for table_region in (PRIMARY, SECONDARY):
                self.route53.aws.client("dynamodb", table_region).put_item(
                    TableName=contract.table_name(STACK),
                    Item={contract.TABLE_HASH_KEY: {"S": pay_id}},
                )
        answered_id = f"{pay_id}-other" if region == self.misname_payments_in else pay_id
        payment = {
            "id": answered_id,
            "status": "accepted",
            "merchant_id": key.merchant_id,
            "amount": fields["amount"],
            "currency": fields["currency"],
            "region": region,
            "created_at": "2026-12-06T06:00:00.000Z",
        }
        return HttpAnswer(201, {REGION_HEADER: region}, payment)


class FakeTransport:
    """The SDK's HTTP: each regional endpoint of the test stack answered by `FakeApi`."""

    def __init__(self, api: FakeApi) -> None:
        self.api = api

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        connect_timeout: float,
        read_timeout: float,
    ) -> HttpReply:
        region = next(r for r in (PRIMARY, SECONDARY) if urlsplit(url).hostname == host_of(r))
        if self.api.fenced(region) and self.api.fenced_answer_seconds:
            self.api.route53.clock.sleep(min(self.api.fenced_answer_seconds, read_timeout))
            if self.api.fenced_answer_seconds >= read_timeout:
                raise TransportError(Failure.READ_TIMEOUT, "ReadTimeoutError")
        if method == "GET":  # the deep health check, which a fenced region fails
            healthy = not self.api.fenced(region)
            data = {"status": "ok" if healthy else "unhealthy", "region": region}
            return HttpReply(200 if healthy else 503, {}, json.dumps(data).encode())
        assert url.endswith(contract.PAYMENTS_PATH) and body is not None
        self.api.sdk_requests[region] += 1
        self.api.sdk_log.append((self.api.route53.clock(), region))
        answer = self.api.answer(region, dict(headers), body, via_sdk=True)
        if answer.status == 0:
            raise TransportError(Failure.CONNECT, "NewConnectionError")
        lowered = {name.lower(): value for name, value in answer.headers.items()}
        return HttpReply(answer.status, lowered, json.dumps(answer.body).encode())

    def close(self) -> None:
        pass


def host_of(region: str) -> str:
    return contract.regional_api_domain(DOMAIN_NAME, region)


def drill_args(deployed: Deployed, tmp_path: Path, **overrides: Any) -> argparse.Namespace:
    values: dict[str, Any] = {
        "stack": STACK,
        "outputs": deployed.outputs_file,
        "json": tmp_path / "drill.json",
        "timeline": None,
        "scenario": None,
        "rate": 1.0,
        "warmup": 10.0,
        "hold": 20.0,
        "settle": 10.0,
        "poll_interval": 5.0,
        "yes": True,  # confirmed, as a script without a terminal must
    }
    values.update(overrides)
    return argparse.Namespace(**values)


def run_drill(
    deployed: Deployed, clock: FakeClock, args: argparse.Namespace, api: FakeApi | None = None
) -> int:
    api = api or FakeApi(FakeRoute53(clock, deployed.aws))
    aws = Aws(SESSION, clients={("route53", "us-east-1"): api.route53})
    now = datetime.now(UTC)
    wall = iter([now - timedelta(minutes=5), now])
    return aws_drill.run(
        args, aws, api, resolve, clock, clock.sleep, wall.__next__, api.transport, seed=7
    )


def drill_with_fault(
    deployed: Deployed, clock: FakeClock, tmp_path: Path, **fault: str
) -> tuple[int, dict[str, Any]]:
    """Runs the drill against a FakeApi with `fault`; its exit code and JSON report."""
    args = drill_args(deployed, tmp_path)
    exit_code = run_drill(deployed, clock, args, FakeApi(FakeRoute53(clock, deployed.aws), **fault))
    return exit_code, json.loads(args.json.read_text())
