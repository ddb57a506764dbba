"""`stack up --region`: which resources a one-region update targets, read from a state made of
the real program's resources, and the command's refusals, against a fake Automation API."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from payments_dr.infra.config import load_stack_file
from payments_dr.ops.aws import EXIT_OK, EXIT_REFUSED, Aws, OpsError
from payments_dr.ops.preflight_checks import Check, Status
from payments_dr.ops.progress import Progress, Timing
from payments_dr.ops.region_up import plan_region_update, resource_regions
from payments_dr.ops.stack import run_lifecycle
from payments_dr.ops.stack_up import UpGuards
from payments_dr.service.artifact import build_artifact
from payments_dr.synth import synthesize_config

from .conftest import STACK, FakeClock

REPO_ROOT = Path(__file__).resolve().parents[2]
PRIMARY, SECONDARY = "us-east-1", "us-east-2"
GLOBAL_TYPES = ("aws:route53/",)


@pytest.fixture(scope="module")
def state() -> list[dict[str, Any]]:
    """The stack's state after a full `up`: every resource the real program declares, with
    its inputs as the state records them (URN, type, parent, custom, inputs)."""
    config = load_stack_file(REPO_ROOT / "Pulumi.eventual.yaml")
    with tempfile.TemporaryDirectory() as build:
        result = synthesize_config(config, build_artifact(Path(build)))
    stack = {
        "urn": "urn:pulumi:eventual::payments-dr::pulumi:pulumi:Stack::x",
        "type": "pulumi:pulumi:Stack",
    }
    provider = {
        "urn": "urn:pulumi:eventual::payments-dr::pulumi:providers:aws::default",
        "type": "pulumi:providers:aws",
        "custom": True,
    }
    return [stack, provider, *result.resources]


def custom(state: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in state if r.get("custom") and r["type"].startswith("aws:")]


def test_a_region_update_targets_exactly_that_regions_resources(
    state: list[dict[str, Any]],
) -> None:
    plan = plan_region_update(state, SECONDARY, (PRIMARY, SECONDARY), include_global=False)
    targets = set(plan.targets)
    by_urn = {r["urn"]: r for r in state}
    # Everything that names us-east-2 as its region is updated...
    assert {r["urn"] for r in custom(state) if r["inputs"].get("region") == SECONDARY} <= targets
    # ...and nothing that names another region, nor anything global.
    for urn in targets:
        resource = by_urn[urn]
        assert resource["inputs"].get("region") in (None, SECONDARY), urn
        assert not resource["type"].startswith(GLOBAL_TYPES), urn
    # The region's roles and policies are IAM (global service) but belong to it.
    roles = {
        r["name"] for r in custom(state) if r["type"] == "aws:iam/role:Role" and r["urn"] in targets
    }
    assert "service-us-east-2-api-role" in roles
    assert "canary-us-east-2-role" in roles
    assert not any(PRIMARY in name for name in roles)
    # The table is created in us-east-1: updating it needs us-east-1's control plane.
    table = next(r for r in custom(state) if r["type"] == "aws:dynamodb/table:Table")
    assert table["urn"] not in targets
    assert plan.global_left > 0 and plan.other_regions_left > 0
    assert len(targets) + plan.global_left + plan.other_regions_left == len(custom(state))


def test_include_global_adds_route53_and_nothing_of_the_other_region(
    state: list[dict[str, Any]],
) -> None:
    alone = set(
        plan_region_update(state, SECONDARY, (PRIMARY, SECONDARY), include_global=False).targets
    )
    with_global = plan_region_update(state, SECONDARY, (PRIMARY, SECONDARY), include_global=True)
    added = set(with_global.targets) - alone
    by_urn = {r["urn"]: r for r in state}
    assert any(by_urn[urn]["type"] == "aws:route53/healthCheck:HealthCheck" for urn in added)
    assert any(by_urn[urn]["type"] == "aws:route53/record:Record" for urn in added)
    assert all(by_urn[urn]["inputs"].get("region") is None for urn in added)
    assert with_global.global_left == 0


def test_every_custom_resource_is_placed_in_one_region_or_global(
    state: list[dict[str, Any]],
) -> None:
    placed = resource_regions(state, (PRIMARY, SECONDARY))
    assert "urn:pulumi:eventual::payments-dr::pulumi:pulumi:Stack::x" not in placed
    assert not any(":pulumi:providers:" in urn for urn in placed)
    primary = {u for u, r in placed.items() if r == PRIMARY}
    secondary = {u for u, r in placed.items() if r == SECONDARY}
    assert primary and secondary and not primary & secondary


# --- the command ---------------------------------------------------------------------------
class StateStack:
    """A fake Automation API stack holding `resources` as its state; records `up`."""

    def __init__(self, resources: list[dict[str, Any]]) -> None:
        self.resources = resources
        self.ups: list[list[str] | None] = []

    def up(self, *, on_output: Callable[[str], None], target: list[str] | None = None) -> Any:
        self.ups.append(target)
        on_output("updating")
        changes = {"update": 3, "same": len(target or [])}
        return SimpleNamespace(
            summary=SimpleNamespace(result="succeeded", resource_changes=changes)
        )

    def outputs(self) -> dict[str, Any]:
        return {}

    def export_stack(self) -> SimpleNamespace:
        return SimpleNamespace(version=3, deployment={"resources": self.resources})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: payments-dr\nruntime: python\n")
    (tmp_path / f"Pulumi.{STACK}.yaml").write_text(
        "config:\n  payments-dr:domainName: pay.example.com\n"
        "  payments-dr:hostedZoneId: Z0123456789ABCDEFGHIJ\n"
    )
    return tmp_path


def region_up(
    project: Path,
    stack: StateStack,
    *,
    region: str | None = SECONDARY,
    include_global: bool = False,
    environ: Mapping[str, str] | None = None,
    checks: list[Check] | None = None,
    operation: Any = "up",
) -> tuple[int, str]:
    clock = FakeClock()
    guards = UpGuards(
        preflight=lambda config, aws, deployed: checks or [],
        resolve=lambda domain: set(),
        timing=Timing(60.0, 30.0, clock, clock.sleep),
        progress=lambda: Progress(io.StringIO()),
        approve=None,  # confirmed beforehand, as `--yes` does
    )
    out = io.StringIO()
    code = run_lifecycle(
        operation,
        STACK,
        project,
        Aws(),
        out,
        opener=lambda name, work_dir, create: stack,
        cli_available=lambda: True,
        guards=guards,
        region=region,
        include_global=include_global,
        environ={"AWS_REGION": SECONDARY} if environ is None else environ,
    )
    return code, out.getvalue()


def test_the_command_updates_the_region_alone(
    aws_credentials: None, project: Path, state: list[dict[str, Any]]
) -> None:
    stack = StateStack(state)
    code, printed = region_up(project, stack)
    assert code == EXIT_OK
    (targets,) = stack.ups
    assert targets == list(
        plan_region_update(state, SECONDARY, (PRIMARY, SECONDARY), False).targets
    )
    assert f"Updating the {len(targets)} resources of {SECONDARY} alone" in printed
    assert "add --include-global" in printed
    assert f"up of {STACK} in {SECONDARY}: succeeded" in printed


def test_the_other_regions_failing_checks_do_not_stop_it_its_own_do(
    aws_credentials: None, project: Path, state: list[dict[str, Any]]
) -> None:
    down = Check("lambda-concurrency", Status.FAIL, "could not check: timeout", PRIMARY)
    code, _ = region_up(project, StateStack(state), checks=[down])
    assert code == EXIT_OK
    own = Check("ssm-throughput", Status.FAIL, "peak 55/s", SECONDARY)
    stack = StateStack(state)
    with pytest.raises(OpsError) as refused:
        region_up(project, stack, checks=[down, own])
    assert refused.value.exit_code == EXIT_REFUSED
    assert stack.ups == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"region": "eu-west-1"}, "--region eu-west-1 is not a region of stack"),
        ({"environ": {"AWS_REGION": PRIMARY}}, "the provider's default region is us-east-1"),
        ({"environ": {}}, "the provider's default region is unset"),
        ({"region": None, "include_global": True}, "--include-global goes with --region"),
        ({"operation": "destroy"}, "apply to `stack up` only"),
    ],
)
def test_refusals_come_before_any_change(
    aws_credentials: None,
    project: Path,
    state: list[dict[str, Any]],
    kwargs: dict[str, Any],
    message: str,
) -> None:
    stack = StateStack(state)
    with pytest.raises(OpsError, match=message):
        region_up(project, stack, **kwargs)
    assert stack.ups == []


def test_an_aws_region_in_the_stack_file_must_be_the_updated_one(
    aws_credentials: None, project: Path, state: list[dict[str, Any]]
) -> None:
    stack_file = project / f"Pulumi.{STACK}.yaml"
    stack_file.write_text(stack_file.read_text() + "  aws:region: us-east-1\n")
    with pytest.raises(OpsError, match="sets aws:region: us-east-1"):
        region_up(project, StateStack(state))


def test_a_stack_without_state_is_refused(aws_credentials: None, project: Path) -> None:
    stack = StateStack([])
    with pytest.raises(OpsError, match="deploy it whole first"):
        region_up(project, stack)
    assert stack.ups == []
