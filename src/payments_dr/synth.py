"""`payments-dr synth`: evaluate the real Pulumi program offline, under mocks.

No Pulumi CLI or AWS account is needed: the program's resource registrations go to an
in-process mock engine that answers with simulated provider values (ids, ARNs, URLs, the
account id). Everything the program itself decides - names, settings, policies, wiring - is
real; every provider-computed value is labelled simulated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import shutil
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from payments_dr import contract
from payments_dr.cli_arguments import output_path_problem, write_text_creating_folders
from payments_dr.infra.config import (
    LAMBDA_UNRESERVED_MINIMUM,
    ConfigError,
    DrBudget,
    StackConfig,
    load_stack_file,
    refuse_consistency_change,
)
from payments_dr.infra.secret_budget import secret_loads
from payments_dr.infra.ssm_budget import ssm_loads
from payments_dr.infra.stack import build_stack
from payments_dr.lab.signals import main_thread_signals
from payments_dr.policy import evaluate, format_verdicts
from payments_dr.service.artifact import build_artifact
from payments_dr.simulated_aws import GLOBAL_REGION, RecordingMonitor, SimulatedAws

SIMULATION_NOTE = (
    "Simulated: ids, ARNs, URLs, name servers and the account id are produced by Pulumi mocks,"
    " not by AWS. Names, settings, policies and wiring are the program's own."
)
DEFAULT_STACK_FILE = "Pulumi.dev.yaml"
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


@dataclass(frozen=True)
class SynthResult:
    config: StackConfig
    resources: list[dict[str, Any]]  # {"type", "name", "urn", "region", "parent", "inputs", ...}
    outputs: dict[str, Any]

    @property
    def budget(self) -> DrBudget:
        return self.config.budget

    def of_type(self, resource_type: str, region: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in self.resources
            if r["type"] == resource_type and (region is None or r["region"] == region)
        ]

    def reserved_concurrency(self, region: str) -> int:
        """Executions the region's functions reserve out of the account's regional quota."""
        return sum(
            int(function["inputs"].get("reservedConcurrentExecutions") or 0)
            for function in self.of_type("aws:lambda/function:Function", region)
        )

    def counts_by_type_and_region(self) -> Counter[tuple[str, str]]:
        return Counter((r["type"], r["region"]) for r in self.resources)

    def to_dict(self) -> dict[str, Any]:
        return {
            "simulation": SIMULATION_NOTE,
            "stack": self.config.stack,
            "consistency_mode": self.config.consistency_mode.value,
            "regions": list(self.config.regions),
            "dr_budget": self.budget.to_dict(),
            "ssm_cold_start": [
                {
                    "region": load.region,
                    "readers": load.readers,
                    "peak_tps": round(load.peak_tps, 1),
                    "steady_tps": round(load.steady_tps, 1),
                    "quota_tps": load.quota_tps,
                }
                for load in ssm_loads(self.config)
            ],
            "id_secret_cold_start": [
                {
                    "region": load.region,
                    "readers": load.readers,
                    "peak_tps": load.peak_tps,
                    "quota_tps": load.quota_tps,
                }
                for load in secret_loads(self.config)
            ],
            "outputs": self.outputs,
            "resources": self.resources,
        }


# --- running the program -------------------------------------------------------------------
def synthesize_config(config: StackConfig, artifact_path: Path) -> SynthResult:
    """Run the program for `config` under fresh mocks and collect what it declared.

    Each run gets its own context (Pulumi keeps its settings and root stack in context
    variables), so one process can synthesize several configurations in turn.
    """

    def run() -> SynthResult:
        monitor = RecordingMonitor(SimulatedAws())
        pulumi.runtime.set_mocks(
            monitor.mocks,
            project=contract.PROJECT,
            stack=config.stack,
            preview=False,
            monitor=monitor,
        )
        resolved: dict[str, Any] = {}

        async def program() -> None:
            outputs = build_stack(config, artifact_path)
            resolved.update(await pulumi.Output.from_input(outputs).future() or {})

        _sync_await(run_pulumi_func(program))
        resources = sorted(monitor.registrations, key=lambda r: r["urn"])
        return SynthResult(config=config, resources=_plain(resources), outputs=_plain(resolved))

    return contextvars.Context().run(run)


def synthesize(config_path: Path | str, artifact_path: Path | None = None) -> SynthResult:
    """Synthesize the stack described by a `Pulumi.<stack>.yaml` file."""
    return _synthesize_with_artifact(load_stack_file(config_path), artifact_path)


def _synthesize_with_artifact(config: StackConfig, artifact_path: Path | None) -> SynthResult:
    """With the given artifact, or one built for this run only."""
    if artifact_path is not None:
        return synthesize_config(config, artifact_path)
    with tempfile.TemporaryDirectory(prefix="payments-dr-synth-") as build_dir:
        return synthesize_config(config, build_artifact(Path(build_dir)))


def synthesize_interruptibly(config: StackConfig) -> SynthResult:
    """`_synthesize_with_artifact` for the command line, where Ctrl-C must stop it at once.

    Pulumi's runtime catches every exception its program raises, KeyboardInterrupt included,
    and then waits for the registrations in flight; one that the interrupt cut short never
    finishes, and the process hangs. So the program runs in a worker thread that never gets
    SIGINT, and the main thread, waiting for it, takes the Ctrl-C and returns (the worker is a
    daemon: it ends with the process, and its build folder is removed here).
    """
    build_dir = Path(tempfile.mkdtemp(prefix="payments-dr-synth-"))
    outcome: list[SynthResult | BaseException] = []

    def work() -> None:
        loop = asyncio.new_event_loop()  # Pulumi's runtime wants one in its thread
        asyncio.set_event_loop(loop)
        try:
            outcome.append(synthesize_config(config, build_artifact(build_dir)))
        except BaseException as error:  # handed to the main thread, raised there
            outcome.append(error)
        finally:
            loop.close()

    worker = threading.Thread(target=work, name="synth", daemon=True)
    try:
        with main_thread_signals():
            worker.start()
        worker.join()
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def _plain(value: Any) -> Any:
    """JSON-ready copy: enum keys become their values, archives their file names.

    Values the provider marks secret (an SSM parameter's value, for one) arrive wrapped; the
    synthesized stack holds no real secret, so they are unwrapped for inspection.
    """
    if pulumi.runtime.rpc.is_rpc_secret(value):
        return _plain(pulumi.runtime.rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, pulumi.FileArchive | pulumi.FileAsset):
        return {"archive": Path(value.path).name}
    return value


# --- command line --------------------------------------------------------------------------
def short_type(resource_type: str) -> str:
    """`aws:s3/bucketPolicy:BucketPolicy` -> `aws:s3.BucketPolicy`, for a readable table."""
    package, module, name = resource_type.split(":")
    return f"{package}:{module.split('/')[0]}.{name}"


def render(result: SynthResult) -> str:
    config = result.config
    lines = [
        f"Stack {config.stack} ({config.consistency_mode.value} consistency):"
        f" {len([r for r in result.resources if r['custom']])} resources in"
        f" {', '.join(config.regions)}"
        + (f", witness {config.witness_region}" if config.witness_region else ""),
        SIMULATION_NOTE,
        "",
        "Resources by type and region:",
    ]
    regions = [*config.regions, GLOBAL_REGION]
    counts = result.counts_by_type_and_region()
    labels = {resource_type: short_type(resource_type) for resource_type, _ in counts}
    width = max(len(label) for label in labels.values())
    lines.append(f"  {'type':<{width}}  " + "  ".join(f"{r:>10}" for r in regions))
    for resource_type, label in sorted(labels.items(), key=lambda item: item[1]):
        cells = "  ".join(f"{counts.get((resource_type, r), 0) or '-':>10}" for r in regions)
        lines.append(f"  {label:<{width}}  {cells}")
    reserved = result.reserved_concurrency(config.primary_region)
    budget = result.budget
    lines += [
        "",
        "Account prerequisite (else `pulumi up` fails creating the functions):",
        f"  Lambda concurrent executions quota >= {reserved + LAMBDA_UNRESERVED_MINIMUM} in"
        f" {' and '.join(config.regions)} ({reserved} reserved by the functions +"
        f" {LAMBDA_UNRESERVED_MINIMUM} Lambda keeps unreserved)",
        "",
        "SSM Parameter Store reads at a full cold start of every reserved container"
        " (GetParameter, per account and region):",
        *(f"  {load.describe()}" for load in ssm_loads(config)),
        "",
        "Secrets Manager reads of the id secret at a full cold start (GetSecretValue, per"
        " account and region):",
        *(f"  {load.describe()}" for load in secret_loads(config)),
        "",
        "DR budget (seconds):",
        f"  detection {budget.detection_seconds} (health-check interval x failure threshold)"
        f" + DNS {budget.dns_seconds} + margin {budget.margin_seconds}",
        f"  RTO budget {budget.rto_budget_seconds} <= target {budget.rto_target_seconds}",
        f"  RPO budget {budget.rpo_budget_seconds} <= target {budget.rpo_target_seconds}",
        "",
        "Outputs (provider values simulated):",
        json.dumps(result.outputs, indent=2, sort_keys=True),
    ]
    return "\n".join(lines)


class UnreadableOutputsError(ValueError):
    """The --outputs file cannot be read as the outputs of a stack."""


def deployed_consistency(outputs_file: Path) -> str | None:
    """The consistency mode a deployed stack's outputs record (stacks before it: None)."""
    fix = "pass the file `pulumi stack output --json` wrote"
    try:
        outputs = json.loads(outputs_file.read_text(encoding="utf-8"))
    except OSError as error:
        raise UnreadableOutputsError(
            f"--outputs {outputs_file} cannot be read ({error.strerror}): {fix}"
        ) from None
    except UnicodeDecodeError:
        raise UnreadableOutputsError(f"--outputs {outputs_file} is not UTF-8 text: {fix}") from None
    except json.JSONDecodeError as error:
        raise UnreadableOutputsError(
            f"--outputs {outputs_file} is not JSON ({error}): {fix}"
        ) from None
    if not isinstance(outputs, dict):
        raise UnreadableOutputsError(f"--outputs {outputs_file} is not a JSON object: {fix}")
    mode = outputs.get(contract.StackOutput.CONSISTENCY_MODE)
    return str(mode) if mode else None


def run(args: argparse.Namespace) -> int:
    written = None
    try:
        json_problem = None if args.json is None else output_path_problem(args.json)
        if json_problem is not None:
            raise UnreadableOutputsError(f"--json {json_problem}")
        config = load_stack_file(args.stack_config)
        if args.outputs:
            refuse_consistency_change(config, deployed_consistency(args.outputs))
        result = synthesize_interruptibly(config)
        print(render(result))
        violations = evaluate(result.resources, result.budget.to_dict())
        print("\nPolicy verdicts (the CrossGuard pack's rules, run offline):")
        print(format_verdicts(violations))
        if args.json:
            document = result.to_dict()
            document["policy_violations"] = [asdict(violation) for violation in violations]
            text = json.dumps(document, indent=2, sort_keys=True) + "\n"
            write_text_creating_folders(args.json, text)
            written = args.json
            print(f"\nWrote {len(result.resources)} resources to {args.json}")
    except (ConfigError, UnreadableOutputsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        done = f"{written} was written" if written else "no file was written"
        print(f"\nsynth interrupted: it deploys nothing; {done}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 1 if violations else 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="evaluate the Pulumi program offline under mocks and print what it deploys",
        description=__doc__,
    )
    parser.add_argument(
        "stack_config",
        nargs="?",
        default=DEFAULT_STACK_FILE,
        help=f"a Pulumi.<stack>.yaml file (default: {DEFAULT_STACK_FILE})",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="FILE",
        help="write every resource and output as JSON (missing folders are created)",
    )
    parser.add_argument(
        "--outputs",
        type=Path,
        metavar="FILE",
        help="the deployed stack's `pulumi stack output --json`: refuse a consistencyMode its"
        " table cannot change to",
    )
    parser.set_defaults(run=run)
