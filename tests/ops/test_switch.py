"""failover / failback through the traffic switch: the switch alarm and SSM in moto (CloudWatch's
evaluation played by the fake clock), Route 53 scripted, us-east-1 taken down by client hooks."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from pulumi import automation
from pulumi.automation._cmd import CommandResult

from payments_dr.contract import Mode
from payments_dr.ops import commands
from payments_dr.ops.aws import (
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REFUSED,
    Aws,
)

from .conftest import (
    ADDRESSES,
    API_DOMAIN,
    PRIMARY,
    SECONDARY,
    STACK,
    Deployed,
    FakeClock,
    evaluate_switch_alarms,
    resolve,
)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def run(
    deployed: Deployed, clock: FakeClock, command: str, *extra: str, resolver: Any = resolve
) -> int:
    argv = [command, "--stack", STACK, "--outputs", str(deployed.outputs_file), "--yes", *extra]
    if command == "failover" and "--to" not in extra:
        argv += ["--to", SECONDARY]
    args = parse(*argv)
    clock.on_sleep.append(lambda: evaluate_switch_alarms(deployed.aws))  # CloudWatch, in time
    runner = commands.run_failover if command == "failover" else commands.run_failback
    return runner(args, deployed.aws, resolver, clock, clock.sleep)


def region_down(deployed: Deployed, region: str, *services: str) -> None:
    """Every call to `services` in `region` fails to connect, as in a regional outage."""
    for service in services:

        def refuse(service: str = service, **_: Any) -> None:
            raise EndpointConnectionError(endpoint_url=f"https://{service}.{region}.amazonaws.com")

        deployed.aws.client(service, region).meta.events.register("before-call", refuse)


def route53_down(deployed: Deployed, polls: int) -> None:
    """The Route 53 API (control plane, in us-east-1) fails the verdict's reading and every
    reading of `polls` polls."""
    stubber = deployed.route53.stubber
    operations = ["get_health_check_status"] + [
        "get_health_check_status",
        "test_dns_answer",
    ] * polls
    for operation in operations:
        stubber.add_client_error(
            operation, service_error_code="ServiceUnavailable", http_status_code=503
        )


# --- failover ---------------------------------------------------------------------------------
def test_failover_flips_the_switch_in_the_target_fences_and_waits_for_dns(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    script_failover(deployed)  # the verdict, then polls at t=0 and t=5

    exit_code = run(deployed, clock, "failover", "--poll-interval", "5")

    captured = capsys.readouterr()
    assert exit_code == EXIT_OK, captured.err
    assert deployed.switch_state(PRIMARY) == "ALARM"  # the alarm lives in us-east-2
    assert deployed.switch_state(SECONDARY) == "OK"  # untouched
    assert deployed.mode(PRIMARY) == Mode.FENCED
    assert deployed.mode(SECONDARY) == Mode.ACTIVE
    assert captured.out.strip() == (
        f"failover to {SECONDARY} complete in 5.0s; switch read back after 5.0s; RTO target 900s"
    )
    assert f"set {PRIMARY} switch away (CloudWatch in {SECONDARY})" in captured.err
    deployed.assert_stubs_used()


def test_failover_moves_traffic_with_us_east_1_and_the_route53_api_down(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    region_down(deployed, PRIMARY, "ssm", "cloudwatch", "dynamodb")
    route53_down(deployed, polls=2)
    answers = iter([ADDRESSES[PRIMARY], ADDRESSES[SECONDARY]])

    def public_dns(host: str) -> set[str]:
        return set(next(answers)) if host == API_DOMAIN else resolve(host)

    exit_code = run(deployed, clock, "failover", "--poll-interval", "5", resolver=public_dns)

    captured = capsys.readouterr()
    # Traffic moved; the fence could not be written, which is an incomplete result (exit 1).
    assert exit_code == EXIT_FAILED
    assert deployed.switch_state(PRIMARY) == "ALARM"
    assert captured.out.startswith(f"failover to {SECONDARY} complete in 5.0s")
    assert f"warning: {PRIMARY} is not fenced (Could not connect" in captured.out
    # Every reading that failed is shown as unknown, with its region; none refused.
    assert f"health check [{SECONDARY}]: unknown (ServiceUnavailable" in captured.err
    assert f"switch [{SECONDARY}]: unknown (Could not connect" in captured.err
    assert f"replication lag {PRIMARY}->{SECONDARY} [{PRIMARY}]: unknown" in captured.err
    assert "refusing" not in captured.err
    deployed.assert_stubs_used()


@pytest.mark.parametrize(
    ("prepare", "reason"),
    [
        (
            lambda d: d.route53.health(SECONDARY, healthy=1),
            f"target {SECONDARY} is unhealthy: Route 53 health check UNHEALTHY 1/8",
        ),
        (
            lambda d: (d.route53.health(SECONDARY, healthy=8), d.set_mode(SECONDARY, Mode.FENCED)),
            f"target {SECONDARY} is in mode 'fenced', not 'active'",
        ),
        (
            lambda d: (
                d.route53.health(SECONDARY, healthy=8),
                d.replication_latency(PRIMARY, SECONDARY, 400_000.0),
            ),
            f"replication lag {PRIMARY}->{SECONDARY} is 400s, above the RPO target of 300s",
        ),
    ],
    ids=["unhealthy-target", "fenced-target", "lagging-replication"],
)
def test_failover_refuses_on_what_it_read_and_writes_nothing(
    deployed: Deployed,
    clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
    prepare: Any,
    reason: str,
) -> None:
    prepare(deployed)

    exit_code = run(deployed, clock, "failover")

    err = capsys.readouterr().err
    assert exit_code == EXIT_REFUSED
    assert f"refusing: {reason}" in err
    assert "(re-run with --force to override)" in err
    assert deployed.switch_state(PRIMARY) == "OK"
    assert deployed.mode(PRIMARY) == Mode.ACTIVE


def test_force_goes_past_a_refusal_and_says_so(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    script_failover(deployed, target_checkers_healthy=0)

    exit_code = run(deployed, clock, "failover", "--force")

    assert exit_code == EXIT_OK
    assert "forced past: target us-east-2 is unhealthy" in capsys.readouterr().err
    assert deployed.switch_state(PRIMARY) == "ALARM"


def test_the_switch_that_cannot_be_written_is_an_error_and_nothing_is_fenced(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.route53.health(SECONDARY, healthy=8)
    region_down(deployed, SECONDARY, "cloudwatch")

    exit_code = run(deployed, clock, "failover", "--force")

    err = capsys.readouterr().err
    assert exit_code == EXIT_FAILED
    assert f"error: could not set the traffic switch ({PRIMARY}): Could not connect" in err
    assert "Written before it: nothing." in err
    assert deployed.mode(PRIMARY) == Mode.ACTIVE
    assert "Traceback" not in err


def test_failover_to_the_primary_points_to_failback(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(deployed, clock, "failover", "--to", PRIMARY) == EXIT_REFUSED
    assert "return traffic to it with `payments-dr failback`" in capsys.readouterr().err


def test_a_failover_that_never_settles_times_out_with_the_last_state(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.route53.health(SECONDARY, healthy=8)
    for _ in range(3):  # t=0, 5, 10
        deployed.route53.health(SECONDARY, healthy=8)
        deployed.route53.dns(PRIMARY)

    exit_code = run(deployed, clock, "failover", "--timeout", "12", "--poll-interval", "5")

    out = capsys.readouterr().out
    assert exit_code == EXIT_FAILED
    assert f"did not settle within 10.0s; last seen: {PRIMARY} switch away" in out
    assert f"DNS -> {PRIMARY}" in out


# --- failback: the only way back -----------------------------------------------------------------
def script_failover(deployed: Deployed, target_checkers_healthy: int = 8) -> None:
    """The verdict, then two polls: CloudWatch evaluates the switch between them."""
    deployed.route53.health(SECONDARY, healthy=target_checkers_healthy)
    for answer in (PRIMARY, SECONDARY):
        deployed.route53.health(SECONDARY, healthy=target_checkers_healthy)
        deployed.route53.dns(answer)


def failed_over(deployed: Deployed, clock: FakeClock) -> None:
    script_failover(deployed)
    assert run(deployed, clock, "failover") == EXIT_OK
    clock.on_sleep.clear()


def test_a_recovered_primary_gets_traffic_back_only_through_failback(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    failed_over(deployed, clock)
    clock.sleep(3600)  # an hour later, with no new datapoint: the switch holds
    assert deployed.switch_state(PRIMARY) == "ALARM"
    deployed.replication_latency(SECONDARY, PRIMARY, 800.0)
    deployed.route53.health(PRIMARY, healthy=8)  # t=0
    deployed.route53.dns(SECONDARY)
    deployed.route53.health(PRIMARY, healthy=8)  # t=5
    deployed.route53.dns(PRIMARY)

    exit_code = run(deployed, clock, "failback", "--poll-interval", "5")

    captured = capsys.readouterr()
    assert exit_code == EXIT_OK, captured.err
    assert deployed.mode(PRIMARY) == Mode.ACTIVE
    assert deployed.switch_state(PRIMARY) == "OK"
    assert f"replication lag {SECONDARY}->{PRIMARY} [{SECONDARY}]: 0.8" in captured.err
    assert captured.out.splitlines()[-1].startswith(f"failback to {PRIMARY} complete in 5.0s")
    deployed.assert_stubs_used()


def test_failback_refuses_while_replication_into_the_primary_lags(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    failed_over(deployed, clock)
    deployed.replication_latency(SECONDARY, PRIMARY, 301_000.0)

    assert run(deployed, clock, "failback") == EXIT_REFUSED
    assert f"replication lag {SECONDARY}->{PRIMARY} is 301s" in capsys.readouterr().err
    assert deployed.switch_state(PRIMARY) == "ALARM"
    assert deployed.mode(PRIMARY) == Mode.FENCED


def test_failback_refuses_when_it_cannot_read_the_lag_or_the_table(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    failed_over(deployed, clock)
    region_down(deployed, SECONDARY, "cloudwatch")
    region_down(deployed, PRIMARY, "dynamodb")

    assert run(deployed, clock, "failback") == EXIT_REFUSED
    err = capsys.readouterr().err
    assert f"cannot read replication lag {SECONDARY}->{PRIMARY} in {SECONDARY}" in err
    assert f"cannot read table of {PRIMARY}" in err
    assert deployed.mode(PRIMARY) == Mode.FENCED


# --- the operator's protections -------------------------------------------------------------------
def test_dry_run_shows_verdicts_and_writes_and_writes_nothing(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.route53.health(SECONDARY, healthy=8)

    exit_code = run(deployed, clock, "failover", "--dry-run")

    err = capsys.readouterr().err
    assert exit_code == EXIT_OK
    assert "would write:" in err
    assert f"  - set {PRIMARY} switch away (CloudWatch in {SECONDARY})" in err
    assert f"  - set {PRIMARY} mode fenced (SSM in {PRIMARY}; best effort)" in err
    assert "dry run: nothing written" in err
    assert deployed.switch_state(PRIMARY) == "OK"
    assert deployed.mode(PRIMARY) == Mode.ACTIVE


def test_json_reports_each_step_with_a_utc_timestamp(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    script_failover(deployed)

    exit_code = run(deployed, clock, "failover", "--json")

    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert exit_code == EXIT_OK
    assert captured.err == ""
    assert report["outcome"] == "complete"
    assert [step["name"] for step in report["steps"]] == [
        "switch",
        "fence",
        "switch seen",
        "dns moved",
    ]
    for stamp in [step["at"] for step in report["steps"]] + [report["started_at"]]:
        assert stamp.endswith("Z") and "T" in stamp
    assert {r["what"] for r in report["readings"]} >= {"health check", "mode", "switch"}


def test_errors_are_json_too_with_json(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code = run(deployed, clock, "failover", "--to", "us-west-2", "--json")

    error = json.loads(capsys.readouterr().out)
    assert exit_code == EXIT_ENVIRONMENT
    assert error["exit_code"] == EXIT_ENVIRONMENT
    assert "has no region us-west-2" in error["error"]


def test_without_a_terminal_or_yes_it_refuses_before_anything(
    deployed: Deployed,
    clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    args = parse(
        "failover", "--stack", STACK, "--outputs", str(deployed.outputs_file), "--to", SECONDARY
    )

    exit_code = commands.run_failover(args, deployed.aws, resolve, clock, clock.sleep)

    assert exit_code == EXIT_ENVIRONMENT
    assert "no terminal to confirm on: pass --yes" in capsys.readouterr().err
    deployed.assert_stubs_used()  # not even a reading was taken


def test_a_no_at_the_prompt_writes_nothing(
    deployed: Deployed, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployed.route53.health(SECONDARY, healthy=8)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    asked: list[str] = []
    args = parse(
        "failover", "--stack", STACK, "--outputs", str(deployed.outputs_file), "--to", SECONDARY
    )

    exit_code = commands.run_failover(
        args, deployed.aws, resolve, clock, clock.sleep, lambda q: bool(asked.append(q))
    )

    assert exit_code == EXIT_REFUSED
    assert asked == [f"failover to {SECONDARY} on stack {STACK}?"]
    assert deployed.switch_state(PRIMARY) == "OK"


def test_ctrl_c_while_waiting_prints_the_undo_with_every_option(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.route53.health(SECONDARY, healthy=8)
    deployed.route53.health(SECONDARY, healthy=8)
    deployed.route53.dns(PRIMARY)

    def interrupt(seconds: float) -> None:
        clock.sleep(seconds)
        raise KeyboardInterrupt

    outputs = str(deployed.outputs_file)
    args = parse(
        "failover",
        *("--stack", STACK, "--outputs", outputs, "--to", SECONDARY, "--yes"),
        *("--timeout", "120", "--poll-interval", "2"),
    )
    exit_code = commands.run_failover(args, deployed.aws, resolve, clock, interrupt)

    err = capsys.readouterr().err
    assert exit_code == EXIT_INTERRUPTED
    assert "Traceback" not in err
    assert "The switch stays written" in err
    assert (
        f"To undo: `payments-dr failback --stack {STACK} --outputs {outputs} --timeout 120"
        " --poll-interval 2 --yes`."
    ) in err


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
    args = parse(
        "failover", "--stack", "gone", "--to", SECONDARY, "--work-dir", str(tmp_path), "--yes"
    )

    exit_code = commands.run_failover(args, Aws(), resolve, clock, clock.sleep)

    assert exit_code == EXIT_ENVIRONMENT
    assert capsys.readouterr().err == (
        f"error: stack gone does not exist in the project at {tmp_path}\n"
    )
