"""`payments-dr preflight --stack S`: what a deployment would trip over, checked first.

Runs the checks of `preflight_checks` (Lambda concurrency and SSM throughput in both regions,
the zone delegation, the certificates, the table's consistency mode and stream shards, the
Pulumi CLI and aws plugin versions) and prints a pass/fail table or JSON. `stack up` runs the
same checks before it changes anything. Exit code 0 when nothing fails, 1 when a check fails,
2 when the checks cannot run (no stack file, no credentials).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from payments_dr.infra.config import ConfigError, StackConfig, load_stack_file
from payments_dr.ops.aws import EXIT_FAILED, EXIT_OK, Aws, OpsError
from payments_dr.ops.observe import AWS_ERRORS, describe_aws_error
from payments_dr.ops.outputs import pulumi_cli_available, read_with_automation_api
from payments_dr.ops.preflight_checks import (
    CHECKS,
    Check,
    Context,
    NsResolver,
    Status,
    ToolRunner,
    resolve_ns,
    run_tool,
)

# (stack, project directory) -> the deployed outputs, or {} before the first up.
DeployedReader = Callable[[str, Path], Mapping[str, Any]]


def run_checks(
    config: StackConfig,
    aws: Aws,
    deployed: Mapping[str, Any],
    *,
    resolve: NsResolver = resolve_ns,
    tool: ToolRunner = run_tool,
) -> list[Check]:
    """Every check; a check AWS refuses to answer fails with the reason, the others still run."""
    context = Context(config, aws, deployed, resolve, tool)
    results: list[Check] = []
    for check in CHECKS:
        try:
            results.extend(check(context))
        except AWS_ERRORS as error:
            name = check.__name__.replace("_", "-")
            results.append(
                Check(
                    name,
                    Status.FAIL,
                    f"could not check: {describe_aws_error(error)}",
                    fix="run with credentials allowed to read it (see docs/ops.md)",
                )
            )
    return results


def passed(checks: list[Check]) -> bool:
    return all(check.status is not Status.FAIL for check in checks)


def render_table(stack: str, checks: list[Check]) -> str:
    rows = [("CHECK", "REGION", "RESULT", "DETAIL")]
    rows += [(c.name, c.region or "-", c.status.value.upper(), c.detail) for c in checks]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"Preflight of stack {stack}:"]
    for *cells, detail in rows:
        padded = [cell.ljust(width) for cell, width in zip(cells, widths, strict=True)]
        lines.append("  ".join([*padded, detail]))
    fixes = [c for c in checks if c.status is Status.FAIL and c.fix]
    if fixes:
        lines += ["", "To fix:"]
        lines += [f"  - {c.name}{f' ({c.region})' if c.region else ''}: {c.fix}" for c in fixes]
    failed = sum(c.status is Status.FAIL for c in checks)
    lines += ["", f"preflight: {len(checks) - failed}/{len(checks)} pass or skip, {failed} fail"]
    return "\n".join(lines)


def render_json(stack: str, checks: list[Check]) -> str:
    document = {
        "stack": stack,
        "passed": passed(checks),
        "checks": [
            {
                "name": c.name,
                "region": c.region or None,
                "status": c.status.value,
                "detail": c.detail,
                "fix": c.fix or None,
            }
            for c in checks
        ],
    }
    return json.dumps(document, indent=2)


def stack_config(stack: str, work_dir: Path) -> StackConfig:
    path = work_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise OpsError(f"{path} does not exist: the checks read the stack's configuration")
    try:
        return load_stack_file(path)
    except ConfigError as error:
        raise OpsError(str(error)) from error


def read_deployed(stack: str, work_dir: Path) -> Mapping[str, Any]:
    """The stack's outputs through the Automation API; {} when it has none (yet)."""
    if not pulumi_cli_available():
        return {}
    try:
        outputs = read_with_automation_api(stack, work_dir)
    except OpsError:
        return {}  # not created yet, or not readable: the checks then see a fresh stack
    return {name: getattr(value, "value", value) for name, value in outputs.items()}


def run_preflight_command(
    args: argparse.Namespace,
    aws: Aws,
    *,
    work_dir: Path,
    read: DeployedReader = read_deployed,
    resolve: NsResolver = resolve_ns,
    tool: ToolRunner = run_tool,
) -> int:
    config = stack_config(args.stack, work_dir)
    if args.outputs is not None:
        try:
            deployed = json.loads(args.outputs.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise OpsError(f"outputs file {args.outputs} is not readable JSON: {error}") from None
        if not isinstance(deployed, dict):
            raise OpsError(f"outputs file {args.outputs} is not a JSON object")
    else:
        deployed = read(args.stack, work_dir)
    aws.require_credentials()
    checks = run_checks(config, aws, deployed, resolve=resolve, tool=tool)
    print(render_json(args.stack, checks) if args.json else render_table(args.stack, checks))
    return EXIT_OK if passed(checks) else EXIT_FAILED
