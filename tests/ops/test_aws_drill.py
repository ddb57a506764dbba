"""The drill on AWS against the fake world of drill_fakes: the failover and failback, the
checks that fail it, and its clients of the failover name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.stub import Stubber

from payments_dr import contract
from payments_dr.contract import IDEMPOTENCY_HEADER, REGION_HEADER, Mode, Param
from payments_dr.lab.client_payments import ClientKind
from payments_dr.ops.aws import (
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REFUSED,
    Aws,
)
from payments_dr.ops.drill_accounting import present_ids
from payments_dr.ops.drill_traffic import drill_traffic
from payments_dr.ops.synthetic import HttpAnswer
from payments_dr.service.authorizer import bearer_token
from payments_dr.service.credentials import CredentialStore, KeyStatus, issue_key, parse_key

from .conftest import (
    PRIMARY,
    SECONDARY,
    SESSION,
    STACK,
    Deployed,
    FakeClock,
)
from .drill_fakes import (
    DETECTION_DELAY,
    TABLE,
    FakeApi,
    FakeRoute53,
    drill_args,
    drill_with_fault,
    fake_payment_id,
    run_drill,
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
    traffic = drill_traffic(
        failover_url="https://api",
        endpoints={},
        merchant_id="drill-merchant",
        api_key=issued.api_key,
        client_kind=ClientKind.DNS,
        clients=1,
        rate_per_second=0.1,  # the next payment only after 10 s
        send=send,
        transport=None,
        clock=clock,
        sleep=clock.sleep,
    )
    traffic.run_for(5.0)
    traffic.close()

    assert len(sent) == 3
    assert len({headers[IDEMPOTENCY_HEADER] for headers in sent}) == 1
    (tally,) = traffic.tallies()
    assert [sample.at_seconds for sample in tally.samples] == [0.0, 1.0, 2.0]
    assert [sample.status for sample in tally.samples] == [0, 503, 201]
    assert len(tally.acknowledged) == 1
    assert tally.failed == 0
    assert tally.duplicates == []


def test_synthetic_payments_flag_an_id_answered_twice_or_malformed(clock: FakeClock) -> None:
    """The drill cannot compute ids (only the functions hold the id secret): it checks the
    answered ones."""
    answered = iter(["pay_" + "a" * 32, "pay_" + "a" * 32, "not-an-id", "pay_" + "b" * 32])

    def send(url: str, headers: dict[str, str], body: bytes) -> HttpAnswer:
        return HttpAnswer(201, {REGION_HEADER: PRIMARY}, {"id": next(answered)})

    issued = issue_key("drill-merchant", 0.0)
    traffic = drill_traffic(
        failover_url="https://api",
        endpoints={},
        merchant_id="drill-merchant",
        api_key=issued.api_key,
        client_kind=ClientKind.DNS,
        clients=1,
        rate_per_second=1.0,
        send=send,
        transport=None,
        clock=clock,
        sleep=clock.sleep,
    )
    traffic.run_for(3.5)
    traffic.close()

    (tally,) = traffic.tallies()
    assert tally.sent == 4
    assert sorted(set(tally.acknowledged.values())) == ["pay_" + "a" * 32, "pay_" + "b" * 32]
    assert len(tally.duplicates) == 2
    assert "were both answered id pay_" in tally.duplicates[0]
    assert "'not-an-id', not a payment id" in tally.duplicates[1]


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

    found = present_ids(deployed.aws, table, SECONDARY, stored | missing)

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

        found = present_ids(
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

    assert "there is no terminal to confirm on: pass --yes" in capsys.readouterr().err
    assert CredentialStore(deployed.aws.client("dynamodb", PRIMARY), TABLE).list() == []
    assert deployed.mode(PRIMARY) == Mode.ACTIVE
