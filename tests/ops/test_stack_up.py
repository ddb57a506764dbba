"""`stack up`'s guards: the consistency mode, the preflight checks and the two-phase zone.

A fake Automation API stack records what `up` was asked to do and keeps a state the zone
phase reads, as `pulumi.automation.Stack.export_stack` returns it.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from payments_dr import contract
from payments_dr.ops.aws import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, Aws, OpsError
from payments_dr.ops.preflight_checks import Check, Status
from payments_dr.ops.progress import Progress, Timing
from payments_dr.ops.stack import run_lifecycle
from payments_dr.ops.stack_up import UpGuards, zone_in_state

from .conftest import STACK, FakeClock

DOMAIN = "pay.example.com"
PROJECT = "payments-dr"
ZONE_ID = "Z0SIMULATED0ZONE"
NAME_SERVERS = ("ns-1.awsdns-01.org", "ns-2.awsdns-02.net")
COMPONENT_URN, ZONE_URN = contract.hosted_zone_urns(PROJECT, STACK)


class FakeStack:
    """Creates the zone in its state when an update targets it, as a targeted up does."""

    def __init__(self, outputs: Mapping[str, Any] | None = None, zone: bool = False) -> None:
        self.calls: list[tuple[str, Any]] = []
        self._outputs = dict(outputs or {})
        self.resources: list[dict[str, Any]] = []
        if zone:
            self._add_zone()

    def _add_zone(self) -> None:
        self.resources += [
            {"urn": COMPONENT_URN, "type": contract.HOSTED_ZONE_TYPE},
            {
                "urn": ZONE_URN,
                "type": contract.ROUTE53_ZONE_TYPE,
                "outputs": {"zoneId": ZONE_ID, "nameServers": list(NAME_SERVERS)},
            },
        ]

    def up(
        self, *, on_output: Callable[[str], None], target: list[str] | None = None
    ) -> SimpleNamespace:
        self.calls.append(("up", target))
        if target is not None:
            assert target == [COMPONENT_URN, ZONE_URN]
            self._add_zone()
        on_output("updating")
        changes = {"create": 2} if target else {"create": 200}
        return SimpleNamespace(
            summary=SimpleNamespace(result="succeeded", resource_changes=changes)
        )

    def outputs(self) -> dict[str, Any]:
        self.calls.append(("outputs", None))
        return self._outputs

    def export_stack(self) -> SimpleNamespace:
        self.calls.append(("export_stack", None))
        return SimpleNamespace(version=3, deployment={"resources": list(self.resources)})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text(f"name: {PROJECT}\nruntime: python\n")
    return tmp_path


def stack_file(project: Path, **values: str) -> None:
    lines = [
        f"  payments-dr:{key}: {value}\n" for key, value in {"domainName": DOMAIN, **values}.items()
    ]
    (project / f"Pulumi.{STACK}.yaml").write_text("config:\n" + "".join(lines))


class Dns:
    """Public DNS as the zone phase polls it: the answers, one per poll, then the last one."""

    def __init__(self, *answers: set[str]) -> None:
        self.answers = list(answers)
        self.asked = 0

    def __call__(self, domain: str) -> set[str]:
        assert domain == DOMAIN
        self.asked += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def up(
    project: Path,
    stack: FakeStack,
    *,
    checks: list[Check] | None = None,
    dns: Dns | None = None,
    clock: FakeClock | None = None,
    timeout: float = 600.0,
) -> tuple[int, str]:
    clock = clock or FakeClock()
    seen: list[Mapping[str, Any]] = []

    def preflight(config: Any, aws: Aws, deployed: Mapping[str, Any]) -> list[Check]:
        seen.append(deployed)
        return checks or [Check("lambda-concurrency", Status.PASS, "enough", "us-east-1")]

    guards = UpGuards(
        preflight=preflight,
        resolve=dns or Dns(set(NAME_SERVERS)),
        timing=Timing(timeout, 30.0, clock, clock.sleep),
        progress=lambda: Progress(io.StringIO()),
        approve=None,  # confirmed beforehand, as `--yes` does
    )
    out = io.StringIO()
    code = run_lifecycle(
        "up",
        STACK,
        project,
        Aws(),
        out,
        opener=lambda name, work_dir, create: stack,
        cli_available=lambda: True,
        guards=guards,
    )
    return code, out.getvalue()


def test_a_new_zone_is_created_alone_delegated_then_the_stack_is_updated(
    aws_credentials: None, project: Path
) -> None:
    stack_file(project)  # no hostedZoneId: the stack creates its zone
    stack, clock = FakeStack(), FakeClock()
    dns = Dns(set(), {"ns.registrar.example"}, {ns.upper() + "." for ns in NAME_SERVERS})

    code, out = up(project, stack, dns=dns, clock=clock)

    assert code == EXIT_OK
    ups = [target for call, target in stack.calls if call == "up"]
    assert ups == [[COMPONENT_URN, ZONE_URN], None]  # the zone alone first, then everything
    assert f"Delegate {DOMAIN} to zone {ZONE_ID}" in out
    assert all(f"  {ns}\n" in out for ns in NAME_SERVERS)
    assert dns.asked == 3 and clock.now == 60.0  # two polls 30 s apart before the answer
    assert out.index(f"{DOMAIN} is delegated") < out.index(f"up of {STACK}: succeeded, 200 create")


def test_an_existing_delegated_zone_skips_the_zone_phase(
    aws_credentials: None, project: Path
) -> None:
    stack_file(project)
    stack = FakeStack({"hosted_zone_id": ZONE_ID}, zone=True)

    code, out = up(project, stack)

    assert code == EXIT_OK
    assert [target for call, target in stack.calls if call == "up"] == [None]
    assert "Creating the hosted zone" not in out


def test_an_undelegated_zone_stops_before_the_update_and_keeps_the_zone(
    aws_credentials: None, project: Path
) -> None:
    stack_file(project)
    stack, clock = FakeStack(), FakeClock()

    code, out = up(project, stack, dns=Dns({"ns.registrar.example"}), clock=clock, timeout=120)

    assert code == EXIT_FAILED
    assert [target for call, target in stack.calls if call == "up"] == [[COMPONENT_URN, ZONE_URN]]
    assert clock.now == 120.0
    assert "not delegated to Z0SIMULATED0ZONE after 120 s; the zone stays" in out


def test_a_failing_delegation_check_waits_for_a_zone_the_stack_creates(
    aws_credentials: None, project: Path
) -> None:
    stack_file(project)
    failing = [Check("zone-delegation", Status.FAIL, "public DNS answers nothing")]

    code, _ = up(project, FakeStack({"hosted_zone_id": ZONE_ID}, zone=True), checks=failing)

    assert code == EXIT_OK


def test_a_failing_preflight_check_stops_up_before_any_change(
    aws_credentials: None, project: Path
) -> None:
    stack_file(project, hostedZoneId="Z0123456789ABCDEFGHIJ")
    stack = FakeStack()
    failing = [
        Check("lambda-concurrency", Status.FAIL, "quota 10", "us-east-2", "raise the quota"),
        Check("zone-delegation", Status.FAIL, "public DNS answers nothing"),  # an existing zone
    ]

    with pytest.raises(OpsError, match="2 preflight check") as refused:
        up(project, stack, checks=failing)

    assert refused.value.exit_code == EXIT_REFUSED
    assert [call for call, _ in stack.calls] == ["outputs"]


def test_a_consistency_change_is_refused_before_the_checks(
    aws_credentials: None, project: Path
) -> None:
    stack_file(project, consistencyMode="strong", hostedZoneId="Z0123456789ABCDEFGHIJ")
    stack = FakeStack({"consistency_mode": "eventual"})

    with pytest.raises(OpsError, match="created with eventual consistency") as refused:
        up(project, stack)

    assert refused.value.exit_code == EXIT_REFUSED
    assert "consistency-mode-migration.md" in str(refused.value)
    assert [call for call, _ in stack.calls] == ["outputs"]


def test_the_preflight_sees_the_deployed_outputs(aws_credentials: None, project: Path) -> None:
    stack_file(project, hostedZoneId="Z0123456789ABCDEFGHIJ")
    seen: list[Mapping[str, Any]] = []
    stack = FakeStack({"hosted_zone_id": "Z0123456789ABCDEFGHIJ"})

    def preflight(config: Any, aws: Aws, deployed: Mapping[str, Any]) -> list[Check]:
        seen.append(deployed)
        return []

    run_lifecycle(
        "up",
        STACK,
        project,
        Aws(),
        io.StringIO(),
        opener=lambda name, work_dir, create: stack,
        cli_available=lambda: True,
        guards=UpGuards(preflight=preflight, approve=None),
    )
    assert seen == [{"hosted_zone_id": "Z0123456789ABCDEFGHIJ"}]


def test_zone_state_reading() -> None:
    assert zone_in_state(SimpleNamespace(deployment=None), ZONE_URN) is None
    state = FakeStack(zone=True).export_stack()
    zone = zone_in_state(state, ZONE_URN)
    assert zone is not None and zone.zone_id == ZONE_ID and zone.name_servers == NAME_SERVERS
