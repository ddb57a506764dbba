"""Operations subcommands: status, failover, failback, redrive and stack lifecycle.

This layer only parses arguments, prints and maps failures to exit codes; the work is done
by functions that take an `Aws` client factory, so tests hand in moto or stubbed clients.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from payments_dr.cli_arguments import (
    Ask,
    add_confirmation_arguments,
    ask_on_terminal,
    aws_region,
    confirmation_refusal,
    int_between,
    positive_seconds,
    unconfirmable,
)
from payments_dr.ops import switch_cli
from payments_dr.ops.aws import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Aws,
    OpsError,
)
from payments_dr.ops.observe import AWS_ERRORS, Resolver, describe_aws_error, resolve_ipv4
from payments_dr.ops.outputs import StackOutputs, load_outputs
from payments_dr.ops.progress import Progress, Timing
from payments_dr.ops.redrive import (
    MAX_MOVE_RATE,
    REDRIVE_TIMEOUT_SECONDS,
    plan_redrive,
    redrive,
)
from payments_dr.ops.stack import OPERATIONS, run_lifecycle
from payments_dr.ops.status import collect_status, render_json, render_table
from payments_dr.ops.switch_cli import add_switch_arguments, json_error
from payments_dr.ops.switch_plan import SwitchPlan, plan_failback, plan_failover

DEFAULT_POLL_SECONDS = 5.0


def project_root(start: Path | None = None) -> Path:
    """The nearest directory holding Pulumi.yaml, from the working directory up."""
    here = (start or Path.cwd()).resolve()
    return next((path for path in (here, *here.parents) if (path / "Pulumi.yaml").is_file()), here)


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """--stack, --outputs and --work-dir: how every command finds the deployed stack."""
    parser.add_argument("--stack", required=True, help="Pulumi stack name, e.g. prod")
    parser.add_argument(
        "--outputs",
        type=Path,
        help="JSON from `pulumi stack output --json`; without it the outputs are read "
        "through the Automation API (needs the Pulumi CLI)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="the Pulumi project directory (default: nearest one holding Pulumi.yaml)",
    )


def _add_wait_arguments(parser: argparse.ArgumentParser, timeout_help: str) -> None:
    parser.add_argument("--timeout", type=positive_seconds, help=timeout_help)
    parser.add_argument(
        "--poll-interval",
        type=positive_seconds,
        default=DEFAULT_POLL_SECONDS,
        help=f"seconds between checks (default {DEFAULT_POLL_SECONDS:g})",
    )


def register(subparsers: Any) -> None:
    status = subparsers.add_parser(
        "status", help="health checks, modes, alarms, replication lag, DLQ depth, DNS answer"
    )
    add_stack_arguments(status)
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.set_defaults(run=run_status)

    failover = subparsers.add_parser(
        "failover",
        help="flip the traffic switch of the other region(s) from the target, fence them,"
        " and wait for Route 53 to answer with the target",
    )
    add_stack_arguments(failover)
    failover.add_argument(
        "--to",
        required=True,
        metavar="REGION",
        help="the region to move to: the stack's secondary (e.g. us-east-2)",
    )
    add_switch_arguments(failover)
    failover.set_defaults(run=run_failover)

    failback = subparsers.add_parser(
        "failback",
        help="once replication into the primary has caught up, set it active and its switch"
        " to serve, and wait for Route 53 to return to it",
    )
    add_stack_arguments(failback)
    add_switch_arguments(failback)
    failback.set_defaults(run=run_failback)

    redrive_parser = subparsers.add_parser(
        "redrive",
        help="move a region's DLQ messages back to its retry queue",
        description="Starts an SQS message move task from the region's dead-letter queue to"
        " its retry queue and follows it until it finishes; the retry worker then applies each"
        " payment idempotently. Ctrl-C stops watching, not the task.",
    )
    add_stack_arguments(redrive_parser)
    redrive_parser.add_argument(
        "--region",
        required=True,
        type=aws_region,
        help="the region whose DLQ to move, one of the stack's regions (e.g. us-east-1)",
    )
    redrive_parser.add_argument(
        "--max-per-second",
        type=int_between(1, MAX_MOVE_RATE, "messages per second"),
        metavar="N",
        help=f"throttle the move to N messages per second, 1 to {MAX_MOVE_RATE}"
        " (default: SQS picks the rate from the backlog)",
    )
    _add_wait_arguments(redrive_parser, "seconds to wait for the move (default 900)")
    add_confirmation_arguments(
        redrive_parser, dry_run="read the DLQ and print the move it would start, changing nothing"
    )
    redrive_parser.add_argument(
        "--json",
        action="store_true",
        help="print the result (or the error) as JSON, with UTC start and end times",
    )
    redrive_parser.set_defaults(run=run_redrive)

    preflight = subparsers.add_parser(
        "preflight",
        help="check quotas, SSM throughput, DNS delegation, certificates and Pulumi versions",
    )
    add_stack_arguments(preflight)
    preflight.add_argument("--json", action="store_true", help="print JSON instead of a table")
    preflight.set_defaults(run=run_preflight)

    stack = subparsers.add_parser(
        "stack", help="preview, up, destroy or print outputs of a stack (Automation API)"
    )
    stack.add_argument("operation", choices=OPERATIONS, help="what to do with the stack")
    stack.add_argument("--stack", required=True, help="Pulumi stack name, e.g. prod")
    stack.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="the Pulumi project directory (default: nearest one holding Pulumi.yaml)",
    )
    stack.add_argument("--confirm", metavar="STACK", help="destroy only: the stack name again")
    stack.add_argument(
        "--region",
        help="up only: update this region's resources alone (a fix while the other region is"
        " down; runbook: deploy during an outage)",
    )
    stack.add_argument(
        "--include-global",
        action="store_true",
        help="with --region: update the global resources (Route 53, ...) too",
    )
    stack.add_argument(
        "--yes",
        action="store_true",
        help="up only: update without asking (needed without a terminal); on a terminal, up"
        " shows the preview's changes and asks first",
    )
    stack.add_argument(
        "--delegation-timeout",
        type=positive_seconds,
        help="up only, for a stack creating its zone: seconds to wait for the domain's"
        " delegation (default: an hour)",
    )
    stack.set_defaults(run=run_stack)


def run_guarded(command: Callable[[], int]) -> int:
    """Runs a command; an operator-facing failure becomes one line on stderr and an exit code."""
    try:
        return command()
    except OpsError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except AWS_ERRORS as error:
        print(f"error: AWS call failed: {describe_aws_error(error)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        # Commands that change state catch Ctrl-C themselves and say what they left behind;
        # anywhere else it needs no traceback.
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def refuse_unconfirmable(command: str, args: argparse.Namespace) -> None:
    """Before credentials: a write to a deployed stack that nobody could confirm."""
    refusal = unconfirmable(command, args)
    if refusal is not None:
        raise OpsError(*refusal)


def require_confirmation(
    command: str, question: str, args: argparse.Namespace, ask: Ask = ask_on_terminal
) -> None:
    """Before the first write: --yes, or a yes to `question` typed on the terminal."""
    refusal = confirmation_refusal(command, question, args, ask)
    if refusal is not None:
        raise OpsError(*refusal)


def _outputs(args: argparse.Namespace, aws: Aws) -> StackOutputs:
    outputs = load_outputs(args.stack, args.outputs, args.work_dir or project_root())
    aws.require_credentials()
    return outputs


def run_status(
    args: argparse.Namespace, aws: Aws | None = None, resolve: Resolver = resolve_ipv4
) -> int:
    def command() -> int:
        clients = aws or Aws()
        status = collect_status(clients, _outputs(args, clients), resolve)
        print(render_json(status) if args.json else render_table(status))
        return EXIT_OK if status.complete else EXIT_FAILED

    return run_guarded(command)


def run_failover(
    args: argparse.Namespace,
    aws: Aws | None = None,
    resolve: Resolver = resolve_ipv4,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    ask: Ask = ask_on_terminal,
) -> int:
    return _run_switch(
        args, lambda outputs: plan_failover(outputs, args.to), aws, resolve, clock, sleep, ask
    )


def run_failback(
    args: argparse.Namespace,
    aws: Aws | None = None,
    resolve: Resolver = resolve_ipv4,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    ask: Ask = ask_on_terminal,
) -> int:
    return _run_switch(args, plan_failback, aws, resolve, clock, sleep, ask)


def _run_switch(
    args: argparse.Namespace,
    plan_for: Callable[[StackOutputs], SwitchPlan],
    aws: Aws | None,
    resolve: Resolver,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    ask: Ask,
) -> int:
    """Arguments (the plan's region too) and confirmability first, then credentials."""
    try:
        outputs = load_outputs(args.stack, args.outputs, args.work_dir or project_root())
        plan = plan_for(outputs)
        refuse_unconfirmable(args.command, args)
        clients = aws or Aws()
        clients.require_credentials()
        timeout = args.timeout if args.timeout is not None else outputs.rto_target_seconds
        timing = Timing(timeout, args.poll_interval, clock, sleep)
        return switch_cli.run(args, clients, outputs, plan, resolve, timing, ask)
    except OpsError as error:
        return json_error(args, str(error), error.exit_code)
    except AWS_ERRORS as error:
        return json_error(args, f"AWS call failed: {describe_aws_error(error)}", EXIT_FAILED)
    except KeyboardInterrupt:
        return json_error(args, "interrupted before anything was written", EXIT_INTERRUPTED)


def run_redrive(
    args: argparse.Namespace,
    aws: Aws | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ask: Ask = ask_on_terminal,
) -> int:
    as_json = bool(getattr(args, "json", False))

    def command() -> int:
        clients = aws or Aws()
        outputs = load_outputs(args.stack, args.outputs, args.work_dir or project_root())
        outputs.region(args.region)  # a region the stack lacks is named before credentials
        refuse_unconfirmable("redrive", args)
        clients.require_credentials()
        plan = plan_redrive(clients, outputs, args.region, args.max_per_second)
        if getattr(args, "dry_run", False):
            dry_run = {"dry_run": True, "plan": plan.to_dict()}
            print(json.dumps(dry_run, indent=2) if as_json else f"dry run: {plan.describe()}")
            return EXIT_OK
        if plan.depth:
            question = (
                f"Move about {plan.depth} messages from the DLQ to the retry queue in"
                f" {plan.region} of stack {outputs.stack}?"
            )
            require_confirmation("redrive", question, args, ask)
        timeout = args.timeout if args.timeout is not None else REDRIVE_TIMEOUT_SECONDS
        timing = Timing(timeout, args.poll_interval, clock, sleep)
        started_at = wall_clock()
        result = redrive(clients, outputs, args.region, timing, Progress(), plan=plan)
        if as_json:
            document = {
                **result.to_dict(),
                "started_at": started_at.isoformat(),
                "finished_at": wall_clock().isoformat(),
            }
            print(json.dumps(document, indent=2))
        else:
            print(result.describe())
        return EXIT_OK if result.succeeded else EXIT_FAILED

    if not as_json:
        return run_guarded(command)
    try:
        return command()
    except OpsError as error:
        return _redrive_error(str(error), error.exit_code, as_json)
    except AWS_ERRORS as error:
        return _redrive_error(f"AWS call failed: {describe_aws_error(error)}", EXIT_FAILED, True)


def _redrive_error(message: str, exit_code: int, as_json: bool) -> int:
    """One line on stderr, or with --json a JSON object on stdout for the incident record."""
    if as_json:
        print(json.dumps({"error": message, "exit_code": exit_code}))
    else:
        print(f"error: {message}", file=sys.stderr)
    return exit_code


def run_preflight(args: argparse.Namespace, aws: Aws | None = None) -> int:
    # Imported late: the checks load the service's configuration module, slow to import.
    from payments_dr.ops.preflight import run_preflight_command

    return run_guarded(
        lambda: run_preflight_command(args, aws or Aws(), work_dir=args.work_dir or project_root())
    )


def run_stack(args: argparse.Namespace, aws: Aws | None = None, ask: Ask = ask_on_terminal) -> int:
    from payments_dr.ops.stack_up import (  # slow to import: see run_preflight
        DELEGATION_POLL_SECONDS,
        DELEGATION_TIMEOUT_SECONDS,
        UpGuards,
    )

    def command() -> int:
        if args.yes and args.operation != "up":
            raise OpsError("--yes applies to `stack up` only (destroy takes --confirm STACK)")
        if args.operation == "up":
            refuse_unconfirmable("stack up", args)
        work_dir = args.work_dir or project_root()
        timeout = args.delegation_timeout or DELEGATION_TIMEOUT_SECONDS
        guards = UpGuards(
            timing=Timing(timeout, DELEGATION_POLL_SECONDS),
            approve=None if args.yes else ask,
        )
        return run_lifecycle(
            args.operation,
            args.stack,
            work_dir,
            aws or Aws(),
            sys.stdout,
            args.confirm,
            guards=guards,
            region=args.region,
            include_global=args.include_global,
        )

    return run_guarded(command)
