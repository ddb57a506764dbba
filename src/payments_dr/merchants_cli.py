"""`payments-dr merchant create|rotate|revoke|list|sync`: the command line of `merchants`.

A command that writes says first what it will write and where (table, regions, usage plans),
then asks on a terminal; `--yes` skips the question, and without a terminal it is required.
`--dry-run` reads the merchant's record, says what would be written and writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from payments_dr.cli_arguments import (
    MERCHANT_ID_HELP,
    Ask,
    add_confirmation_arguments,
    ask_on_terminal,
    int_between,
    merchant_id,
)
from payments_dr.merchants import (
    DEFAULT_OVERLAP_MINUTES,
    MAX_OVERLAP_MINUTES,
    MIN_OVERLAP_MINUTES,
    Merchants,
)
from payments_dr.ops.aws import EXIT_OK, EXIT_REFUSED, Aws, OpsError
from payments_dr.ops.commands import (
    add_stack_arguments,
    project_root,
    refuse_unconfirmable,
    require_confirmation,
    run_guarded,
)
from payments_dr.ops.outputs import StackOutputs, load_outputs
from payments_dr.service.credentials import KeyStatus

WRITES = ("create", "rotate", "revoke", "sync")
DRY_RUN_HELP = "read the merchant's record and say what would be written; write nothing"


def register(subparsers: Any) -> None:
    merchant = subparsers.add_parser(
        "merchant", help="issue, rotate, revoke and list merchant API keys of a deployed stack"
    )
    actions = merchant.add_subparsers(dest="merchant_command", required=True)
    create = actions.add_parser("create", help="issue a key (printed once, stored hashed)")
    create.add_argument("merchant_id", type=merchant_id, help=MERCHANT_ID_HELP)
    rotate = actions.add_parser(
        "rotate", help="issue a new key; the replaced one stays valid for an overlap window"
    )
    rotate.add_argument("merchant_id", type=merchant_id, help=MERCHANT_ID_HELP)
    rotate.add_argument(
        "--overlap-minutes",
        type=int_between(MIN_OVERLAP_MINUTES, MAX_OVERLAP_MINUTES, "minutes (a week)"),
        default=DEFAULT_OVERLAP_MINUTES,
        help=f"how long the replaced key stays valid ({MIN_OVERLAP_MINUTES}-"
        f"{MAX_OVERLAP_MINUTES}, default {DEFAULT_OVERLAP_MINUTES})",
    )
    revoke = actions.add_parser(
        "revoke", help="revoke a merchant's keys (current and previous) in every region"
    )
    revoke.add_argument("merchant_id", type=merchant_id, help=MERCHANT_ID_HELP)
    listing = actions.add_parser("list", help="merchants and key states, never secrets")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sync = actions.add_parser("sync", help="bring every region's usage plan in line with the keys")
    for parser in (create, rotate, revoke):
        add_confirmation_arguments(parser, dry_run=DRY_RUN_HELP)
    add_confirmation_arguments(sync, dry_run=None)
    for parser in actions.choices.values():
        add_stack_arguments(parser)
        parser.set_defaults(run=run_merchant)


def planned_writes(
    merchants: Merchants, outputs: StackOutputs, args: argparse.Namespace
) -> list[str]:
    """What the command would write, from the merchant's record; refused as the write would
    be when the record does not allow it."""
    command = args.merchant_command
    table = f"table {outputs.table_name} through {outputs.primary}"
    replicated = f"(replicated to {', '.join(outputs.others(outputs.primary))})"
    plans = " and ".join(outputs.regions)
    if command == "sync":
        return [
            f"every merchant's usage key in line with its record, in the usage plans of {plans}"
        ]
    merchant = args.merchant_id
    record = merchants.record(merchant)
    if command == "create":
        if record is not None and record.status is KeyStatus.ACTIVE:
            raise OpsError(
                f"merchant {merchant} already has an active key: revoke it first", EXIT_REFUSED
            )
        return [
            f"a new key's record for merchant {merchant} (its hash, never the key) in {table}"
            f" {replicated}",
            f"the merchant's usage key in the usage plans of {plans}",
        ]
    if record is None:
        raise OpsError(f"merchant {merchant} has no key: create one", EXIT_REFUSED)
    if command == "rotate":
        if record.status is not KeyStatus.ACTIVE:
            raise OpsError(f"merchant {merchant}'s key is revoked: create a new one", EXIT_REFUSED)
        writes = [
            f"a new key for merchant {merchant} in {table} {replicated}; key {record.key_id}"
            f" stays valid for {args.overlap_minutes} min"
        ]
        if record.previous is not None:
            writes.append(f"key {record.previous.key_id}, from the rotation before, ends now")
        return writes
    ended = f"key {record.key_id}" + (
        f" and key {record.previous.key_id}" if record.previous is not None else ""
    )
    return [
        f"{ended} of merchant {merchant} marked revoked in {table} {replicated}",
        f"the merchant's usage key out of the usage plans of {plans}",
        f"the authorizer caches of the API stages in {plans} flushed",
    ]


def run_merchant(
    args: argparse.Namespace, aws: Aws | None = None, ask: Ask = ask_on_terminal
) -> int:
    command_name = f"merchant {args.merchant_command}"
    writes = args.merchant_command in WRITES

    def command() -> int:
        clients = aws or Aws()
        outputs = load_outputs(args.stack, args.outputs, args.work_dir or project_root())
        if writes:
            refuse_unconfirmable(command_name, args)
        clients.require_credentials()
        merchants = Merchants(outputs, clients, sys.stdout, sys.stderr)
        if writes:
            planned = planned_writes(merchants, outputs, args)
            dry_run = getattr(args, "dry_run", False)
            heading = "dry run, nothing written; would write" if dry_run else "will write"
            # A dry run's plan is its result; before a write, stdout is kept for the new key.
            stream = sys.stdout if dry_run else sys.stderr
            print(f"{command_name} on stack {outputs.stack}: {heading}:", file=stream)
            for line in planned:
                print(f"  - {line}", file=stream)
            if dry_run:
                return EXIT_OK
            question = f"{command_name} on stack {outputs.stack} ({', '.join(outputs.regions)})?"
            require_confirmation(command_name, question, args, ask)
        if args.merchant_command == "create":
            return merchants.create(args.merchant_id)
        if args.merchant_command == "rotate":
            return merchants.rotate(args.merchant_id, args.overlap_minutes)
        if args.merchant_command == "revoke":
            return merchants.revoke(args.merchant_id)
        if args.merchant_command == "list":
            return merchants.list(args.json)
        return merchants.sync()

    return run_guarded(command)
