"""`payments-dr status` against the moto stack with scripted Route 53 answers."""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path

import pytest
from botocore.exceptions import EndpointConnectionError

from payments_dr import contract
from payments_dr.contract import Mode, Param, StackOutput
from payments_dr.ops import commands
from payments_dr.ops.aws import EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_OK
from payments_dr.ops.outputs import parse_outputs
from payments_dr.ops.status import collect_status
from payments_dr.service.conflicts import Conflict, ConflictStore

from .conftest import PRIMARY, SECONDARY, STACK, Deployed, alarm_name, put_alarm, resolve


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def status_args(deployed: Deployed, *extra: str) -> argparse.Namespace:
    return parse("status", "--stack", STACK, "--outputs", str(deployed.outputs_file), *extra)


def script_status_reads(deployed: Deployed, answer: str) -> None:
    # status reads each region's health check in turn, then the DNS answer.
    deployed.route53.health(PRIMARY, healthy=0)
    deployed.route53.health(SECONDARY, healthy=8)
    deployed.route53.dns(answer)


def test_status_json_reports_each_region_and_the_serving_one(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.set_mode(PRIMARY, Mode.FENCED)
    deployed.dead_letters(SECONDARY, 2)
    deployed.replication_latency(SECONDARY, PRIMARY, 850.0)
    deployed.aws.client("cloudwatch", PRIMARY).set_alarm_state(
        AlarmName=alarm_name(PRIMARY, "api-5xx"), StateValue="ALARM", StateReason="test"
    )
    script_status_reads(deployed, SECONDARY)

    exit_code = commands.run_status(status_args(deployed, "--json"), deployed.aws, resolve)

    assert exit_code == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    regions = {region["region"]: region for region in report["regions"]}
    assert report["serving_region"] == SECONDARY
    assert report["complete"] is True
    assert regions[PRIMARY]["mode"] == "fenced"
    assert regions[PRIMARY]["health"]["healthy"] is False
    assert regions[SECONDARY]["health"]["healthy"] is True
    assert regions[PRIMARY]["alarms"]["api-5xx"] == "ALARM"
    assert regions[SECONDARY]["dlq_depth"] == 2
    assert regions[SECONDARY]["replication_latency_ms"] == {PRIMARY: 850.0}
    assert regions[PRIMARY]["replication_latency_ms"] == {SECONDARY: None}
    deployed.assert_stubs_used()


def test_status_table_is_readable(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    deployed.set_mode(PRIMARY, Mode.FENCED)
    deployed.replication_latency(SECONDARY, PRIMARY, 850.0)
    script_status_reads(deployed, SECONDARY)

    assert commands.run_status(status_args(deployed), deployed.aws, resolve) == EXIT_OK

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"stack {STACK}: api.payments.example.com answers -> {SECONDARY}"
    header, primary_row, secondary_row = lines[2:5]
    assert header.split()[:3] == ["REGION", "ROLE", "HEALTH"]
    assert primary_row.split()[:5] == [PRIMARY, "primary", "UNHEALTHY", "0/8", "fenced"]
    assert "no data" in primary_row
    assert secondary_row.split()[:5] == [SECONDARY, "secondary", "healthy", "8/8", "active"]
    assert f"->{PRIMARY} 0.8s" in secondary_row
    assert secondary_row.split()[5] == "serve"  # its switch, read in the primary
    assert lines[-2:] == ["alarms:", "  OK: 6"]


def test_status_groups_alarms_by_state_within_80_columns(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    for region in (PRIMARY, SECONDARY):
        for purpose in ("api-5xx", "dlq-not-empty"):
            deployed.aws.client("cloudwatch", region).set_alarm_state(
                AlarmName=alarm_name(region, purpose), StateValue="ALARM", StateReason="test"
            )
    script_status_reads(deployed, SECONDARY)

    commands.run_status(status_args(deployed), deployed.aws, resolve)

    out = capsys.readouterr().out
    alarms = out[out.index("alarms:") :].splitlines()
    assert alarms[1].startswith("  ALARM (4): us-east-1 api-5xx, us-east-1 dlq-not-empty,")
    assert alarms[-1] == "  OK: 2"
    assert all(len(line) <= 80 for line in alarms)


def test_status_shows_the_unreadable_as_unknown_with_where_it_was_read(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    def down(**_: object) -> None:
        raise EndpointConnectionError(endpoint_url=f"https://cloudwatch.{SECONDARY}.amazonaws.com")

    deployed.aws.client("cloudwatch", SECONDARY).meta.events.register("before-call", down)
    script_status_reads(deployed, PRIMARY)

    assert commands.run_status(status_args(deployed), deployed.aws, resolve) == EXIT_FAILED

    out = capsys.readouterr().out
    primary_row = out.splitlines()[3]
    assert primary_row.split()[5] == "unknown"  # the primary's switch lives in us-east-2
    assert f"  {PRIMARY}: switch (read in {SECONDARY}) failed: Could not connect" in out
    assert f"  unknown: {SECONDARY} (not read)" in out


def test_status_header_links_the_dashboard_when_the_stack_exports_one(
    deployed: Deployed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "https://us-east-1.console.aws.amazon.com/cloudwatch/home#dashboards/dashboard/x"
    outputs_file = tmp_path / "with-dashboard.json"
    outputs_file.write_text(json.dumps({**deployed.outputs, StackOutput.DASHBOARD_URL: url}))

    printed = []
    for extra in ((), ("--json",)):
        script_status_reads(deployed, PRIMARY)
        args = parse("status", "--stack", STACK, "--outputs", str(outputs_file), *extra)
        assert commands.run_status(args, deployed.aws, resolve) == EXIT_OK
        printed.append(capsys.readouterr().out)

    table, report = printed
    assert table.splitlines()[0] == (
        f"stack {STACK}: api.payments.example.com answers -> {PRIMARY}  dashboard {url}"
    )
    assert json.loads(report)["dashboard_url"] == url


def test_status_counts_open_conflicts_in_each_region_and_says_which_it_could_not_read(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    table = contract.table_name(STACK)
    for payment in ("a", "b"):
        conflict = Conflict(
            payment_id="pay_" + payment * 32,
            merchant_id="acme",
            acknowledged_by=PRIMARY,
            overwritten={contract.TABLE_HASH_KEY: {"S": "pay_" + payment * 32}},
            stored={contract.TABLE_HASH_KEY: {"S": "pay_" + payment * 32}},
            overwritten_at="2026-11-30T10:00:01.000Z",
            detected_in=PRIMARY,
            detected_at="2026-11-30T10:00:01.400Z",
        )
        ConflictStore(deployed.aws.client("dynamodb", PRIMARY), table).record(conflict)
    deployed.aws.client("dynamodb", SECONDARY).delete_table(TableName=table)
    script_status_reads(deployed, PRIMARY)

    assert commands.run_status(status_args(deployed, "--json"), deployed.aws, resolve) == 1
    report = json.loads(capsys.readouterr().out)
    regions = {region["region"]: region for region in report["regions"]}
    assert regions[PRIMARY]["open_conflicts"] == 2
    assert regions[SECONDARY]["open_conflicts"] is None
    assert "ResourceNotFoundException" in regions[SECONDARY]["errors"]["open_conflicts"]

    script_status_reads(deployed, PRIMARY)
    commands.run_status(status_args(deployed), deployed.aws, resolve)
    table_text = capsys.readouterr().out
    assert f"open conflict records: {PRIMARY} 2, {SECONDARY} unknown" in table_text


def test_status_still_reports_when_one_reading_fails(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.aws.client("ssm", SECONDARY).delete_parameter(
        Name=contract.ssm_parameter_name(STACK, SECONDARY, Param.MODE)
    )
    script_status_reads(deployed, PRIMARY)

    # The picture is printed, but a partial one is not a success.
    assert commands.run_status(status_args(deployed), deployed.aws, resolve) == EXIT_FAILED

    out = capsys.readouterr().out
    assert f"{SECONDARY}: mode failed: ParameterNotFound" in out
    assert f"answers -> {PRIMARY}" in out


def test_status_without_outputs_or_cli_exits_2_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no pulumi executable anywhere

    exit_code = commands.run_status(parse("status", "--stack", STACK))

    assert exit_code == EXIT_ENVIRONMENT
    assert "error: the Pulumi CLI is not on PATH" in capsys.readouterr().err


def test_status_without_credentials_exits_2(
    deployed: Deployed,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    exit_code = commands.run_status(status_args(deployed))

    assert exit_code == EXIT_ENVIRONMENT
    assert "error: no AWS credentials found" in capsys.readouterr().err


def test_regional_readings_are_taken_at_the_same_time(deployed: Deployed) -> None:
    # Each regional call waits until all 12 are in flight: one after another, they would
    # break the barrier instead.
    barrier = threading.Barrier(12, timeout=30)
    met: list[int] = []

    def wait_for_the_others(**_: object) -> None:
        met.append(barrier.wait())

    outputs = parse_outputs(STACK, deployed.outputs)
    for service in ("ssm", "sqs", "cloudwatch", "dynamodb"):
        for region in (PRIMARY, SECONDARY):
            events = deployed.aws.client(service, region).meta.events
            events.register_first("before-send", wait_for_the_others)
    script_status_reads(deployed, PRIMARY)

    status = collect_status(deployed.aws, outputs, resolve)

    assert sorted(met) == list(range(12))
    assert all(not region.errors for region in status.regions)


def test_status_says_when_traffic_left_by_health_alone_and_would_return(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    script_status_reads(deployed, SECONDARY)  # DNS answers the secondary; no switch was set

    commands.run_status(status_args(deployed), deployed.aws, resolve)

    out = " ".join(capsys.readouterr().out.split())
    assert f"note: traffic left {PRIMARY} by its health check alone" in out
    assert f"run `payments-dr failover --stack {STACK} --to {SECONDARY}`" in out


def test_status_reports_the_dr_regions_key_age_alarm_from_its_outputs(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every alarm of a region's `alarm_arns` output is read, the key-age alarm too."""
    outputs = json.loads(deployed.outputs_file.read_text())
    purpose = "merchant-key-age"
    outputs[StackOutput.REGIONS][SECONDARY][contract.RegionOutput.ALARM_ARNS][purpose] = put_alarm(
        deployed.aws, SECONDARY, purpose, "ALARM"
    )
    deployed.outputs_file.write_text(json.dumps(outputs))
    script_status_reads(deployed, SECONDARY)

    assert commands.run_status(status_args(deployed, "--json"), deployed.aws, resolve) == EXIT_OK

    regions = {
        region["region"]: region for region in json.loads(capsys.readouterr().out)["regions"]
    }
    assert regions[SECONDARY]["alarms"][purpose] == "ALARM"
    assert purpose not in regions[PRIMARY]["alarms"]
