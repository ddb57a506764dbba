"""failover / failback: mode switch in SSM (moto), Route 53 scripted, instant fake clock."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest
from botocore.exceptions import EndpointConnectionError
from pulumi import automation
from pulumi.automation._cmd import CommandResult

from payments_dr.contract import Mode
from payments_dr.ops import commands, switch
from payments_dr.ops.aws import (
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REFUSED,
    Aws,
)

from .conftest import PRIMARY, SECONDARY, STACK, Deployed, FakeClock, resolve


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def failover(deployed: Deployed, clock: FakeClock, *extra: str, to: str = SECONDARY) -> int:
    args = parse(
        "failover", "--stack", STACK, "--outputs", str(deployed.outputs_file), "--to", to, *extra
    )
    return commands.run_failover(args, deployed.aws, resolve, clock, clock.sleep)


def failback(deployed: Deployed, clock: FakeClock, *extra: str) -> int:
    args = parse("failback", "--stack", STACK, "--outputs", str(deployed.outputs_file), *extra)
    return commands.run_failback(args, deployed.aws, resolve, clock, clock.sleep)


def test_failover_fences_the_primary_and_times_until_dns_agrees(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    route53 = deployed.route53
    route53.health(SECONDARY, healthy=8)  # pre-flight: is the target healthy?
    route53.poll(primary_healthy=True, secondary_healthy=True, answer=PRIMARY)  # t=0
    route53.poll(primary_healthy=False, secondary_healthy=True, answer=PRIMARY)  # t=5
    route53.poll(primary_healthy=False, secondary_healthy=True, answer=SECONDARY)  # t=10

    exit_code = failover(deployed, clock, "--poll-interval", "5")

    captured = capsys.readouterr()
    assert exit_code == EXIT_OK
    assert deployed.mode(PRIMARY) == Mode.FENCED
    assert deployed.mode(SECONDARY) == Mode.ACTIVE
    assert captured.out.strip() == (
        f"failover to {SECONDARY} complete in 10.0s; health checks saw the fence after 5.0s; "
        "RTO target 900s"
    )
    progress = captured.err.splitlines()
    assert len(progress) == 3
    assert progress[0].startswith("[   0.0s] us-east-1 healthy 8/8")
    assert progress[2].endswith(f"DNS -> {SECONDARY}")
    deployed.assert_stubs_used()


def test_failover_refuses_an_unhealthy_target_and_changes_nothing(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.route53.health(SECONDARY, healthy=1, total=8)

    exit_code = failover(deployed, clock)

    assert exit_code == EXIT_REFUSED
    err = capsys.readouterr().err
    assert f"refusing failover to {SECONDARY}:" in err
    assert (
        f"target {SECONDARY} is unhealthy: Route 53 health check hc-{SECONDARY} has "
        "1 of 8 checkers reporting healthy"
    ) in err
    assert "--force" in err
    assert deployed.mode(PRIMARY) == Mode.ACTIVE


def test_failover_refuses_a_fenced_target(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.set_mode(SECONDARY, Mode.FENCED)
    deployed.route53.health(SECONDARY, healthy=8)

    assert failover(deployed, clock) == EXIT_REFUSED
    assert f"target {SECONDARY} is in mode 'fenced', not 'active'" in capsys.readouterr().err


def test_failover_refuses_when_replication_lags_beyond_the_rpo(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.replication_latency(PRIMARY, SECONDARY, 412_000.0)
    deployed.route53.health(SECONDARY, healthy=8)

    assert failover(deployed, clock) == EXIT_REFUSED
    assert (
        f"replication lag {PRIMARY} -> {SECONDARY} is 412.0s, above the RPO target of 300s"
        in capsys.readouterr().err
    )
    assert deployed.mode(PRIMARY) == Mode.ACTIVE


def test_failover_accepts_lag_within_the_rpo(deployed: Deployed, clock: FakeClock) -> None:
    deployed.replication_latency(PRIMARY, SECONDARY, 299_000.0)
    deployed.route53.health(SECONDARY, healthy=8)
    deployed.route53.poll(primary_healthy=False, secondary_healthy=True, answer=SECONDARY)

    assert failover(deployed, clock) == EXIT_OK


def test_force_goes_past_the_refusal_and_says_so(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.replication_latency(PRIMARY, SECONDARY, 412_000.0)
    deployed.route53.health(SECONDARY, healthy=8)
    deployed.route53.poll(primary_healthy=False, secondary_healthy=True, answer=SECONDARY)

    assert failover(deployed, clock, "--force") == EXIT_OK
    assert "warning: forced past: replication lag" in capsys.readouterr().err
    assert deployed.mode(PRIMARY) == Mode.FENCED


def test_failover_to_the_primary_points_to_failback(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    assert failover(deployed, clock, to=PRIMARY) == EXIT_REFUSED
    assert "return traffic to it with `payments-dr failback`" in capsys.readouterr().err


def test_failover_to_an_unknown_region_exits_2(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    assert failover(deployed, clock, to="eu-west-1") == EXIT_ENVIRONMENT
    assert "has no region eu-west-1" in capsys.readouterr().err


def test_failover_that_never_settles_times_out_with_the_last_state(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.route53.health(SECONDARY, healthy=8)
    for _ in range(3):  # t = 0, 10, 20; the next poll would pass the 25 s timeout
        deployed.route53.poll(primary_healthy=True, secondary_healthy=True, answer=PRIMARY)

    exit_code = failover(deployed, clock, "--timeout", "25", "--poll-interval", "10")

    assert exit_code == EXIT_FAILED
    out = capsys.readouterr().out
    assert f"failover to {SECONDARY} did not settle within 20.0s" in out
    assert f"DNS -> {PRIMARY}" in out
    deployed.assert_stubs_used()


def test_failback_unfences_the_primary_and_waits_for_dns(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.set_mode(PRIMARY, Mode.FENCED)
    deployed.route53.poll(primary_healthy=False, secondary_healthy=True, answer=SECONDARY)
    deployed.route53.poll(primary_healthy=True, secondary_healthy=True, answer=PRIMARY)

    exit_code = failback(deployed, clock, "--poll-interval", "30")

    assert exit_code == EXIT_OK
    assert deployed.mode(PRIMARY) == Mode.ACTIVE
    assert capsys.readouterr().out.startswith(f"failback to {PRIMARY} complete in 30.0s")
    deployed.assert_stubs_used()


def test_failback_refuses_when_the_primary_table_is_unreachable(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.set_mode(PRIMARY, Mode.FENCED)
    deployed.aws.client("dynamodb", PRIMARY).delete_table(TableName=deployed.outputs["table_name"])

    assert failback(deployed, clock) == EXIT_REFUSED
    err = capsys.readouterr().err
    assert f"table {deployed.outputs['table_name']} in {PRIMARY} is unreachable" in err
    assert "ResourceNotFoundException" in err
    assert deployed.mode(PRIMARY) == Mode.FENCED


def test_failback_refuses_while_writes_taken_in_dr_still_replicate(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.set_mode(PRIMARY, Mode.FENCED)
    deployed.replication_latency(SECONDARY, PRIMARY, 301_000.0)

    assert failback(deployed, clock) == EXIT_REFUSED
    assert f"replication lag {SECONDARY} -> {PRIMARY} is 301.0s" in capsys.readouterr().err
    assert deployed.mode(PRIMARY) == Mode.FENCED


def test_failover_on_a_missing_stack_exits_2_with_its_name(
    aws_credentials: None,
    clock: FakeClock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def select_stack(stack_name: str, work_dir: str) -> None:
        raise automation.StackNotFoundError(CommandResult("", f"no stack named {stack_name}", 255))

    monkeypatch.setattr(shutil, "which", lambda name: f"/opt/bin/{name}")
    monkeypatch.setattr(automation, "select_stack", select_stack)
    (tmp_path / "Pulumi.yaml").write_text("name: payments-dr\nruntime: python\n")
    args = parse("failover", "--stack", "gone", "--to", SECONDARY, "--work-dir", str(tmp_path))

    exit_code = commands.run_failover(args, Aws(), resolve, clock, clock.sleep)

    assert exit_code == EXIT_ENVIRONMENT
    assert capsys.readouterr().err == (
        f"error: stack gone does not exist in the project at {tmp_path}\n"
    )


def test_a_failed_reading_while_waiting_is_retried(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    route53 = deployed.route53
    route53.health(SECONDARY, healthy=8)
    route53.stubber.add_client_error(
        "get_health_check_status", service_error_code="Throttling", service_message="Rate exceeded"
    )
    route53.poll(primary_healthy=False, secondary_healthy=True, answer=SECONDARY)

    exit_code = failover(deployed, clock, "--poll-interval", "5")

    captured = capsys.readouterr()
    assert exit_code == EXIT_OK
    assert "[   0.0s] reading failed, retrying: Throttling: Rate exceeded" in captured.err
    assert captured.out.startswith(f"failover to {SECONDARY} complete in 5.0s")
    deployed.assert_stubs_used()


def test_ctrl_c_while_waiting_says_the_fence_stays_and_how_to_undo(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.route53.health(SECONDARY, healthy=8)
    deployed.route53.poll(primary_healthy=True, secondary_healthy=True, answer=PRIMARY)

    def interrupt(seconds: float) -> None:
        clock.sleep(seconds)
        raise KeyboardInterrupt

    args = parse(
        "failover", "--stack", STACK, "--outputs", str(deployed.outputs_file), "--to", SECONDARY
    )
    exit_code = commands.run_failover(args, deployed.aws, resolve, clock, interrupt)

    captured = capsys.readouterr()
    assert exit_code == EXIT_INTERRUPTED
    assert deployed.mode(PRIMARY) == Mode.FENCED
    assert "Traceback" not in captured.err
    assert (
        f"failover to {SECONDARY} interrupted after 5.0s of waiting. The modes stay written "
        f"({PRIMARY} fenced)"
    ) in captured.err
    assert f"To undo: `payments-dr failback --stack {STACK}`." in captured.err
    assert captured.out == ""


def test_ctrl_c_while_writing_the_mode_says_it_may_be_written(
    deployed: Deployed,
    clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployed.set_mode(PRIMARY, Mode.FENCED)

    def interrupted_write(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(switch, "write_mode", interrupted_write)

    exit_code = failback(deployed, clock)

    err = capsys.readouterr().err
    assert exit_code == EXIT_INTERRUPTED
    assert f"failback to {PRIMARY} interrupted while writing the modes" in err
    assert f"`payments-dr status --stack {STACK}`" in err


def test_ctrl_c_before_any_write_exits_130_without_a_traceback(
    deployed: Deployed,
    clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def interrupted_check(*args: object) -> list[str]:
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "refusal_reasons", interrupted_check)

    assert failover(deployed, clock) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "\ninterrupted\n"
    assert deployed.mode(PRIMARY) == Mode.ACTIVE


def test_a_fence_that_cannot_be_written_says_so_and_what_route53_does(
    deployed: Deployed,
    clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployed.route53.health(SECONDARY, healthy=8)

    def region_down(**kwargs: object) -> None:
        raise EndpointConnectionError(endpoint_url=f"https://ssm.{PRIMARY}.amazonaws.com/")

    monkeypatch.setattr(deployed.aws.client("ssm", PRIMARY), "put_parameter", region_down)

    exit_code = failover(deployed, clock, "--force")

    err = capsys.readouterr().err
    assert exit_code == EXIT_FAILED
    assert f"error: could not set {PRIMARY} fenced: Could not connect" in err
    assert "Written before it: nothing." in err
    assert "repeat this command as soon as its SSM answers" in err
    assert "Traceback" not in err
