"""`payments-dr conflicts list|resolve`: payment versions that replication overwrote.

In eventual mode two regions can accept one payment id with different requests before either
write replicates. The region whose version lost keeps it as a conflict record (see
service.conflicts); the records replicate, so either region lists them. An operator
reconciles each one with the merchant, then resolves it with a note of what was done.

Both commands read the regions in turn and use whichever answers: with one region down they
still work, and say which region they could not read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from payments_dr.cli_arguments import (
    Ask,
    add_confirmation_arguments,
    ask_on_terminal,
)
from payments_dr.contract import CONFLICT_ITEM_PREFIX, ConflictStatus
from payments_dr.ops.aws import EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_OK, Aws, OpsError
from payments_dr.ops.commands import (
    add_stack_arguments,
    project_root,
    refuse_unconfirmable,
    require_confirmation,
    run_guarded,
)
from payments_dr.ops.outputs import StackOutputs, load_outputs
from payments_dr.service.conflicts import Conflict, ConflictNotFound, ConflictStore
from payments_dr.service.store import TableUnavailable

MAX_RESOLUTION_CHARS = 500
ALL = "all"


@dataclass
class ConflictListing:
    conflicts: list[Conflict] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # region -> why

    @property
    def complete(self) -> bool:
        return not self.unreadable

    def to_dict(self) -> dict[str, Any]:
        return {
            "conflicts": [conflict.summary() for conflict in self.conflicts],
            "unreadable_regions": self.unreadable,
            "complete": self.complete,
        }


def _store(aws: Aws, outputs: StackOutputs, region: str) -> ConflictStore:
    return ConflictStore(aws.client("dynamodb", region), outputs.table_name)


def _regions(outputs: StackOutputs, preferred: str | None) -> list[str]:
    """The secondary first: during a failover the primary is the one likely impaired."""
    order = [outputs.secondary, outputs.primary]
    if preferred is not None:
        order = [preferred, *(region for region in order if region != preferred)]
    return order


def list_conflicts(
    aws: Aws, outputs: StackOutputs, statuses: Sequence[ConflictStatus]
) -> ConflictListing:
    """Every conflict record in `statuses`, read from each region that answers, each once."""
    listing = ConflictListing()
    found: dict[str, Conflict] = {}
    for region in _regions(outputs, None):
        try:
            for status in statuses:
                for conflict in _store(aws, outputs, region).list(status):
                    # A resolution replicates like anything else: the newest state wins here.
                    seen = found.get(conflict.key)
                    if seen is None or conflict.status is ConflictStatus.RESOLVED:
                        found[conflict.key] = conflict
        except TableUnavailable as error:
            listing.unreadable[region] = str(error)
    listing.conflicts = sorted(found.values(), key=lambda conflict: conflict.detected_at)
    return listing


def resolve_conflict(
    aws: Aws, outputs: StackOutputs, key: str, resolution: str, region: str | None
) -> tuple[str, Conflict]:
    """Resolve in the first region that answers; the record replicates to the other."""
    failures: dict[str, str] = {}
    for candidate in _regions(outputs, region):
        try:
            return candidate, _store(aws, outputs, candidate).resolve(key, resolution)
        except TableUnavailable as error:
            failures[candidate] = str(error)
    reasons = "; ".join(f"{name}: {why}" for name, why in failures.items())
    raise OpsError(f"no region's table answered ({reasons})", EXIT_FAILED)


def render_table(listing: ConflictListing) -> str:
    lines = [
        f"{len(listing.conflicts)} conflict record(s)"
        + ("" if listing.complete else " (some regions could not be read)")
    ]
    for conflict in listing.conflicts:
        summary = conflict.summary()
        overwritten, stored = summary["overwritten"], summary["stored"]
        lines += [
            f"- {summary['key']}  [{summary['status']}]",
            f"    merchant {summary['merchant_id']}, payment {summary['payment_id']}",
            f"    acknowledged by {summary['acknowledged_by']}:"
            f" {overwritten.get('amount')} {overwritten.get('currency')}"
            f" (ref {overwritten.get('reference', '-')}), overwritten at"
            f" {summary['overwritten_at']}",
            f"    stored instead, from {stored.get('region')}:"
            f" {stored.get('amount')} {stored.get('currency')}"
            f" (ref {stored.get('reference', '-')})",
        ]
        if summary["resolution"]:
            lines.append(f"    resolution: {summary['resolution']}")
    lines += [f"unreadable: {region}: {why}" for region, why in listing.unreadable.items()]
    return "\n".join(lines)


# --- the command line ----------------------------------------------------------------------
def register(subparsers: Any) -> None:
    conflicts = subparsers.add_parser(
        "conflicts",
        help="payment versions that eventual-mode replication overwrote: list, resolve",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    commands = conflicts.add_subparsers(dest="conflicts_command", required=True)
    listing = commands.add_parser("list", help="list conflict records (default: open ones)")
    add_stack_arguments(listing)
    listing.add_argument(
        "--status",
        choices=[*(status.value for status in ConflictStatus), ALL],
        default=ConflictStatus.OPEN.value,
        help="which records (default open)",
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")
    listing.set_defaults(run=run_list)

    resolve = commands.add_parser("resolve", help="close a conflict with what was done about it")
    add_stack_arguments(resolve)
    resolve.add_argument("key", help=f"the record's key ({CONFLICT_ITEM_PREFIX}...)")
    resolve.add_argument(
        "--resolution",
        required=True,
        help=f"what was done, for the record (at most {MAX_RESOLUTION_CHARS} characters)",
    )
    resolve.add_argument("--region", help="the region to write in first (default: secondary)")
    add_confirmation_arguments(
        resolve, dry_run="find the open conflict and say what would be written; write nothing"
    )
    resolve.set_defaults(run=run_resolve)


def _outputs(args: argparse.Namespace, aws: Aws) -> StackOutputs:
    outputs = load_outputs(args.stack, args.outputs, args.work_dir or project_root())
    aws.require_credentials()
    return outputs


def run_list(args: argparse.Namespace, aws: Aws | None = None) -> int:
    statuses = list(ConflictStatus) if args.status == ALL else [ConflictStatus(args.status)]

    def command() -> int:
        clients = aws or Aws()
        listing = list_conflicts(clients, _outputs(args, clients), statuses)
        print(json.dumps(listing.to_dict(), indent=2) if args.json else render_table(listing))
        return EXIT_OK if listing.complete else EXIT_FAILED

    return run_guarded(command)


def run_resolve(
    args: argparse.Namespace, aws: Aws | None = None, ask: Ask = ask_on_terminal
) -> int:
    resolution = " ".join(str(args.resolution).split())
    problem = None
    if not args.key.startswith(CONFLICT_ITEM_PREFIX):
        problem = f"{args.key!r} is not a conflict key: copy one from `payments-dr conflicts list`"
    elif not resolution or len(resolution) > MAX_RESOLUTION_CHARS:
        problem = f"--resolution must say what was done, in 1 to {MAX_RESOLUTION_CHARS} characters"
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_ENVIRONMENT  # a usage error, like argparse's

    def command() -> int:
        clients = aws or Aws()
        outputs = load_outputs(args.stack, args.outputs, args.work_dir or project_root())
        if args.region is not None and args.region not in outputs.regions:
            raise OpsError(f"--region {args.region} is not one of {', '.join(outputs.regions)}")
        refuse_unconfirmable("conflicts resolve", args)
        clients.require_credentials()
        conflict = _open_conflict(clients, outputs, args.key)
        first = _regions(outputs, args.region)[0]
        heading = "dry run, nothing written; would write" if args.dry_run else "will write"
        stream = sys.stdout if args.dry_run else sys.stderr
        print(f"conflicts resolve on stack {outputs.stack}: {heading}:", file=stream)
        print(
            f"  - conflict {conflict.key} (merchant {conflict.merchant_id}, payment"
            f" {conflict.payment_id}) marked resolved in table {outputs.table_name} through"
            f" {first} (replicated to {', '.join(outputs.others(first))}), resolution:"
            f" {resolution!r}",
            file=stream,
        )
        if args.dry_run:
            return EXIT_OK
        question = f"Resolve {conflict.key} on stack {outputs.stack} ({first} first)?"
        require_confirmation("conflicts resolve", question, args, ask)
        try:
            region, resolved = resolve_conflict(clients, outputs, args.key, resolution, args.region)
        except ConflictNotFound as error:
            raise OpsError(f"{error}: it was resolved already, or the key is wrong") from error
        print(f"resolved {resolved.key} in {region}: {resolved.resolution}")
        return EXIT_OK

    return run_guarded(command)


def _open_conflict(aws: Aws, outputs: StackOutputs, key: str) -> Conflict:
    """The open conflict `key`, read before writing: what the confirmation shows."""
    listing = list_conflicts(aws, outputs, [ConflictStatus.OPEN])
    found = next((conflict for conflict in listing.conflicts if conflict.key == key), None)
    if found is not None and found.status is ConflictStatus.OPEN:
        return found
    if len(listing.unreadable) == len(outputs.regions):
        reasons = "; ".join(f"{name}: {why}" for name, why in listing.unreadable.items())
        raise OpsError(f"no region's table answered ({reasons})", EXIT_FAILED)
    raise OpsError(f"no open conflict {key}: it was resolved already, or the key is wrong")
