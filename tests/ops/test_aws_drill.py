"""The drill on AWS against a small fake world: moto for SSM, DynamoDB, SQS and CloudWatch,
a fake Route 53 whose health checks follow the SSM mode after a detection delay, and a fake
API that answers from the region DNS points at."""

from __future__ import annotations

import argparse
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from payments_dr import contract
from payments_dr.contract import IDEMPOTENCY_HEADER, REGION_HEADER, Mode, Param
from payments_dr.ops import aws_drill
from payments_dr.ops.aws import (
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REFUSED,
    Aws,
)
from payments_dr.ops.synthetic import HttpAnswer, SyntheticTraffic
from payments_dr.service.authorizer import bearer_token
from payments_dr.service.credentials import CredentialStore, KeyStatus, issue_key, parse_key

from .conftest import (
    ADDRESSES,
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


def fake_payment_id(merchant_id: str, idempotency_key: str) -> str:
    """The fake API's ids: the drill never computes ids (only the functions hold the id
    secret), it takes the answered ones."""
    return f"pay_{hashlib.sha256(f'{merchant_id}/{idempotency_key}'.encode()).hexdigest()[:32]}"


def mode_of(aws: Aws, region: str) -> str:
    # The fakes read AWS on every request: `Aws` reuses clients, which are slow to create.
    name = contract.ssm_parameter_name(STACK, region, Param.MODE)
    return str(aws.client("ssm", region).get_parameter(Name=name)["Parameter"]["Value"])


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
    """Answers from the region DNS points at, like the service: 503 when fenced, else the
    write lands in that region's table and replicates to the other."""

    def __init__(
        self,
        route53: FakeRoute53,
        drop_writes_in: str | None = None,
        refuse_keys_in: str | None = None,
        misname_payments_in: str | None = None,
    ) -> None:
        self.route53 = route53
        self.drop_writes_in = drop_writes_in
        self.refuse_keys_in = refuse_keys_in  # as if the key had not reached that region
        # Stores the payment under its id but answers another one, as a second write would.
        self.misname_payments_in = misname_payments_in

    def __call__(self, url: str, headers: dict[str, str], body: bytes) -> HttpAnswer:
        region = self.route53.serving()
        if mode_of(self.route53.aws, region) == Mode.FENCED:
            return HttpAnswer(503, {REGION_HEADER: region}, {"error": "region fenced"})
        # What the authorizer checks: a key whose record the drill stored before its traffic
        # (read from the primary's table: moto's tables do not replicate).
        key = parse_key(bearer_token(headers))
        store = CredentialStore(self.route53.aws.client("dynamodb", PRIMARY), TABLE)
        record = store.get(key.merchant_id)
        if record is None or not record.secret_matches(key) or region == self.refuse_keys_in:
            return HttpAnswer(403, {REGION_HEADER: region}, {"code": "forbidden"})
        assert "merchant_id" not in json.loads(body)  # the merchant is the key's
        pay_id = fake_payment_id(key.merchant_id, headers[IDEMPOTENCY_HEADER])
        if region != self.drop_writes_in:
            for table_region in (PRIMARY, SECONDARY):
                self.route53.aws.client("dynamodb", table_region).put_item(
                    TableName=contract.table_name(STACK),
                    Item={contract.TABLE_HASH_KEY: {"S": pay_id}},
                )
        answered_id = f"{pay_id}-other" if region == self.misname_payments_in else pay_id
        return HttpAnswer(201, {REGION_HEADER: region}, {"id": answered_id, "status": "accepted"})


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
    route53 = api.route53 if api else FakeRoute53(clock, deployed.aws)
    aws = Aws(SESSION, clients={("route53", "us-east-1"): route53})
    now = datetime.now(UTC)
    wall = iter([now - timedelta(minutes=5), now])
    return aws_drill.run(
        args, aws, api or FakeApi(route53), resolve, clock, clock.sleep, wall.__next__
    )


def test_drill_fails_over_and_back_without_losing_payments(
    deployed: Deployed, clock: FakeClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.replication_latency(PRIMARY, SECONDARY, 400.0)
    deployed.replication_latency(SECONDARY, PRIMARY, 900.0)
    args = drill_args(deployed, tmp_path)

    exit_code = run_drill(deployed, clock, args)

    report = json.loads(args.json.read_text())
    assert exit_code == EXIT_OK, capsys.readouterr()
    assert report["passed"] is True
    assert report["simulated"] is False
    assert report["environment"] == f"AWS stack {STACK}"
    assert report["scenario"] == "fenced"
    # The switch reads back within two polls (once CloudWatch evaluated it); the record turns after
    # 30 s, and the drill polls every 5 s.
    assert report["detection_seconds"] <= 10.0
    assert DETECTION_DELAY <= report["failover_seconds"] <= DETECTION_DELAY + 5.0
    # Flipped back within the minute of the failover, the switch alarm's minute still holds
    # the 1: the command sends the 0 again a period later (docs/runbooks/failback.md).
    assert (
        DETECTION_DELAY
        <= report["failback_seconds"]
        <= DETECTION_DELAY + contract.SWITCH_PERIOD_SECONDS + 5.0
    )
    assert report["payments_acknowledged"] > 50
    assert report["payments_lost"] == 0
    assert report["regions_consistent_after_failback"] is True
    answered = [sample["region"] for sample in report["samples"] if sample["region"]]
    assert report["requests_by_region"] == {
        region: answered.count(region) for region in (PRIMARY, SECONDARY)
    }
    assert min(report["requests_by_region"].values()) > 0
    assert report["replication_lag_max_ms"] == 900.0
    assert report["replication_lag_p50_ms"] == 650.0
    assert report["dlq_messages"] == {PRIMARY: 0, SECONDARY: 0}
    events = [event["kind"] for event in report["timeline"] if event["kind"] != "note"]
    assert events == ["fault", "detected", "failover", "failback"]
    assert deployed.mode(PRIMARY) == Mode.ACTIVE
    assert "result: PASSED" in capsys.readouterr().out
    # The drill's own merchant key is revoked once the drill is over.
    (record,) = CredentialStore(deployed.aws.client("dynamodb", PRIMARY), TABLE).list()
    assert record.merchant_id.startswith("drill-") and record.status is KeyStatus.REVOKED


def drill_with_fault(
    deployed: Deployed, clock: FakeClock, tmp_path: Path, **fault: str
) -> tuple[int, dict[str, Any]]:
    """Runs the drill against a FakeApi with `fault`; its exit code and JSON report."""
    args = drill_args(deployed, tmp_path)
    exit_code = run_drill(deployed, clock, args, FakeApi(FakeRoute53(clock, deployed.aws), **fault))
    return exit_code, json.loads(args.json.read_text())


def test_a_lost_payment_fails_the_drill(
    deployed: Deployed, clock: FakeClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code, report = drill_with_fault(deployed, clock, tmp_path, drop_writes_in=SECONDARY)

    assert exit_code == EXIT_FAILED
    assert report["payments_lost"] == report["requests_by_region"][SECONDARY] > 0
    assert report["regions_consistent_after_failback"] is False
    assert "result: FAILED" in capsys.readouterr().out


def test_well_formed_payments_refused_in_one_region_fail_the_drill(
    deployed: Deployed, clock: FakeClock, tmp_path: Path
) -> None:
    exit_code, report = drill_with_fault(deployed, clock, tmp_path, refuse_keys_in=SECONDARY)

    assert exit_code == EXIT_FAILED
    # Nothing acknowledged was lost: the refusals are what fails the drill.
    assert report["payments_lost"] == 0
    assert report["payments_rejected"] == report["requests_by_region"][SECONDARY] > 0
    assert (
        f"{report['payments_rejected']} well-formed payments were rejected (4xx)"
        in (report["failed_checks"])
    )


def test_payments_answered_under_an_unexpected_id_fail_the_drill(
    deployed: Deployed, clock: FakeClock, tmp_path: Path
) -> None:
    exit_code, report = drill_with_fault(deployed, clock, tmp_path, misname_payments_in=SECONDARY)

    assert exit_code == EXIT_FAILED
    # Every payment is stored under its own id: the unexpected answers alone fail the drill.
    assert report["payments_lost"] == 0 and report["regions_consistent_after_failback"] is True
    misnamed = report["payments_duplicated"]
    assert misnamed == len(report["duplicate_details"]) == report["requests_by_region"][SECONDARY]
    assert misnamed > 0
    assert f"{misnamed} payments were answered under an unexpected id" in report["failed_checks"]


def test_drill_refuses_to_start_from_a_degraded_stack(
    deployed: Deployed, clock: FakeClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.set_mode(SECONDARY, Mode.FENCED)
    route53 = FakeRoute53(clock, deployed.aws)
    route53.healthy[SECONDARY] = False

    exit_code = run_drill(deployed, clock, drill_args(deployed, tmp_path), FakeApi(route53))

    assert exit_code == EXIT_REFUSED
    err = capsys.readouterr().err
    assert "a drill starts from normal operation" in err
    assert f"target {SECONDARY} is unhealthy: Route 53 health check UNHEALTHY 0/8" in err
    assert deployed.mode(PRIMARY) == Mode.ACTIVE
    # Refused before its first write: no merchant key was issued.
    assert CredentialStore(deployed.aws.client("dynamodb", PRIMARY), TABLE).list() == []


def test_a_dry_run_checks_the_starting_point_and_lists_the_writes_without_making_them(
    deployed: Deployed, clock: FakeClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = drill_args(deployed, tmp_path, dry_run=True)
    api = FakeApi(FakeRoute53(clock, deployed.aws))

    assert run_drill(deployed, clock, args, api) == EXIT_OK

    out = capsys.readouterr().out
    assert out.startswith(f"dry run of the drill on stack {STACK}: nothing was written")
    mode_parameter = contract.ssm_parameter_name(STACK, PRIMARY, Param.MODE)
    assert f"put {mode_parameter} = fenced in {PRIMARY}" in out
    assert f"put {mode_parameter} = active in {PRIMARY}" in out
    assert "issue a merchant key drill-<random>" in out
    assert clock() == 0.0  # no payment sent, no wait
    assert CredentialStore(deployed.aws.client("dynamodb", PRIMARY), TABLE).list() == []
    assert deployed.mode(PRIMARY) == Mode.ACTIVE
    assert not Path(args.json).exists()


def test_a_drill_whose_table_does_not_answer_could_not_start(
    deployed: Deployed, clock: FakeClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for region in (PRIMARY, SECONDARY):
        deployed.aws.client("dynamodb", region).delete_table(TableName=TABLE)

    assert run_drill(deployed, clock, drill_args(deployed, tmp_path)) == EXIT_ENVIRONMENT

    err = capsys.readouterr().err
    last = err.splitlines()[-1]
    assert last.startswith("error: could not issue the drill's merchant key: no region's table")
    assert last.endswith("the stack was not changed") and "Traceback" not in err
    assert deployed.mode(PRIMARY) == Mode.ACTIVE


def test_a_dry_run_from_a_degraded_stack_is_refused_like_the_drill(
    deployed: Deployed, clock: FakeClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    route53 = FakeRoute53(clock, deployed.aws)
    route53.healthy[SECONDARY] = False
    args = drill_args(deployed, tmp_path, dry_run=True)

    assert run_drill(deployed, clock, args, FakeApi(route53)) == EXIT_REFUSED
    assert f"{SECONDARY} is unhealthy" in capsys.readouterr().err


def test_an_interrupted_drill_sets_the_primary_active_again(
    deployed: Deployed, clock: FakeClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    route53 = FakeRoute53(clock, deployed.aws)

    class BreaksWhenFencedApi(FakeApi):
        def __call__(self, url: str, headers: dict[str, str], body: bytes) -> HttpAnswer:
            if deployed.mode(PRIMARY) == Mode.FENCED:
                raise KeyboardInterrupt
            return super().__call__(url, headers, body)

    args = drill_args(deployed, tmp_path)
    exit_code = run_drill(deployed, clock, args, BreaksWhenFencedApi(route53))

    assert exit_code == EXIT_INTERRUPTED
    assert deployed.mode(PRIMARY) == Mode.ACTIVE
    (record,) = CredentialStore(deployed.aws.client("dynamodb", PRIMARY), TABLE).list()
    assert record.status is KeyStatus.REVOKED
    err = capsys.readouterr().err
    assert f"drill interrupted: {PRIMARY} is set active again" in err
    assert "Traceback" not in err
    assert not Path(args.json).exists()


def test_lab_only_scenarios_are_refused_on_aws(
    deployed: Deployed, clock: FakeClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = drill_args(deployed, tmp_path, scenario="region-outage")

    assert run_drill(deployed, clock, args) == EXIT_ENVIRONMENT
    assert "run scenario 'region-outage' in the lab" in capsys.readouterr().err


def test_synthetic_payments_retry_with_the_same_key(clock: FakeClock) -> None:
    answers = iter([HttpAnswer(0, {}, {}), HttpAnswer(503, {}, {})])
    sent: list[dict[str, str]] = []

    def send(url: str, headers: dict[str, str], body: bytes) -> HttpAnswer:
        sent.append(headers)
        merchant = parse_key(bearer_token(headers)).merchant_id
        fallback = HttpAnswer(
            201,
            {REGION_HEADER: SECONDARY},
            {"id": fake_payment_id(merchant, headers[IDEMPOTENCY_HEADER])},
        )
        return next(answers, fallback)

    issued = issue_key("drill-merchant", 0.0)
    traffic = SyntheticTraffic(
        "https://api/v1/payments",
        "drill-merchant",
        issued.api_key,
        send,
        clock,
        clock.sleep,
        1.0,
        clock(),
    )
    traffic.run_for(1.0)

    assert len(sent) == 3
    assert len({headers[IDEMPOTENCY_HEADER] for headers in sent}) == 1
    assert [sample.status for sample in traffic.samples] == [0, 503, 201]
    assert len(traffic.acknowledged) == 1
    assert traffic.failed == 0
    assert traffic.duplicates == []


def test_synthetic_payments_flag_an_id_answered_twice_or_malformed(clock: FakeClock) -> None:
    """The drill cannot compute ids (only the functions hold the id secret): it checks the
    answered ones."""
    answered = iter(["pay_" + "a" * 32, "pay_" + "a" * 32, "not-an-id", "pay_" + "b" * 32])

    def send(url: str, headers: dict[str, str], body: bytes) -> HttpAnswer:
        return HttpAnswer(201, {REGION_HEADER: PRIMARY}, {"id": next(answered)})

    issued = issue_key("drill-merchant", 0.0)
    traffic = SyntheticTraffic(
        "https://api/v1/payments",
        "drill-merchant",
        issued.api_key,
        send,
        clock,
        clock.sleep,
        1.0,
        clock(),
    )
    traffic.run_for(4.0)

    assert traffic.sent == 4
    assert sorted(set(traffic.acknowledged.values())) == ["pay_" + "a" * 32, "pay_" + "b" * 32]
    assert len(traffic.duplicates) == 2
    assert "were both answered id pay_" in traffic.duplicates[0]
    assert "'not-an-id', not a payment id" in traffic.duplicates[1]


def test_a_failover_that_never_settles_fails_the_drill(
    deployed: Deployed, clock: FakeClock, tmp_path: Path
) -> None:
    route53 = FakeRoute53(clock, deployed.aws)
    route53.frozen = True
    args = drill_args(deployed, tmp_path, timeout=60.0)

    exit_code = run_drill(deployed, clock, args, FakeApi(route53))

    report = json.loads(args.json.read_text())
    assert exit_code == EXIT_FAILED
    assert report["failed_checks"][0].startswith(
        f"failover: the switch and DNS did not agree on {SECONDARY} within"
    )
    assert f"failover: no payment was served by {SECONDARY} afterwards" in report["failed_checks"]
    assert deployed.mode(PRIMARY) == Mode.ACTIVE


def test_the_drill_command_line_of_the_lab_drives_the_aws_drill(
    deployed: Deployed, clock: FakeClock, tmp_path: Path
) -> None:
    from payments_dr.cli import build_parser

    timeline = tmp_path / "timeline.png"
    args = build_parser().parse_args(
        [
            *("drill", "--on-aws", "--stack", STACK, "--scenario", "fenced", "--rate", "0.5"),
            *("--json", str(tmp_path / "drill.json"), "--timeline", str(timeline), "--yes"),
        ]
    )
    # The lab's parser has no --outputs; a test has no Pulumi CLI, so the file comes in here.
    args.outputs = deployed.outputs_file

    assert run_drill(deployed, clock, args) == EXIT_OK
    assert timeline.read_bytes().startswith(b"\x89PNG")
    assert json.loads(args.json.read_text())["payments_acknowledged"] > 0


def test_present_ids_reads_in_batches_of_100(deployed: Deployed) -> None:
    table = contract.table_name(STACK)
    stored = {f"pay_{index:032x}" for index in range(120)}
    dynamodb = deployed.aws.client("dynamodb", SECONDARY)
    for pay_id in stored:
        dynamodb.put_item(TableName=table, Item={contract.TABLE_HASH_KEY: {"S": pay_id}})
    missing = {f"pay_{index:032x}" for index in range(120, 150)}

    found = aws_drill.present_ids(deployed.aws, table, SECONDARY, stored | missing)

    assert found == stored


def test_present_ids_asks_again_for_unprocessed_keys() -> None:
    client = SESSION.client("dynamodb", region_name=PRIMARY)
    table = contract.table_name(STACK)
    keys = [{contract.TABLE_HASH_KEY: {"S": pay_id}} for pay_id in ("pay_a", "pay_b")]
    projection = {"ProjectionExpression": "#key", "ExpressionAttributeNames": {"#key": "pk"}}
    with Stubber(client) as stubber:
        stubber.add_response(
            "batch_get_item",
            {
                "Responses": {table: [keys[0]]},
                "UnprocessedKeys": {table: {"Keys": [keys[1]], **projection}},
            },
            {"RequestItems": {table: {"Keys": keys, **projection}}},
        )
        stubber.add_response(
            "batch_get_item",
            {"Responses": {table: [keys[1]]}, "UnprocessedKeys": {}},
            {"RequestItems": {table: {"Keys": [keys[1]], **projection}}},
        )

        found = aws_drill.present_ids(
            Aws(SESSION, clients={("dynamodb", PRIMARY): client}),
            table,
            PRIMARY,
            {"pay_a", "pay_b"},
        )

    assert found == {"pay_a", "pay_b"}


def test_without_a_terminal_or_yes_the_drill_changes_nothing(
    deployed: Deployed, clock: FakeClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = drill_args(deployed, tmp_path, yes=False)

    assert run_drill(deployed, clock, args) == EXIT_ENVIRONMENT

    assert "there is no terminal to confirm on; pass --yes" in capsys.readouterr().err
    assert CredentialStore(deployed.aws.client("dynamodb", PRIMARY), TABLE).list() == []
    assert deployed.mode(PRIMARY) == Mode.ACTIVE
