"""What `payments-dr stack up` does before the update itself, in this order:

1. refuse a stack file whose consistency mode differs from the deployed table's (the mode is
   fixed at creation: changing it is a migration to a new stack);
2. run the preflight checks, and stop on any failure, before anything changes;
3. unless `--yes`: show the preview's changes and ask on the terminal (a "no" writes nothing);
4. for a stack that creates its own zone: create the zone alone first (a targeted update),
   print its name servers and wait until public DNS delegates the domain to them. Only then
   can ACM validate the certificates, so the full update no longer sits in certificate
   validation until the provider's timeout while nobody can delegate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

import yaml

from payments_dr import contract
from payments_dr.cli_arguments import Ask, ask_on_terminal
from payments_dr.infra.config import ConfigError, StackConfig, refuse_consistency_change
from payments_dr.ops.aws import EXIT_FAILED, EXIT_REFUSED, Aws, OpsError
from payments_dr.ops.preflight import render_table, run_checks
from payments_dr.ops.preflight import stack_config as read_stack_config
from payments_dr.ops.preflight_checks import Check, NsResolver, Status, host_name, resolve_ns
from payments_dr.ops.progress import Progress, Timing

DELEGATION_TIMEOUT_SECONDS = 3600.0  # a registrar's change usually shows within the hour
DELEGATION_POLL_SECONDS = 30.0

# (config, clients, deployed outputs) -> the preflight checks.
Preflight = Callable[[StackConfig, Aws, Mapping[str, Any]], list[Check]]


class UpStack(Protocol):
    """The part of `pulumi.automation.Stack` a guarded `up` uses."""

    def preview(
        self, *, on_output: Callable[[str], None], target: list[str] | None = None
    ) -> Any: ...
    def up(self, *, on_output: Callable[[str], None], target: list[str] | None = None) -> Any: ...
    def outputs(self) -> Mapping[str, Any]: ...
    def export_stack(self) -> Any: ...


@dataclass(frozen=True)
class UpGuards:
    """What a guarded `up` consults; tests replace the checks, DNS, the clock and the
    operator. `approve` None: confirmed beforehand (`--yes`), no preview, no question."""

    preflight: Preflight = run_checks
    resolve: NsResolver = resolve_ns
    timing: Timing = field(
        default_factory=lambda: Timing(DELEGATION_TIMEOUT_SECONDS, DELEGATION_POLL_SECONDS)
    )
    progress: Callable[[], Progress] = Progress
    approve: Ask | None = ask_on_terminal


@dataclass(frozen=True)
class Zone:
    zone_id: str
    name_servers: tuple[str, ...]


def prepare_up(
    stack: UpStack,
    stack_name: str,
    work_dir: Path,
    aws: Aws,
    out: TextIO,
    guards: UpGuards,
    echo: Callable[[str], None],
) -> int | None:
    """Runs steps 1-3; an exit code when `up` must not go on, None when it may."""
    config = read_stack_config(stack_name, work_dir)
    deployed = {name: getattr(value, "value", value) for name, value in stack.outputs().items()}
    try:
        refuse_consistency_change(config, deployed.get(contract.StackOutput.CONSISTENCY_MODE))
    except ConfigError as error:
        raise OpsError(f"up of {stack_name} refused: {error}", EXIT_REFUSED) from error
    checks = guards.preflight(config, aws, deployed)
    out.write(render_table(stack_name, checks) + "\n")
    # A zone the stack creates is delegated in step 3: its check may fail until then.
    waits_for_delegation = config.hosted_zone_id is None
    blocking = [
        c
        for c in checks
        if c.status is Status.FAIL and not (waits_for_delegation and c.name == "zone-delegation")
    ]
    if blocking:
        raise OpsError(
            f"up of {stack_name} refused: {len(blocking)} preflight check(s) fail (above); fix"
            f" them, or see `payments-dr preflight --stack {stack_name}`",
            EXIT_REFUSED,
        )
    zone_first = " (its hosted zone first, then a wait for its delegation)"
    where = f"stack {stack_name} in {' and '.join(config.regions)}"
    approve_update(
        stack, stack_name, guards, out, echo, where + (zone_first * waits_for_delegation)
    )
    if waits_for_delegation:
        return _delegated_zone(stack, stack_name, work_dir, config, out, guards, echo)
    return None


def approve_update(
    stack: UpStack,
    stack_name: str,
    guards: UpGuards,
    out: TextIO,
    echo: Callable[[str], None],
    where: str,
    target: list[str] | None = None,
) -> None:
    """Before the first write: the preview's changes, then the operator's yes (or --yes)."""
    if guards.approve is None:
        return
    from payments_dr.ops.stack import changes_text  # stack.py imports this module

    changes = changes_text(stack.preview(on_output=echo, target=target).change_summary)
    out.write(f"preview of {stack_name}: {changes}\n")
    out.flush()
    if not guards.approve(f"Update {where}: {changes}?"):
        raise OpsError("stack up not confirmed; nothing was written", EXIT_REFUSED)


def _delegated_zone(
    stack: UpStack,
    stack_name: str,
    work_dir: Path,
    config: StackConfig,
    out: TextIO,
    guards: UpGuards,
    echo: Callable[[str], None],
) -> int | None:
    targets = list(contract.hosted_zone_urns(project_name(work_dir), stack_name))
    zone = zone_in_state(stack.export_stack(), targets[1])
    if zone is None:
        out.write(f"Creating the hosted zone of {config.domain_name} first (targeted update)\n")
        summary = stack.up(on_output=echo, target=targets).summary
        if summary.result != "succeeded":
            out.write(f"up of {stack_name}: creating the zone {summary.result}\n")
            return EXIT_FAILED
        zone = zone_in_state(stack.export_stack(), targets[1])
        if zone is None:
            raise OpsError(f"the zone of stack {stack_name} is not in its state after its update")
    out.write(
        f"Delegate {config.domain_name} to zone {zone.zone_id}: set its NS records at the parent"
        f" zone or registrar to\n" + "".join(f"  {ns}\n" for ns in zone.name_servers)
    )
    if not wait_for_delegation(config.domain_name, zone.name_servers, guards):
        out.write(
            f"{config.domain_name} is not delegated to {zone.zone_id} after"
            f" {guards.timing.timeout_seconds:g} s; the zone stays. Run stack up again once the"
            " NS records are in place\n"
        )
        return EXIT_FAILED
    out.write(f"{config.domain_name} is delegated to {zone.zone_id}\n")
    return None


def project_name(work_dir: Path) -> str:
    document = yaml.safe_load((work_dir / "Pulumi.yaml").read_text(encoding="utf-8")) or {}
    name = document.get("name") if isinstance(document, dict) else None
    if not name:
        raise OpsError(f"{work_dir / 'Pulumi.yaml'} names no project")
    return str(name)


def zone_in_state(deployment: Any, zone_urn: str) -> Zone | None:
    """The zone's id and name servers as the stack's state records them (None: not created)."""
    state = getattr(deployment, "deployment", None) or {}
    for resource in state.get("resources") or []:
        if resource.get("urn") == zone_urn:
            outputs = resource.get("outputs") or {}
            return Zone(str(outputs["zoneId"]), tuple(outputs.get("nameServers") or ()))
    return None


def wait_for_delegation(domain: str, name_servers: Sequence[str], guards: UpGuards) -> bool:
    """Polls public DNS until it answers exactly `name_servers` for `domain`."""
    wanted = _hosts(name_servers)
    timing, progress = guards.timing, guards.progress()
    start = timing.clock()
    try:
        while True:
            answered = _hosts(guards.resolve(domain))
            elapsed = timing.clock() - start
            if answered == wanted:
                return True
            if elapsed >= timing.timeout_seconds:
                return False
            shown = ", ".join(sorted(answered)) or "nothing"
            progress.update(elapsed, f"waiting for the delegation of {domain} (now: {shown})")
            timing.sleep(timing.poll_interval_seconds)
    finally:
        progress.finish()


def _hosts(names: Iterable[str]) -> set[str]:
    return {host_name(name) for name in names}
