"""failover/failback input checked before credentials or any write, and the ARC switch through
the cluster's data-plane endpoints (botocore Stubber: moto has no ARC data plane)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from payments_dr.contract import RegionOutput, StackOutput, SwitchState
from payments_dr.ops import commands
from payments_dr.ops.aws import EXIT_ENVIRONMENT, Aws, OpsError
from payments_dr.ops.outputs import parse_outputs
from payments_dr.ops.traffic_switch import ARC_SERVICE, read_switch, write_switches

from .conftest import PRIMARY, SECONDARY, SESSION, STACK, Deployed, FakeClock, resolve

ENDPOINTS = [
    {"endpoint": f"https://host-abc.{region}.example.aws", "region": region}
    for region in ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2", "ap-northeast-1")
]
CONTROL = "arn:aws:route53-recovery-control::123456789012:controlpanel/p1/routingcontrol/{}"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


@pytest.fixture
def no_credentials(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> None:
    """The moto stack, but no AWS credentials anywhere: a command that looks for them fails."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")


@pytest.mark.parametrize(
    "argv",
    [
        ("failover", "--to", SECONDARY, "--timeout", "-1"),
        ("failover", "--to", SECONDARY, "--poll-interval", "0"),
        ("failback", "--poll-interval", "-1"),
        ("failback", "--timeout", "soon"),
        ("failover", "--to", SECONDARY, "--timeout", "inf"),
    ],
)
def test_bad_numbers_are_usage_errors_before_anything_runs(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(*argv, "--stack", STACK, "--outputs", "none.json")
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("usage:") is False  # the reason comes last
    assert "seconds" in err.strip().splitlines()[-1]


def test_an_unknown_region_is_named_before_credentials(
    deployed: Deployed,
    clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
    no_credentials: None,
) -> None:
    args = parse(
        *("failover", "--stack", STACK, "--outputs", str(deployed.outputs_file)),
        *("--to", "us-west-2", "--yes"),
    )

    exit_code = commands.run_failover(args, Aws(), resolve, clock, clock.sleep)

    err = capsys.readouterr().err
    assert exit_code == EXIT_ENVIRONMENT
    assert err == (
        f"error: stack {STACK} has no region us-west-2 (its regions: {PRIMARY}, {SECONDARY})\n"
    )


# --- ARC ---------------------------------------------------------------------------------------
def arc_outputs(deployed: Deployed) -> Any:
    raw = json.loads(json.dumps(deployed.outputs))
    raw[StackOutput.FAILOVER_CONTROL] = {
        "kind": "arc",
        "cluster_endpoints": ENDPOINTS,
        "control_panel_arn": "arn:aws:route53-recovery-control::123456789012:controlpanel/p1",
    }
    for region in (PRIMARY, SECONDARY):
        raw[StackOutput.REGIONS][region][RegionOutput.SWITCH] = {
            "kind": "arc",
            "health_check_id": f"hc-control-{region}",
            "routing_control_arn": CONTROL.format(region),
        }
    return parse_outputs(STACK, raw)


def arc_clients() -> tuple[Aws, list[Stubber]]:
    clients = {
        (ARC_SERVICE, e["endpoint"]): SESSION.client(
            ARC_SERVICE, region_name=e["region"], endpoint_url=e["endpoint"]
        )
        for e in ENDPOINTS
    }
    stubbers = [Stubber(client) for client in clients.values()]
    for stubber in stubbers:
        stubber.activate()
    return Aws(SESSION, clients=clients), stubbers


# The stack's outputs with ARC switches, and stubbed clients for its cluster's endpoints.
ArcStack = tuple[Any, Aws, list[Stubber]]


@pytest.fixture
def arc(aws_credentials: None, deployed: Deployed) -> ArcStack:
    aws, stubbers = arc_clients()
    return arc_outputs(deployed), aws, stubbers


def test_arc_tries_each_endpoint_until_one_answers(arc: ArcStack) -> None:
    outputs, aws, stubbers = arc
    stubbers[0].add_client_error(
        "update_routing_control_states",
        service_error_code="EndpointTemporarilyUnavailableException",
        http_status_code=503,
    )
    stubbers[1].add_client_error(
        "update_routing_control_states", service_error_code="InternalServerException"
    )
    stubbers[2].add_response(
        "update_routing_control_states",
        {},
        {
            "UpdateRoutingControlStateEntries": [
                {"RoutingControlArn": CONTROL.format(PRIMARY), "RoutingControlState": "Off"}
            ]
        },
    )

    write_switches(aws, outputs, {PRIMARY: SwitchState.AWAY})

    for stubber in stubbers:
        stubber.assert_no_pending_responses()


def test_arc_reads_a_routing_control_on_the_first_endpoint_that_answers(arc: ArcStack) -> None:
    outputs, aws, stubbers = arc
    dead = aws.endpoint_client(ARC_SERVICE, "us-east-1", ENDPOINTS[0]["endpoint"])

    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url=ENDPOINTS[0]["endpoint"])

    dead.meta.events.register("before-call", unreachable)
    stubbers[1].add_response(
        "get_routing_control_state",
        {"RoutingControlArn": CONTROL.format(PRIMARY), "RoutingControlState": "Off"},
        {"RoutingControlArn": CONTROL.format(PRIMARY)},
    )

    assert read_switch(aws, outputs, PRIMARY) is SwitchState.AWAY


def test_a_safety_rule_refusal_is_final_not_retried_elsewhere(arc: ArcStack) -> None:
    outputs, aws, stubbers = arc
    stubbers[0].add_client_error(
        "update_routing_control_states",
        service_error_code="ConflictException",
        service_message="safety rule at-least-one-region would be violated",
        http_status_code=409,
    )

    with pytest.raises(ClientError, match="safety rule"):
        write_switches(aws, outputs, {PRIMARY: SwitchState.AWAY, SECONDARY: SwitchState.AWAY})
    for stubber in stubbers:
        stubber.assert_no_pending_responses()


def test_no_endpoint_answering_names_each_one(arc: ArcStack) -> None:
    outputs, aws, stubbers = arc
    for stubber in stubbers:
        stubber.add_client_error(
            "get_routing_control_state", service_error_code="ThrottlingException"
        )

    with pytest.raises(OpsError) as failed:
        read_switch(aws, outputs, SECONDARY)
    message = str(failed.value)
    assert message.startswith("no ARC cluster endpoint answered")
    assert all(f"{e['region']}: ThrottlingException" in message for e in ENDPOINTS)


def test_a_stack_without_the_switch_is_told_to_update(deployed: Deployed, tmp_path: Path) -> None:
    raw = json.loads(json.dumps(deployed.outputs))
    for region in (PRIMARY, SECONDARY):
        del raw[StackOutput.REGIONS][region][RegionOutput.SWITCH]
    del raw[StackOutput.FAILOVER_CONTROL]
    outputs = parse_outputs(STACK, raw)

    with pytest.raises(OpsError, match="deployed before the traffic switch: update it"):
        read_switch(deployed.aws, outputs, PRIMARY)


@pytest.mark.parametrize(
    "argv",
    [
        ("--max-per-second", "-5"),
        ("--max-per-second", "0"),
        ("--timeout", "-1"),
        ("--poll-interval", "0"),
    ],
)
def test_redrive_bad_numbers_are_usage_errors(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse("redrive", "--stack", STACK, "--outputs", "none.json", "--region", PRIMARY, *argv)
    assert exited.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_redrive_names_an_unknown_region_before_credentials(
    deployed: Deployed,
    clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
    no_credentials: None,
) -> None:
    args = parse(
        "redrive",
        "--stack",
        STACK,
        "--outputs",
        str(deployed.outputs_file),
        "--region",
        "eu-west-1",
    )

    exit_code = commands.run_redrive(args, Aws(), clock, clock.sleep)

    assert exit_code == EXIT_ENVIRONMENT
    assert "has no region eu-west-1" in capsys.readouterr().err
