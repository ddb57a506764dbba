"""`payments-dr failover` and `failback`: arguments, confirmation, text or JSON, Ctrl-C.

Every argument is checked before credentials are looked for or anything is written; a
write needs `--yes` or a "yes" typed on a terminal; `--dry-run` shows the verdicts and every
write it would make and writes nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import shlex
import sys
from typing import Any

from payments_dr.cli_arguments import (
    Ask,
    add_confirmation_arguments,
    ask_on_terminal,
    confirmation_refusal,
    positive_seconds,
)
from payments_dr.ops.aws import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REFUSED,
    Aws,
)
from payments_dr.ops.observe import Resolver
from payments_dr.ops.outputs import StackOutputs
from payments_dr.ops.progress import Progress, Timing
from payments_dr.ops.switch import SwitchInterrupted, SwitchResult, execute, summary, utc_now
from payments_dr.ops.switch_plan import Assessment, SwitchPlan, assess

DEFAULT_POLL_SECONDS = 5.0


def add_switch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="move even if a safety check refuses")
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        help="seconds to wait for DNS to follow (default: the stack's RTO target)",
    )
    parser.add_argument(
        "--poll-interval",
        type=positive_seconds,
        default=DEFAULT_POLL_SECONDS,
        help=f"seconds between readings while waiting (default {DEFAULT_POLL_SECONDS:g})",
    )
    add_confirmation_arguments(
        parser, dry_run="show the safety verdicts and every write it would make; write nothing"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document (errors too) on stdout"
    )


def undo_command(args: argparse.Namespace, outputs: StackOutputs) -> str:
    """The opposite command, with every option the operator gave (but the direction)."""
    if args.command == "failover":
        words = ["payments-dr", "failback"]
    else:
        words = ["payments-dr", "failover", "--to", outputs.secondary]
    words += ["--stack", args.stack]
    for option, value in (("--outputs", args.outputs), ("--work-dir", args.work_dir)):
        if value is not None:
            words += [option, str(value)]
    if args.timeout is not None:
        words += ["--timeout", f"{args.timeout:g}"]
    if args.poll_interval != DEFAULT_POLL_SECONDS:
        words += ["--poll-interval", f"{args.poll_interval:g}"]
    words += [flag for flag, on in (("--force", args.force), ("--yes", args.yes)) if on]
    if args.json:
        words.append("--json")
    return shlex.join(words)


def run(
    args: argparse.Namespace,
    aws: Aws,
    outputs: StackOutputs,
    plan: SwitchPlan,
    resolve: Resolver,
    timing: Timing,
    ask: Ask = ask_on_terminal,
) -> int:
    """Assess, confirm, write and wait; prints text or one JSON document."""
    report: dict[str, Any] = {
        "command": plan.action,
        "stack": outputs.stack,
        "target": plan.target,
        "started_at": utc_now(),
        "dry_run": args.dry_run,
    }
    assessment = assess(aws, outputs, plan)
    report["readings"] = [reading.to_dict() for reading in assessment.readings]
    report["refusals"] = assessment.reasons
    report["writes"] = plan.writes(outputs)
    if not args.json:
        _print_assessment(plan, outputs, assessment, args)
    if assessment.reasons and not args.force:
        return _finish(args, report, "refused", EXIT_REFUSED)
    if args.dry_run:
        return _finish(args, report, "dry run: nothing written", EXIT_OK)
    question = f"{plan.action} to {plan.target} on stack {outputs.stack}?"
    refusal = confirmation_refusal(plan.action, question, args, ask)
    if refusal is not None:
        return _finish(args, report, "not confirmed: nothing written", refusal.exit_code)
    # With --json, stdout holds one document and stderr stays quiet but for errors.
    progress = Progress(io.StringIO()) if args.json else Progress()
    try:
        result = execute(aws, outputs, plan, timing, progress, resolve)
    except SwitchInterrupted as interrupted:
        report["steps"] = [step.to_dict() for step in interrupted.result.steps]
        message = _interrupted_text(interrupted, args, outputs)
        if not args.json:
            print(f"\n{message}", file=sys.stderr)
        return _finish(args, report, message, EXIT_INTERRUPTED, quiet=not args.json)
    report.update(_result_fields(result))
    if not args.json:
        print(summary(result, outputs))
    code = EXIT_OK if result.converged and not result.fence_failed else EXIT_FAILED
    outcome = "complete" if result.converged else "did not settle"
    return _finish(args, report, outcome, code, quiet=not args.json)


def _print_assessment(
    plan: SwitchPlan, outputs: StackOutputs, assessment: Assessment, args: argparse.Namespace
) -> None:
    print(f"{plan.action} to {plan.target} on stack {outputs.stack}", file=sys.stderr)
    for reading in assessment.readings:
        print(f"  {reading.describe()}", file=sys.stderr)
    for reason in assessment.reasons:
        word = "forced past" if args.force else "refusing"
        print(f"  {word}: {reason}", file=sys.stderr)
    if assessment.reasons and not args.force:
        print("(re-run with --force to override)", file=sys.stderr)
        return
    heading = "would write" if args.dry_run else "will write"
    print(f"{heading}:", file=sys.stderr)
    for write in plan.writes(outputs):
        print(f"  - {write}", file=sys.stderr)


def _result_fields(result: SwitchResult) -> dict[str, Any]:
    return {
        "converged": result.converged,
        "seconds": round(result.seconds, 1),
        "switch_seen_seconds": result.switch_seen_seconds,
        "steps": [step.to_dict() for step in result.steps],
        "last_seen": result.observations[-1].describe() if result.observations else None,
    }


def _interrupted_text(
    interrupted: SwitchInterrupted, args: argparse.Namespace, outputs: StackOutputs
) -> str:
    plan = interrupted.result.plan
    status = f"`payments-dr status --stack {outputs.stack}`"
    if not interrupted.switched:
        return (
            f"{plan.action} to {plan.target} interrupted before the switch was written"
            f" (steps done: {len(interrupted.result.steps)}). Run {status} to see each region;"
            " the command is safe to run again."
        )
    return (
        f"{plan.action} to {plan.target} interrupted after {interrupted.seconds:.1f}s of"
        f" waiting. The switch stays written and Route 53 follows it without this command:"
        f" watch {status}. To undo: `{undo_command(args, outputs)}`."
    )


def _finish(
    args: argparse.Namespace, report: dict[str, Any], outcome: str, code: int, quiet: bool = False
) -> int:
    report["outcome"] = outcome
    report["exit_code"] = code
    report["finished_at"] = utc_now()
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    elif code == EXIT_REFUSED and not quiet:
        print(f"{report['command']}: {outcome}", file=sys.stderr)
    elif args.dry_run and not quiet:
        print(outcome, file=sys.stderr)
    return code


def json_error(args: argparse.Namespace, message: str, code: int) -> int:
    """An error before or outside the run, as JSON when --json was given."""
    if getattr(args, "json", False):
        print(
            json.dumps(
                {"command": args.command, "error": message, "exit_code": code, "at": utc_now()}
            )
        )
    else:
        print(f"error: {message}", file=sys.stderr)
    return code
