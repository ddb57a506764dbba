"""`payments-dr stack`: preview, up, destroy and outputs through the Pulumi Automation API.

Meant for ephemeral test stacks (a drill target that lives for an afternoon); production
stacks go through the reviewed pipeline. Destroy asks for the stack name a second time. Up
first refuses a consistency-mode change, runs the preflight checks, shows the preview's
changes and asks on a terminal (`--yes` skips both) and, for a stack that creates its zone,
creates the zone alone and waits for its delegation (`stack_up`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TextIO

from payments_dr.ops.aws import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, Aws, OpsError
from payments_dr.ops.outputs import cli_error_text, pulumi_cli_available

if TYPE_CHECKING:
    from payments_dr.ops.stack_up import UpGuards

Operation = Literal["preview", "up", "destroy", "outputs"]
OPERATIONS: tuple[Operation, ...] = ("preview", "up", "destroy", "outputs")


class LifecycleStack(Protocol):
    """The part of `pulumi.automation.Stack` the lifecycle commands use."""

    def preview(
        self, *, on_output: Callable[[str], None], target: list[str] | None = None
    ) -> Any: ...
    def up(self, *, on_output: Callable[[str], None], target: list[str] | None = None) -> Any: ...
    def destroy(self, *, on_output: Callable[[str], None]) -> Any: ...
    def outputs(self) -> Mapping[str, Any]: ...
    def export_stack(self) -> Any: ...


# (stack name, project directory, create when missing) -> the stack.
StackOpener = Callable[[str, Path, bool], LifecycleStack]


def open_with_automation_api(name: str, work_dir: Path, create: bool) -> LifecycleStack:
    from pulumi import automation  # imported late: it is slow and needs the CLI anyway

    if create:
        return automation.create_or_select_stack(stack_name=name, work_dir=str(work_dir))
    try:
        return automation.select_stack(stack_name=name, work_dir=str(work_dir))
    except automation.StackNotFoundError as error:
        raise OpsError(f"stack {name} does not exist in the project at {work_dir}") from error


def run_lifecycle(
    operation: Operation,
    stack_name: str,
    work_dir: Path,
    aws: Aws,
    out: TextIO,
    confirm: str | None = None,
    *,
    opener: StackOpener = open_with_automation_api,
    cli_available: Callable[[], bool] = pulumi_cli_available,
    guards: UpGuards | None = None,
    region: str | None = None,
    include_global: bool = False,
    environ: Mapping[str, str] | None = None,
) -> int:
    """`region` (up only): update that region's resources alone (see ops.region_up)."""
    if (region or include_global) and operation != "up":
        raise OpsError("--region and --include-global apply to `stack up` only")
    if include_global and not region:
        raise OpsError("--include-global goes with --region: a whole `up` updates them anyway")
    if not cli_available():
        raise OpsError(
            f"`stack {operation}` drives the Pulumi CLI, which is not on PATH: install it "
            "(the Automation API runs it under the hood)"
        )
    if not (work_dir / "Pulumi.yaml").is_file():
        raise OpsError(f"{work_dir} holds no Pulumi.yaml: pass --work-dir <project directory>")
    if operation == "destroy" and confirm != stack_name:
        raise OpsError(
            f"destroy deletes every resource of stack {stack_name}: repeat its name with "
            f"--confirm {stack_name}",
            EXIT_REFUSED,
        )
    if operation != "outputs":
        aws.require_credentials()
    from pulumi.automation import CommandError  # the CLI is present: the import is worth it

    echo = _echo_to(out)
    try:
        stack = opener(stack_name, work_dir, operation in ("preview", "up"))
        if operation == "outputs":
            shown = _shown_outputs(stack.outputs())
            out.write(json.dumps(shown, indent=2, sort_keys=True) + "\n")
            return EXIT_OK
        if operation == "preview":
            changes = stack.preview(on_output=echo).change_summary
            out.write(f"preview of {stack_name}: {changes_text(changes)}\n")
            return EXIT_OK
        if operation == "up":
            # Imported late: the preflight checks load the service's configuration module.
            from payments_dr.ops.stack_up import UpGuards, prepare_up

            guards = guards or UpGuards()
            if region:
                summary = _region_up(
                    stack,
                    stack_name,
                    work_dir,
                    aws,
                    out,
                    guards,
                    region,
                    include_global,
                    os.environ if environ is None else environ,
                    echo,
                )
                return _report(operation, stack_name, summary, out, f" in {region}")
            stopped = prepare_up(stack, stack_name, work_dir, aws, out, guards, echo)
            if stopped is not None:
                return stopped
        summary = getattr(stack, operation)(on_output=echo).summary
    except CommandError as error:
        out.write(f"{operation} of {stack_name} failed: {cli_error_text(error)}\n")
        return EXIT_FAILED
    return _report(operation, stack_name, summary, out)


def _report(operation: str, stack_name: str, summary: Any, out: TextIO, where: str = "") -> int:
    changes = changes_text(summary.resource_changes)
    out.write(f"{operation} of {stack_name}{where}: {summary.result}, {changes}\n")
    return EXIT_OK if summary.result == "succeeded" else EXIT_FAILED


def _region_up(
    stack: LifecycleStack,
    stack_name: str,
    work_dir: Path,
    aws: Aws,
    out: TextIO,
    guards: UpGuards,
    region: str,
    include_global: bool,
    environ: Mapping[str, str],
    echo: Callable[[str], None],
) -> Any:
    from payments_dr.ops.preflight import stack_config
    from payments_dr.ops.region_up import prepare_region_update

    config = stack_config(stack_name, work_dir)
    plan = prepare_region_update(
        stack,
        stack_name,
        work_dir,
        config,
        aws,
        out,
        guards.preflight,
        region,
        include_global,
        environ,
    )
    from payments_dr.ops.stack_up import approve_update

    place = f"{region} and the global resources" if include_global else region
    where = f"{len(plan.targets)} resource(s) of stack {stack_name} in {place}"
    approve_update(stack, stack_name, guards, out, echo, where, list(plan.targets))
    return stack.up(on_output=echo, target=list(plan.targets)).summary


def _echo_to(out: TextIO) -> Callable[[str], None]:
    def echo(line: str) -> None:
        out.write(line if line.endswith("\n") else line + "\n")

    return echo


def changes_text(changes: Mapping[str, int] | None) -> str:
    if not changes:
        return "no changes"
    return ", ".join(f"{count} {kind}" for kind, count in sorted(changes.items()))


def _shown_outputs(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """Plain values, secrets masked: the result is fit for `--outputs FILE`."""
    shown = {}
    for name, output in outputs.items():
        secret = getattr(output, "secret", False)
        shown[name] = "[secret]" if secret else getattr(output, "value", output)
    return shown
