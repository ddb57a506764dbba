"""Before the AWS drill writes anything: its settings, the stack's starting point, and what a
dry run prints."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from payments_dr.client import InvalidArgument
from payments_dr.client.arguments import checked_endpoints
from payments_dr.contract import Mode, SwitchState
from payments_dr.lab.client_payments import ClientKind
from payments_dr.lab.drill_options import DrillOptions
from payments_dr.ops.aws import EXIT_REFUSED, Aws, OpsError
from payments_dr.ops.commands import DEFAULT_POLL_SECONDS
from payments_dr.ops.drill_traffic import client_kinds
from payments_dr.ops.observe import AWS_ERRORS, Resolver, describe_aws_error
from payments_dr.ops.outputs import StackOutputs
from payments_dr.ops.switch import observe
from payments_dr.ops.switch_plan import assess, plan_failover


@dataclass(frozen=True)
class DrillSettings:
    rate_per_second: float = 2.0  # per client kind, its clients together
    warmup_seconds: float = 15.0  # normal traffic before the fault
    hold_seconds: float = 60.0  # time spent failed over
    cooldown_seconds: float = 15.0  # traffic after failback, to see the primary serve again
    settle_seconds: float = 120.0  # after failback: time for both tables to hold every payment
    poll_interval_seconds: float = DEFAULT_POLL_SECONDS
    switch_timeout_seconds: float | None = None  # per switch; None: the stack's RTO target
    force: bool = False
    client_kind: ClientKind = ClientKind.BOTH  # as the lab drill's command line
    clients: int = DrillOptions.clients  # per kind


def drill_settings(args: argparse.Namespace) -> DrillSettings:
    defaults = DrillSettings()
    return DrillSettings(
        rate_per_second=getattr(args, "rate", None) or defaults.rate_per_second,
        warmup_seconds=getattr(args, "warmup", None) or defaults.warmup_seconds,
        hold_seconds=getattr(args, "hold", None) or defaults.hold_seconds,
        cooldown_seconds=getattr(args, "cooldown", None) or defaults.cooldown_seconds,
        settle_seconds=getattr(args, "settle", None) or defaults.settle_seconds,
        poll_interval_seconds=getattr(args, "poll_interval", None)
        or defaults.poll_interval_seconds,
        switch_timeout_seconds=getattr(args, "timeout", None),
        force=bool(getattr(args, "force", False)),
        client_kind=ClientKind(getattr(args, "client", None) or defaults.client_kind.value),
        clients=getattr(args, "clients", None) or defaults.clients,
    )


def settings_problem(outputs: StackOutputs, settings: DrillSettings) -> str | None:
    """Why these settings cannot drill this stack; checked before anything is read or written."""
    if settings.clients < 1:
        return "--clients must be at least 1"
    if not settings.rate_per_second > 0:
        return "--rate must be a positive number of payments per second"
    if ClientKind.SDK in client_kinds(settings.client_kind):
        try:
            checked_endpoints(outputs.api_endpoints)
        except InvalidArgument as error:
            return (
                f"--client {settings.client_kind.value} needs each region's own API endpoint"
                f" in the stack's outputs: {error}; run with --client dns, or update the stack"
            )
    return None


def starting_problems(aws: Aws, outputs: StackOutputs, resolve: Resolver) -> list[str]:
    """Why the stack is not in normal operation, where a drill must start; empty if it is."""
    plan = plan_failover(outputs, outputs.secondary)
    seen = observe(aws, outputs, plan, 0.0, resolve)
    problems = [
        f"{region}'s switch is {reading.value or 'unknown: ' + str(reading.error)}"
        for region, reading in seen.switches.items()
        if reading.value != SwitchState.SERVE
    ]
    if seen.dns_region != outputs.primary:
        problems.append(f"DNS answers {seen.dns_region or 'unknown'}, not {outputs.primary}")
    return problems + assess(aws, outputs, plan).reasons


def check_starting_point(
    aws: Aws, outputs: StackOutputs, settings: DrillSettings, resolve: Resolver
) -> list[str]:
    """Refuses (exit 3) a drill from a degraded stack unless forced; returns the problems.

    Run before the drill writes anything. A stack that cannot be read cannot be drilled:
    that is "could not start" (exit 2), not a failed drill.
    """
    try:
        problems = starting_problems(aws, outputs, resolve)
    except AWS_ERRORS as error:
        raise OpsError(
            f"cannot read the stack's health checks, DNS or replication: "
            f"{describe_aws_error(error)}; nothing was changed"
        ) from None
    if problems and not settings.force:
        raise OpsError(
            "a drill starts from normal operation, but: " + "; ".join(problems), EXIT_REFUSED
        )
    return problems


def _traffic_lines(outputs: StackOutputs, settings: DrillSettings, seconds: float) -> list[str]:
    every = settings.clients / settings.rate_per_second
    lines = []
    for kind in client_kinds(settings.client_kind):
        if kind is ClientKind.DNS:
            where = f"through the failover name {outputs.failover_url}"
        else:
            where = "through the merchant SDK (PaymentsClient) to " + ", ".join(
                f"{region} {url}" for region, url in outputs.api_endpoints.items()
            )
            where += f" ({outputs.primary} preferred; it fails over by itself)"
        lines.append(
            f"     {kind.value}: {settings.clients} clients {where}, a payment every"
            f" {every:g} s each ({settings.rate_per_second:g}/s together)"
        )
    return [
        f"  2. send synthetic payments for about {seconds:g} s plus the switches, each client"
        " with its own idempotency keys:",
        *lines,
    ]


def dry_run_plan(outputs: StackOutputs, settings: DrillSettings, forced: list[str]) -> str:
    """What the drill would write and send, and how long it would run; printed by --dry-run."""
    primary, secondary = outputs.primary, outputs.secondary
    primary_path = outputs.region(primary).ssm_path
    timeout = settings.switch_timeout_seconds or outputs.rto_target_seconds
    traffic = settings.warmup_seconds + settings.hold_seconds + settings.cooldown_seconds
    lines = [f"dry run of the drill on stack {outputs.stack}: nothing was written"]
    lines += [f"  forced past: {problem}" for problem in forced]
    if not forced:
        lines.append("  starting point: both regions healthy, DNS answers the primary")
    lines += [
        "it would:",
        "  1. issue a merchant key drill-<random> (a credential record in the table, a usage-plan"
        " key in each region), revoked at the end",
        *_traffic_lines(outputs, settings, traffic),
        f"  3. after {settings.warmup_seconds:g} s: set {primary}'s traffic switch away (from"
        f" outside {primary}) and put {primary_path}/mode = {Mode.FENCED.value} in {primary},"
        f" as `failover --to {secondary}` does; wait up to {timeout:g} s for {secondary} to serve",
        f"  4. after {settings.hold_seconds:g} s: set the switch back to serve and put"
        f" {primary_path}/mode = {Mode.ACTIVE.value} in {primary}, as `failback` does; wait up to"
        f" {timeout:g} s for {primary} to serve",
        f"  5. wait up to {settings.settle_seconds:g} s for both tables to hold every payment,"
        " then revoke the key",
    ]
    return "\n".join(lines)
