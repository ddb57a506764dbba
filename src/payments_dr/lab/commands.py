"""`payments-dr lab up` and `payments-dr drill`: the local two-region simulation."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from payments_dr import contract
from payments_dr.cli_arguments import output_path_problem, write_text_creating_folders
from payments_dr.contract import ConsistencyMode
from payments_dr.infra.config import ConfigError
from payments_dr.lab.client_payments import ClientKind, Workload
from payments_dr.lab.drill_options import DrillOptions
from payments_dr.lab.scenarios import SCENARIOS, ScenarioName
from payments_dr.lab.settings import LabSettings, load_config
from payments_dr.lab.signals import main_thread_signals

if TYPE_CHECKING:  # the lab is heavy to import; commands load it only when they run
    from payments_dr.drill_report import TimelineEvent
    from payments_dr.lab.lab import Lab

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
DEMO_MERCHANT = "merchant-01"  # enrolled by `lab up` so the printed example works
LAB_UP_TIME_SCALE = 1.0  # real time: someone is watching and using curl
DRILL_TIME_SCALE = 0.02  # a simulated hour plays in 72 s
# The adversarial workload races requests against the replication lag (1 simulated s): a lab
# request takes tens of wall milliseconds, so simulated time must run slower for the race to
# be the one a real client would run.
ADVERSARIAL_TIME_SCALE = 0.1
REPLICATION_LAG_SECONDS = 1.0
DEFAULT_LOG_FILE = "lab-service.log"
# Flags of the lab drill that a drill on AWS cannot honour, and the reverse.
LAB_ONLY_FLAGS = (
    "config",
    "mode",
    "time_scale",
    "replication_lag",
    "workload",
)
AWS_ONLY_FLAGS = ("stack", "outputs", "force", "dry_run", "yes")
EXIT_INTERRUPTED = 130


def register(subparsers: Any) -> None:
    lab = subparsers.add_parser("lab", help="the local two-region lab (a simulation)")
    lab_commands = lab.add_subparsers(dest="lab_command", required=True)
    up = lab_commands.add_parser(
        "up",
        help="run both regions, health checks and the failover endpoint until Ctrl-C",
        description=(
            "Runs a simulation of the stack on this machine: each region's API on a loopback"
            " port (the real service code on moto), replication between the regional tables,"
            " Route 53 style health checks and a failover endpoint that routes as DNS would."
        ),
    )
    _add_lab_options(up, default_time_scale=LAB_UP_TIME_SCALE)
    up.add_argument(
        "--log-file",
        type=Path,
        default=Path(DEFAULT_LOG_FILE),
        metavar="FILE",
        help=f"where the service's JSON logs go (default {DEFAULT_LOG_FILE}, replaced at start)",
    )
    up.add_argument(
        "--show-logs",
        action="store_true",
        help="print the service's JSON logs here instead of writing them to --log-file",
    )
    # It ends only on Ctrl-C or SIGTERM, once the lab is stopped: then the process ends at once
    # (see cli._exit_at_once).
    up.set_defaults(run=run_lab_up, end_at_once=True)

    drill = subparsers.add_parser(
        "drill",
        help="failover drill: in the local lab (simulation), or on AWS with --on-aws",
        description=(
            "Drives payment traffic through the failover endpoint, injects a fault into the"
            " primary region, and reports detection and failover time, requests per region,"
            " lost and duplicated payments, replication lag, DLQ contents and failback."
            " Exits 0 when the drill passes."
        ),
    )
    drill.add_argument(
        "--scenario",
        choices=[name.value for name in ScenarioName],
        help="; ".join(f"{s.name.value}: {s.summary}" for s in SCENARIOS.values())
        + " (default: region-outage)",
    )
    _add_lab_options(drill, default_time_scale=None)
    drill.add_argument(
        "--workload",
        choices=[workload.value for workload in Workload],
        help="steady: clients through the failover name; adversarial: also clients that retry"
        " through the other region after a lost answer, reuse a key with another body in both"
        " regions at once, and send bursts (default steady)",
    )
    drill.add_argument(
        "--client",
        choices=[kind.value for kind in ClientKind],
        help="dns: steady clients use the failover name and wait for Route 53; sdk: they use"
        " the merchant SDK with both regional names; both: side by side, each kind with"
        " --clients clients, and the report compares their client-perceived RTO"
        " (default both, in the lab and with --on-aws)",
    )
    drill.add_argument(
        "--clients",
        type=int,
        help=f"steady clients of each kind (default {DrillOptions.clients})",
    )
    drill.add_argument(
        "--rate",
        type=float,
        help="payments per (simulated) second, each kind's clients together (default 0.5 in"
        " the lab, 2 with --on-aws)",
    )
    drill.add_argument("--json", type=Path, metavar="FILE", help="write the report as JSON")
    drill.add_argument("--timeline", type=Path, metavar="FILE.png", help="draw the timeline")
    drill.add_argument(
        "--on-aws", action="store_true", help="run the drill on a deployed stack instead"
    )
    drill.add_argument("--stack", help="the deployed stack (with --on-aws)")
    drill.add_argument(
        "--outputs",
        type=Path,
        metavar="FILE",
        help="the stack's outputs as `pulumi stack output --json` wrote them (with --on-aws;"
        " default: read through the Pulumi CLI)",
    )
    drill.add_argument(
        "--force",
        action="store_true",
        help="fail over even when a safety check refuses (with --on-aws)",
    )
    drill.add_argument(
        "--yes",
        action="store_true",
        help="start without asking (with --on-aws; needed without a terminal)",
    )
    drill.add_argument(
        "--dry-run",
        action="store_true",
        help="check the starting point and print every write the drill would make, writing"
        " nothing (with --on-aws)",
    )
    drill.set_defaults(run=run_drill_command)


def _add_lab_options(parser: argparse.ArgumentParser, default_time_scale: float | None) -> None:
    """`default_time_scale` None: the drill's, which depends on the workload."""
    shown = (
        f"{default_time_scale:g}"
        if default_time_scale is not None
        else f"{DRILL_TIME_SCALE:g}, {ADVERSARIAL_TIME_SCALE:g} with --workload adversarial"
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="Pulumi.<stack>.yaml",
        help="stack file for names, regions and the DR budget"
        " (default: Pulumi.dev.yaml when present, else built-in defaults)",
    )
    parser.add_argument(
        "--mode",
        choices=[mode.value for mode in ConsistencyMode],
        help="consistency mode (default: the stack file's)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=default_time_scale,
        help=f"wall seconds per simulated second (default {shown})",
    )
    parser.add_argument(
        "--replication-lag",
        type=float,
        metavar="SECONDS",
        help=f"simulated replication lag in eventual mode (default {REPLICATION_LAG_SECONDS:g})",
    )


def _settings(args: argparse.Namespace) -> LabSettings:
    mode = ConsistencyMode(args.mode) if args.mode else None
    lag = REPLICATION_LAG_SECONDS if args.replication_lag is None else args.replication_lag
    if lag < 0:
        raise ValueError("--replication-lag must be 0 or more simulated seconds")
    return LabSettings(
        load_config(args.config, mode), time_scale=args.time_scale, replication_lag_seconds=lag
    )


def run_lab_up(args: argparse.Namespace) -> int:
    from payments_dr.lab.control import ControlServer
    from payments_dr.lab.lab import Lab

    problem = None if args.show_logs else output_path_problem(args.log_file)
    if problem is not None:
        print(f"error: --log-file {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = _settings(args)
    except (ConfigError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    # `kill` stops the lab as cleanly as Ctrl-C does. The interrupt can land anywhere, while
    # the lab starts or prints as well as while it waits, so it is caught around all of it.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with (
            contextlib.nullcontext() if args.show_logs else _logs_to(args.log_file),
            Lab(settings, service_log_level="INFO", on_event=_print_event) as lab,
        ):
            control = ControlServer(lab)
            with main_thread_signals():
                control.start()
            try:
                _announce(lab, control.url)
                if not args.show_logs:
                    print(f"service logs (JSON): {args.log_file}")
                # Only this thread receives Ctrl-C and SIGTERM (see lab.signals).
                threading.Event().wait()
            finally:
                print("\nstopping the lab", file=sys.stderr)
                control.stop()
    except KeyboardInterrupt:
        pass
    print("lab stopped", file=sys.stderr)
    return EXIT_PASSED


def _print_event(event: TimelineEvent) -> None:
    """One line per thing that happened: a fault, a health change, DNS moving clients."""
    print(f"[{event.at_seconds:9.1f} s] {event.kind:<9} {event.detail}", flush=True)


@contextlib.contextmanager
def _logs_to(path: Path) -> Iterator[None]:
    """Send the service's logs, and the lab's own warnings, to `path` while the lab runs:
    on the terminal they would drown the lab's event lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = service_log_handler()
    lab_logger = logging.getLogger("payments_dr")
    with path.open("w", encoding="utf-8") as log_file:
        previous = handler.setStream(log_file)
        file_handler = logging.StreamHandler(log_file)
        lab_logger.addHandler(file_handler)
        lab_logger.propagate = False
        try:
            yield
        finally:
            lab_logger.removeHandler(file_handler)
            lab_logger.propagate = True
            handler.setStream(previous)


def service_log_handler() -> logging.StreamHandler[Any]:
    from payments_dr.service.observability import logger

    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    return handler


def _announce(lab: Lab, control_url: str) -> None:
    """How to reach the running lab, with a merchant key that works as typed."""
    from payments_dr.lab.faults import Fault

    settings = lab.settings
    print(
        f"payments-dr lab is up - a SIMULATION on this machine"
        f" ({settings.config.consistency_mode.value} consistency,"
        f" 1 simulated s = {settings.time_scale:g} s wall)"
    )
    print(f"  failover endpoint (Route 53 failover name): {lab.failover_url}")
    print(f"  lab control (status, faults): {control_url}")
    for name in settings.config.regions:
        role = settings.config.role_of(name).value
        print(f"  {name} ({role}) API: {lab.region_url(name)}")
    # A throwaway key of the simulation, printed so the example below works as typed.
    demo_key = lab.enrol_merchant(DEMO_MERCHANT)
    print(f"  merchant {DEMO_MERCHANT} (lab only) API key: {demo_key}")
    print(
        "try:\n"
        f"  curl -s {lab.failover_url}{contract.HEALTH_PATH}\n"
        f"  curl -s -X POST {lab.failover_url}{contract.PAYMENTS_PATH}"
        f" -H '{contract.AUTH_HEADER}: {contract.AUTH_SCHEME} {demo_key}'"
        f" -H 'Content-Type: application/json' -H '{contract.IDEMPOTENCY_HEADER}: demo-0001'"
        ' -d \'{"amount": 1250, "currency": "EUR",'
        ' "payment_token": "tok_demo12345678"}\'\n'
        f"  curl -s {control_url}/status\n"
        f"  curl -s -X POST {control_url}/faults -d"
        f' \'{{"region": "{settings.primary}", "fault": "{Fault.OUTAGE.value}",'
        ' "active": true}\'\n'
        f"faults: {', '.join(fault.value for fault in Fault)}\n"
        "Ctrl-C stops the lab."
    )


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def drill_usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the drill's arguments, before anything runs; None if nothing."""
    given = [name for name in LAB_ONLY_FLAGS if getattr(args, name) is not None]
    if args.on_aws and given:
        return f"{_flag(given[0])} applies to the lab drill only; drop it with --on-aws"
    aws_given = [name for name in AWS_ONLY_FLAGS if getattr(args, name)]
    if not args.on_aws and aws_given:
        return f"{_flag(aws_given[0])} applies to --on-aws drills only"
    if args.clients is not None and args.clients < 1:
        return "--clients must be at least 1"
    if args.rate is not None and not args.rate > 0:
        return "--rate must be a positive number of payments per second"
    if args.time_scale is not None and not args.time_scale > 0:
        return "--time-scale must be a positive number of wall seconds per simulated second"
    if args.timeline is not None and args.timeline.suffix.lower() != ".png":
        return f"{args.timeline}: the timeline is a .png picture; name the file *.png"
    for path in (args.json, args.timeline):
        problem = None if path is None else output_path_problem(path)
        if problem:
            return problem
    return None


def run_drill_command(args: argparse.Namespace) -> int:
    problem = drill_usage_problem(args)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if args.on_aws:
        # Loaded only here: the AWS drill pulls in the operations tooling.
        aws_drill = importlib.import_module("payments_dr.ops.aws_drill")
        return int(aws_drill.run(args))

    from payments_dr.lab.drill import run_drill
    from payments_dr.lab.scenarios import DEFAULT_SCENARIO
    from payments_dr.lab.timeline import draw_timeline

    workload = Workload(args.workload or Workload.STEADY.value)
    if args.time_scale is None:
        adversarial = workload is Workload.ADVERSARIAL
        args.time_scale = ADVERSARIAL_TIME_SCALE if adversarial else DRILL_TIME_SCALE
    try:
        settings = _settings(args)
        options = DrillOptions(
            scenario=ScenarioName(args.scenario) if args.scenario else DEFAULT_SCENARIO,
            workload=workload,
            client_kind=ClientKind(args.client or ClientKind.BOTH.value),
            clients=args.clients or DrillOptions.clients,
            payments_per_second=args.rate or DrillOptions.payments_per_second,
        )
    except (ConfigError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = run_drill(settings, options, progress=lambda line: print(line, file=sys.stderr))
    except KeyboardInterrupt:
        print(
            "\ndrill interrupted: its clients and the lab were stopped; it ran in this process"
            " only (a simulation), so nothing is left to undo; no report was written",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    report = result.report
    print(report.to_text())
    if args.json:
        write_text_creating_folders(args.json, report.to_json() + "\n")
        print(f"report written to {args.json}", file=sys.stderr)
    if args.timeline:
        draw_timeline(report, args.timeline)
        print(f"timeline written to {args.timeline}", file=sys.stderr)
    return EXIT_PASSED if report.passed else EXIT_FAILED
