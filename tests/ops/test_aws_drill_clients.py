"""The drill on AWS with merchant-SDK clients beside the clients of the failover name
(`--client dns|sdk|both`): per-kind counts and client-perceived RTO through an outage of
us-east-1, and the SDK's rule failing the drill."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from payments_dr import contract
from payments_dr.ops.aws import EXIT_FAILED, EXIT_OK

from .conftest import (
    API_DOMAIN,
    PRIMARY,
    SECONDARY,
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
    host_of,
    run_drill,
)


def test_sdk_and_dns_clients_meet_an_outage_of_the_primary_side_by_side(
    deployed: Deployed, clock: FakeClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # us-east-1 stops answering at all once fenced: an outage, as the SDK's clients see it.
    api = FakeApi(FakeRoute53(clock, deployed.aws), silent_when_fenced=True)
    args = drill_args(deployed, tmp_path, client="both", clients=3)

    exit_code = run_drill(deployed, clock, args, api)

    report = json.loads(args.json.read_text())
    assert exit_code == EXIT_OK, report["failed_checks"]
    dns, sdk = report["categories"]["steady"], report["categories"]["sdk"]
    for tally in (dns, sdk):
        assert tally["acknowledged"] > 20
        assert tally["lost"] == tally["duplicated"] == tally["rejected"] == 0
    # The clients of the failover name lose payments to the outage until DNS moves; the SDK
    # moves by itself within the payment.
    assert dns["unanswered"] > 0 and sdk["unanswered"] == 0
    assert report["payments_acknowledged"] == dns["acknowledged"] + sdk["acknowledged"]
    assert report["payments_lost"] == 0 and report["regions_consistent_after_failback"] is True
    # Both tables hold every payment each kind was told about: its own keys, none shared.
    items = deployed.aws.client("dynamodb", SECONDARY).scan(TableName=TABLE)["Items"]
    stored = {item[contract.TABLE_HASH_KEY]["S"] for item in items}
    assert (
        len([pay_id for pay_id in stored if pay_id.startswith("pay_")])
        >= (report["payments_acknowledged"])
    )
    rto = report["client_rto_seconds"]
    assert rto["dns"]["clients"] == rto["dns"]["recovered"] == 3
    assert rto["sdk"]["clients"] == rto["sdk"]["recovered"] == 3
    # DNS: the record turns after DETECTION_DELAY; the SDK: its next payment, two failed
    # attempts and the jitter, within its target.
    assert rto["dns"]["p50_seconds"] >= DETECTION_DELAY
    assert rto["sdk"]["max_seconds"] <= report["sdk_rto_target_seconds"] == 10.0
    assert rto["sdk"]["p50_seconds"] <= rto["sdk"]["p99_seconds"] <= rto["sdk"]["max_seconds"]
    # Failover is timed on the clients of the failover name, as in the lab.
    assert report["failover_seconds"] >= DETECTION_DELAY
    # The SDK left us-east-1 at the fault and went back after the failback (health probe).
    fault_at = next(e["at_seconds"] for e in report["timeline"] if e["kind"] == "fault")
    active_at = next(
        e["at_seconds"] for e in report["timeline"] if e["detail"].endswith("active again")
    )
    during = {region for at, region in api.sdk_log if fault_at + 5.0 < at < active_at}
    assert during == {SECONDARY}
    assert api.sdk_log[-1][1] == PRIMARY
    out = capsys.readouterr().out
    assert "client-perceived RTO, dns clients: p50 " in out
    assert "client-perceived RTO, sdk clients: p50 " in out
    assert "(3 of 3 clients served again); target p99 10 s met" in out
    assert "result: PASSED" in out


def test_a_drill_of_the_failover_name_alone_sends_nothing_through_the_sdk(
    deployed: Deployed, clock: FakeClock, tmp_path: Path
) -> None:
    api = FakeApi(FakeRoute53(clock, deployed.aws))
    args = drill_args(deployed, tmp_path, client="dns")

    assert run_drill(deployed, clock, args, api) == EXIT_OK

    report = json.loads(args.json.read_text())
    assert api.sdk_requests == {PRIMARY: 0, SECONDARY: 0}
    assert set(report["categories"]) == {"steady"}
    assert set(report["client_rto_seconds"]) == {"dns"}
    assert report["sdk_rto_target_seconds"] is None


def test_sdk_clients_alone_time_the_failover_themselves(
    deployed: Deployed, clock: FakeClock, tmp_path: Path
) -> None:
    args = drill_args(deployed, tmp_path, client="sdk", clients=2)

    assert run_drill(deployed, clock, args) == EXIT_OK

    report = json.loads(args.json.read_text())
    assert set(report["categories"]) == {"sdk"}
    # The SDK reaches us-east-2 within its payment, long before DNS would.
    assert report["failover_seconds"] < report["sdk_rto_target_seconds"]
    assert report["client_rto_seconds"]["sdk"]["recovered"] == 2


def test_an_sdk_client_that_loses_more_than_the_dns_clients_fails_the_drill(
    deployed: Deployed, clock: FakeClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api = FakeApi(FakeRoute53(clock, deployed.aws), drop_sdk_writes_in=SECONDARY)
    args = drill_args(deployed, tmp_path)

    assert run_drill(deployed, clock, args, api) == EXIT_FAILED

    report = json.loads(args.json.read_text())
    lost = report["categories"]["sdk"]["lost"]
    assert lost > 0 and report["categories"]["steady"]["lost"] == 0
    assert report["payments_lost"] == lost
    assert (
        f"the SDK clients lost {lost} payments, the DNS clients 0: the SDK must never have more"
        in report["failed_checks"]
    )
    assert "result: FAILED" in capsys.readouterr().out


def test_an_sdk_client_over_its_rto_target_fails_the_drill(
    deployed: Deployed, clock: FakeClock, tmp_path: Path
) -> None:
    # The fenced primary accepts connections but never answers: every SDK attempt there
    # waits out its 5 s read timeout, and two of them open the breaker.
    api = FakeApi(FakeRoute53(clock, deployed.aws), fenced_answer_seconds=60.0)
    args = drill_args(deployed, tmp_path)

    assert run_drill(deployed, clock, args, api) == EXIT_FAILED

    report = json.loads(args.json.read_text())
    rto = report["client_rto_seconds"]["sdk"]
    assert rto["recovered"] == rto["clients"] == 4
    assert rto["p99_seconds"] > 10.0
    assert report["payments_lost"] == 0
    assert report["failed_checks"] == [
        f"the SDK clients' client-perceived RTO p99 {rto['p99_seconds']:g} s is over its"
        " target of 10 s"
    ]


def test_a_dry_run_lists_the_sdk_traffic_beside_the_failover_names(
    deployed: Deployed, clock: FakeClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = drill_args(deployed, tmp_path, dry_run=True, clients=2)

    assert run_drill(deployed, clock, args) == EXIT_OK

    out = capsys.readouterr().out
    assert f"dns: 2 clients through the failover name https://{API_DOMAIN}, a payment" in out
    assert (
        "sdk: 2 clients through the merchant SDK (PaymentsClient) to"
        f" {PRIMARY} https://{host_of(PRIMARY)}, {SECONDARY} https://{host_of(SECONDARY)}"
        f" ({PRIMARY} preferred; it fails over by itself), a payment every 2 s each (1/s together)"
    ) in out
    assert clock() == 0.0


def test_the_drill_command_line_runs_sdk_clients_on_aws(
    deployed: Deployed, clock: FakeClock, tmp_path: Path
) -> None:
    from payments_dr.cli import build_parser

    args = build_parser().parse_args(
        [
            *("drill", "--on-aws", "--stack", STACK, "--client", "sdk", "--clients", "2"),
            *("--rate", "0.5", "--json", str(tmp_path / "drill.json"), "--yes"),
        ]
    )
    args.outputs = deployed.outputs_file

    assert run_drill(deployed, clock, args) == EXIT_OK
    report = json.loads(args.json.read_text())
    assert set(report["client_rto_seconds"]) == {"sdk"}
    assert report["categories"]["sdk"]["acknowledged"] > 0
